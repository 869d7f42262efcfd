package sched

import "testing"

// ovf: the highest weight among destinations with weight > 0, not
// overloaded, and active <= weight (the kernel skips active > weight);
// the first in list order among equals.
func TestOVFSequences(t *testing.T) {
	tests := []struct {
		name  string
		adds  []string
		steps []listStep
	}{
		{
			name: "overflow in weight order",
			// [C1 B2 A2]: B and A tie at 2, B first. B takes connections
			// while active <= 2, so 3 of them (0, 1, 2 before each pick);
			// then A 3; then C 2; then none.
			adds:  []string{"A:2", "B:2", "C:1"},
			steps: []listStep{{want: "B B B A A A C C - -", bind: true}},
		},
		{
			name: "a connection ending brings the heavier one back",
			adds: []string{"A:2", "B:2", "C:1"},
			steps: []listStep{
				{want: "B B B A", bind: true},
				// B 3 -> 2 active: eligible again and first.
				{unbind: "B:1", want: "B A", bind: true},
			},
		},
		{
			name:  "inactive connections are not counted",
			adds:  []string{"A:1"},
			steps: []listStep{{inact: "A:10", want: "A"}},
		},
		{
			name: "add at the head",
			// New D 2 ties with B and is first.
			adds:  []string{"A:2", "B:2", "C:1"},
			steps: []listStep{{add: "D:2", want: "D D D B", bind: true}},
		},
		{
			name: "quiesced and overloaded are skipped",
			adds: []string{"A:2", "B:3", "C:1"},
			steps: []listStep{
				{want: "B"},
				{overload: "B", want: "A"},
				{edit: "A:0", want: "C"},
				{edit: "C:0", want: "-"},
			},
		},
		{
			name:  "empty",
			steps: []listStep{{want: "-"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			listRun(t, listNew(t, "ovf", Config{}, tt.adds...), tt.steps)
		})
	}
}
