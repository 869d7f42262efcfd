package sched

import "testing"

// The rr cursor is the last destination picked, or the list head (written
// "^" below). A pick walks from the entry after the cursor to the end,
// then, unless the cursor is the head, from the start up to the cursor.
func TestRRSequences(t *testing.T) {
	tests := []struct {
		name  string
		adds  []string // added in order, so the last is at the head
		steps []listStep
	}{
		{
			name: "newest first",
			// Adds A, B, C leave [C B A], cursor ^: C B A and around.
			adds:  []string{"A:1", "B:1", "C:1"},
			steps: []listStep{{want: "C B A C B A C"}},
		},
		{
			name:  "weights do not matter",
			adds:  []string{"A:5", "B:1", "C:100"},
			steps: []listStep{{want: "C B A C B A"}},
		},
		{
			name: "add at the head mid-cycle",
			// [C B A]: C B leaves the cursor on B. D goes in at the head:
			// [D C B A], cursor still on B, so A is next, then the wrap
			// meets D.
			adds: []string{"A:1", "B:1", "C:1"},
			steps: []listStep{
				{want: "C B"},
				{add: "D:1", want: "A D C B A"},
			},
		},
		{
			name: "add before the first pick",
			// The cursor is the head, so the new head D is next.
			adds:  []string{"A:1", "B:1"},
			steps: []listStep{{add: "C:1", want: "C B A C"}},
		},
		{
			name: "delete the cursor",
			// [C B A], C B: cursor on B. Deleting B moves the cursor to
			// the entry before it, C, so the walk resumes at A, where it
			// would have gone anyway.
			adds: []string{"A:1", "B:1", "C:1"},
			steps: []listStep{
				{want: "C B"},
				{del: "B", want: "A C A C"},
			},
		},
		{
			name: "delete the cursor at the head",
			// [C B A], C: cursor on C. Deleting C moves the cursor to the
			// head: [B A], B next.
			adds: []string{"A:1", "B:1", "C:1"},
			steps: []listStep{
				{want: "C"},
				{del: "C", want: "B A B"},
			},
		},
		{
			name: "delete before the cursor",
			// [C B A], C B: cursor on B. Deleting C (index 0) leaves the
			// cursor on B, now index 0: [B A], A next.
			adds: []string{"A:1", "B:1", "C:1"},
			steps: []listStep{
				{want: "C B"},
				{del: "C", want: "A B A"},
			},
		},
		{
			name: "delete after the cursor",
			// [C B A], C: cursor on C. Deleting A: [C B], B next.
			adds: []string{"A:1", "B:1", "C:1"},
			steps: []listStep{
				{want: "C"},
				{del: "A", want: "B C B"},
			},
		},
		{
			name: "quiesce and restore",
			// B at weight 0 is skipped; restored while the cursor is on C
			// it is the next entry, so it is next.
			adds: []string{"A:1", "B:1", "C:1"},
			steps: []listStep{
				{edit: "B:0", want: "C A C"},
				{edit: "B:1", want: "B A C B"},
			},
		},
		{
			name: "overloaded flag",
			adds: []string{"A:1", "B:1", "C:1"},
			steps: []listStep{
				{overload: "A", want: "C B C B"},
				{clear: "A", want: "A C"},
			},
		},
		{
			name: "all unusable keeps the cursor",
			// [C B A], C B: cursor on B. With all quiesced the pick fails
			// and leaves the cursor; A restored is next after B.
			adds: []string{"A:1", "B:1", "C:1"},
			steps: []listStep{
				{want: "C B"},
				{edit: "A:0"}, {edit: "B:0"}, {edit: "C:0", want: "- -"},
				{edit: "C:1"}, {edit: "A:1", want: "A C A"},
			},
		},
		{
			name: "the cursor itself is checked last",
			// [C B A], C: cursor on C. With B and A quiesced the walk goes
			// B, A, wraps, and takes C again.
			adds: []string{"A:1", "B:1", "C:1"},
			steps: []listStep{
				{want: "C"},
				{edit: "B:0"}, {edit: "A:0", want: "C C"},
			},
		},
		{
			name:  "empty",
			steps: []listStep{{want: "-"}, {add: "A:1", want: "A A"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			listRun(t, listNew(t, "rr", Config{}, tt.adds...), tt.steps)
		})
	}
}

// TestRROverloadByThreshold reaches the overload flag the way the
// connection table does: B has upper threshold 2, and every pick binds an
// active connection.
func TestRROverloadByThreshold(t *testing.T) {
	v := listNew(t, "rr", Config{}, "A:1", "B:1", "C:1")
	v.dest("B").Upper = 2
	// [C B A]: C B A C B; B now has 2 connections, is overloaded, and is
	// skipped: A C A C.
	v.expect("fill B", "C B A C B A C A C", true)
	if !v.dest("B").Overloaded {
		t.Fatal("B not overloaded at its upper threshold")
	}
	// No lower threshold: overload clears below 3/4 of upper, i.e. at 1
	// connection. The cursor is on C, so B is next.
	v.dest("B").Unbind(false, true)
	v.expect("B back", "B A", true)
}
