package sched

import (
	"math/rand/v2"

	"github.com/govs/govs/internal/ipvs"
)

// Power of two choices (ip_vs_twos.c).
//
// twos draws two destinations at random, each with probability by weight,
// and sends the connection to the one with the smaller load per weight
// (lc's overhead, active*256 + inactive). Two random probes give most of
// the benefit of scanning for the least loaded server while spreading
// simultaneous decisions, so a server that just became idle is not
// flooded by every new connection at once.
//
// The kernel's draw has a quirk we keep: over the usable destinations
// (weight > 0, not overloaded) with total weight T it draws r uniformly in
// [0, T] (T+1 values) and takes the first destination, in list order,
// whose running weight sum reaches r. The first usable destination thus
// wins r = 0 as well as its own w values: it is drawn with probability
// (w+1)/(T+1), the others with w/(T+1). Each draw is one
// Config.Rand.Int64N(T+1), first for choice 1, then for choice 2. The
// second choice replaces the first only when strictly less loaded per
// weight (cross-multiplied, never divided).

// twosNoDest is twos' error when nothing is usable.
var twosNoDest = noDest("twos")

type twosScheduler struct {
	listNoHooks
	rand *rand.Rand
}

func newTwos(cfg Config, _ []*ipvs.Dest) Scheduler {
	r := cfg.Rand
	if r == nil {
		r = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return &twosScheduler{rand: r}
}

func (*twosScheduler) Name() string { return "twos" }

func (s *twosScheduler) Schedule(svc Service, _ Flow) (*ipvs.Dest, error) {
	var total int64
	for _, d := range svc.Dests {
		if usable(d) {
			total += int64(d.Weight)
		}
	}
	if total == 0 {
		return nil, twosNoDest
	}
	r1 := s.rand.Int64N(total + 1)
	r2 := s.rand.Int64N(total + 1)
	var c1, c2 *ipvs.Dest
	var w1, w2, oh1, oh2 int64
	for _, d := range svc.Dests {
		if !usable(d) {
			continue
		}
		w := int64(d.Weight)
		r1 -= w
		r2 -= w
		if c1 == nil && r1 <= 0 {
			c1, w1, oh1 = d, w, listConnOverhead(d)
		}
		if c2 == nil && r2 <= 0 {
			c2, w2, oh2 = d, w, listConnOverhead(d)
		}
		if c1 != nil && c2 != nil {
			break
		}
	}
	if w2*oh1 > w1*oh2 {
		return c2, nil
	}
	return c1, nil
}
