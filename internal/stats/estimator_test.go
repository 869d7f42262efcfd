package stats

import (
	"testing"
	"time"

	"github.com/govs/govs/internal/ipvs"
)

// TestEstimatorSteadyRate: 100 conn/s, 1000 pkt/s in, 500 out, 1000 B/s
// in, 64000 B/s out, hand-computed with the kernel's formulas.
func TestEstimatorSteadyRate(t *testing.T) {
	var e Estimator
	var c ipvs.Counters
	// Expected readings after each sample, worked by hand. InPPS: the
	// scaled rate is 2000<<9 = 1024000; the averages 256000, 448000,
	// 592000, 700000, 781000 read (avg+511)>>10 = 250, 437, 578, 684, 763
	// (437.5 rounds down: the kernel adds just under a half). InBPS: rate
	// 2000<<4 = 32000; averages 8000, 14000, 18500, 21875, 24406 read
	// (avg+15)>>5 = 250, 437, 578, 684, 763.
	want := []ipvs.Rates{
		{CPS: 25, InPPS: 250, OutPPS: 125, InBPS: 250, OutBPS: 16000},
		{CPS: 44, InPPS: 437, OutPPS: 219, InBPS: 437, OutBPS: 28000},
		{CPS: 58, InPPS: 578, OutPPS: 289, InBPS: 578, OutBPS: 37000},
		{CPS: 68, InPPS: 684, OutPPS: 342, InBPS: 684, OutBPS: 43750},
		{CPS: 76, InPPS: 763, OutPPS: 381, InBPS: 763, OutBPS: 48812},
	}
	for i, w := range want {
		c.Conns += 200
		c.InPkts += 2000
		c.OutPkts += 1000
		c.InBytes += 2000
		c.OutBytes += 128000
		e.Sample(c)
		if got := e.Rates(); got != w {
			t.Fatalf("sample %d: %+v, want %+v", i+1, got, w)
		}
	}
	for range 100 {
		c.Conns += 200
		c.InPkts += 2000
		c.OutPkts += 1000
		c.InBytes += 2000
		c.OutBytes += 128000
		e.Sample(c)
	}
	if got := e.Rates(); got != (ipvs.Rates{CPS: 100, InPPS: 1000, OutPPS: 500, InBPS: 1000, OutBPS: 64000}) {
		t.Fatalf("converged to %+v", got)
	}
	// Traffic stops: a quarter less every sample: 102400 -> 76800 -> 75.
	e.Sample(c)
	if got := e.Rates().CPS; got != 75 {
		t.Fatalf("decay: %d, want 75", got)
	}
	for range 200 {
		e.Sample(c)
	}
	if got := e.Rates(); got != (ipvs.Rates{}) {
		t.Fatalf("did not decay to zero: %+v", got)
	}
}

func TestEstimatorReset(t *testing.T) {
	var e Estimator
	c := ipvs.Counters{Conns: 1000}
	e.Sample(c)
	e.Reset(c)
	if e.Rates() != (ipvs.Rates{}) {
		t.Fatal("Reset kept rates")
	}
	e.Sample(c) // no increase since the reset
	if e.Rates() != (ipvs.Rates{}) {
		t.Fatal("counted traffic from before the reset")
	}
	// Zeroed counters (ipvsadm -Z): reset to zero counters.
	e.Reset(ipvs.Counters{})
	e.Sample(ipvs.Counters{Conns: 2})
	if got := e.Rates().CPS; got != 0 { // 2<<9>>2 = 256 -> (256+511)>>10 = 0
		t.Fatalf("CPS %d", got)
	}
	e.Sample(ipvs.Counters{Conns: 4}) // 256 + (1024-256)>>2 = 448
	e.Sample(ipvs.Counters{Conns: 6}) // 448 + 144 = 592 -> (592+511)>>10 = 1
	if got := e.Rates().CPS; got != 1 {
		t.Fatalf("CPS %d", got)
	}
}

func TestClock(t *testing.T) {
	var c Clock
	t0 := time.Unix(1000, 0)
	if n := c.Due(t0); n != 0 {
		t.Fatalf("first call: %d", n)
	}
	steps := []struct {
		at   time.Duration
		want int
	}{
		{time.Second, 0},
		{2 * time.Second, 1},
		{3 * time.Second, 0},
		{3999 * time.Millisecond, 0},
		{4 * time.Second, 1},
		{10 * time.Second, 3},
		{10 * time.Second, 0},
		{time.Hour, MaxCatchUp},
		{time.Hour + time.Second, 0},
		{time.Hour + 2*time.Second, 1},
	}
	for _, s := range steps {
		if n := c.Due(t0.Add(s.at)); n != s.want {
			t.Fatalf("at %v: %d due, want %d", s.at, n, s.want)
		}
	}
}
