package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/ipvs"
)

// Connection synchronisation (package connsync): the engine keeps a
// connsync.SyncState beside every entry once sync is in use, feeds the
// master's rules from Process while a feed is set, and is the backup's
// connsync.Table through SyncTable.

// SyncFeed receives the update of every incoming packet of a connection,
// under the engine's lock: it must not call back into the engine. The
// sync master's Packet is one.
type SyncFeed func(now time.Time, u *connsync.Update)

// ErrSyncNoDest is returned by the sync table for an entry whose service
// or destination this engine does not have.
var ErrSyncNoDest = errors.New("no such virtual service or destination here")

// SetSyncFeed sets (nil: removes) the function Process hands each
// incoming packet's connection update to: the sync master's rules
// (connsync.Master.Packet).
func (e *Engine) SetSyncFeed(f SyncFeed) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncFeed = f
	if f != nil && e.syncStates == nil {
		e.syncStates = make(map[conn.Key]*connsync.SyncState)
	}
}

// syncState returns c's SyncState, creating it.
func (e *Engine) syncState(c *conn.Entry) *connsync.SyncState {
	if e.syncStates == nil {
		e.syncStates = make(map[conn.Key]*connsync.SyncState)
	}
	st := e.syncStates[c.Key()]
	if st == nil {
		st = &connsync.SyncState{}
		e.syncStates[c.Key()] = st
	}
	return st
}

// feedSync hands c's update (with its controlling template's) to the
// feed. Called with e.mu held, after c's state moved.
func (e *Engine) feedSync(now time.Time, c *conn.Entry) {
	u := &connsync.Update{Conn: syncConn(c), Sync: e.syncState(c)}
	if t := e.conns.Controller(c); t != nil {
		u.Control = &connsync.Update{Conn: syncConn(t), Sync: e.syncState(t)}
	}
	e.syncFeed(now, u)
}

// forgetSync drops a freed entry's SyncState.
func (e *Engine) forgetSync(c *conn.Entry) {
	if e.syncStates != nil {
		delete(e.syncStates, c.Key())
	}
}

// syncConn renders an entry as the sync protocol carries it.
func syncConn(c *conn.Entry) connsync.Conn {
	f := connsync.FwdFlags(c.Fwd)
	if c.Flags&conn.FlagTemplate != 0 {
		f |= connsync.FlagTemplate
	}
	if c.Flags&conn.FlagInactive != 0 {
		f |= connsync.FlagInactive
	}
	if c.Flags&conn.FlagNoOutput != 0 {
		f |= connsync.FlagNoOutput
	}
	if c.Flags&conn.FlagOnePacket != 0 {
		f |= connsync.FlagOnePacket
	}
	sc := connsync.Conn{
		Proto: c.Proto(), Flags: f, State: uint16(c.State),
		Client: c.Client(), Virtual: c.Virtual(), Dest: c.DestAddrPort(),
		FWMark: c.FWMark, Timeout: c.Timeout,
	}
	if c.IsTemplate() && c.Proto() == ipvs.ProtoNone {
		// A firewall-mark template: the mark takes the virtual address's
		// place, in the client's family.
		k := c.Key()
		if sc.Client.Addr().Is4() {
			sc.Virtual = netip.AddrPortFrom(netip.AddrFrom4([4]byte(k.Dst[:4])), 0)
		} else {
			var a [16]byte
			copy(a[:4], k.Dst[:4])
			sc.Virtual = netip.AddrPortFrom(netip.AddrFrom16(a), 0)
		}
	}
	return sc
}

// syncKey is the table key of a synced entry.
func syncKey(c *connsync.Conn) conn.Key {
	client := netip.AddrPortFrom(c.Client.Addr().Unmap(), c.Client.Port())
	virtual := netip.AddrPortFrom(c.Virtual.Addr().Unmap(), c.Virtual.Port())
	if !c.IsTemplate() {
		return conn.MakeKey(c.Proto, client, virtual)
	}
	if c.Proto == ipvs.ProtoNone {
		var mark uint32
		if v := virtual.Addr(); v.Is4() {
			a := v.As4()
			mark = binary.BigEndian.Uint32(a[:])
		} else {
			a := v.As16()
			mark = binary.BigEndian.Uint32(a[:4])
		}
		if mark == 0 {
			mark = c.FWMark
		}
		return conn.FWMarkTemplateKey(mark, client.Addr())
	}
	return conn.TemplateKey(c.Proto, client.Addr(), virtual.Addr(), virtual.Port())
}

// SyncConns returns what a sync master's periodic sweep announces: every
// established connection (TCP in ESTABLISHED, UDP) and every persistence
// template, as of now (connsync's returning-master design).
func (e *Engine) SyncConns(now time.Time) []connsync.Conn {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []connsync.Conn
	for c := range e.conns.All() {
		if !c.Hashed() || !now.Before(e.conns.Deadline(c)) {
			continue
		}
		if !c.IsTemplate() && c.Proto() == ipvs.ProtoTCP && c.State != conn.TCPEstablished {
			continue
		}
		if c.Flags&conn.FlagOnePacket != 0 {
			continue
		}
		sc := syncConn(c)
		if left := e.conns.Deadline(c).Sub(now); left > 0 && left < sc.Timeout {
			// Announce the time the entry has left, not its full timeout.
			sc.Timeout = left.Round(time.Second)
		}
		out = append(out, sc)
	}
	return out
}

// SyncTable returns the engine as the sync backup's connsync.Table; now is
// its clock.
func (e *Engine) SyncTable(now func() time.Time) connsync.Table {
	if now == nil {
		now = time.Now
	}
	return &syncTable{e: e, now: now}
}

type syncTable struct {
	e   *Engine
	now func() time.Time
}

func (t *syncTable) Lookup(c *connsync.Conn) (connsync.Conn, bool) {
	e := t.e
	e.mu.Lock()
	defer e.mu.Unlock()
	en := e.conns.Lookup(syncKey(c), t.now())
	if en == nil {
		return connsync.Conn{}, false
	}
	return syncConn(en), true
}

// syncService finds the service of a synced entry as the kernel's backup
// does (ip_vs_proc_conn looks the destination up in the entry's service).
func (e *Engine) syncService(c *connsync.Conn) *service {
	fam := ipvs.FamilyOf(c.Client.Addr().Unmap())
	if c.FWMark != 0 {
		if s := e.fwmarks[fwmKey{c.FWMark, fam}]; s != nil {
			return s
		}
	}
	k := ipvs.ServiceKey{Family: fam, Protocol: c.Proto, Addr: c.Virtual.Addr().Unmap(), Port: c.Virtual.Port()}
	if s := e.services[k]; s != nil {
		return s
	}
	k.Port = 0
	return e.services[k]
}

// syncDest finds the destination a synced entry names in its service: by
// address and port, or by address alone for a template that carries no
// port.
func (s *service) syncDest(c *connsync.Conn) *dest {
	addr := c.Dest.Addr().Unmap()
	if dd := s.byKey[ipvs.DestKey{Addr: addr, Port: c.Dest.Port()}]; dd != nil {
		return dd
	}
	for k, dd := range s.byKey {
		if k.Addr == addr && (c.Dest.Port() == 0 || k.Port == 0) {
			return dd
		}
	}
	return nil
}

func (t *syncTable) Install(c connsync.Conn, pkts uint32) error {
	e := t.e
	now := t.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.syncService(&c)
	if s == nil {
		return fmt.Errorf("install %s -> %s: %w", c.Client, c.Virtual, ErrSyncNoDest)
	}
	dd := s.syncDest(&c)
	if dd == nil {
		return fmt.Errorf("install %s -> %s via %s: %w", c.Client, c.Virtual, c.Dest, ErrSyncNoDest)
	}
	fwd, ok := c.Flags.Fwd()
	if !ok {
		fwd = dd.d.Fwd
	}
	var flags conn.Flags
	if c.IsTemplate() {
		flags |= conn.FlagTemplate
	} else {
		if c.Flags&connsync.FlagInactive != 0 {
			flags |= conn.FlagInactive
		}
		if c.Flags&connsync.FlagNoOutput != 0 || fwd != ipvs.Masq {
			flags |= conn.FlagNoOutput
		}
	}
	en := e.conns.Insert(conn.Params{
		Key:     syncKey(&c),
		Dest:    netip.AddrPortFrom(c.Dest.Addr().Unmap(), c.Dest.Port()),
		Fwd:     fwd,
		FWMark:  c.FWMark,
		Flags:   flags,
		State:   conn.State(c.State),
		Timeout: c.Timeout,
		DestID:  dd.id,
	}, now)
	dd.refs++
	dd.d.Bind(c.IsTemplate(), en.Active())
	e.syncState(en).Reset(c.State, pkts)
	return nil
}

func (t *syncTable) Update(c connsync.Conn, pkts uint32) error {
	e := t.e
	now := t.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	en := e.conns.Lookup(syncKey(&c), now)
	if en == nil {
		return fmt.Errorf("update %s -> %s: entry gone", c.Client, c.Virtual)
	}
	if !en.IsTemplate() {
		was := en.Active()
		if c.Flags&connsync.FlagInactive != 0 {
			en.Flags |= conn.FlagInactive
		} else {
			en.Flags &^= conn.FlagInactive
		}
		if is := en.Active(); is != was {
			if dd := e.dests[en.Dest]; dd != nil {
				dd.d.SetActive(is)
			}
		}
		en.State = conn.State(c.State)
	}
	en.Timeout = c.Timeout
	e.conns.Touch(en, now)
	e.syncState(en).Reset(c.State, pkts)
	return nil
}

func (t *syncTable) Remove(c *connsync.Conn) error {
	e := t.e
	now := t.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	en := e.conns.Lookup(syncKey(c), now)
	if en == nil {
		return nil
	}
	e.conns.ExpireNow(en, now, false)
	return nil
}

func (t *syncTable) Timeouts() conn.Timeouts { return t.e.Timeouts() }
