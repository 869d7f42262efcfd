package sched

import "testing"

// ip_vs_dh_reassign gives bucket i to list[i mod n], weights ignored. The
// bucket of destination address 10.0.0.n is (n * 177) mod 256 (see
// sh_test.go): .1 -> 177, .2 -> 98, .3 -> 19, .4 -> 196.
func TestDHSchedule(t *testing.T) {
	dsts := [4]string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"}
	tests := []struct {
		name string
		adds []string
		do   func(v *hashSvc)
		want [4]string
	}{
		// [A, B, C]: 177%3=0 A, 98%3=2 C, 19%3=1 B, 196%3=1 B.
		{"three", []string{"C:1", "B:1", "A:1"}, nil, [4]string{"A", "C", "B", "B"}},
		{"weights ignored", []string{"C:1", "B:9", "A:3"}, nil, [4]string{"A", "C", "B", "B"}},
		// [D, A, B, C]: 177%4=1 A, 98%4=2 B, 19%4=3 C, 196%4=0 D.
		{"add at head", []string{"C:1", "B:1", "A:1"}, func(v *hashSvc) { v.add("D:1") }, [4]string{"A", "B", "C", "D"}},
		// [A, C]: odd -> C, even -> A.
		{"remove", []string{"C:1", "B:1", "A:1"}, func(v *hashSvc) { v.del("B") }, [4]string{"C", "A", "C", "A"}},
		{"reweight", []string{"C:1", "B:1", "A:1"}, func(v *hashSvc) { v.edit("A", 7) }, [4]string{"A", "C", "B", "B"}},
		{"quiesce", []string{"C:1", "B:1", "A:1"}, func(v *hashSvc) { v.edit("B", 0) }, [4]string{"A", "C", "-", "-"}},
		{"overloaded", []string{"C:1", "B:1", "A:1"}, func(v *hashSvc) { v.dest("C").Overloaded = true }, [4]string{"A", "-", "B", "B"}},
		{"empty", nil, nil, [4]string{"-", "-", "-", "-"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := hashNew(t, "dh", Config{}, tt.adds...)
			if tt.do != nil {
				tt.do(v)
			}
			for i, dst := range dsts {
				// The source does not matter, only the destination.
				for _, src := range []string{"10.9.9.9", "172.16.0.1"} {
					if got := v.pick(hashTCP(src, 1000, dst)); got != tt.want[i] {
						t.Errorf("%s -> %s: %s, want %s", src, dst, got, tt.want[i])
					}
				}
			}
		})
	}
}
