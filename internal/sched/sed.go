package sched

import "github.com/govs/govs/internal/ipvs"

// Shortest expected delay (ip_vs_sed.c).
//
// sed sends a connection where it expects it to finish soonest: a server
// with C active connections and service rate (weight) U would serve the
// new one after (C+1)/U. The +1 is the difference from wlc: it counts the
// job being placed, so with idle servers of unequal weight sed prefers
// the fast one where wlc would see 0/U = 0 everywhere and take the first.
// Only active connections count. The comparison is cross-multiplied as in
// wlc, ties go to the first in list order, and quiescent or overloaded
// destinations are skipped.

// sedNoDest is sed's error when nothing is usable.
var sedNoDest = noDest("sed")

type sedScheduler struct{ listNoHooks }

func newSED(Config, []*ipvs.Dest) Scheduler { return sedScheduler{} }

func (sedScheduler) Name() string { return "sed" }

func (sedScheduler) Schedule(svc Service, _ Flow) (*ipvs.Dest, error) {
	var least *ipvs.Dest
	var loh, lw int64
	for _, d := range svc.Dests {
		if !usable(d) {
			continue
		}
		doh, dw := sedOverhead(d), int64(d.Weight)
		if least == nil || loh*dw > doh*lw {
			least, loh, lw = d, doh, dw
		}
	}
	if least == nil {
		return nil, sedNoDest
	}
	return least, nil
}

// sedOverhead is the expected queue a new connection joins: the active
// connections plus itself. nq uses the same measure.
func sedOverhead(d *ipvs.Dest) int64 { return int64(d.ActiveConns) + 1 }
