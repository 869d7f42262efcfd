package sched

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/govs/govs/internal/ipvs"
)

// hashBenchSvc is a service of n destinations of weights 1..5 under
// scheduler name, and 4096 flows to cycle through.
func hashBenchSvc(b *testing.B, name string, n int) (Scheduler, Service, []Flow) {
	nw, err := Lookup(name)
	if err != nil {
		b.Fatal(err)
	}
	s := nw(Config{}, nil)
	var list []*ipvs.Dest
	for i := range n {
		d := ipvs.NewDest(ipvs.Destination{Addr: netip.AddrFrom4([4]byte{192, 168, byte(i >> 8), byte(i)}),
			Port: 80, Weight: int32(1 + i%5)})
		list = append([]*ipvs.Dest{d}, list...)
		s.AddDest(list, d)
	}
	flows := make([]Flow, 4096)
	for i := range flows {
		flows[i] = Flow{Proto: ipvs.ProtoTCP,
			Src: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), SrcPort: uint16(1024 + i),
			Dst: netip.AddrFrom4([4]byte{10, 200, 0, byte(i % 256)}), DstPort: 80}
	}
	return s, Service{Dests: list, Flags: ipvs.SchedPort | ipvs.SchedFallback, Now: hashT0}, flows
}

func hashBench(b *testing.B, name string) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("dests=%d", n), func(b *testing.B) {
			s, svc, flows := hashBenchSvc(b, name, n)
			for _, f := range flows { // warm the lblc/lblcr caches
				if _, err := s.Schedule(svc, f); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := s.Schedule(svc, flows[i&4095]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkScheduleDH(b *testing.B)    { hashBench(b, "dh") }
func BenchmarkScheduleSH(b *testing.B)    { hashBench(b, "sh") }
func BenchmarkScheduleMH(b *testing.B)    { hashBench(b, "mh") }
func BenchmarkScheduleLBLC(b *testing.B)  { hashBench(b, "lblc") }
func BenchmarkScheduleLBLCR(b *testing.B) { hashBench(b, "lblcr") }

// hashBenchNew measures lblc and lblcr when every packet brings a new
// destination address, so each Schedule creates a cache entry.
func hashBenchNew(b *testing.B, name string) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("dests=%d", n), func(b *testing.B) {
			s, svc, _ := hashBenchSvc(b, name, n)
			b.ReportAllocs()
			i := uint32(0)
			for b.Loop() {
				f := Flow{Proto: ipvs.ProtoTCP, Src: netip.AddrFrom4([4]byte{10, 0, 0, 1}),
					Dst: netip.AddrFrom4([4]byte{11, byte(i >> 16), byte(i >> 8), byte(i)})}
				if _, err := s.Schedule(svc, f); err != nil {
					b.Fatal(err)
				}
				i++
				if i&0xffff == 0 { // stay under max_size: a fresh table
					s, svc, _ = hashBenchSvc(b, name, n)
				}
			}
		})
	}
}

func BenchmarkScheduleLBLCNewEntry(b *testing.B)  { hashBenchNew(b, "lblc") }
func BenchmarkScheduleLBLCRNewEntry(b *testing.B) { hashBenchNew(b, "lblcr") }

// BenchmarkScheduleMHReassign measures rebuilding the Maglev table, which
// every destination add, delete and edit does.
func BenchmarkScheduleMHReassign(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("dests=%d", n), func(b *testing.B) {
			s, svc, _ := hashBenchSvc(b, "mh", n)
			b.ReportAllocs()
			for b.Loop() {
				s.UpdDest(svc.Dests, svc.Dests[0])
			}
		})
	}
}
