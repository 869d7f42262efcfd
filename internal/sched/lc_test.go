package sched

import "testing"

// lc: least active*256 + inactive among destinations with weight > 0 and
// not overloaded; the first in list order keeps a tie.
func TestLCSequences(t *testing.T) {
	tests := []struct {
		name  string
		adds  []string
		steps []listStep
	}{
		{
			name: "fills evenly, newest first on ties",
			// [C B A], all 0: C. Binding each pick as active: C 256, so B;
			// then A; then all 256: C again.
			adds:  []string{"A:1", "B:1", "C:1"},
			steps: []listStep{{want: "C B A C B A", bind: true}},
		},
		{
			name: "weights are ignored",
			// A weight 100 with 1 active (256) loses to C weight 1 with 0.
			adds: []string{"A:100", "B:1", "C:1"},
			steps: []listStep{
				{active: "C:1"}, {active: "B:1"}, {want: "A", bind: true},
				{want: "C B A", bind: true},
			},
		},
		{
			name: "an active connection weighs 256 inactive",
			// [B A]: B 1 active = 256, A 255 inactive: A is less loaded.
			// A at 256 inactive ties with B: B, first in list.
			adds: []string{"A:1", "B:1"},
			steps: []listStep{
				{active: "B:1"}, {inact: "A:255", want: "A"},
				{inact: "A:1", want: "B"},
			},
		},
		{
			name: "add at the head",
			// [B A] with a connection each; new C has none.
			adds: []string{"A:1", "B:1"},
			steps: []listStep{
				{active: "A:1"}, {active: "B:1"},
				{add: "C:1", want: "C C"},
			},
		},
		{
			name: "delete",
			adds: []string{"A:1", "B:1", "C:1"},
			steps: []listStep{
				{active: "A:2"}, {active: "B:1"},
				{del: "C", want: "B"},
			},
		},
		{
			name: "quiesced and overloaded are skipped",
			// [C B A], all 0. C quiesced: B. B overloaded too: A.
			adds: []string{"A:1", "B:1", "C:1"},
			steps: []listStep{
				{edit: "C:0", want: "B"},
				{overload: "B", want: "A A"},
				{edit: "A:0", want: "-"},
				{clear: "B", want: "B"},
			},
		},
		{
			name:  "empty",
			steps: []listStep{{want: "-"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			listRun(t, listNew(t, "lc", Config{}, tt.adds...), tt.steps)
		})
	}
}
