package sched

import (
	"math/rand/v2"
	"testing"
)

// twos: over the usable destinations (weight > 0, not overloaded) with
// total weight T, two draws r in [0, T] each pick the first destination
// whose running weight sum reaches r; the second pick wins only when
// strictly less loaded per weight, w1*oh2 < w2*oh1 with oh =
// active*256 + inactive.
//
// With [C1 B2 A3], T = 6 and r has 7 values: C takes r 0..1 (its weight
// plus the r = 0 quirk), B 2..3, A 4..6.
func TestTwosSequences(t *testing.T) {
	tests := []struct {
		name   string
		steps  []listStep // set-up, then the last step's want is the pick
		n      int64      // T+1
		r1, r2 int64
	}{
		{
			name: "idle: the first choice keeps a tie",
			// r1 4 -> A, r2 0 -> C: both 0 load, A.
			n: 7, r1: 4, r2: 0,
			steps: []listStep{{want: "A"}},
		},
		{
			name: "r = 0 lands on the first usable destination",
			// r1 0 -> C, r2 1 -> C.
			n: 7, r1: 0, r2: 1,
			steps: []listStep{{want: "C"}},
		},
		{
			name: "r = T lands on the last",
			n:    7, r1: 6, r2: 6,
			steps: []listStep{{want: "A"}},
		},
		{
			name: "the second choice wins when less loaded",
			// A 1 active: r1 5 -> A (256/3), r2 1 -> C (0/1):
			// w2*oh1 = 1*256 > w1*oh2 = 3*0: C.
			n: 7, r1: 5, r2: 1,
			steps: []listStep{{active: "A:1", want: "C"}},
		},
		{
			name: "load per weight, first choice lighter",
			// A 1 active (256/3), B 1 active (256/2): r1 6 -> A, r2 2 -> B:
			// 2*256 > 3*256 is false: A.
			n: 7, r1: 6, r2: 2,
			steps: []listStep{{active: "A:1"}, {active: "B:1", want: "A"}},
		},
		{
			name: "load per weight, second choice lighter",
			// Same loads, r1 3 -> B, r2 4 -> A: 3*256 > 2*256: A.
			n: 7, r1: 3, r2: 4,
			steps: []listStep{{active: "A:1"}, {active: "B:1", want: "A"}},
		},
		{
			name: "inactive connections count 1/256",
			// B 300 inactive (300/2), A 1 active (256/3): r1 2 -> B,
			// r2 5 -> A: 3*300 > 2*256: A.
			n: 7, r1: 2, r2: 5,
			steps: []listStep{{inact: "B:300"}, {active: "A:1", want: "A"}},
		},
		{
			name: "overloaded leaves the draw",
			// C overloaded: [B2 A3], T 5, r in 0..5: B 0..2, A 3..5.
			// r1 2 -> B, r2 3 -> A, both idle: B.
			n: 6, r1: 2, r2: 3,
			steps: []listStep{{overload: "C", want: "B"}},
		},
		{
			name: "quiesced leaves the draw",
			// A quiesced: [C1 B2], T 3: C 0..1, B 2..3. r1 3 -> B (oh
			// 0), r2 0 -> C (1 inactive, oh 1): w2*oh1 = 1*0 > w1*oh2 =
			// 2*1 is false: B.
			n: 4, r1: 3, r2: 0,
			steps: []listStep{{inact: "C:1"}, {edit: "A:0", want: "B"}},
		},
		{
			name: "added at the head",
			// +D4: [D4 C1 B2 A3], T 10: D 0..4, C 5, B 6..7, A 8..10.
			// r1 4 -> D, r2 5 -> C: idle: D.
			n: 11, r1: 4, r2: 5,
			steps: []listStep{{add: "D:4", want: "D"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Rand: listScriptedRand(t, tt.n, tt.r1, tt.r2)}
			listRun(t, listNew(t, "twos", cfg, "A:3", "B:2", "C:1"), tt.steps)
		})
	}
}

func TestTwosNoDestinationDrawsNothing(t *testing.T) {
	// No scripted values: a draw would panic.
	v := listNew(t, "twos", Config{Rand: rand.New(&listScriptSource{})}, "A:0", "B:1")
	v.dest("B").Overloaded = true
	v.expect("all unusable", "- -", false)
}

func TestTwosDeterministic(t *testing.T) {
	run := func() string {
		cfg := Config{Rand: rand.New(rand.NewPCG(1, 2))}
		return listNew(t, "twos", cfg, "A:3", "B:2", "C:1", "D:5").picks(200, true)
	}
	if a, b := run(), run(); a != b {
		t.Errorf("same seed, different picks:\n%s\n%s", a, b)
	}
	// A nil Rand is seeded from the runtime and still works.
	listNew(t, "twos", Config{}, "A:1", "B:1").expect("nil Rand", "", false)
	if got := listNew(t, "twos", Config{}, "A:1").pick(false); got != "A" {
		t.Errorf("nil Rand: got %s, want A", got)
	}
}
