package engine

import (
	"testing"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

func persistSvc(vip string, timeout uint32, netmask uint8) ipvs.Service {
	s := tcpSvc(vip, "rr")
	s.Persistent, s.Timeout, s.Netmask = true, timeout, netmask
	return s
}

func (h *harness) templates() []conn.Info {
	var out []conn.Info
	for _, c := range h.e.Conns(h.now) {
		if c.Template {
			out = append(out, c)
		}
	}
	return out
}

func TestPersistenceSameClientSameDest(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(persistSvc(vip, 300, 0))
	h.addDest(k, rs1, ipvs.Route, 1)
	h.addDest(k, rs2, ipvs.Route, 1)
	first := h.in(ipvs.ProtoTCP, "10.0.0.1:1000", vip, conn.SYN).Dest
	for i := range 5 {
		if v := h.in(ipvs.ProtoTCP, "10.0.0.1:"+itoa(2000+i), vip, conn.SYN); v.Dest != first || !v.New {
			t.Fatalf("connection %d of the client went to %s, not %s", i, v.Dest, first)
		}
	}
	other := h.in(ipvs.ProtoTCP, "10.0.0.2:1000", vip, conn.SYN).Dest
	if other == first {
		t.Fatal("a second client was not scheduled (rr should move on)")
	}
	if got := h.counts(k, first.String()); got != (counts{0, 6, 1}) {
		t.Fatalf("counts %+v", got)
	}
	tpl := h.templates()
	if len(tpl) != 2 || tpl[0].State != "NONE" || tpl[0].Client.Port() != 0 || tpl[0].Virtual != ap(vip) || tpl[0].Expires != 300*time.Second {
		t.Fatalf("templates %+v", tpl)
	}
}

func TestPersistenceNetmask(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(persistSvc(vip, 300, 24))
	h.addDest(k, rs1, ipvs.Route, 1)
	h.addDest(k, rs2, ipvs.Route, 1)
	a := h.in(ipvs.ProtoTCP, "10.0.0.1:1000", vip, conn.SYN).Dest
	if b := h.in(ipvs.ProtoTCP, "10.0.0.200:1000", vip, conn.SYN).Dest; b != a {
		t.Fatalf("same /24 split: %s %s", a, b)
	}
	if c := h.in(ipvs.ProtoTCP, "10.0.1.1:1000", vip, conn.SYN).Dest; c == a {
		t.Fatal("another /24 shared the template")
	}
	tpl := h.templates()
	if len(tpl) != 2 || tpl[0].Client.Addr() != addr("10.0.0.0") {
		t.Fatalf("templates %+v", tpl)
	}
}

func TestPersistenceFWMarkAcrossPorts(t *testing.T) {
	h := newHarness(t, Options{})
	s := ipvs.Service{ServiceKey: ipvs.FWMarkService(7, ipvs.IPv4), Scheduler: "rr", Persistent: true, Timeout: 600}
	k := h.addService(s)
	h.addDest(k, "10.1.0.1:0", ipvs.Route, 1)
	h.addDest(k, "10.1.0.2:0", ipvs.Route, 1)
	send := func(proto ipvs.Protocol, src, dst string, flags conn.TCPFlags) Verdict {
		t.Helper()
		v, err := h.e.Process(h.now, Packet{Proto: proto, Src: ap(src), Dst: ap(dst), FWMark: 7, Flags: flags, Len: 60})
		if err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, h.e)
		return v
	}
	a := send(ipvs.ProtoTCP, "10.0.0.1:1000", "192.0.2.1:80", conn.SYN)
	b := send(ipvs.ProtoTCP, "10.0.0.1:1001", "192.0.2.1:443", conn.SYN)
	c := send(ipvs.ProtoUDP, "10.0.0.1:1002", "192.0.2.2:53", 0)
	if a.Dest.Addr() != b.Dest.Addr() || b.Dest.Addr() != c.Dest.Addr() {
		t.Fatalf("fwmark persistence split: %s %s %s", a.Dest, b.Dest, c.Dest)
	}
	// The connection keeps the port the client used.
	if a.Dest.Port() != 80 || b.Dest.Port() != 443 || c.Dest.Port() != 53 || a.Service != k {
		t.Fatalf("ports %s %s %s", a.Dest, b.Dest, c.Dest)
	}
	tpl := h.templates()
	if len(tpl) != 1 || tpl[0].Proto != ipvs.ProtoNone || tpl[0].FWMark != 7 || tpl[0].Virtual != ap("0.0.0.7:0") {
		t.Fatalf("one IP template per client and mark: %+v", tpl)
	}
	if got := h.counts(k, "10.1.0.1:0"); got.persist+h.counts(k, "10.1.0.2:0").persist != 1 {
		t.Fatal("PersistConn")
	}
}

func TestPersistencePortZeroService(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(persistSvc("192.0.2.1:0", 300, 0))
	h.addDest(k, "10.1.0.1:0", ipvs.Route, 1)
	h.addDest(k, "10.1.0.2:0", ipvs.Route, 1)
	a := h.in(ipvs.ProtoTCP, "10.0.0.1:1000", "192.0.2.1:22", conn.SYN)
	b := h.in(ipvs.ProtoTCP, "10.0.0.1:1001", "192.0.2.1:8080", conn.SYN)
	if a.Action != Forward || a.Dest.Addr() != b.Dest.Addr() || a.Dest.Port() != 22 || b.Dest.Port() != 8080 {
		t.Fatalf("port-zero persistence: %+v %+v", a, b)
	}
	if len(h.templates()) != 1 {
		t.Fatal("one template per client for all ports")
	}
}

func TestTemplateOutlivesConnections(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(persistSvc(vip, 300, 0))
	h.addDest(k, rs1, ipvs.Route, 1)
	h.addDest(k, rs2, ipvs.Route, 1)
	first := h.in(ipvs.ProtoTCP, "10.0.0.1:1000", vip, conn.SYN).Dest
	h.in(ipvs.ProtoTCP, "10.0.0.1:1000", vip, conn.ACK)
	// (A RST in SYN_RECV leaves the state as it is, by the kernel's table.)
	h.in(ipvs.ProtoTCP, "10.0.0.1:1000", vip, conn.RST) // CLOSE: 10 s
	h.advance(10 * time.Second)
	if h.e.ConnCount() != 1 || len(h.templates()) != 1 {
		t.Fatalf("after the connection: %d entries", h.e.ConnCount())
	}
	if got := h.counts(k, first.String()); got != (counts{0, 0, 1}) {
		t.Fatalf("counts %+v", got)
	}
	// Still within the template's timeout: same destination, and the
	// template's timer restarts.
	h.advance(200 * time.Second)
	if v := h.in(ipvs.ProtoTCP, "10.0.0.1:1001", vip, conn.SYN); v.Dest != first {
		t.Fatalf("went to %s", v.Dest)
	}
	if tpl := h.templates(); tpl[0].Expires != 300*time.Second {
		t.Fatalf("template not refreshed by a new connection: %v", tpl[0].Expires)
	}
	h.in(ipvs.ProtoTCP, "10.0.0.1:1001", vip, conn.ACK)
	h.in(ipvs.ProtoTCP, "10.0.0.1:1001", vip, conn.RST)
	h.advance(299 * time.Second)
	if len(h.templates()) != 1 {
		t.Fatal("template expired early")
	}
	h.advance(time.Second)
	if h.e.ConnCount() != 0 || h.counts(k, first.String()) != (counts{}) {
		t.Fatalf("template did not expire: %d, %+v", h.e.ConnCount(), h.counts(k, first.String()))
	}
}

func TestTemplateKeptWhileControlling(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(persistSvc(vip, 60, 0))
	h.addDest(k, rs1, ipvs.Route, 1)
	h.in(ipvs.ProtoTCP, client, vip, conn.SYN)
	h.in(ipvs.ProtoTCP, client, vip, conn.ACK) // ESTABLISHED: 900 s
	h.advance(400 * time.Second)
	if len(h.templates()) != 1 {
		t.Fatal("template expired while its connection lives")
	}
	h.advance(500 * time.Second) // the connection expires at 900 s
	if h.e.ConnCount() != 1 {
		t.Fatalf("%d entries", h.e.ConnCount())
	}
	h.advance(60 * time.Second)
	if h.e.ConnCount() != 0 {
		t.Fatal("template outlived its last connection by more than 60 s")
	}
}

func TestQuiescentTemplate(t *testing.T) {
	for _, eqt := range []bool{false, true} {
		h := newHarness(t, Options{ExpireQuiescentTemplate: eqt})
		k := h.addService(persistSvc(vip, 300, 0))
		h.addDest(k, rs1, ipvs.Route, 1)
		h.addDest(k, rs2, ipvs.Route, 1)
		first := h.in(ipvs.ProtoTCP, "10.0.0.1:1000", vip, conn.SYN).Dest
		if err := h.e.EditDest(k, ipvs.Destination{Addr: first.Addr(), Port: 80, Fwd: ipvs.Route, Weight: 0}); err != nil {
			t.Fatal(err)
		}
		v := h.in(ipvs.ProtoTCP, "10.0.0.1:1001", vip, conn.SYN)
		if eqt && v.Dest == first {
			t.Fatal("expire_quiescent_template: the client stayed on the quiescent destination")
		}
		if !eqt && v.Dest != first {
			t.Fatal("persistence must keep the client on a quiescent destination")
		}
		if eqt {
			// The old template is invalidated but lives while it controls
			// the first connection; the new one points to the other dest.
			if n := len(h.templates()); n != 2 {
				t.Fatalf("templates %d", n)
			}
		}
	}
}

func TestPersistentTemplateOfRemovedDest(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(persistSvc(vip, 300, 0))
	h.addDest(k, rs1, ipvs.Route, 1)
	h.addDest(k, rs2, ipvs.Route, 1)
	first := h.in(ipvs.ProtoTCP, "10.0.0.1:1000", vip, conn.SYN).Dest
	if err := h.e.DelDest(k, ipvs.DestKey{Addr: first.Addr(), Port: 80}); err != nil {
		t.Fatal(err)
	}
	if v := h.in(ipvs.ProtoTCP, "10.0.0.1:1001", vip, conn.SYN); v.Dest == first || v.Action != Forward {
		t.Fatalf("template of a removed destination used: %+v", v)
	}
}
