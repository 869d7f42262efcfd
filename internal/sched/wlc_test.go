package sched

import "testing"

// wlc: least (active*256 + inactive)/weight, compared as h1*w2 > h2*w1;
// a later destination replaces the choice only when strictly less loaded,
// so the first in list order keeps a tie.
func TestWLCSequences(t *testing.T) {
	tests := []struct {
		name  string
		adds  []string
		steps []listStep
	}{
		{
			name: "fills in proportion to weight",
			// [C1 B2 A3], loads in units of 256 active:
			//  1: 0/1 0/2 0/3 all 0: C (first).
			//  2: 1/1 0/2 0/3: B (0 beats 1, A 0 ties B).
			//  3: 1/1 1/2 0/3: A.
			//  4: 1/1 1/2 1/3: A (1/3 least).
			//  5: 1/1 1/2 2/3: B (1/2 < 2/3).
			//  6: 1/1 2/2 2/3: A (2/3 < 1).
			//  7: 1/1 2/2 3/3: all 1: C.
			// After 6 picks: C 1, B 2, A 3.
			adds:  []string{"A:3", "B:2", "C:1"},
			steps: []listStep{{want: "C B A A B A C", bind: true}},
		},
		{
			name: "inactive connections count 1/256",
			// [B1 A2]: B 1 inactive = 1/1, A 1 active = 256/2 = 128: B.
			// A 2 active = 512/2 = 256 vs B 256 inactive = 256: tie, B.
			// B 257 inactive: A.
			adds: []string{"A:2", "B:1"},
			steps: []listStep{
				{inact: "B:1"}, {active: "A:1", want: "B"},
				{inact: "B:255"}, {active: "A:1", want: "B"},
				{inact: "B:1", want: "A"},
			},
		},
		{
			name: "add at the head",
			// [B A] with 1 active each; new C at the head is empty: C.
			// Then all 1/1, a tie kept by the head: C again. Then C 2/1:
			// B (A ties B), then A.
			adds: []string{"A:1", "B:1"},
			steps: []listStep{
				{active: "A:1"}, {active: "B:1"},
				{add: "C:1", want: "C C B A", bind: true},
			},
		},
		{
			name: "re-weight",
			// [B1 A1] with 1 active each: tie, B. A -> 3: 1/3 < 1/1: A
			// until A has 3: A A (2/3, 3/3 then tie -> B).
			adds: []string{"A:1", "B:1"},
			steps: []listStep{
				{active: "A:1"}, {active: "B:1", want: "B"},
				{edit: "A:3", want: "A A B", bind: true},
			},
		},
		{
			name: "quiesced and overloaded are skipped",
			// [C B A] all empty. C quiesced: first usable B. A's weight 0
			// later in the list never wins either.
			adds: []string{"A:1", "B:1", "C:1"},
			steps: []listStep{
				{edit: "C:0", want: "B"},
				{overload: "B", want: "A"},
				{edit: "A:0", want: "-"},
				{clear: "B", want: "B"},
			},
		},
		{
			name: "quiesced later in the list with less load",
			// [C1 B0 A1]: C has 1 active, B (weight 0) none: 256*0 > 0*1
			// is false, so B never wins; A (0) does.
			adds: []string{"A:1", "B:1", "C:1"},
			steps: []listStep{
				{active: "C:1"}, {active: "A:1"}, {edit: "B:0", want: "C A C A", bind: true},
			},
		},
		{
			name:  "empty",
			steps: []listStep{{want: "-"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			listRun(t, listNew(t, "wlc", Config{}, tt.adds...), tt.steps)
		})
	}
}
