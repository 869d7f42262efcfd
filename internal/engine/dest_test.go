package engine

import (
	"net/netip"
	"testing"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

// TestDest checks Dest against Service: the same Destination for every
// listed destination, edits seen at once, and nothing for a removed
// destination (even one still in the trash), another port, an unknown
// service, or after the service is deleted. IPv4-mapped addresses are
// unmapped as everywhere else.
func TestDest(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(tcpSvc("192.0.2.1:80", "wlc"))
	h.addDest(k, "10.1.0.1:80", ipvs.Masq, 1)
	if err := h.e.AddDest(k, ipvs.Destination{Addr: addr("10.1.0.2"), Port: 8080, Fwd: ipvs.Masq, Weight: 3, ProxyProtocol: ipvs.ProxyProtocolV2}); err != nil {
		t.Fatal(err)
	}
	for _, ds := range h.svc(k).Dests {
		got, ok := h.e.Dest(k, ds.Key())
		if !ok || got != ds.Destination {
			t.Fatalf("Dest(%s) = %+v, %v; Service lists %+v", ds.AddrPort(), got, ok, ds.Destination)
		}
	}
	dk := ipvs.DestKey{Addr: addr("10.1.0.2"), Port: 8080}
	mapped := ipvs.DestKey{Addr: netip.AddrFrom16(addr("10.1.0.2").As16()), Port: 8080}
	if got, ok := h.e.Dest(k, mapped); !ok || got.ProxyProtocol != ipvs.ProxyProtocolV2 {
		t.Fatalf("Dest(mapped) = %+v, %v", got, ok)
	}
	if err := h.e.EditDest(k, ipvs.Destination{Addr: dk.Addr, Port: 8080, Fwd: ipvs.Masq, Weight: 0, ProxyProtocol: ipvs.ProxyProtocolV1}); err != nil {
		t.Fatal(err)
	}
	if got, ok := h.e.Dest(k, dk); !ok || got.ProxyProtocol != ipvs.ProxyProtocolV1 || got.Weight != 0 {
		t.Fatalf("after edit: %+v, %v", got, ok)
	}
	for _, c := range []struct {
		name string
		k    ipvs.ServiceKey
		dk   ipvs.DestKey
	}{
		{"other port", k, ipvs.DestKey{Addr: dk.Addr, Port: 80}},
		{"unknown address", k, ipvs.DestKey{Addr: addr("10.9.9.9"), Port: 80}},
		{"unknown service", ipvs.TCPService(ap("192.0.2.9:80")), dk},
		{"other protocol", ipvs.UDPService(ap("192.0.2.1:80")), dk},
	} {
		if got, ok := h.e.Dest(c.k, c.dk); ok {
			t.Errorf("%s: Dest = %+v, true", c.name, got)
		}
	}
	// A connection keeps the removed destination in the trash; Dest no
	// longer lists it, as Service does not.
	h.in(ipvs.ProtoTCP, "10.0.0.1:1000", "192.0.2.1:80", conn.SYN)
	if err := h.e.DelDest(k, dk); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.e.Dest(k, dk); ok {
		t.Error("removed destination listed")
	}
	if _, ok := h.e.Dest(k, ipvs.DestKey{Addr: addr("10.1.0.1"), Port: 80}); !ok {
		t.Error("remaining destination not listed")
	}
	if err := h.e.DelService(k); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.e.Dest(k, ipvs.DestKey{Addr: addr("10.1.0.1"), Port: 80}); ok {
		t.Error("destination of a deleted service listed")
	}
}

// BenchmarkEngineDest is what a data plane pays per new connection to
// read one destination's configuration, with 16 destinations.
func BenchmarkEngineDest(b *testing.B) {
	e, k := benchEngine(b, "wlc", 16, 0)
	dk := ipvs.DestKey{Addr: netip.AddrFrom4([4]byte{10, 1, 0, 15}), Port: 80}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := e.Dest(k, dk); !ok {
			b.Fatal("not found")
		}
	}
	if n := testing.AllocsPerRun(100, func() { e.Dest(k, dk) }); n != 0 {
		b.Fatalf("%v allocs per Dest", n)
	}
}
