package ebpf

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/cilium/ebpf"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

// adopt rebuilds the Go side of the tables from maps pinned by a previous
// run, so that the control plane's replay of its configuration finds its
// services and destinations (with their ids, counters and scheduler
// positions) in place.
func (t *tables) adopt() error {
	var (
		k    govsSvcKey
		v    govsSvc
		maxD uint32
	)
	names := make(map[uint8]string, len(schedCodes))
	for n, c := range schedCodes {
		names[c] = n
	}
	it := t.objs.Services.Iterate()
	for it.Next(&k, &v) {
		if int(v.Id) >= len(t.svcIDs) {
			continue
		}
		svc := ipvs.Service{Scheduler: names[v.Sched], Timeout: v.Timeout, Netmask: v.Netmask}
		fam := ipvs.IPv4
		if k.Family == afInet6 {
			fam = ipvs.IPv6
		}
		if k.Fwmark != 0 {
			svc.ServiceKey = ipvs.FWMarkService(k.Fwmark, fam)
		} else {
			svc.ServiceKey = ipvs.ServiceKey{Family: fam, Protocol: ipvs.Protocol(k.Proto),
				Addr: wordsAddr(k.Addr, k.Family), Port: ntohs(k.Port)}
		}
		svc.Persistent = v.Flags&svcFPersist != 0
		svc.OnePacket = v.Flags&svcFOnePkt != 0
		svc.SchedFlags = ipvs.SchedFlags(v.Flags) & (ipvs.SchedFlag1 | ipvs.SchedFlag2 | ipvs.SchedFlag3)
		e := &svcEntry{svc: svc, id: v.Id, gcCounter: 1, list: v.List, listCap: uint32(v.ListCap)}
		if !t.lists.take(e.list, e.listCap) {
			return fmt.Errorf("service %s: its destination list overlaps another's", svc.ServiceKey)
		}
		if n := schedCodes[svc.Scheduler]; n >= 8 && n <= 10 && int(v.Table) < len(t.tableIDs) {
			e.table, e.hasTable = v.Table, true
			t.tableIDs[v.Table] = true
		}
		for i := range uint32(min(int(v.Ndests), maxDests, int(e.listCap))) {
			var id uint32
			var dv govsDest
			if err := t.objs.SvcDests.Lookup(e.list+i, &id); err != nil {
				return fmt.Errorf("read destination list: %w", err)
			}
			if err := t.objs.Dests.Lookup(id, &dv); err != nil {
				return fmt.Errorf("read destination %d: %w", id, err)
			}
			d := ipvs.Destination{Addr: wordsAddr(dv.Addr, dv.Family), Port: ntohs(dv.Port), Fwd: ipvs.FwdMethod(dv.Fwd),
				Weight: dv.Weight, Upper: dv.Upper, Lower: dv.Lower, TunType: ipvs.TunnelType(dv.TunType),
				TunPort: ntohs(dv.TunPort), TunFlags: ipvs.TunFlags(dv.TunFlags)}
			e.dests = append(e.dests, &destEntry{d: d, id: id, last: d.Weight})
			t.destIDs[id] = true
			maxD = max(maxD, id+1)
		}
		t.svcIDs[v.Id] = true
		t.svcs[svc.ServiceKey] = e
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("iterate services: %w", err)
	}
	t.nextDest = maxD % uint32(len(t.destIDs))
	// The estimators start from the counters as they are: the traffic
	// before the restart is not a rate.
	for _, e := range t.svcs {
		c, err := t.perCPUStats(t.objs.SvcStats, e.id)
		if err != nil {
			return err
		}
		e.est.Reset(c)
		for _, d := range e.dests {
			if c, err = t.perCPUStats(t.objs.DestStats, d.id); err != nil {
				return err
			}
			d.est.Reset(c)
		}
	}
	var est, fin, udp uint32
	_ = t.objs.Timeouts.Lookup(uint32(1), &est)
	_ = t.objs.Timeouts.Lookup(uint32(4), &fin)
	_ = t.objs.Timeouts.Lookup(uint32(timeoutUDP), &udp)
	if est != 0 {
		t.timeouts = conn.Timeouts{TCP: time.Duration(est) * time.Second,
			TCPFin: time.Duration(fin) * time.Second, UDP: time.Duration(udp) * time.Second}
	}
	return nil
}

func (t *tables) perCPUStats(m *ebpf.Map, id uint32) (ipvs.Counters, error) {
	var per []govsStats
	if err := m.Lookup(id, &per); err != nil {
		return ipvs.Counters{}, fmt.Errorf("read %s: %w", m, err)
	}
	var c ipvs.Counters
	for _, s := range per {
		c.Add(ipvs.Counters{Conns: s.Conns, InPkts: s.Inpkts, OutPkts: s.Outpkts, InBytes: s.Inbytes, OutBytes: s.Outbytes})
	}
	return c, nil
}

// sampleRates takes the rate estimator's samples due at now (every two
// seconds; see package stats): the kernel's estimator, run in Go over the
// per-CPU counters summed.
func (t *tables) sampleRates(now time.Time) error {
	for range t.clock.Due(now) {
		for _, e := range t.svcs {
			c, err := t.perCPUStats(t.objs.SvcStats, e.id)
			if err != nil {
				return err
			}
			e.est.Sample(c)
			for _, d := range e.dests {
				if c, err = t.perCPUStats(t.objs.DestStats, d.id); err != nil {
					return err
				}
				d.est.Sample(c)
			}
		}
	}
	return nil
}

// services returns the live state of every service, in ipvsadm's order.
func (t *tables) services() ([]ipvs.ServiceState, error) {
	out := make([]ipvs.ServiceState, 0, len(t.svcs))
	for _, e := range t.svcs {
		st := ipvs.ServiceState{Service: e.svc, Rates: e.est.Rates()}
		var err error
		if st.Stats, err = t.perCPUStats(t.objs.SvcStats, e.id); err != nil {
			return nil, err
		}
		for _, de := range e.dests {
			var l govsDestLive
			if err := t.objs.DestLive.Lookup(de.id, &l); err != nil {
				return nil, fmt.Errorf("read dest_live: %w", err)
			}
			ds := ipvs.DestState{Destination: de.d, ActiveConns: uint32(max(l.Active, 0)),
				InactConns: uint32(max(l.Inact, 0)), PersistConns: uint32(max(l.Persist, 0)), Overloaded: l.Overloaded != 0,
				Rates: de.est.Rates()}
			if ds.Stats, err = t.perCPUStats(t.objs.DestStats, de.id); err != nil {
				return nil, err
			}
			st.Dests = append(st.Dests, ds)
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b ipvs.ServiceState) int { return compareKeys(a.ServiceKey, b.ServiceKey) })
	return out, nil
}

func compareKeys(a, b ipvs.ServiceKey) int {
	switch {
	case a.FWMark != b.FWMark:
		return cmpU(a.FWMark, b.FWMark)
	case a.Family != b.Family:
		return cmpU(uint32(a.Family), uint32(b.Family))
	case a.Protocol != b.Protocol:
		return cmpU(uint32(a.Protocol), uint32(b.Protocol))
	case a.Addr != b.Addr:
		return a.Addr.Compare(b.Addr)
	}
	return cmpU(uint32(a.Port), uint32(b.Port))
}

func cmpU(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// zero zeroes the counters of one service and its destinations, or all.
func (t *tables) zero(k *ipvs.ServiceKey) error {
	for key, e := range t.svcs {
		if k != nil && *k != key {
			continue
		}
		if err := zeroPerCPU(t.objs.SvcStats, e.id); err != nil {
			return err
		}
		e.est.Reset(ipvs.Counters{})
		for _, d := range e.dests {
			if err := zeroPerCPU(t.objs.DestStats, d.id); err != nil {
				return err
			}
			d.est.Reset(ipvs.Counters{})
		}
	}
	return nil
}

// conns lists the connection table at monotonic time now (nanoseconds).
func (t *tables) conns(now uint64) ([]conn.Info, error) {
	var (
		k   govsConnKey
		v   govsConn
		out []conn.Info
	)
	dests := destReader{m: t.objs.Dests}
	it := t.objs.Conns.Iterate()
	for it.Next(&k, &v) {
		if v.Expires <= now {
			continue
		}
		d := dests.get(v.DestId)
		info := conn.Info{
			Proto:    ipvs.Protocol(k.Proto),
			Template: k.Kind == 1,
			FWMark:   d.Fwmark,
			Client:   netip.AddrPortFrom(wordsAddr(k.Src, k.Family), ntohs(k.Sport)),
			Virtual:  netip.AddrPortFrom(wordsAddr(k.Dst, k.Family), ntohs(k.Dport)),
			Dest:     netip.AddrPortFrom(wordsAddr(d.Addr, d.Family), ntohs(v.Dport)),
			Expires:  time.Duration(v.Expires - now),
			Fwd:      ipvs.FwdMethod(v.Fwd),
			InPkts:   uint64(v.Inpkts),
			OutPkts:  uint64(v.Outpkts),
		}
		switch {
		case info.Template:
			info.State = "NONE"
			if d.Fwmark != 0 {
				info.Virtual = netip.AddrPort{}
			}
		case k.Proto == 17:
			info.State = "UDP"
		default:
			if s := v.Sf & connStateMsk; int(s) < len(tcpStateNames) {
				info.State = tcpStateNames[s]
			}
		}
		out = append(out, info)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("iterate connections: %w", err)
	}
	return out, nil
}

// destReader reads the dests entries that connections name (their
// realserver's address and family, their service's id and mark), each
// once per listing.
type destReader struct {
	m    *ebpf.Map
	seen map[uint32]govsDest
}

func (r *destReader) get(id uint32) govsDest {
	if d, ok := r.seen[id]; ok {
		return d
	}
	if r.seen == nil {
		r.seen = make(map[uint32]govsDest)
	}
	var d govsDest
	_ = r.m.Lookup(id, &d) // an array: every id below its size is there
	r.seen[id] = d
	return d
}

// sweep removes the entries that expired by now (monotonic nanoseconds)
// through govs_expire, which decrements their destinations' counters
// exactly once even if the data path expires the same entry at the same
// moment. It returns how many it removed.
func (t *tables) sweep(now uint64) (int, error) {
	var (
		k       govsConnKey
		v       govsConn
		expired []govsConnKey
	)
	it := t.objs.Conns.Iterate()
	for it.Next(&k, &v) {
		if v.Expires <= now {
			expired = append(expired, k)
		}
	}
	if err := it.Err(); err != nil && !errors.Is(err, ebpf.ErrIterationAborted) {
		return 0, fmt.Errorf("iterate connections: %w", err)
	}
	n := 0
	for _, key := range expired {
		removed, err := t.expire(key, now)
		if err != nil {
			return n, err
		}
		n += int(removed)
	}
	return n, nil
}

// expire runs govs_expire for the entry at key: removed if its deadline
// passed by now (monotonic nanoseconds), or regardless when now is 0.
// It returns 1 if this call removed it.
func (t *tables) expire(key govsConnKey, now uint64) (uint32, error) {
	args := govsExpireArgs{Key: key, Now: now}
	var out govsExpireArgs
	t.prog.Lock()
	defer t.prog.Unlock()
	if _, err := t.objs.GovsExpire.Run(&ebpf.RunOptions{Context: args, ContextOut: &out}); err != nil {
		return 0, fmt.Errorf("run govs_expire: %w", err)
	}
	return out.Removed, nil
}
