package ebpf

import (
	"testing"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

// TestLBGC checks the lblc garbage collection: entries survive the minute
// ticks and go at the first full check (every 30th tick) after they have
// been unused for the expiration time; removing the service removes them.
func TestLBGC(t *testing.T) {
	f := newFixture(t)
	svc := tcpService(vipv4, 80, "lblc")
	f.addService(svc, ipvs.Destination{Addr: rs1v4, Fwd: ipvs.Route, Weight: 1})
	in := frame(macClient, macCL0, false, ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoTCP, sport: 1, dport: 80, flags: conn.SYN}))
	if ret, _ := f.run(in, 0); ret != actRedirect {
		t.Fatalf("verdict %d, want redirect", ret)
	}
	count := func() int {
		c, err := f.tab.lbCounts()
		if err != nil {
			t.Fatal(err)
		}
		return c[f.tab.svcs[svc.ServiceKey].id]
	}
	if n := count(); n != 1 {
		t.Fatalf("%d lblc entries, want 1", n)
	}
	minute := uint64(time.Minute)
	now := monotonicNow()
	// 24 hours later, ticks a minute apart: the first starts the timer,
	// ticks 1..29 only count, the 30th is the full check.
	start := now + uint64(24*time.Hour)
	for k := range 30 {
		if err := f.tab.lbGC(start + uint64(k)*minute); err != nil {
			t.Fatal(err)
		}
		if n := count(); n != 1 {
			t.Fatalf("tick %d: %d entries, want 1 until the full check", k, n)
		}
	}
	if err := f.tab.lbGC(start + 30*minute); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Errorf("after the full check %d entries, want 0", n)
	}
	f.run(in[:], 0) // not a SYN of a new connection (the conn exists): no new entry
	in2 := frame(macClient, macCL0, false, ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoTCP, sport: 2, dport: 80, flags: conn.SYN}))
	f.run(in2, 0)
	if n := count(); n != 1 {
		t.Fatalf("%d entries after a new connection, want 1", n)
	}
	if err := f.tab.delService(svc.ServiceKey); err != nil {
		t.Fatal(err)
	}
	c, _ := f.tab.lbCounts()
	if len(c) != 0 {
		t.Errorf("entries left after the service was removed: %v", c)
	}
}
