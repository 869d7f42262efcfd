package sched

import "github.com/govs/govs/internal/ipvs"

// Weighted least connection (ip_vs_wlc.c), ipvsadm's default.
//
// wlc picks the destination with the smallest load per unit of weight,
// load being lc's overhead (active*256 + inactive). The kernel has no
// floating point, so it compares h1/w1 with h2/w2 as h1*w2 against h2*w1
// (in 64 bits); we do the same, which also makes ties exact: the first
// usable destination in list order (the newest) is kept unless a later
// one is strictly less loaded. Overloaded destinations are skipped.
//
// The kernel's second loop does not test for weight 0, because a
// quiescent destination can never win the cross-multiplied comparison
// (0 > overhead*w is false); we skip it explicitly, which picks the same
// destination.

// wlcNoDest is wlc's error when nothing is usable.
var wlcNoDest = noDest("wlc")

type wlcScheduler struct{ listNoHooks }

func newWLC(Config, []*ipvs.Dest) Scheduler { return wlcScheduler{} }

func (wlcScheduler) Name() string { return "wlc" }

func (wlcScheduler) Schedule(svc Service, _ Flow) (*ipvs.Dest, error) {
	var least *ipvs.Dest
	var loh, lw int64
	for _, d := range svc.Dests {
		if !usable(d) {
			continue
		}
		doh, dw := listConnOverhead(d), int64(d.Weight)
		if least == nil || loh*dw > doh*lw {
			least, loh, lw = d, doh, dw
		}
	}
	if least == nil {
		return nil, wlcNoDest
	}
	return least, nil
}
