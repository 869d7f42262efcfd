package sched

import "github.com/govs/govs/internal/ipvs"

// Least connection (ip_vs_lc.c).
//
// lc ignores weights except to skip quiescent (weight 0) destinations: it
// balances by connection count alone, on the theory that a busy server
// holds its connections longer. An active connection counts 256 times an
// inactive one (ip_vs_dest_conn_overhead), because an inactive one is
// usually a closing TCP connection in TIME_WAIT that costs the server
// almost nothing. Overloaded destinations are skipped. Ties go to the
// first in list order, the newest, because only a strictly smaller load
// replaces the current choice.

// lcNoDest is lc's error when nothing is usable.
var lcNoDest = noDest("lc")

type lcScheduler struct{ listNoHooks }

func newLC(Config, []*ipvs.Dest) Scheduler { return lcScheduler{} }

func (lcScheduler) Name() string { return "lc" }

func (lcScheduler) Schedule(svc Service, _ Flow) (*ipvs.Dest, error) {
	var least *ipvs.Dest
	var loh int64
	for _, d := range svc.Dests {
		if !usable(d) {
			continue
		}
		if doh := listConnOverhead(d); least == nil || doh < loh {
			least, loh = d, doh
		}
	}
	if least == nil {
		return nil, lcNoDest
	}
	return least, nil
}
