package sched

import "testing"

// Notation: cw is the current weight, mw = maxweight-(di-1) its top, di
// the gcd of the positive weights, cl the cursor (^ = the list head). A
// pick walks from after cl; at the end of the list cw drops by di (back
// to mw once it is <= 0) and the walk restarts at the head. A pick takes
// the first destination with weight >= cw that is not overloaded. Every
// add/del/edit recomputes di and mw, sets cl = ^, and sets cw to mw if
// cw > mw or cw == 0, else, when di > 1, to (cw/di)*di+1.
func TestWRRSequences(t *testing.T) {
	tests := []struct {
		name  string
		init  []string // list when the scheduler is bound, head first
		adds  []string // or: empty service, then these adds in order
		steps []listStep
	}{
		{
			name: "bound to an existing list",
			// [C2 B3 A4]: di 1, mw 4, cw 4, cl ^.
			// cw4: A | cw3: B A | cw2: C B A | cw1: C B A | cw4: A ...
			// A cycle is 9 picks: A 4, B 3, C 2.
			init:  []string{"C:2", "B:3", "A:4"},
			steps: []listStep{{want: "A B A C B A C B A A B A"}},
		},
		{
			name: "built by adds starts on the last pass",
			// Empty: di 1, mw 0, cw 0.
			// +A4: di 4, mw 4-3 = 1, cw 0 -> mw = 1.
			// +B3: di 1, mw 4, cw 1 kept (not > mw, not 0, di 1).
			// +C2: [C B A], di 1, mw 4, cw 1 kept.
			// cw1: C B A | cw 0 -> 4: A | cw3: B A | cw2: C B A | cw1: C B A | cw4: A
			// So the first three picks are one each, before the first
			// full cycle begins.
			adds:  []string{"A:4", "B:3", "C:2"},
			steps: []listStep{{want: "C B A A B A C B A C B A A"}},
		},
		{
			name: "gcd step",
			// [B4 A6]: di 2, mw 6-1 = 5, cw 5.
			// cw5: A | cw3: B A | cw1: B A | cw 1-2 <= 0 -> 5: A ...
			// Cycle 5 = A 3, B 2 (6/2, 4/2).
			init:  []string{"B:4", "A:6"},
			steps: []listStep{{want: "A B A B A A B A B A"}},
		},
		{
			name: "gcd step, built by adds",
			// +A4: di 4, mw 1, cw 0 -> 1. +B2: [B A], di 2, mw 3, cw 1
			// -> (1/2)*2+1 = 1.
			// cw1: B A | cw -1 -> 3: A | cw1: B A | cw3: A | ...
			adds:  []string{"A:4", "B:2"},
			steps: []listStep{{want: "B A A B A A B A"}},
		},
		{
			name: "equal weights are rr",
			// [C5 B5 A5]: di 5, mw 5-4 = 1, cw 1: every pass is the
			// last pass, so every weight qualifies: rr order.
			init:  []string{"C:5", "B:5", "A:5"},
			steps: []listStep{{want: "C B A C B A"}},
		},
		{
			name: "add at the head mid-cycle",
			// [C2 B3 A4], A B A: cw 3, cl A.
			// +D6: [D C B A], di 1, mw 6, cw 3 kept, cl ^.
			// cw3: D B A | cw2: D C B A | cw1: D C B A | cw6: D | cw5: D
			// | cw4: D A | cw3: D B A
			init: []string{"C:2", "B:3", "A:4"},
			steps: []listStep{
				{want: "A B A"},
				{add: "D:6", want: "D B A D C B A D C B A D D D A D B A"},
			},
		},
		{
			name: "re-weight mid-cycle",
			// [C2 B3 A4], A B A: cw 3, cl A.
			// B -> 1: di 1, mw 4, cw 3 kept, cl ^.
			// cw3: A | cw2: C A | cw1: C B A | cw4: A | cw3: A | cw2: C A
			// Cycle 7 = A 4, C 2, B 1.
			init: []string{"C:2", "B:3", "A:4"},
			steps: []listStep{
				{want: "A B A"},
				{edit: "B:1", want: "A C A C B A A A C A"},
			},
		},
		{
			name: "re-weight rounds cw to the new gcd",
			// [B1 A4]: di 1, mw 4, cw 4. cw4: A | cw3: A | cw2: A. Now
			// cw 2, cl A.
			// B -> 2: di 2, mw 4-1 = 3, cw 2 -> (2/2)*2+1 = 3, cl ^.
			// cw3: A (B 2 < 3) | cw1: B A | cw 3: A | cw1: B A
			// Without the rounding cw 2 would pick B first.
			init: []string{"B:1", "A:4"},
			steps: []listStep{
				{want: "A A A"},
				{edit: "B:2", want: "A B A A B A"},
			},
		},
		{
			name: "re-weight above mw clamps cw",
			// [C2 B3 A4], A: cw 4, cl A.
			// A -> 2: di 1, mw 3, cw 4 > 3 -> 3, cl ^.
			// cw3: B | cw2: C B A | cw1: C B A | cw3: B
			init: []string{"C:2", "B:3", "A:4"},
			steps: []listStep{
				{want: "A"},
				{edit: "A:2", want: "B C B A C B A B"},
			},
		},
		{
			name: "delete mid-cycle",
			// [C2 B3 A4], A B: cw 3, cl B.
			// -A: [C B], di 1, mw 3, cw 3 kept, cl ^.
			// cw3: B | cw2: C B | cw1: C B | cw3: B
			init: []string{"C:2", "B:3", "A:4"},
			steps: []listStep{
				{want: "A B"},
				{del: "A", want: "B C B C B B"},
			},
		},
		{
			name: "quiesce the heaviest",
			// [C2 B3 A4], A: cw 4, cl A.
			// A -> 0: di gcd(2,3) 1, mw 3, cw 4 > 3 -> 3, cl ^.
			// cw3: B | cw2: C B | cw1: C B | cw3: B ... A never.
			// Restored: A -> 4: di 1, mw 4, cw 3 kept: cw3: B A | ...
			init: []string{"C:2", "B:3", "A:4"},
			steps: []listStep{
				{want: "A"},
				{edit: "A:0", want: "B C B C B B"},
				{edit: "A:4", want: "B A C B A C B A A"},
			},
		},
		{
			name: "overloaded heaviest",
			// Overload is no hook call: di 1, mw 4 stay, so the pass at
			// cw 4 finds nothing and costs only time.
			// [C2 B3 A4*], cl ^, cw 4: cw4: - | cw3: B | cw2: C B | cw1: C B
			// | cw4: - | cw3: B
			init: []string{"C:2", "B:3", "A:4"},
			steps: []listStep{
				{overload: "A", want: "B C B C B B"},
				// cl B, cw 3: A is next after B: cw3: A | cw2: C B A ...
				{clear: "A", want: "A C B A"},
			},
		},
		{
			name: "all overloaded",
			// [B1 A1]: di 1, mw 1, cw 1, cl ^. Both overloaded: the walk
			// from ^ checks all at cw 1, cw drops to 0 -> mw, and since it
			// began at the head it fails with cl ^. B cleared is next.
			init: []string{"B:1", "A:1"},
			steps: []listStep{
				{overload: "A"}, {overload: "B", want: "- -"},
				{clear: "A"}, {clear: "B", want: "B A B"},
			},
		},
		{
			name: "all overloaded after a pick",
			// [B1 A1], B: cl B, cw 1. Both overloaded: from B: A no, cw 0
			// -> 1 (wrapped, restarted), last pass from ^ up to stop = B:
			// B no, fail with cl B. Cleared: A is next after B.
			init: []string{"B:1", "A:1"},
			steps: []listStep{
				{want: "B"},
				{overload: "A"}, {overload: "B", want: "-"},
				{clear: "A"}, {clear: "B", want: "A B"},
			},
		},
		{
			name: "all quiesced",
			// All weights 0: mw 0, "no destination available" at once.
			adds: []string{"A:1", "B:1"},
			steps: []listStep{
				{edit: "A:0"}, {edit: "B:0", want: "- -"},
				// A -> 3: di 3, mw 1, cw 0 -> 1: cw1 from ^: A only.
				{edit: "A:3", want: "A A"},
			},
		},
		{
			name:  "empty",
			steps: []listStep{{want: "-"}, {add: "A:2", want: "A A"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v *listSvc
			if tt.init != nil {
				v = listInit(t, "wrr", Config{}, tt.init...)
			} else {
				v = listNew(t, "wrr", Config{}, tt.adds...)
			}
			listRun(t, v, tt.steps)
		})
	}
}
