package engine

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

// Expire runs what the kernel runs from its timers: it frees the
// connection entries whose timeout has passed, flushes the connections of
// removed destinations (with ExpireNodestConn), frees trashed destinations
// that have been idle for TrashPeriod, and takes the rate estimator's
// two-second samples. Callers call it about once a second.
func (e *Engine) Expire(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.conns.Expire(now)
	if e.nodestPending {
		e.nodestPending = false
		e.flushNodest(now)
	}
	e.expireTrash(now)
	for range e.clock.Due(now) {
		for _, s := range e.services {
			s.est.Sample(s.stats)
			for _, d := range s.list {
				s.byDest[d].est.Sample(d.Stats)
			}
		}
	}
}

// flushNodest is ip_vs_expire_nodest_conn_flush: drop every connection
// (and template) whose destination is no longer in a service, and a
// template together with the last connection it controlled.
func (e *Engine) flushNodest(now time.Time) {
	var drop []*conn.Entry
	for c := range e.conns.All() {
		if c.NControl() > 0 {
			continue
		}
		if dd := e.dests[c.Dest]; dd != nil && !dd.d.Available {
			drop = append(drop, c)
		}
	}
	// Entries are expired after the walk; a template freed with its last
	// connection is never in drop (it controlled something during the walk).
	for _, c := range drop {
		e.conns.ExpireNow(c, now, true)
	}
}

// expireTrash frees trashed destinations without connections once they
// have been idle for TrashPeriod (ip_vs_dest_trash_expire).
func (e *Engine) expireTrash(now time.Time) {
	for tk, dd := range e.trash {
		switch {
		case dd.refs > 0:
		case !dd.idle:
			dd.idle = true
			dd.idleSince = now
		case now.Sub(dd.idleSince) >= TrashPeriod:
			e.dests[dd.id] = nil
			e.freeIDs = append(e.freeIDs, dd.id)
			dd.inTrash = false
			delete(e.trash, tk)
		}
	}
}

// ConnCount returns the number of connection entries, persistence
// templates included.
func (e *Engine) ConnCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.conns.Len()
}

// Services returns every service with its destinations and live state,
// sorted as ipvsadm sorts them (firewall mark, family, protocol, address,
// port); destinations in list order, newest first. Entries whose timeout
// has passed by now are expired first, so the counts are exact.
func (e *Engine) Services(now time.Time) []ipvs.ServiceState {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.conns.Expire(now)
	out := make([]ipvs.ServiceState, 0, len(e.services))
	for _, s := range e.services {
		out = append(out, s.state())
	}
	slices.SortFunc(out, func(a, b ipvs.ServiceState) int { return compareKeys(a.ServiceKey, b.ServiceKey) })
	return out
}

// Service returns one service's state (ipvsadm -L -t addr:port).
func (e *Engine) Service(now time.Time, k ipvs.ServiceKey) (ipvs.ServiceState, error) {
	k = normKey(k)
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.services[k]
	if !ok {
		return ipvs.ServiceState{}, fmt.Errorf("service %s: %w", k, ipvs.ErrNoService)
	}
	e.conns.Expire(now)
	return s.state(), nil
}

// Dest returns the configuration of destination dk of service k, and
// false if k has no such destination (a removed destination, even one
// still in the trash with connections, is not listed). It is the cheap
// form of Service for a data plane that needs one destination's settings
// per new connection (the proxy's PROXY protocol version): no copy of the
// service, no expiry, no allocation.
func (e *Engine) Dest(k ipvs.ServiceKey, dk ipvs.DestKey) (ipvs.Destination, bool) {
	k = normKey(k)
	dk.Addr = dk.Addr.Unmap()
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.services[k]
	if !ok {
		return ipvs.Destination{}, false
	}
	dd, ok := s.byKey[dk]
	if !ok {
		return ipvs.Destination{}, false
	}
	return dd.d.Destination, true
}

func compareKeys(a, b ipvs.ServiceKey) int {
	return cmp.Or(
		cmp.Compare(a.FWMark, b.FWMark),
		cmp.Compare(a.Family, b.Family),
		cmp.Compare(a.Protocol, b.Protocol),
		a.Addr.Compare(b.Addr),
		cmp.Compare(a.Port, b.Port),
	)
}

func (s *service) state() ipvs.ServiceState {
	st := ipvs.ServiceState{
		Service: s.cfg,
		Dests:   make([]ipvs.DestState, 0, len(s.list)),
		Stats:   s.stats,
		Rates:   s.est.Rates(),
	}
	for _, d := range s.list {
		st.Dests = append(st.Dests, ipvs.DestState{
			Destination:  d.Destination,
			ActiveConns:  uint32(max(d.ActiveConns, 0)),
			InactConns:   uint32(max(d.InactConns, 0)),
			PersistConns: uint32(max(d.PersistConns, 0)),
			Overloaded:   d.Overloaded,
			Stats:        d.Stats,
			Rates:        s.byDest[d].est.Rates(),
		})
	}
	return st
}

// Conns returns the connection table as ipvsadm -Lc lists it, templates
// included, sorted by virtual address, client and protocol. Entries whose
// timeout has passed by now are expired first.
func (e *Engine) Conns(now time.Time) []conn.Info {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.conns.Expire(now)
	out := make([]conn.Info, 0, e.conns.Len())
	for c := range e.conns.All() {
		out = append(out, c.Info(e.conns, now))
	}
	slices.SortFunc(out, func(a, b conn.Info) int {
		return cmp.Or(
			compareAddrPort(a.Virtual, b.Virtual),
			compareAddrPort(a.Client, b.Client),
			cmp.Compare(a.Proto, b.Proto),
			compareBool(a.Template, b.Template),
			compareAddrPort(a.Dest, b.Dest),
		)
	})
	return out
}

func compareAddrPort(a, b netip.AddrPort) int { return a.Compare(b) }

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
