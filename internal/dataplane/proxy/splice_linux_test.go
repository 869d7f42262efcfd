package proxy

import (
	"io"
	"strings"
	"testing"

	"github.com/govs/govs/internal/ipvs"
)

// TestSpliceUsed checks that a connection's bytes went through the
// splice path: its pipes come back to the pool, empty, when it ends.
func TestSpliceUsed(t *testing.T) {
	b := startBackend(t, "rs1", false)
	p, vip := startFake(t, ipvs.ProtoTCP, newFakeEngine(b.addr))
	if n := len(p.pipes.free); n != 0 {
		t.Fatalf("%d pipes before any connection", n)
	}
	msg := strings.Repeat("x", 3<<20) // more than one pipe's worth
	c, r, _ := dialVIP(t, vip)
	go func() { io.WriteString(c, msg); c.CloseWrite() }()
	got, err := io.ReadAll(r)
	if err != nil || len(got) != len(msg) {
		t.Fatalf("echo %d bytes, %v", len(got), err)
	}
	eventually(t, "both pipes back in the pool", func() bool { return len(p.pipes.free) == 2 })
	pp := <-p.pipes.free
	defer pp.close()
	if pp.size < 64<<10 || pp.data != 0 {
		t.Errorf("pooled pipe size %d data %d", pp.size, pp.data)
	}
}
