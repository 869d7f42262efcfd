package sched

import "github.com/govs/govs/internal/ipvs"

// Weighted failover (ip_vs_fo.c).
//
// fo is for active/standby pools: every new connection goes to the
// destination with the highest weight that is not overloaded, and only
// when it is quiesced (weight 0), overloaded or removed does traffic fail
// over to the next highest. Load is not looked at. Among equal highest
// weights the first in list order (the newest) wins, because only a
// strictly higher weight replaces the current choice.

// foNoDest is fo's error when nothing is usable.
var foNoDest = noDest("fo")

type foScheduler struct{ listNoHooks }

func newFO(Config, []*ipvs.Dest) Scheduler { return foScheduler{} }

func (foScheduler) Name() string { return "fo" }

func (foScheduler) Schedule(svc Service, _ Flow) (*ipvs.Dest, error) {
	var best *ipvs.Dest
	var hw int32 // 0, so that weight 0 never qualifies
	for _, d := range svc.Dests {
		if !d.Overloaded && d.Weight > hw {
			best, hw = d, d.Weight
		}
	}
	if best == nil {
		return nil, foNoDest
	}
	return best, nil
}
