package sched

import "testing"

// nq: the first usable destination with no active connection, else sed's
// least (active+1)/weight.
func TestNQSequences(t *testing.T) {
	tests := []struct {
		name  string
		adds  []string
		steps []listStep
	}{
		{
			name: "idle first, then sed",
			// [C1 B2 A3]: C idle (sed would take A), B idle, A idle.
			// Then all busy, (active+1)/weight:
			//  4: 2/1 2/2 2/3: A.
			//  5: 2/1 2/2 3/3: B (1 < 2, A ties).
			//  6: 2/1 3/2 3/3: A.
			adds:  []string{"A:3", "B:2", "C:1"},
			steps: []listStep{{want: "C B A A B A", bind: true}},
		},
		{
			name: "an idle server wins whatever its weight",
			// [C1 B2 A100]: A has 1 active (2/100), C is idle: C.
			adds: []string{"A:100", "B:2", "C:1"},
			steps: []listStep{
				{active: "A:1"}, {active: "B:1", want: "C"},
			},
		},
		{
			name: "inactive connections do not make a server busy",
			adds: []string{"A:1", "B:1"},
			steps: []listStep{
				{active: "B:1"}, {inact: "A:50", want: "A"},
			},
		},
		{
			name: "becoming idle again",
			// After C B A A B A: C 1, B 2, A 3 active. B drops both: B is
			// idle and is taken before sed would pick anything.
			adds: []string{"A:3", "B:2", "C:1"},
			steps: []listStep{
				{want: "C B A A B A", bind: true},
				{unbind: "B:2", want: "B", bind: true},
			},
		},
		{
			name: "add at the head",
			adds: []string{"A:1", "B:1"},
			steps: []listStep{
				{active: "A:1"}, {active: "B:1"},
				// C idle: C; then 2/1 everywhere: C first in list.
				{add: "C:1", want: "C C", bind: true},
			},
		},
		{
			name: "quiesced and overloaded are skipped even when idle",
			adds: []string{"A:1", "B:1", "C:1"},
			steps: []listStep{
				{active: "A:1"},
				{edit: "C:0"}, {overload: "B", want: "A"},
				{edit: "A:0", want: "-"},
			},
		},
		{
			name:  "empty",
			steps: []listStep{{want: "-"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			listRun(t, listNew(t, "nq", Config{}, tt.adds...), tt.steps)
		})
	}
}
