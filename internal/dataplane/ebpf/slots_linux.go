package ebpf

import "slices"

// span is a range of slots [off, off+n).
type span struct{ off, n uint32 }

// slotAlloc hands out ranges of a fixed array (svc_dests: each service's
// destination list is one range), first fit, merging neighbours on
// free. Ranges are small (at most maxDests) and few change at a time, so
// a sorted slice of free spans is enough.
type slotAlloc struct {
	free []span // sorted by off, never adjacent
}

func newSlotAlloc(size uint32) *slotAlloc {
	return &slotAlloc{free: []span{{0, size}}}
}

// alloc returns the start of a free range of n slots.
func (a *slotAlloc) alloc(n uint32) (uint32, bool) {
	for i, s := range a.free {
		if s.n < n {
			continue
		}
		off := s.off
		if s.n == n {
			a.free = slices.Delete(a.free, i, i+1)
		} else {
			a.free[i] = span{s.off + n, s.n - n}
		}
		return off, true
	}
	return 0, false
}

// take marks [off, off+n) used: a range adopted from pinned maps. It
// reports false if part of it is not free.
func (a *slotAlloc) take(off, n uint32) bool {
	for i, s := range a.free {
		if off < s.off || off+n > s.off+s.n {
			continue
		}
		var repl []span
		if off > s.off {
			repl = append(repl, span{s.off, off - s.off})
		}
		if end := s.off + s.n; off+n < end {
			repl = append(repl, span{off + n, end - off - n})
		}
		a.free = slices.Replace(a.free, i, i+1, repl...)
		return true
	}
	return false
}

// release gives [off, off+n) back.
func (a *slotAlloc) release(off, n uint32) {
	if n == 0 {
		return
	}
	i, _ := slices.BinarySearchFunc(a.free, off, func(s span, off uint32) int { return int(int64(s.off) - int64(off)) })
	a.free = slices.Insert(a.free, i, span{off, n})
	if i+1 < len(a.free) && a.free[i].off+a.free[i].n == a.free[i+1].off {
		a.free[i].n += a.free[i+1].n
		a.free = slices.Delete(a.free, i+1, i+2)
	}
	if i > 0 && a.free[i-1].off+a.free[i-1].n == a.free[i].off {
		a.free[i-1].n += a.free[i].n
		a.free = slices.Delete(a.free, i, i+1)
	}
}

// listCap is the capacity of a destination list range for n
// destinations: a power of two from 8, at most maxDests, so that a
// growing service moves its list log2(n) times.
func listCap(n int) uint32 {
	c := uint32(8)
	for int(c) < n && c < maxDests {
		c *= 2
	}
	return c
}
