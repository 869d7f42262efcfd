package sched

import "testing"

// sed: least (active+1)/weight, cross-multiplied, first in list order on
// ties; inactive connections do not count.
func TestSEDSequences(t *testing.T) {
	tests := []struct {
		name  string
		adds  []string
		steps []listStep
	}{
		{
			name: "fills the fast server first",
			// [C1 B2 A3], (active+1)/weight:
			//  1: 1/1 1/2 1/3: A (wlc would take C: 0 everywhere).
			//  2: 1/1 1/2 2/3: B.
			//  3: 1/1 2/2 2/3: A.
			//  4: 1/1 2/2 3/3: all 1: C.
			//  5: 2/1 2/2 3/3: B (1 < 2, A ties B).
			//  6: 2/1 3/2 3/3: A.
			// After 6 picks: A 3, B 2, C 1.
			adds:  []string{"A:3", "B:2", "C:1"},
			steps: []listStep{{want: "A B A C B A", bind: true}},
		},
		{
			name: "inactive connections are ignored",
			// [B1 A2]: 1/1 vs 1/2: A, however many inactive it has.
			adds: []string{"A:2", "B:1"},
			steps: []listStep{
				{inact: "A:1000", want: "A"},
			},
		},
		{
			name:  "equal weights: newest first",
			adds:  []string{"A:1", "B:1"},
			steps: []listStep{{want: "B A B A", bind: true}},
		},
		{
			name: "add at the head",
			// [B1 A1] with 1 active each (2/1); C (1/1) wins, then ties
			// go to C as the head.
			adds: []string{"A:1", "B:1"},
			steps: []listStep{
				{active: "A:1"}, {active: "B:1"},
				{add: "C:1", want: "C C B A", bind: true},
			},
		},
		{
			name: "quiesced and overloaded are skipped",
			// [C1 B2 A3]: A (1/3) is best; overloaded: B (1/2); quiesced
			// too: C.
			adds: []string{"A:3", "B:2", "C:1"},
			steps: []listStep{
				{overload: "A", want: "B"},
				{edit: "B:0", want: "C"},
				{edit: "C:0", want: "-"},
				{clear: "A", want: "A"},
			},
		},
		{
			name:  "empty",
			steps: []listStep{{want: "-"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			listRun(t, listNew(t, "sed", Config{}, tt.adds...), tt.steps)
		})
	}
}
