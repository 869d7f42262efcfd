package sched

import "testing"

// fo: the highest weight among destinations that are not overloaded; the
// first in list order among equals; weight 0 never.
func TestFOSequences(t *testing.T) {
	tests := []struct {
		name  string
		adds  []string
		steps []listStep
	}{
		{
			name: "highest weight, newest among equals",
			// [C1 B3 A3]: B and A tie at 3, B is first. Load is ignored.
			adds:  []string{"A:3", "B:3", "C:1"},
			steps: []listStep{{want: "B B B B", bind: true}},
		},
		{
			name: "fail over and back",
			adds: []string{"A:3", "B:3", "C:1"},
			steps: []listStep{
				{overload: "B", want: "A"},
				{edit: "A:0", want: "C"},
				{clear: "B", want: "B"},
			},
		},
		{
			name: "add at the head",
			// D 3 ties B and is first; D 2 would change nothing.
			adds: []string{"A:3", "B:3", "C:1"},
			steps: []listStep{
				{add: "D:2", want: "B"},
				{add: "E:3", want: "E"},
				{del: "E", want: "B"},
			},
		},
		{
			name: "re-weight",
			adds: []string{"A:3", "B:3", "C:1"},
			steps: []listStep{
				{edit: "C:5", want: "C"},
				{edit: "A:6", want: "A"},
			},
		},
		{
			name:  "all quiesced",
			adds:  []string{"A:0", "B:0"},
			steps: []listStep{{want: "-"}},
		},
		{
			name:  "empty",
			steps: []listStep{{want: "-"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			listRun(t, listNew(t, "fo", Config{}, tt.adds...), tt.steps)
		})
	}
}
