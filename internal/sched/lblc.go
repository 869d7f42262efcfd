package sched

// lblc: locality-based least-connection (net/netfilter/ipvs/ip_vs_lblc.c).
//
// The kernel remembers, per destination address of the packets (the
// address the client asked for, typically a web cache's origin), the
// destination it last chose. A packet whose address has an entry goes to
// that destination if it is still in the service (available), has a
// positive weight, and is not "overloaded" in lblc's own sense: more
// active connections than its weight while some destination of the service
// has fewer than half its weight in active connections. lblc does not look
// at the overload flag of the remembered destination (the thresholds -x/-y
// only keep new addresses away from it). Otherwise the weighted
// least-connection destination (overhead = active*256 + inactive,
// comparing overhead/weight by cross-multiplication, skipping overloaded
// and quiesced destinations, first of equals in list order) is chosen and
// remembered.
//
// Entries unused for the expiration time (sysctl lblc_expiration, 24 hours
// by default) are dropped by a full check every 30 minutes; when the table
// holds more than 16384 entries, the minute ticks in between drop entries
// unused for 6 minutes. See hashCache for how the timer is replayed. lblc
// has no destination hooks: removed destinations stay in entries until they
// expire, and are skipped because they are not available.

import "github.com/govs/govs/internal/ipvs"

var lblcNoDest = noDest("lblc")

type lblcSched struct {
	cache hashCache[*ipvs.Dest]
}

func lblcNew(cfg Config, _ []*ipvs.Dest) Scheduler {
	s := &lblcSched{}
	s.cache.init(cfg.Expiration)
	return s
}

func (s *lblcSched) Name() string                                { return "lblc" }
func (s *lblcSched) AddDest(_ []*ipvs.Dest, _ *ipvs.Dest)        {}
func (s *lblcSched) DelDest(_ []*ipvs.Dest, _ *ipvs.Dest, _ int) {}
func (s *lblcSched) UpdDest(_ []*ipvs.Dest, _ *ipvs.Dest)        {}

func (s *lblcSched) Schedule(svc Service, f Flow) (*ipvs.Dest, error) {
	s.cache.advance(svc.Now)
	en := s.cache.get(f.Dst)
	if en != nil {
		s.cache.touch(en, svc.Now)
		d := en.val
		if d.Available && d.Weight > 0 && !hashOverloaded(d, svc.Dests) {
			return d, nil
		}
	}
	d := hashLeastConn(svc.Dests)
	if d == nil {
		return nil, lblcNoDest
	}
	switch {
	case en == nil:
		s.cache.insert(f.Dst, svc.Now, d)
	case en.val != d:
		// ip_vs_lblc_new replaces the entry: the old one is deleted
		// without decrementing the entry count, the new one counted.
		en.val = d
		en.lastuse = svc.Now
		s.cache.entries++
	}
	return d, nil
}
