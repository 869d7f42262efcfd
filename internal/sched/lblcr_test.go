package sched

import (
	"testing"
	"time"
)

func TestLBLCRSchedule(t *testing.T) {
	x := hashTo("10.1.1.1")
	v := hashNew(t, "lblcr", Config{}, "B:1", "A:1") // [A:1, B:1]
	set := func() string {
		s := ""
		for _, d := range v.s.(*lblcrSched).cache.get(x.Dst).val.dests {
			s += hashName(d)
		}
		return s
	}
	steps := []struct {
		name    string
		at      time.Duration
		do      func()
		want    string
		wantSet string
	}{
		{"new address: least loaded", 0, nil, "A", "A"},
		// A: 2 active > weight 1 while B is under half: add B.
		{"replicate", time.Hour, func() { v.dest("A").ActiveConns = 2 }, "B", "BA"},
		// Set min over [B, A]: B (0) beats A (512).
		{"use the set", 2 * time.Hour, nil, "B", "BA"},
		// The flag keeps B out of the set's pick; A is no longer
		// lblc-overloaded (nobody idle: B has 1*2 >= 1).
		{"flagged member skipped", 3 * time.Hour, func() { v.dest("B").Overloaded = true; v.dest("B").ActiveConns = 1 }, "A", "BA"},
		{"flag cleared", 4 * time.Hour, func() { v.dest("B").Overloaded = false; v.dest("B").ActiveConns = 0 }, "B", "BA"},
		// lastmod was +1h: at +25h it is not yet more than 24h old.
		{"not yet pruned", 25 * time.Hour, nil, "B", "BA"},
		// +25h+1ns: strictly after: the most loaded (A) goes.
		{"pruned", 25*time.Hour + time.Nanosecond, nil, "B", "B"},
	}
	for _, st := range steps {
		v.now = hashT0.Add(st.at)
		if st.do != nil {
			st.do()
		}
		if got := v.pick(x); got != st.want {
			t.Fatalf("%s: pick %s, want %s", st.name, got, st.want)
		}
		if got := set(); got != st.wantSet {
			t.Fatalf("%s: set %s, want %s", st.name, got, st.wantSet)
		}
	}
}

// TestLBLCRPrunedPick: the member chosen before pruning is returned even
// when pruning removed it, and the next packet puts it back.
func TestLBLCRPrunedPick(t *testing.T) {
	x := hashTo("10.1.1.1")
	v := hashNew(t, "lblcr", Config{}, "B:1", "A:1")
	v.pick(x) // {A}
	v.now = hashT0.Add(time.Minute)
	v.dest("A").ActiveConns = 2
	v.pick(x) // {B, A}
	v.dest("A").ActiveConns = 0
	v.edit("B", 0)
	// +1 day +2 min: set min is A (B quiesced); set max is the first
	// member of positive weight, A, which goes. A is still returned.
	v.now = hashT0.Add(24*time.Hour + 2*time.Minute)
	if got := v.pick(x); got != "A" {
		t.Fatalf("pick %s, want A", got)
	}
	en := v.s.(*lblcrSched).cache.get(x.Dst)
	if len(en.val.dests) != 1 || hashName(en.val.dests[0]) != "B" {
		t.Fatalf("set %v, want [B]", en.val.dests)
	}
	// Now the set has only quiesced B: least loaded of the service, A,
	// joins at the head.
	v.now = v.now.Add(time.Second)
	if got := v.pick(x); got != "A" || len(en.val.dests) != 2 {
		t.Fatalf("pick %s set %d, want A and 2 members", got, len(en.val.dests))
	}
}

func TestLBLCRRemovedMember(t *testing.T) {
	x := hashTo("10.1.1.1")
	v := hashNew(t, "lblcr", Config{}, "B:1", "A:1")
	v.pick(x) // {A}
	v.del("A")
	if got := v.pick(x); got != "B" {
		t.Fatalf("pick %s, want B", got)
	}
	v.del("B")
	if got := v.pick(x); got != "-" {
		t.Fatalf("pick %s, want none", got)
	}
}
