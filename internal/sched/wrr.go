package sched

import "github.com/govs/govs/internal/ipvs"

// Weighted round robin (ip_vs_wrr.c).
//
// The kernel makes passes over the list with a falling bar, the current
// weight cw: a pass picks, in list order, every destination whose weight
// reaches cw. After each pass cw drops by di, the gcd of the positive
// weights, so a destination of weight w is picked w/di times per cycle
// and heavier ones are picked earlier in it. The bar starts at
// mw = maxweight-(di-1) rather than maxweight, so the last pass runs at
// cw = 1 and still catches a destination whose weight was cut below di
// while packets were being scheduled.
//
// The cursor cl (last pick, or the list head) and cw persist between
// picks. Every add, delete and edit recomputes di and mw and puts cl back
// at the head but keeps cw where it can: cw is clamped to the new mw (or
// set to mw if it was 0, i.e. the service had no weight yet), else, when
// di > 1, rounded down to a multiple of di plus one. So after a change the
// walk restarts at the newest destination in the middle of the cycle it
// was in, not at the top of a fresh cycle.
//
// A pick that finds nothing usable stops once every destination was
// checked against cw = 1; it then leaves cl at the head and cw at mw
// (when it wrapped) or cl where it stopped.

// wrrNoDest is wrr's error when nothing is usable.
var wrrNoDest = noDest("wrr")

// wrrScheduler is the weighted round-robin mark of one service (the
// kernel's struct ip_vs_wrr_mark).
type wrrScheduler struct {
	cl  int        // cursor index, -1 for the list head
	cld *ipvs.Dest // the destination at cl, nil at the head
	cw  int64      // current weight
	mw  int64      // maximum weight less (di - 1)
	di  int64      // decreasing interval: the gcd of the positive weights
}

func newWRR(_ Config, list []*ipvs.Dest) Scheduler {
	s := &wrrScheduler{cl: -1}
	s.di = wrrGCD(list)
	s.mw = wrrMaxWeight(list) - (s.di - 1)
	s.cw = s.mw
	return s
}

func (s *wrrScheduler) Name() string { return "wrr" }

func (s *wrrScheduler) AddDest(list []*ipvs.Dest, _ *ipvs.Dest) { s.changed(list) }

func (s *wrrScheduler) DelDest(list []*ipvs.Dest, _ *ipvs.Dest, _ int) { s.changed(list) }

func (s *wrrScheduler) UpdDest(list []*ipvs.Dest, _ *ipvs.Dest) { s.changed(list) }

// changed is ip_vs_wrr_dest_changed.
func (s *wrrScheduler) changed(list []*ipvs.Dest) {
	s.cl, s.cld = -1, nil
	s.di = wrrGCD(list)
	s.mw = wrrMaxWeight(list) - (s.di - 1)
	switch {
	case s.cw > s.mw || s.cw == 0:
		s.cw = s.mw
	case s.di > 1:
		s.cw = (s.cw/s.di)*s.di + 1
	}
}

func (s *wrrScheduler) Schedule(svc Service, _ Flow) (*ipvs.Dest, error) {
	list := svc.Dests
	start := rrResync(list, s.cl, s.cld)
	if s.mw <= 0 {
		s.cl = start
		return nil, wrrNoDest
	}
	// i is the kernel's dest: the entry the walk stands on, -1 for the
	// head. stop is the entry the final pass ends at, len(list) for none.
	i, stop := start, len(list)
	lastPass, restarted := false, false
	for {
		for i++; i < len(list); i++ {
			d := list[i]
			if !d.Overloaded && int64(d.Weight) >= s.cw {
				s.cl, s.cld = i, d
				return d, nil
			}
			if i == stop {
				return s.fail(list, i)
			}
		}
		i = -1 // the walk reached the head
		s.cw -= s.di
		if s.cw <= 0 {
			s.cw = s.mw
			// Either every destination was already checked against
			// cw <= di in this call, or the walk began at the head and
			// so its one pass down to cw = 1 covered the whole list.
			if lastPass || start < 0 {
				return s.fail(list, -1)
			}
			restarted = true
		}
		lastPass = s.cw <= s.di
		if lastPass && restarted && start >= 0 {
			// The wrapped pass at cw <= di covered only the entries
			// after start; finish it up to start.
			stop = start
		}
	}
}

func (s *wrrScheduler) fail(list []*ipvs.Dest, at int) (*ipvs.Dest, error) {
	s.cl, s.cld = at, nil
	if at >= 0 {
		s.cld = list[at]
	}
	return nil, wrrNoDest
}

// wrrGCD is the gcd of the positive weights, 1 when there are none.
func wrrGCD(list []*ipvs.Dest) int64 {
	var g int64
	for _, d := range list {
		w := int64(d.Weight)
		if w <= 0 {
			continue
		}
		if g == 0 {
			g = w
			continue
		}
		for w != 0 {
			g, w = w, g%w
		}
	}
	if g == 0 {
		return 1
	}
	return g
}

// wrrMaxWeight is the largest weight, overloaded destinations included,
// 0 for an empty list.
func wrrMaxWeight(list []*ipvs.Dest) int64 {
	var m int64
	for _, d := range list {
		if w := int64(d.Weight); w > m {
			m = w
		}
	}
	return m
}
