package engine

import (
	"net/netip"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/sched"
)

// Process decides what to do with one packet and updates the connection
// table, the destination counters and the statistics accordingly (the
// kernel's ip_vs_in and ip_vs_out).
//
// A client-to-VIP packet (DirIn) of a known connection is forwarded to its
// destination and moves its state. A packet that starts a connection (any
// UDP datagram, a TCP SYN without RST) for a virtual service is scheduled:
// with persistence through the client's template; Verdict.New is set.
// A TCP segment that is not a SYN, for a service but no connection, is
// dropped. When no destination is available the packet is dropped and the
// error wraps sched.ErrNoDestination; it is the only error Process
// returns. A packet for no service passes.
//
// A realserver-to-client packet (DirOut) of a NAT connection is forwarded
// (the data plane rewrites its source to Verdict.Virtual); any other
// DirOut packet passes.
func (e *Engine) Process(now time.Time, p Packet) (Verdict, error) {
	if p.Proto != ipvs.ProtoTCP && p.Proto != ipvs.ProtoUDP {
		return Verdict{Action: Pass}, nil
	}
	p.Src = netip.AddrPortFrom(p.Src.Addr().Unmap(), p.Src.Port())
	p.Dst = netip.AddrPortFrom(p.Dst.Addr().Unmap(), p.Dst.Port())
	e.mu.Lock()
	defer e.mu.Unlock()
	if p.Dir == conn.DirOut {
		return e.processOut(now, &p), nil
	}
	return e.processIn(now, &p)
}

func (e *Engine) processOut(now time.Time, p *Packet) Verdict {
	c := e.conns.LookupOut(conn.MakeKey(p.Proto, p.Src, p.Dst), now)
	if c == nil {
		return Verdict{Action: Pass}
	}
	dd := e.dests[c.Dest]
	if dd.d.Available {
		n := uint64(max(p.Len, 0))
		dd.d.Stats.OutPkts++
		dd.d.Stats.OutBytes += n
		dd.svc.stats.OutPkts++
		dd.svc.stats.OutBytes += n
	}
	c.OutPkts++
	if ch := c.Update(conn.DirOut, p.Flags, &e.timeouts); ch != 0 {
		dd.d.SetActive(ch > 0)
	}
	e.conns.Touch(c, now)
	return e.verdict(c, dd, false)
}

func (e *Engine) processIn(now time.Time, p *Packet) (Verdict, error) {
	k := conn.MakeKey(p.Proto, p.Src, p.Dst)
	c := e.conns.Lookup(k, now)
	isSYN := p.Proto == ipvs.ProtoTCP && p.Flags&conn.SYN != 0
	if c != nil {
		dd := e.dests[c.Dest]
		switch {
		case !dd.d.Available && e.opts.ExpireNodestConn:
			// The destination was removed: drop the connection (with its
			// template if it was the template's last), as the kernel's
			// flush of destination-less connections would have.
			e.conns.ExpireNow(c, now, true)
			c = nil
		case isSYN && e.reuse(c, dd):
			// A new connection reuses the ports of an old one: schedule
			// it afresh (ip_vs_in with conn_reuse_mode 1).
			if c.NControl() == 0 {
				e.conns.ExpireNow(c, now, false)
			}
			c = nil
		}
	}
	isNew := false
	if c == nil {
		s := e.lookupService(p)
		if s == nil {
			return Verdict{Action: Pass}, nil
		}
		if p.Proto == ipvs.ProtoTCP && (p.Flags&conn.SYN == 0 || p.Flags&conn.RST != 0) {
			// The kernel schedules TCP only on SYN (and never on RST).
			return Verdict{Action: Drop, Service: s.cfg.ServiceKey}, nil
		}
		var err error
		c, err = e.schedule(now, s, p, k)
		if err != nil {
			return Verdict{Action: Drop, Service: s.cfg.ServiceKey}, errNoDest(s.cfg.ServiceKey, err)
		}
		isNew = true
	}
	dd := e.dests[c.Dest]
	if dd.d.Available {
		n := uint64(max(p.Len, 0))
		dd.d.Stats.InPkts++
		dd.d.Stats.InBytes += n
		dd.svc.stats.InPkts++
		dd.svc.stats.InBytes += n
	}
	c.InPkts++
	if ch := c.Update(conn.DirIn, p.Flags, &e.timeouts); ch != 0 {
		dd.d.SetActive(ch > 0)
	}
	if e.syncFeed != nil {
		e.feedSync(now, c)
	}
	v := e.verdict(c, dd, isNew)
	if c.Flags&conn.FlagOnePacket != 0 {
		// One-packet scheduling: the entry does not outlive its packet.
		e.conns.ExpireNow(c, now, false)
	} else {
		e.conns.Touch(c, now)
	}
	return v, nil
}

// reuse reports whether a SYN for existing connection c must be scheduled
// as a new connection (ip_vs_in's port reuse check, conn_reuse_mode 1):
// with ExpireNodestConn when c's destination has weight 0, and always when
// c is an uncontrolled TCP connection in TIME_WAIT.
func (e *Engine) reuse(c *conn.Entry, dd *dest) bool {
	if e.opts.ExpireNodestConn && dd.d.Weight == 0 {
		return true
	}
	return e.conns.Controller(c) == nil && c.Proto() == ipvs.ProtoTCP && c.State == conn.TCPTimeWait
}

func (e *Engine) verdict(c *conn.Entry, dd *dest, isNew bool) Verdict {
	return Verdict{
		Action:  Forward,
		New:     isNew,
		Service: dd.svcKey,
		Dest:    c.DestAddrPort(),
		Fwd:     c.Fwd,
		Virtual: c.Virtual(),
		State:   conn.StateName(c.Proto(), false, c.State),
	}
}

// lookupService finds the service of a packet as ip_vs_service_find does:
// firewall mark first, then protocol, address and port, then the
// port-zero service of the address.
func (e *Engine) lookupService(p *Packet) *service {
	fam := ipvs.FamilyOf(p.Dst.Addr())
	if p.FWMark != 0 && len(e.fwmarks) > 0 {
		if s := e.fwmarks[fwmKey{p.FWMark, fam}]; s != nil {
			return s
		}
	}
	k := ipvs.ServiceKey{Family: fam, Protocol: p.Proto, Addr: p.Dst.Addr(), Port: p.Dst.Port()}
	if s := e.services[k]; s != nil {
		return s
	}
	if e.nullsvc > 0 {
		k.Port = 0
		if s := e.services[k]; s != nil {
			return s
		}
	}
	return nil
}

func (s *service) schedule(now time.Time, p *Packet) (*dest, error) {
	d, err := s.sched.Schedule(sched.Service{Dests: s.list, Flags: s.cfg.SchedFlags, Now: now}, sched.Flow{
		Proto:   p.Proto,
		Src:     p.Src.Addr(),
		SrcPort: p.Src.Port(),
		Dst:     p.Dst.Addr(),
		DstPort: p.Dst.Port(),
	})
	if err != nil {
		return nil, err
	}
	dd := s.byDest[d]
	if dd == nil {
		return nil, errForeignDest
	}
	return dd, nil
}

// errForeignDest guards against a scheduler returning a destination that
// is not in the list it was given; it would be a bug in the scheduler.
var errForeignDest = &foreignDestError{}

type foreignDestError struct{}

func (*foreignDestError) Error() string { return "scheduler returned a destination not in its service" }

// schedule creates the connection entry for the first packet of a new
// connection (ip_vs_schedule).
func (e *Engine) schedule(now time.Time, s *service, p *Packet, k conn.Key) (*conn.Entry, error) {
	if s.cfg.Persistent {
		return e.schedulePersist(now, s, p, k)
	}
	if !s.cfg.IsFWMark() && p.Dst.Port() != s.cfg.Port {
		// A non-persistent port-zero service; Validate forbids it.
		return nil, sched.ErrNoDestination
	}
	dd, err := s.schedule(now, p)
	if err != nil {
		return nil, err
	}
	dport := dd.d.Port
	if dport == 0 {
		dport = p.Dst.Port()
	}
	return e.newConn(now, s, dd, p, k, dport), nil
}

// schedulePersist is ip_vs_sched_persist: find or create the client's
// template, then create the connection under it.
func (e *Engine) schedulePersist(now time.Time, s *service, p *Packet, k conn.Key) (*conn.Entry, error) {
	cfg := &s.cfg
	snet := ipvs.MaskAddr(p.Src.Addr(), cfg.Netmask)
	dstPort := p.Dst.Port()
	var tk conn.Key
	switch {
	case dstPort == cfg.Port:
		// <protocol, client net, 0, vaddr, vport>; FTP: vport 0.
		vport := dstPort
		if cfg.Port == ftpPort {
			vport = 0
		}
		tk = conn.TemplateKey(p.Proto, snet, p.Dst.Addr(), vport)
	case cfg.IsFWMark():
		// <IP, client net, 0, fwmark, 0>: one template across protocols,
		// addresses and ports.
		tk = conn.FWMarkTemplateKey(cfg.FWMark, snet)
	default:
		// Port-zero service: <protocol, client net, 0, vaddr, 0>.
		tk = conn.TemplateKey(p.Proto, snet, p.Dst.Addr(), 0)
	}

	ct := e.conns.Lookup(tk, now)
	if ct != nil && !e.templateUsable(ct) {
		// Invalidate: lookups no longer find it, but it lives on while
		// it controls connections and until its timer fires.
		e.conns.Unhash(ct)
		ct = nil
	}
	var dd *dest
	if ct == nil {
		var err error
		dd, err = s.schedule(now, p)
		if err != nil {
			return nil, err
		}
		var tport uint16
		if dstPort == cfg.Port && cfg.Port != ftpPort {
			tport = dd.d.Port
		}
		ct = e.conns.Insert(conn.Params{
			Key:     tk,
			Dest:    netip.AddrPortFrom(dd.d.Addr, tport),
			Fwd:     dd.d.Fwd,
			FWMark:  cfg.FWMark,
			Flags:   conn.FlagTemplate,
			Timeout: time.Duration(cfg.Timeout) * time.Second,
			DestID:  dd.id,
		}, now)
		dd.refs++
		dd.d.Bind(true, false)
	} else {
		dd = e.dests[ct.Dest]
	}
	dport := dstPort
	if dport == cfg.Port && dd.d.Port != 0 {
		dport = dd.d.Port
	}
	c := e.newConn(now, s, dd, p, k, dport)
	e.conns.SetControl(c, ct)
	// Each connection created under the template restarts its timer.
	e.conns.Touch(ct, now)
	return c, nil
}

// templateUsable is ip_vs_check_template: the template's destination must
// be in its service and, with ExpireQuiescentTemplate, have a weight.
func (e *Engine) templateUsable(ct *conn.Entry) bool {
	dd := e.dests[ct.Dest]
	if dd == nil || !dd.d.Available {
		return false
	}
	return !(e.opts.ExpireQuiescentTemplate && dd.d.Weight == 0)
}

// newConn is ip_vs_conn_new plus ip_vs_conn_stats for a scheduled
// connection: it starts in state NONE, inactive, with the initial
// timeout, and a connection that is not NAT uses the input-only table.
func (e *Engine) newConn(now time.Time, s *service, dd *dest, p *Packet, k conn.Key, dport uint16) *conn.Entry {
	flags := conn.FlagInactive
	if dd.d.Fwd != ipvs.Masq {
		flags |= conn.FlagNoOutput
	}
	if s.cfg.OnePacket && p.Proto == ipvs.ProtoUDP {
		flags |= conn.FlagOnePacket
	}
	c := e.conns.Insert(conn.Params{
		Key:     k,
		Dest:    netip.AddrPortFrom(dd.d.Addr, dport),
		Fwd:     dd.d.Fwd,
		FWMark:  s.cfg.FWMark,
		Flags:   flags,
		Timeout: conn.InitialTimeout,
		DestID:  dd.id,
	}, now)
	dd.refs++
	dd.d.Bind(false, false)
	dd.d.Stats.Conns++
	s.stats.Conns++
	return c
}

// onExpire releases what a freed entry held of its destination.
func (e *Engine) onExpire(c *conn.Entry) {
	e.forgetSync(c)
	dd := e.dests[c.Dest]
	if dd == nil {
		return
	}
	dd.d.Unbind(c.IsTemplate(), c.Active())
	dd.refs--
}
