package sched

import (
	"testing"

	"github.com/govs/govs/internal/ipvs"
)

// Derivations used below. The sh bucket of a source address x (no port) is
// (x * 2654435761) mod 256 = (x mod 256) * 177 mod 256 (2654435761 is
// 0x9E3779B1), so for 10.0.0.n:
//
//	10.0.0.1 -> 177    10.0.0.2 -> 354-256 = 98
//	10.0.0.3 -> 531-512 = 19    10.0.0.4 -> 708-512 = 196
//
// ip_vs_sh_reassign walks the list (newest first) giving each destination
// weight consecutive buckets (a weight-0 destination gets one). For a list
// [A:2, B:1] the pattern repeats every 3 buckets: i%3 in {0,1} -> A, 2 -> B;
// so 177 (177%3=0) -> A, 98 (%3=2) -> B, 19 (%3=1) -> A, 196 (%3=1) -> A,
// and A holds 171 buckets, B 85 (256 = 85*3 + 1, bucket 255 is A's).
//
// The sh-fallback walk probes bucket (offset + h) with offset = (k + h) mod
// 256, i.e. buckets 2h, 2h+1, ... mod 256: for h = 98 it starts at 196, for
// h = 177 at 354-256 = 98.

func TestSHTable(t *testing.T) {
	v := hashNew(t, "sh", Config{}, "B:1", "A:2") // list [A:2, B:1]
	tab := v.s.(*SH).Table()
	count := map[string]int{}
	for i, d := range tab {
		want := "A"
		if i%3 == 2 {
			want = "B"
		}
		if hashName(d) != want {
			t.Fatalf("bucket %d: %s, want %s", i, hashName(d), want)
		}
		count[hashName(d)]++
	}
	if count["A"] != 171 || count["B"] != 85 {
		t.Errorf("bucket counts %v, want A:171 B:85", count)
	}
}

func TestSHSchedule(t *testing.T) {
	type step struct {
		do    func(v *hashSvc)
		flags ipvs.SchedFlags
		// want: picks for sources 10.0.0.1, .2, .3, .4 ("-": none).
		want [4]string
	}
	srcs := [4]string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"}
	tests := []struct {
		name  string
		adds  []string
		steps []step
	}{
		{"weights 2,1", []string{"B:1", "A:2"}, []step{
			{want: [4]string{"A", "B", "A", "A"}}, // buckets 177,98,19,196 by i%3
		}},
		{"add at head", []string{"B:1", "A:2"}, []step{
			// [C:1, A:2, B:1]: period 4: 0->C 1,2->A 3->B;
			// 177%4=1 A, 98%4=2 A, 19%4=3 B, 196%4=0 C.
			{do: func(v *hashSvc) { v.add("C:1") }, want: [4]string{"A", "A", "B", "C"}},
		}},
		{"remove", []string{"B:1", "A:2", "C:1"}, []step{
			// [C, B] one bucket each: even -> C, odd -> B.
			{do: func(v *hashSvc) { v.del("A") }, want: [4]string{"B", "C", "B", "C"}},
		}},
		{"reweight", []string{"B:1", "A:2"}, []step{
			// [A:2, B:3]: period 5: 0,1 -> A; 2,3,4 -> B;
			// 177%5=2 B, 98%5=3 B, 19%5=4 B, 196%5=1 A.
			{do: func(v *hashSvc) { v.edit("B", 3) }, want: [4]string{"B", "B", "B", "A"}},
		}},
		{"quiesce", []string{"B:1", "A:2"}, []step{
			// [A:0, B:1]: A keeps one bucket per turn: even -> A,
			// odd -> B. 98 and 196 are A's, and A takes nothing.
			{do: func(v *hashSvc) { v.edit("A", 0) }, want: [4]string{"B", "-", "B", "-"}},
			// Fallback: 98 probes 196 (A), 197 (B); 196 probes
			// 392-256 = 136 (A), 137 (B).
			{flags: ipvs.SchedFallback, want: [4]string{"B", "B", "B", "B"}},
		}},
		{"overloaded", []string{"B:1", "A:2"}, []step{
			{do: func(v *hashSvc) { v.dest("B").Overloaded = true }, want: [4]string{"A", "-", "A", "A"}},
			// 98 probes 196: 196%3=1 -> A.
			{flags: ipvs.SchedFallback, want: [4]string{"A", "A", "A", "A"}},
			{do: func(v *hashSvc) { v.dest("B").Overloaded = false; v.dest("A").Overloaded = true },
				want: [4]string{"-", "B", "-", "-"}},
			// 177 probes 98 (B). 19 probes 38 (38%3=2, B).
			// 196 probes 392-256=136 (136%3=1 A), 137 (137%3=2 B).
			{flags: ipvs.SchedFallback, want: [4]string{"B", "B", "B", "B"}},
		}},
		{"all unusable", []string{"B:1", "A:2"}, []step{
			{do: func(v *hashSvc) { v.dest("A").Overloaded = true; v.edit("B", 0) },
				flags: ipvs.SchedFallback, want: [4]string{"-", "-", "-", "-"}},
		}},
		{"empty", nil, []step{
			{flags: ipvs.SchedFallback, want: [4]string{"-", "-", "-", "-"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := hashNew(t, "sh", Config{}, tt.adds...)
			for i, st := range tt.steps {
				if st.do != nil {
					st.do(v)
				}
				v.flags = st.flags
				for j, src := range srcs {
					if got := v.pick(hashFrom(src)); got != st.want[j] {
						t.Errorf("step %d: %s -> %s, want %s", i, src, got, st.want[j])
					}
				}
			}
		})
	}
}

func TestSHPort(t *testing.T) {
	v := hashNew(t, "sh", Config{}, "B:1", "A:2") // i%3 == 2 -> B
	tests := []struct {
		name  string
		flags ipvs.SchedFlags
		f     Flow
		want  string
	}{
		{"no flag: port ignored", 0, hashTCP("10.0.0.1", 1, "10.1.1.1"), "A"}, // 177
		// low byte of 1 + 0x0A000001 is 2 -> 98 -> B
		{"tcp port 1", ipvs.SchedPort, hashTCP("10.0.0.1", 1, "10.1.1.1"), "B"},
		{"udp port 1", ipvs.SchedPort, Flow{Proto: ipvs.ProtoUDP, Src: hashFrom("10.0.0.1").Src, SrcPort: 1}, "B"},
		{"sctp port 1", ipvs.SchedPort, Flow{Proto: ipvs.ProtoSCTP, Src: hashFrom("10.0.0.1").Src, SrcPort: 1}, "B"},
		{"icmp: no port", ipvs.SchedPort, Flow{Proto: 1, Src: hashFrom("10.0.0.1").Src, SrcPort: 1}, "A"},
		// 1 + 255 = 256: low byte 0 -> bucket 0 -> A
		{"tcp port 255", ipvs.SchedPort, hashTCP("10.0.0.1", 255, "10.1.1.1"), "A"},
		// 2001:db8::1 folds to 0x20010db9 -> bucket 233, 233%3=2 -> B
		{"ipv6", 0, hashTCP("2001:db8::1", 1, "2001:db8::80"), "B"},
	}
	for _, tt := range tests {
		v.flags = tt.flags
		if got := v.pick(tt.f); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}
