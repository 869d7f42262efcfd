package ebpf

import (
	"bytes"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

// TestFixtureNextHopCache checks the next-hop cache's life: the first
// packet to a destination fills its entry from the route lookup; while
// the generation stands, a changed neighbour is not seen (the cache is
// used); the watch started as New starts it bumps the generation when the
// neighbour changes, and the next packet goes to the new MAC; a routing
// rule beyond the defaults turns the cache off, removing it turns it on.
func TestFixtureNextHopCache(t *testing.T) {
	f := newFixture(t)
	svc := tcpService(vipv4, 80, "rr")
	f.addService(svc, ipvs.Destination{Addr: rs1v4, Port: 80, Fwd: ipvs.Route, Weight: 1})
	did := f.tab.svcs[svc.ServiceKey].dests[0].id
	port := uint16(5000)
	send := func() net.HardwareAddr {
		t.Helper()
		port++
		ret, out := f.run(frame(macClient, macCL0, false, ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoTCP, sport: port, dport: 80, flags: conn.SYN})), 0)
		if ret != actRedirect {
			t.Fatalf("SYN: verdict %d, want redirect", ret)
		}
		return net.HardwareAddr(out[:6])
	}
	setNeigh := func(mac net.HardwareAddr) {
		t.Helper()
		n := &netlink.Neigh{LinkIndex: f.rs0, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT, IP: rs1v4.AsSlice(), HardwareAddr: mac}
		if err := f.ns.Netlink().NeighSet(n); err != nil {
			t.Fatal(err)
		}
	}
	entry := func() govsNexthop {
		var nh govsNexthop
		if err := f.objs.Nexthop.Lookup(did, &nh); err != nil {
			t.Fatal(err)
		}
		return nh
	}

	if mac := send(); !bytes.Equal(mac, macRS1) {
		t.Fatalf("first packet to %s, want %s", mac, macRS1)
	}
	nh := entry()
	if nh.Seq == 0 || nh.Seq&1 != 0 || !bytes.Equal(nh.Dmac[:], macRS1) || int(nh.Ifindex) != f.rs0 || nh.Mtu != 1500 {
		t.Fatalf("entry after the first packet: %+v", nh)
	}
	// No watch yet: the cached MAC is used although the neighbour moved.
	setNeigh(macOther)
	if mac := send(); !bytes.Equal(mac, macRS1) {
		t.Fatalf("with the entry cached, sent to %s, want the cached %s", mac, macRS1)
	}

	var w *nhWatch
	f.ns.MustDo(func() error {
		var err error
		w, err = startNHWatch(f.objs.NhGen, slog.New(slog.DiscardHandler))
		return err
	})
	defer w.close()
	setNeigh(macRS2)
	deadline := time.Now().Add(200 * time.Millisecond) // well under NH_TTL_NS
	for !bytes.Equal(send(), macRS2) {
		if time.Now().After(deadline) {
			t.Fatalf("neighbour changed, still sent to the old MAC after 200 ms")
		}
		time.Sleep(5 * time.Millisecond)
	}

	rule := netlink.NewRule()
	rule.Src = &net.IPNet{IP: net.IPv4(192, 168, 1, 100), Mask: net.CIDRMask(32, 32)}
	rule.Table = 100
	rule.Priority = 100
	if err := f.ns.Netlink().RuleAdd(rule); err != nil {
		t.Fatal(err)
	}
	waitGen := func(off bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for {
			var g uint32
			if err := f.objs.NhGen.Lookup(uint32(0), &g); err != nil {
				t.Fatal(err)
			}
			if (g == nhGenOff) == off {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("nh_gen %#x, want the cache off=%v", g, off)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitGen(true)
	before := entry().Seq
	send()
	if entry().Seq != before {
		t.Fatal("cache off, but the entry was written")
	}
	if err := f.ns.Netlink().RuleDel(rule); err != nil {
		t.Fatal(err)
	}
	waitGen(false)
	if mac := send(); !bytes.Equal(mac, macRS2) {
		t.Fatalf("cache on again: sent to %s, want %s", mac, macRS2)
	}
}
