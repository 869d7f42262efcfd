package ebpf

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"time"

	"github.com/cilium/ebpf"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/ipvs"
)

// Connection synchronisation (package connsync) over the conns map.
//
// The BPF program cannot call the sync master per packet, so the master
// side polls: SyncWalk reads every live entry with its packet count, and
// the daemon feeds the master's rules from the differences between two
// walks. The backup side writes synced entries into the conns map
// (SyncTable) with their destination's counters, so that the data path
// forwards a synced connection's next packet like one it scheduled.
//
// Install and Update run the govs_sync syscall program (bpf/sync.h),
// which writes the entry, its NAT reply entry and its template link and
// moves its destination's counters with the data path's atomics, exactly
// once even if a packet creates or changes the same entry meanwhile;
// Remove runs govs_expire. Go never writes dest_live or a conns entry.

// SyncWalk calls fn for every live connection and template in the conns
// map, rendered as the sync protocol carries it (Timeout: the full
// timeout of its state, or a template's persistence timeout), with its
// incoming packet count and the time it has left.
func (d *Dataplane) SyncWalk(fn func(c *connsync.Conn, inPkts uint64, left time.Duration)) error {
	var to [syncNumTimeouts]uint32
	for i := range to {
		_ = d.objs.Timeouts.Lookup(uint32(i), &to[i])
	}
	svcTimeouts := map[uint32]time.Duration{}
	d.mu.Lock()
	for _, e := range d.tab.svcs {
		svcTimeouts[e.id] = time.Duration(e.svc.Timeout) * time.Second
	}
	d.mu.Unlock()
	now := monotonicNow()
	var (
		k govsConnKey
		v govsConn
	)
	dests := destReader{m: d.objs.Dests}
	it := d.objs.Conns.Iterate()
	for it.Next(&k, &v) {
		if v.Expires <= now {
			continue
		}
		dv := dests.get(v.DestId)
		c := syncConnOf(&k, &v, &dv)
		switch {
		case c.IsTemplate():
			c.Timeout = svcTimeouts[dv.SvcId]
		case k.Proto == uint8(ipvs.ProtoTCP):
			if st := int(c.State); st < len(to) {
				c.Timeout = time.Duration(to[st]) * time.Second
			}
		default:
			c.Timeout = time.Duration(to[syncTimeoutUDP]) * time.Second
		}
		left := time.Duration(v.Expires - now)
		if c.Timeout == 0 {
			c.Timeout = left.Truncate(time.Second) + time.Second
		}
		fn(&c, uint64(v.Inpkts), left)
	}
	if err := it.Err(); err != nil && !errors.Is(err, ebpf.ErrIterationAborted) {
		return fmt.Errorf("iterate connections: %w", err)
	}
	return nil
}

// The structs.h values sync uses (named apart from tables_linux.go's).
const (
	syncNumTimeouts = 16 // NUM_TIMEOUTS
	syncTimeoutUDP  = 11 // TIMEOUT_UDP
	syncFInactive   = 0x0100
	syncFNoOutput   = 0x0200
	syncStateMask   = 0x00ff
	syncKindTmpl    = 1
)

// syncConnOf renders a conns map entry, whose destination is d, as a
// sync entry.
func syncConnOf(k *govsConnKey, v *govsConn, d *govsDest) connsync.Conn {
	c := connsync.Conn{
		Proto:   ipvs.Protocol(k.Proto),
		Flags:   connsync.FwdFlags(ipvs.FwdMethod(v.Fwd)),
		State:   uint16(v.Sf & syncStateMask),
		Client:  netip.AddrPortFrom(wordsAddr(k.Src, k.Family), ntohs(k.Sport)),
		Virtual: netip.AddrPortFrom(wordsAddr(k.Dst, k.Family), ntohs(k.Dport)),
		Dest:    netip.AddrPortFrom(wordsAddr(d.Addr, d.Family), ntohs(v.Dport)),
		FWMark:  d.Fwmark,
	}
	if k.Kind == syncKindTmpl {
		c.Flags |= connsync.FlagTemplate
		c.State = 0
		return c
	}
	if v.Sf&syncFInactive != 0 {
		c.Flags |= connsync.FlagInactive
	}
	if v.Sf&syncFNoOutput != 0 {
		c.Flags |= connsync.FlagNoOutput
	}
	return c
}

// syncKeyOf is the conns map key of a sync entry.
func syncKeyOf(c *connsync.Conn) govsConnKey {
	client, virtual := c.Client.Addr().Unmap(), c.Virtual.Addr().Unmap()
	fam := family(ipvs.FamilyOf(client))
	k := govsConnKey{
		Src: addrWords(client), Dst: addrWords(virtual),
		Sport: htons(c.Client.Port()), Dport: htons(c.Virtual.Port()),
		Proto: uint8(c.Proto), Family: fam,
	}
	if c.IsTemplate() {
		k.Kind = syncKindTmpl
		k.Sport = 0
		if c.Proto == ipvs.ProtoNone {
			// A firewall-mark template: the mark, in network order, in
			// the first word; the rest zero.
			k.Dst = [4]uint32{k.Dst[0]}
			k.Dport = 0
		}
	}
	return k
}

// SyncTable returns the data plane's connection table as a sync backup's
// connsync.Table.
func (d *Dataplane) SyncTable() connsync.Table { return &syncTable{d: d} }

type syncTable struct{ d *Dataplane }

var _ connsync.Table = (*syncTable)(nil)

func (t *syncTable) Lookup(c *connsync.Conn) (connsync.Conn, bool) {
	k := syncKeyOf(c)
	var v govsConn
	if err := t.d.objs.Conns.Lookup(&k, &v); err != nil || v.Expires <= monotonicNow() {
		return connsync.Conn{}, false
	}
	dests := destReader{m: t.d.objs.Dests}
	return syncConnOf(&k, &v, new(dests.get(v.DestId))), true
}

// ErrSyncNoDest is returned for a synced entry whose service or
// destination this data plane does not have.
var ErrSyncNoDest = errors.New("no such virtual service or destination here")

// syncDest finds the service and destination of a synced entry.
func (t *tables) syncDest(c *connsync.Conn) (*svcEntry, *destEntry, error) {
	fam := ipvs.FamilyOf(c.Client.Addr().Unmap())
	var e *svcEntry
	if c.FWMark != 0 {
		e = t.svcs[ipvs.FWMarkService(c.FWMark, fam)]
	}
	if e == nil {
		k := ipvs.ServiceKey{Family: fam, Protocol: c.Proto, Addr: c.Virtual.Addr().Unmap(), Port: c.Virtual.Port()}
		if e = t.svcs[k]; e == nil {
			k.Port = 0
			e = t.svcs[k]
		}
	}
	if e == nil {
		return nil, nil, fmt.Errorf("%s -> %s: %w", c.Client, c.Virtual, ErrSyncNoDest)
	}
	addr := c.Dest.Addr().Unmap()
	var loose *destEntry
	for _, de := range e.dests {
		if de.d.Addr != addr {
			continue
		}
		if de.d.Port == c.Dest.Port() {
			return e, de, nil
		}
		if c.Dest.Port() == 0 || de.d.Port == 0 || c.IsTemplate() {
			loose = de
		}
	}
	if loose != nil {
		return e, loose, nil
	}
	return nil, nil, fmt.Errorf("%s -> %s via %s: %w", c.Client, c.Virtual, c.Dest, ErrSyncNoDest)
}

// govs_sync's operations, flags and results (bpf/sync.h).
const (
	syncOpInstall   = 0
	syncOpUpdate    = 1
	syncOpRemove    = 2
	syncFPersistent = 0x1
	syncDInstalled  = 0x1
	syncDUpdated    = 0x2
	syncDLinked     = 0x4
	syncDNAT        = 0x8
	syncDRemoved    = 0x10
	syncDDeferred   = 0x20
	syncFTport      = 0x0800
	syncENOENT      = 2
	syncFTPPort     = 21
)

// syncArgs renders a synced entry as govs_sync's arguments: the entry
// bound to the destination de of service e.
func syncArgs(c *connsync.Conn, e *svcEntry, de *destEntry) govsSyncArgs {
	fwd, ok := c.Flags.Fwd()
	if !ok {
		fwd = de.d.Fwd
	}
	dport := c.Dest.Port()
	if c.IsTemplate() && dport == 0 {
		dport = de.d.Port
	}
	a := govsSyncArgs{
		Key: syncKeyOf(c),
		C: govsConn{
			DestId: de.id,
			Dport:  htons(dport),
			Fwd:    uint8(fwd),
		},
		Timeout: uint64(c.Timeout),
	}
	if c.IsTemplate() {
		return a
	}
	a.C.Sf = uint32(c.State) & syncStateMask
	if c.Flags&connsync.FlagInactive != 0 {
		a.C.Sf |= syncFInactive
	}
	if fwd != ipvs.Masq || c.Flags&connsync.FlagNoOutput != 0 {
		// The backup has seen no reply: states move by the input-only
		// table, as for a connection it scheduled.
		a.C.Sf |= syncFNoOutput
	}
	if e.svc.Persistent {
		// What pick() puts in the template key: the virtual port
		// unless the service is port-zero, FTP or a firewall mark.
		a.Flags |= syncFPersistent
		a.C.CtlMask = e.svc.Netmask
		if e.svc.FWMark == 0 && c.Virtual.Port() == e.svc.Port && e.svc.Port != syncFTPPort {
			a.C.Sf |= syncFTport
		}
	}
	return a
}

// runSync runs govs_sync: the entry, its NAT reply entry, its template
// link and its destination's counters, in BPF with the data path's
// atomics (bpf/sync.h).
func (d *Dataplane) runSync(op uint32, c *connsync.Conn) (uint32, error) {
	name := "install"
	if op == syncOpUpdate {
		name = "update"
	}
	d.mu.Lock()
	e, de, err := d.tab.syncDest(c)
	d.mu.Unlock()
	var args govsSyncArgs
	switch {
	case err == nil:
		args = syncArgs(c, e, de)
	case op == syncOpUpdate:
		// An update keeps the entry's destination: one that left the
		// configuration still gets its state and timer (not linked).
		args = govsSyncArgs{Key: syncKeyOf(c), Timeout: uint64(c.Timeout)}
		args.C.Sf = uint32(c.State) & syncStateMask
		if c.Flags&connsync.FlagInactive != 0 {
			args.C.Sf |= syncFInactive
		}
	default:
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	args.Op = op
	out, err := d.tab.runSync(&args)
	switch {
	case err != nil:
		return 0, fmt.Errorf("%s %s -> %s: %w", name, c.Client, c.Virtual, err)
	case out.Err == -syncENOENT && op == syncOpUpdate:
		return 0, fmt.Errorf("%s %s -> %s: entry gone", name, c.Client, c.Virtual)
	case out.Err != 0:
		return 0, fmt.Errorf("%s %s -> %s: %w", name, c.Client, c.Virtual, syscall.Errno(-out.Err))
	}
	return out.Done, nil
}

func (t *tables) runSync(args *govsSyncArgs) (govsSyncArgs, error) {
	var out govsSyncArgs
	t.prog.Lock()
	defer t.prog.Unlock()
	if _, err := t.objs.GovsSync.Run(&ebpf.RunOptions{Context: *args, ContextOut: &out}); err != nil {
		return out, fmt.Errorf("run govs_sync: %w", err)
	}
	return out, nil
}

func (t *syncTable) Install(c connsync.Conn, pkts uint32) error {
	_, err := t.d.runSync(syncOpInstall, &c)
	return err
}

func (t *syncTable) Update(c connsync.Conn, pkts uint32) error {
	_, err := t.d.runSync(syncOpUpdate, &c)
	return err
}

// Remove expires the entry now, as ip_vs_conn_expire_now: a template
// that still controls connections is re-armed instead (bpf/sync.h).
func (t *syncTable) Remove(c *connsync.Conn) error {
	if _, err := t.d.tab.runSync(&govsSyncArgs{Key: syncKeyOf(c), Op: syncOpRemove}); err != nil {
		return fmt.Errorf("remove %s -> %s: %w", c.Client, c.Virtual, err)
	}
	return nil
}

func (t *syncTable) Timeouts() conn.Timeouts {
	t.d.mu.Lock()
	defer t.d.mu.Unlock()
	return t.d.tab.timeouts
}
