package sched

import "github.com/govs/govs/internal/ipvs"

// Round robin (ip_vs_rr.c).
//
// The kernel keeps one cursor per service: the list node of the last
// destination it picked, or the list head before the first pick. A pick
// walks forward from the node after the cursor, wraps once through the
// head, and takes the first destination that is neither quiescent nor
// overloaded; the walk ends at the cursor itself, so the previous pick is
// checked last. Nothing else is remembered, which is why rr has no add or
// update hook: a new destination is inserted at the head and is simply
// met at the next wrap. Only a delete needs care, because the cursor may
// point at the node being removed: the kernel then moves the cursor to
// the entry before it (or the head), so the walk resumes exactly where
// the removed destination stood.

// rrNoDest is rr's error when nothing is usable.
var rrNoDest = noDest("rr")

// rrScheduler is the round-robin state of one service.
type rrScheduler struct {
	// pos is the index of the cursor in the list, -1 for the list head.
	// cur is the destination at pos (nil at the head); it lets Schedule
	// notice a list that changed without a hook call and recover.
	pos int
	cur *ipvs.Dest
}

func newRR(_ Config, _ []*ipvs.Dest) Scheduler { return &rrScheduler{pos: -1} }

func (s *rrScheduler) Name() string { return "rr" }

// AddDest keeps the cursor on the same destination, which moved one place
// down the list because d went in at the head.
func (s *rrScheduler) AddDest(_ []*ipvs.Dest, _ *ipvs.Dest) {
	if s.pos >= 0 {
		s.pos++
	}
}

// DelDest: a cursor after the removed entry shifts with the list; a cursor
// on it moves to the previous entry (the head if it was first). Both are
// one place back.
func (s *rrScheduler) DelDest(list []*ipvs.Dest, _ *ipvs.Dest, at int) {
	if s.pos >= at {
		s.pos--
		s.cur = nil
		if s.pos >= 0 && s.pos < len(list) {
			s.cur = list[s.pos]
		}
	}
}

func (s *rrScheduler) UpdDest([]*ipvs.Dest, *ipvs.Dest) {}

func (s *rrScheduler) Schedule(svc Service, _ Flow) (*ipvs.Dest, error) {
	list := svc.Dests
	p := rrResync(list, s.pos, s.cur)
	// First pass: after the cursor to the end. Second pass (only when the
	// cursor is not the head): from the start up to and including it.
	for i := p + 1; i < len(list); i++ {
		if usable(list[i]) {
			s.pos, s.cur = i, list[i]
			return list[i], nil
		}
	}
	for i := 0; i <= p; i++ {
		if usable(list[i]) {
			s.pos, s.cur = i, list[i]
			return list[i], nil
		}
	}
	s.pos = p
	return nil, rrNoDest
}

// rrResync returns the index of cur in list, trusting pos when it still
// points at cur. A caller that changed the list without telling the
// scheduler gets the head (-1) when cur is gone.
func rrResync(list []*ipvs.Dest, pos int, cur *ipvs.Dest) int {
	if pos < 0 {
		return -1
	}
	if pos < len(list) && list[pos] == cur {
		return pos
	}
	for i, d := range list {
		if d == cur {
			return i
		}
	}
	return -1
}
