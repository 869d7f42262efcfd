package sched

import "github.com/govs/govs/internal/ipvs"

// Never queue (ip_vs_nq.c).
//
// nq is sed with a short cut: a connection never waits behind another if
// some server is idle. The first usable destination in list order with no
// active connection is taken at once, whatever its weight; only when all
// are busy does nq fall back to sed's smallest (active+1)/weight, with the
// same cross-multiplied comparison and first-in-list tie break. This
// trades a little per-job delay for keeping every server busy.

// nqNoDest is nq's error when nothing is usable.
var nqNoDest = noDest("nq")

type nqScheduler struct{ listNoHooks }

func newNQ(Config, []*ipvs.Dest) Scheduler { return nqScheduler{} }

func (nqScheduler) Name() string { return "nq" }

func (nqScheduler) Schedule(svc Service, _ Flow) (*ipvs.Dest, error) {
	var least *ipvs.Dest
	var loh, lw int64
	for _, d := range svc.Dests {
		if !usable(d) {
			continue
		}
		if d.ActiveConns == 0 {
			return d, nil
		}
		doh, dw := sedOverhead(d), int64(d.Weight)
		if least == nil || loh*dw > doh*lw {
			least, loh, lw = d, doh, dw
		}
	}
	if least == nil {
		return nil, nqNoDest
	}
	return least, nil
}
