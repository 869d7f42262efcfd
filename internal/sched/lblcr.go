package sched

// lblcr: locality-based least-connection with replication
// (net/netfilter/ipvs/ip_vs_lblcr.c).
//
// Like lblc, but the kernel remembers a set of destinations per packet
// destination address. A packet whose address has a set goes to the
// weighted least-connection member of the set (skipping overloaded,
// quiesced and removed members). Before that member is used, if the set
// has more than one member and was last changed longer ago than the
// expiration time (sysctl lblcr_expiration, 24 hours by default), its
// weighted most-connection member (of positive weight) is removed; the
// member already chosen is still returned even if it was the one removed.
// If no member qualifies, or the chosen one is "overloaded" in lblc's sense
// (more active connections than its weight while some destination of the
// service has fewer than half its weight), the weighted least-connection
// destination of the whole service is chosen and added to the set. Sets
// list their members newest first, which decides ties.
//
// Whole entries expire as in lblc (see hashCache); lblcr never replaces an
// entry, so its entry count does not drift.

import (
	"time"

	"github.com/govs/govs/internal/ipvs"
)

var lblcrNoDest = noDest("lblcr")

// lblcrSet is ip_vs_dest_set: members newest first, and when the set last
// changed.
type lblcrSet struct {
	dests   []*ipvs.Dest
	lastmod time.Time
}

type lblcrSched struct {
	cache hashCache[lblcrSet]
}

func lblcrNew(cfg Config, _ []*ipvs.Dest) Scheduler {
	s := &lblcrSched{}
	s.cache.init(cfg.Expiration)
	return s
}

func (s *lblcrSched) Name() string                                { return "lblcr" }
func (s *lblcrSched) AddDest(_ []*ipvs.Dest, _ *ipvs.Dest)        {}
func (s *lblcrSched) DelDest(_ []*ipvs.Dest, _ *ipvs.Dest, _ int) {}
func (s *lblcrSched) UpdDest(_ []*ipvs.Dest, _ *ipvs.Dest)        {}

// lblcrMin is ip_vs_dest_set_min: the weighted least-connection member
// that is available, not overloaded and of positive weight.
func lblcrMin(set []*ipvs.Dest) *ipvs.Dest {
	var least *ipvs.Dest
	var loh int64
	for _, d := range set {
		if d.Overloaded {
			continue
		}
		if least == nil {
			if d.Weight > 0 && d.Available {
				least, loh = d, hashOverhead(d)
			}
			continue
		}
		doh := hashOverhead(d)
		if loh*int64(d.Weight) > doh*int64(least.Weight) && d.Available {
			least, loh = d, doh
		}
	}
	return least
}

// lblcrMax is ip_vs_dest_set_max: the weighted most-connection member of
// positive weight, overloaded or removed or not.
func lblcrMax(set []*ipvs.Dest) *ipvs.Dest {
	var most *ipvs.Dest
	var moh int64
	for _, d := range set {
		if most == nil {
			if d.Weight > 0 {
				most, moh = d, hashOverhead(d)
			}
			continue
		}
		doh := hashOverhead(d)
		if moh*int64(d.Weight) < doh*int64(most.Weight) && d.Weight > 0 {
			most, moh = d, doh
		}
	}
	return most
}

// insert is ip_vs_dest_set_insert with check: add d at the head unless it
// is a member already.
func (set *lblcrSet) insert(d *ipvs.Dest, now time.Time) {
	for _, m := range set.dests {
		if m == d {
			return
		}
	}
	set.dests = append(set.dests, nil)
	copy(set.dests[1:], set.dests)
	set.dests[0] = d
	set.lastmod = now
}

// erase is ip_vs_dest_set_erase.
func (set *lblcrSet) erase(d *ipvs.Dest, now time.Time) {
	for i, m := range set.dests {
		if m == d {
			copy(set.dests[i:], set.dests[i+1:])
			set.dests[len(set.dests)-1] = nil
			set.dests = set.dests[:len(set.dests)-1]
			set.lastmod = now
			return
		}
	}
}

func (s *lblcrSched) Schedule(svc Service, f Flow) (*ipvs.Dest, error) {
	now := svc.Now
	s.cache.advance(now)
	en := s.cache.get(f.Dst)
	if en == nil {
		d := hashLeastConn(svc.Dests)
		if d == nil {
			return nil, lblcrNoDest
		}
		s.cache.insert(f.Dst, now, lblcrSet{dests: []*ipvs.Dest{d}, lastmod: now})
		return d, nil
	}
	s.cache.touch(en, now)
	set := &en.val
	d := lblcrMin(set.dests)
	if len(set.dests) > 1 && now.After(set.lastmod.Add(s.cache.exp)) {
		if m := lblcrMax(set.dests); m != nil {
			set.erase(m, now)
		}
	}
	if d != nil && !hashOverloaded(d, svc.Dests) {
		return d, nil
	}
	d = hashLeastConn(svc.Dests)
	if d == nil {
		return nil, lblcrNoDest
	}
	set.insert(d, now)
	return d, nil
}
