package ebpf

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/netns"
)

// TestScaleServices configures 10,000 services (two destinations each)
// and one with 1,000, then checks that a SYN to the last of the 10,000
// and to the large one is scheduled, and that a service over the
// per-service cap is refused with the cap named.
func TestScaleServices(t *testing.T) {
	f := newFixture(t)
	vip := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}) }
	for i := range 10_000 {
		f.addService(tcpService(vip(i), 80, "wlc"),
			ipvs.Destination{Addr: rs1v4, Port: 80, Fwd: ipvs.Route, Weight: 1},
			ipvs.Destination{Addr: rs2v4, Port: 80, Fwd: ipvs.Route, Weight: 1})
	}
	big := tcpService(vipv4, 80, "wlc")
	f.addService(big)
	for i := range maxDests {
		if err := f.tab.addDest(big.ServiceKey, ipvs.Destination{Addr: diffRIP(i), Port: 80, Fwd: ipvs.Route, Weight: 1}); err != nil {
			t.Fatalf("destination %d: %v", i, err)
		}
	}
	err := f.tab.addDest(big.ServiceKey, ipvs.Destination{Addr: diffRIP(maxDests), Port: 80, Fwd: ipvs.Route, Weight: 1})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(maxDests)) {
		t.Fatalf("destination %d: err %v, want the cap of %d", maxDests+1, err, maxDests)
	}
	for _, v := range []netip.Addr{vip(9_999), vipv4} {
		f.run(frame(macClient, macCL0, false, ipPacket(t, cipv4, v, l4{proto: ipvs.ProtoTCP, sport: 4000, dport: 80, flags: conn.SYN})), 0)
		k := govsConnKey{Src: addrWords(cipv4), Dst: addrWords(v), Sport: htons(4000), Dport: htons(80), Proto: 6, Family: afInet}
		var c govsConn
		if err := f.objs.Conns.Lookup(k, &c); err != nil {
			t.Errorf("SYN to %s: no connection: %v", v, err)
		}
	}
	// Removing services gives their list ranges back for new ones.
	for i := range 10_000 {
		if err := f.tab.delService(tcpService(vip(i), 80, "wlc").ServiceKey); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10_000 {
		f.addService(tcpService(vip(i), 80, "rr"), ipvs.Destination{Addr: rs1v4, Port: 80, Fwd: ipvs.Route, Weight: 1})
	}
}

// TestNewRefusesOldPins pins a services map of another layout (the one
// before destination lists had ranges) where New adopts its maps: New
// must refuse it and say how to clear it.
func TestNewRefusesOldPins(t *testing.T) {
	netns.RequireRoot(t)
	pin := filepath.Join("/sys/fs/bpf", fmt.Sprintf("govs-oldpin-%d", os.Getpid()))
	if err := os.MkdirAll(pin, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pin) })
	old, err := ebpf.NewMap(&ebpf.MapSpec{Name: "services", Type: ebpf.Hash, KeySize: 28, ValueSize: 32, MaxEntries: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.Pin(filepath.Join(pin, "services")); err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{PinPath: pin}, slog.New(slog.DiscardHandler))
	if err == nil {
		d.Close()
		t.Fatal("New adopted a services map of the old layout")
	}
	if !strings.Contains(err.Error(), "govsd --ebpf-remove") {
		t.Fatalf("New: %v, want the advice to remove the pins", err)
	}
}
