package ebpf

import "testing"

func TestSlotAlloc(t *testing.T) {
	a := newSlotAlloc(64)
	x, _ := a.alloc(16)
	y, _ := a.alloc(16)
	z, _ := a.alloc(32)
	if x != 0 || y != 16 || z != 32 {
		t.Fatalf("alloc: %d %d %d, want 0 16 32", x, y, z)
	}
	if _, ok := a.alloc(1); ok {
		t.Fatal("alloc from a full array succeeded")
	}
	a.release(y, 16)
	if _, ok := a.alloc(32); ok {
		t.Fatal("alloc of 32 from 16 free succeeded")
	}
	a.release(x, 16)
	if off, ok := a.alloc(32); !ok || off != 0 {
		t.Fatalf("after merging: alloc(32) = %d, %v, want 0", off, ok)
	}
	a.release(0, 64)
	if len(a.free) != 1 || a.free[0] != (span{0, 64}) {
		t.Fatalf("free list %v, want one span of 64", a.free)
	}
	if !a.take(8, 8) || a.take(12, 8) {
		t.Fatal("take: a free range refused or a used one taken")
	}
	if got := []uint32{listCap(0), listCap(9), listCap(1000), listCap(5000)}; got[0] != 8 || got[1] != 16 || got[2] != 1024 || got[3] != 1024 {
		t.Fatalf("listCap: %v", got)
	}
}
