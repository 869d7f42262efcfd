package sched

import "github.com/govs/govs/internal/ipvs"

// Overflow connection (ip_vs_ovf.c).
//
// ovf fills destinations one at a time in order of weight: all new
// connections go to the highest-weight destination until its active
// connections exceed its weight, then overflow to the next highest, and
// so on. The weight is thus a connection limit, not a share. The test is
// "active > weight" to skip, so a destination still takes a connection
// when active == weight and ends up with weight+1 active connections.
// Quiescent and overloaded destinations are skipped; among equal weights
// the first in list order (the newest) wins. Only active connections
// count, so the kernel warns it may not suit UDP.

// ovfNoDest is ovf's error when nothing is usable.
var ovfNoDest = noDest("ovf")

type ovfScheduler struct{ listNoHooks }

func newOVF(Config, []*ipvs.Dest) Scheduler { return ovfScheduler{} }

func (ovfScheduler) Name() string { return "ovf" }

func (ovfScheduler) Schedule(svc Service, _ Flow) (*ipvs.Dest, error) {
	var best *ipvs.Dest
	var hw int32
	for _, d := range svc.Dests {
		w := d.Weight
		if !usable(d) || d.ActiveConns > w {
			continue
		}
		if best == nil || w > hw {
			best, hw = d, w
		}
	}
	if best == nil {
		return nil, ovfNoDest
	}
	return best, nil
}
