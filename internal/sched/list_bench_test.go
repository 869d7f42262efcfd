package sched

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/govs/govs/internal/ipvs"
)

// listBenchDests returns n destinations with weights 1..5, a spread of
// open connections, and every tenth quiesced or overloaded, so the scans
// take their usual branches. The last one has room for ovf.
func listBenchDests(n int) []*ipvs.Dest {
	rng := rand.New(rand.NewPCG(1, 2))
	list := make([]*ipvs.Dest, n)
	for i := range list {
		d := ipvs.NewDest(ipvs.Destination{
			Addr:   netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}),
			Port:   80,
			Weight: int32(1 + i%5),
		})
		// Active 0..7 against weights 1..5: some are past their
		// weight for ovf, and none is idle for nq's short cut.
		d.ActiveConns = int32(1 + rng.IntN(7))
		d.InactConns = int32(rng.IntN(1000))
		switch i % 10 {
		case 3:
			d.Weight = 0
		case 7:
			d.Overloaded = true
		}
		list[i] = d
	}
	last := list[n-1]
	last.Weight, last.ActiveConns, last.Overloaded = 5, 1, false
	return list
}

func listBenchSchedule(b *testing.B, name string) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("dests=%d", n), func(b *testing.B) {
			list := listBenchDests(n)
			newS, err := Lookup(name)
			if err != nil {
				b.Fatal(err)
			}
			s := newS(Config{Rand: rand.New(rand.NewPCG(3, 4))}, list)
			svc := Service{Dests: list}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Schedule(svc, Flow{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkScheduleRR(b *testing.B)   { listBenchSchedule(b, "rr") }
func BenchmarkScheduleWRR(b *testing.B)  { listBenchSchedule(b, "wrr") }
func BenchmarkScheduleLC(b *testing.B)   { listBenchSchedule(b, "lc") }
func BenchmarkScheduleWLC(b *testing.B)  { listBenchSchedule(b, "wlc") }
func BenchmarkScheduleSED(b *testing.B)  { listBenchSchedule(b, "sed") }
func BenchmarkScheduleNQ(b *testing.B)   { listBenchSchedule(b, "nq") }
func BenchmarkScheduleFO(b *testing.B)   { listBenchSchedule(b, "fo") }
func BenchmarkScheduleOVF(b *testing.B)  { listBenchSchedule(b, "ovf") }
func BenchmarkScheduleTwos(b *testing.B) { listBenchSchedule(b, "twos") }

// TestListScheduleAllocs holds the hot path to 0 allocations per pick in
// the ordinary test run, not only when benchmarks are looked at.
func TestListScheduleAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count skipped in -short")
	}
	for _, name := range listNames {
		list := listBenchDests(100)
		newS, _ := Lookup(name)
		s := newS(Config{Rand: rand.New(rand.NewPCG(3, 4))}, list)
		svc := Service{Dests: list}
		if a := testing.AllocsPerRun(100, func() { _, _ = s.Schedule(svc, Flow{}) }); a != 0 {
			t.Errorf("%s: %v allocs per Schedule, want 0", name, a)
		}
	}
}
