package ebpf

import (
	"errors"
	"fmt"
	"net/netip"
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
// Counters: the data path changes dest_live only with atomic adds; Go can
// only read and write whole values, so an install or an INACTIVE change
// done here is a read-modify-write of dest_live. A backup sees no client
// traffic for the VIPs (VRRP gives them to the master), so nothing races
// with it in practice; removals go through govs_expire and are exact. A
// syscall program doing install and bind in BPF would make it exact too
// (see the package documentation of govs's HA, docs/HA.md).

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
	it := d.objs.Conns.Iterate()
	for it.Next(&k, &v) {
		if v.Expires <= now {
			continue
		}
		c := syncConnOf(&k, &v)
		switch {
		case c.IsTemplate():
			c.Timeout = svcTimeouts[v.SvcId]
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
		fn(&c, v.Inpkts, left)
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

// syncConnOf renders a conns map entry as a sync entry.
func syncConnOf(k *govsConnKey, v *govsConn) connsync.Conn {
	c := connsync.Conn{
		Proto:   ipvs.Protocol(k.Proto),
		Flags:   connsync.FwdFlags(ipvs.FwdMethod(v.Fwd)),
		State:   uint16(v.Sf & syncStateMask),
		Client:  netip.AddrPortFrom(wordsAddr(k.Src, k.Family), ntohs(k.Sport)),
		Virtual: netip.AddrPortFrom(wordsAddr(k.Dst, k.Family), ntohs(k.Dport)),
		Dest:    netip.AddrPortFrom(wordsAddr(v.Daddr, v.Dfamily), ntohs(v.Dport)),
		FWMark:  v.Fwmark,
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
	return syncConnOf(&k, &v), true
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

func (t *syncTable) Install(c connsync.Conn, pkts uint32) error {
	d := t.d
	d.mu.Lock()
	e, de, err := d.tab.syncDest(&c)
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	fwd, ok := c.Flags.Fwd()
	if !ok {
		fwd = de.d.Fwd
	}
	dport := c.Dest.Port()
	if c.IsTemplate() && dport == 0 {
		dport = de.d.Port
	}
	v := govsConn{
		Daddr:   addrWords(de.d.Addr),
		Expires: monotonicNow() + uint64(c.Timeout),
		DestId:  de.id,
		SvcId:   e.id,
		Fwmark:  e.svc.FWMark,
		Dport:   htons(dport),
		TunPort: htons(de.d.TunPort),
		Fwd:     uint8(fwd),
		Dfamily: family(ipvs.FamilyOf(de.d.Addr)),
		TunType: uint8(de.d.TunType),
	}
	k := syncKeyOf(&c)
	inactive := false
	if !c.IsTemplate() {
		v.Sf = uint32(c.State) & syncStateMask
		if c.Flags&connsync.FlagInactive != 0 {
			v.Sf |= syncFInactive
			inactive = true
		}
		if fwd != ipvs.Masq {
			// The backup has seen no reply: states move by the
			// input-only table, as for a connection it scheduled.
			v.Sf |= syncFNoOutput
		}
	}
	if err := d.objs.Conns.Update(&k, &v, ebpf.UpdateNoExist); err != nil {
		return fmt.Errorf("install %s -> %s: %w", c.Client, c.Virtual, err)
	}
	switch {
	case c.IsTemplate():
		err = d.addLive(de.id, 0, 0, 1)
	case inactive:
		err = d.addLive(de.id, 0, 1, 0)
	default:
		err = d.addLive(de.id, 1, 0, 0)
	}
	if err != nil {
		return err
	}
	if fwd == ipvs.Masq && !c.IsTemplate() {
		nk := govsNatKey{Src: v.Daddr, Dst: k.Src, Sport: v.Dport, Dport: k.Sport, Proto: k.Proto, Family: k.Family}
		if err := d.objs.Nat.Update(&nk, &k, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("install NAT reply entry of %s -> %s: %w", c.Client, c.Virtual, err)
		}
	}
	return nil
}

func (t *syncTable) Update(c connsync.Conn, pkts uint32) error {
	d := t.d
	k := syncKeyOf(&c)
	var v govsConn
	if err := d.objs.Conns.Lookup(&k, &v); err != nil {
		return fmt.Errorf("update %s -> %s: %w", c.Client, c.Virtual, err)
	}
	v.Expires = monotonicNow() + uint64(c.Timeout)
	var da, di int32
	if k.Kind != syncKindTmpl {
		was := v.Sf&syncFInactive != 0
		is := c.Flags&connsync.FlagInactive != 0
		v.Sf = v.Sf&^(syncStateMask|syncFInactive) | uint32(c.State)&syncStateMask
		if is {
			v.Sf |= syncFInactive
		}
		switch {
		case was && !is:
			da, di = 1, -1
		case !was && is:
			da, di = -1, 1
		}
	}
	if err := d.objs.Conns.Update(&k, &v, ebpf.UpdateExist); err != nil {
		return fmt.Errorf("update %s -> %s: %w", c.Client, c.Virtual, err)
	}
	if da != 0 || di != 0 {
		return d.addLive(v.DestId, da, di, 0)
	}
	return nil
}

func (t *syncTable) Remove(c *connsync.Conn) error {
	args := govsExpireArgs{Key: syncKeyOf(c)}
	var out govsExpireArgs
	if _, err := t.d.objs.GovsExpire.Run(&ebpf.RunOptions{Context: args, ContextOut: &out}); err != nil {
		return fmt.Errorf("remove %s -> %s: run govs_expire: %w", c.Client, c.Virtual, err)
	}
	return nil
}

func (t *syncTable) Timeouts() conn.Timeouts {
	t.d.mu.Lock()
	defer t.d.mu.Unlock()
	return t.d.tab.timeouts
}

// addLive adds to a destination's live counters (see the note on
// counters above) and applies the overload rule as bind_dest does.
func (d *Dataplane) addLive(id uint32, active, inact, persist int32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var l govsDestLive
	if err := d.objs.DestLive.Lookup(id, &l); err != nil {
		return fmt.Errorf("read dest_live %d: %w", id, err)
	}
	l.Active += active
	l.Inact += inact
	l.Persist += persist
	var dv govsDest
	if err := d.objs.Dests.Lookup(id, &dv); err == nil && dv.Upper != 0 && uint32(max(l.Active+l.Inact, 0)) >= dv.Upper {
		l.Overloaded = 1
	}
	if err := d.objs.DestLive.Update(id, &l, ebpf.UpdateExist); err != nil {
		return fmt.Errorf("write dest_live %d: %w", id, err)
	}
	return nil
}
