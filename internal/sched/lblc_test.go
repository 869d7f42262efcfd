package sched

import (
	"net/netip"
	"testing"
	"time"
)

// hashTo is a flow to destination address dst (what lblc and lblcr key by).
func hashTo(dst string) Flow { return hashTCP("10.9.9.9", 1000, dst) }

func TestLBLCSchedule(t *testing.T) {
	x := hashTo("10.1.1.1")
	tests := []struct {
		name string
		do   func(v *hashSvc)
		want string
	}{
		// List [A:1, B:1]; X was cached to A (least loaded, first of equals).
		{"cached", nil, "A"},
		// A has 2 active > weight 1, and B has 0*2 < 1: lblc-overloaded,
		// so the least loaded (B: 0 vs A: 2*256) takes over.
		{"lblc overload", func(v *hashSvc) { v.dest("A").ActiveConns = 2 }, "B"},
		// A has 2 > 1 but B has 1*2 < 1 false: nobody is under half, keep A.
		{"busy but no one idle", func(v *hashSvc) { v.dest("A").ActiveConns = 2; v.dest("B").ActiveConns = 1 }, "A"},
		// The overload flag of the cached destination is not looked at.
		{"flag ignored on cached", func(v *hashSvc) { v.dest("A").Overloaded = true }, "A"},
		{"quiesced", func(v *hashSvc) { v.edit("A", 0) }, "B"},
		{"removed", func(v *hashSvc) { v.del("A") }, "B"},
		// New head C is idle too, but the cached A is fine.
		{"added", func(v *hashSvc) { v.add("C:1") }, "A"},
		{"nothing usable", func(v *hashSvc) { v.edit("A", 0); v.dest("B").Overloaded = true }, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := hashNew(t, "lblc", Config{}, "B:1", "A:1")
			if got := v.pick(x); got != "A" {
				t.Fatalf("first pick %s, want A", got)
			}
			if tt.do != nil {
				tt.do(v)
			}
			v.now = v.now.Add(time.Second)
			if got := v.pick(x); got != tt.want {
				t.Errorf("pick %s, want %s", got, tt.want)
			}
		})
	}
}

func TestLBLCLeastConn(t *testing.T) {
	v := hashNew(t, "lblc", Config{}, "C:3", "B:2", "A:1") // [A:1, B:2, C:3]
	// Overheads: A 1*256+0, B 1*256+300 = 556, C 2*256+10 = 522.
	// A/1 = 256, B/2 = 278, C/3 = 174: C.
	v.dest("A").ActiveConns = 1
	v.dest("B").ActiveConns, v.dest("B").InactConns = 1, 300
	v.dest("C").ActiveConns, v.dest("C").InactConns = 2, 10
	if got := v.pick(hashTo("10.1.1.1")); got != "C" {
		t.Errorf("pick %s, want C", got)
	}
	v.dest("C").Overloaded = true // the flag keeps new addresses away
	if got := v.pick(hashTo("10.1.1.2")); got != "A" {
		t.Errorf("pick %s, want A", got)
	}
}

// TestLBLCExpiry: the first Schedule (at T0) starts the minute ticks;
// every 30th tick, at T0 + k*30min, is a full check that drops entries
// unused for the expiration time.
func TestLBLCExpiry(t *testing.T) {
	tests := []struct {
		name string
		exp  time.Duration
		at   time.Duration // after T0, when X is asked again
		want string        // A while cached; B once forgotten
	}{
		{"default, just before the full check at 24h", 0, 24*time.Hour - time.Nanosecond, "A"},
		{"default, full check at 24h", 0, 24 * time.Hour, "B"},
		{"default, long after", 0, 400 * 24 * time.Hour, "B"},
		// Expiration 45 min: the check at 30 min keeps it, the one at
		// 60 min drops it.
		{"45m, at 59m", 45 * time.Minute, 59 * time.Minute, "A"},
		{"45m, at 60m", 45 * time.Minute, 60 * time.Minute, "B"},
	}
	for _, name := range []string{"lblc", "lblcr"} {
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				v := hashNew(t, name, Config{Expiration: tt.exp}, "B:1", "A:1")
				if got := v.pick(hashTo("10.1.1.1")); got != "A" {
					t.Fatalf("first pick %s, want A", got)
				}
				// Another address keeps the table busy without
				// touching X's entry.
				v.now = hashT0.Add(10 * time.Minute)
				v.pick(hashTo("10.1.1.2"))
				// A is busier than B now, not lblc-overloaded.
				v.dest("A").InactConns = 5
				v.now = hashT0.Add(tt.at)
				if got := v.pick(hashTo("10.1.1.1")); got != tt.want {
					t.Errorf("pick at +%v: %s, want %s", tt.at, got, tt.want)
				}
			})
		}
	}
}

// TestLBLCPartialGC: above 16384 entries the minute ticks drop entries
// unused for 6 minutes, bucket by bucket from the rover, until
// (entries - 16384) * 4/3 are gone.
func TestLBLCPartialGC(t *testing.T) {
	v := hashNew(t, "lblc", Config{}, "A:1")
	const n = hashCacheMax + 300
	for i := range n {
		v.pick(Flow{Dst: netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)})})
	}
	c := &v.s.(*lblcSched).cache
	if c.live != n || c.entries != n {
		t.Fatalf("live %d entries %d, want %d", c.live, c.entries, n)
	}
	// Ticks at +1..+5 min find nothing 6 minutes old; +6 min does.
	v.now = hashT0.Add(5 * time.Minute)
	v.pick(hashTo("10.3.0.1"))
	if c.live != n+1 || c.rover != 0 {
		t.Fatalf("after 5 min: live %d rover %d, want %d and 0", c.live, c.rover, n+1)
	}
	v.now = hashT0.Add(6 * time.Minute)
	v.pick(hashTo("10.3.0.2"))
	goal := (n + 1 - hashCacheMax) * 4 / 3
	gone := n + 2 - c.live
	if gone < goal || c.live > hashCacheMax || c.rover == 0 || c.entries != c.live {
		t.Fatalf("after 6 min: %d gone (goal %d), live %d, rover %d", gone, goal, c.live, c.rover)
	}
}

// TestLBLCEntryDrift: the kernel's lblc counts a replaced entry twice.
func TestLBLCEntryDrift(t *testing.T) {
	v := hashNew(t, "lblc", Config{}, "B:1", "A:1")
	x := hashTo("10.1.1.1")
	v.pick(x) // A
	v.edit("A", 0)
	v.pick(x) // B replaces A
	c := &v.s.(*lblcSched).cache
	if c.live != 1 || c.entries != 2 {
		t.Fatalf("live %d entries %d, want 1 and 2", c.live, c.entries)
	}
}
