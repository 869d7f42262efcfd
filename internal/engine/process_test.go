package engine

import (
	"errors"
	"testing"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/sched"
)

const (
	vip    = "192.0.2.1:80"
	client = "10.0.0.1:40000"
	rs1    = "10.1.0.1:80"
	rs2    = "10.1.0.2:80"
)

func TestNATLifecycleCounters(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(tcpSvc(vip, "rr"))
	h.addDest(k, rs1, ipvs.Masq, 1)
	steps := []struct {
		out   bool
		flags conn.TCPFlags
		state string
		c     counts
	}{
		{false, conn.SYN, "SYN_RECV", counts{0, 1, 0}},
		{true, conn.SYN | conn.ACK, "SYN_RECV", counts{0, 1, 0}},
		{false, conn.ACK, "ESTABLISHED", counts{1, 0, 0}},
		{false, conn.ACK, "ESTABLISHED", counts{1, 0, 0}},
		{true, conn.ACK, "ESTABLISHED", counts{1, 0, 0}},
		{false, conn.FIN | conn.ACK, "CLOSE_WAIT", counts{0, 1, 0}},
		{true, conn.FIN | conn.ACK, "TIME_WAIT", counts{0, 1, 0}},
		{false, conn.ACK, "TIME_WAIT", counts{0, 1, 0}},
	}
	for i, s := range steps {
		var v Verdict
		if s.out {
			v = h.out(ipvs.ProtoTCP, rs1, client, s.flags)
		} else {
			v = h.in(ipvs.ProtoTCP, client, vip, s.flags)
		}
		if v.Action != Forward || v.State != s.state || v.New != (i == 0) {
			t.Fatalf("step %d: %+v, want forward in %s", i, v, s.state)
		}
		if got := h.counts(k, rs1); got != s.c {
			t.Fatalf("step %d: counts %+v, want %+v", i, got, s.c)
		}
	}
	st := h.svc(k).Stats
	if st.Conns != 1 || st.InPkts != 5 || st.OutPkts != 3 || st.InBytes != 300 || st.OutBytes != 300 {
		t.Fatalf("stats %+v", st)
	}
	cs := h.e.Conns(h.now)
	if len(cs) != 1 || cs[0].State != "TIME_WAIT" || cs[0].Expires != 120*time.Second || cs[0].Client != ap(client) ||
		cs[0].Dest != ap(rs1) || cs[0].Virtual != ap(vip) || cs[0].InPkts != 5 || cs[0].OutPkts != 3 {
		t.Fatalf("-Lc %+v", cs)
	}
	h.advance(119 * time.Second)
	if h.e.ConnCount() != 1 {
		t.Fatal("expired early")
	}
	h.advance(time.Second)
	if h.e.ConnCount() != 0 || h.counts(k, rs1) != (counts{}) {
		t.Fatalf("after TIME_WAIT: %d conns, %+v", h.e.ConnCount(), h.counts(k, rs1))
	}
}

func TestDRInputOnly(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(tcpSvc(vip, "rr"))
	h.addDest(k, rs1, ipvs.Route, 1)
	for i, s := range []struct {
		flags conn.TCPFlags
		state string
		c     counts
	}{
		{conn.SYN, "SYN_RECV", counts{0, 1, 0}},
		{conn.ACK, "ESTABLISHED", counts{1, 0, 0}},
		{conn.ACK, "ESTABLISHED", counts{1, 0, 0}},
		{conn.FIN | conn.ACK, "FIN_WAIT", counts{0, 1, 0}},
		{conn.ACK, "FIN_WAIT", counts{0, 1, 0}},
	} {
		v := h.in(ipvs.ProtoTCP, client, vip, s.flags)
		if v.State != s.state || v.Fwd != ipvs.Route || v.Dest != ap(rs1) {
			t.Fatalf("step %d: %+v", i, v)
		}
		if got := h.counts(k, rs1); got != s.c {
			t.Fatalf("step %d: %+v", i, got)
		}
	}
	// DR replies never pass the director: a DirOut packet is not ours.
	if v := h.out(ipvs.ProtoTCP, rs1, client, conn.ACK); v.Action != Pass {
		t.Fatalf("DR reply: %s", v.Action)
	}
	// FIN_WAIT uses the tcpfin timeout.
	h.e.SetTimeouts(conn.Timeouts{TCPFin: 30 * time.Second})
	h.in(ipvs.ProtoTCP, client, vip, conn.ACK)
	h.advance(30 * time.Second)
	if h.e.ConnCount() != 0 {
		t.Fatal("FIN_WAIT did not take --set tcpfin")
	}
}

func TestTCPSchedulingRules(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(tcpSvc(vip, "rr"))
	h.addDest(k, rs1, ipvs.Masq, 1)
	if v := h.in(ipvs.ProtoTCP, client, "192.0.2.9:80", conn.SYN); v.Action != Pass {
		t.Fatalf("no service: %s", v.Action)
	}
	if v := h.in(ipvs.ProtoTCP, client, "192.0.2.1:81", conn.SYN); v.Action != Pass {
		t.Fatalf("other port: %s", v.Action)
	}
	for _, f := range []conn.TCPFlags{conn.ACK, conn.FIN | conn.ACK, conn.RST, conn.SYN | conn.RST, 0} {
		v := h.in(ipvs.ProtoTCP, client, vip, f)
		if v.Action != Drop || v.Service != k {
			t.Fatalf("flags %#x for no connection: %+v", f, v)
		}
	}
	if h.e.ConnCount() != 0 {
		t.Fatal("non-SYN created a connection")
	}
	if v := h.in(ipvs.ProtoTCP, client, vip, conn.SYN|conn.ACK); v.Action != Forward || !v.New {
		t.Fatalf("SYN+ACK schedules like the kernel: %+v", v)
	}
	if v := h.out(ipvs.ProtoTCP, rs1, "10.0.0.99:1", conn.ACK); v.Action != Pass {
		t.Fatalf("reply of no connection: %s", v.Action)
	}
	if v := h.in(ipvs.Protocol(1), client, vip, 0); v.Action != Pass {
		t.Fatalf("ICMP: %s", v.Action)
	}
}

func TestNoDestination(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(tcpSvc(vip, "wlc"))
	v, err := h.e.Process(h.now, Packet{Proto: ipvs.ProtoTCP, Src: ap(client), Dst: ap(vip), Flags: conn.SYN})
	if v.Action != Drop || !errors.Is(err, sched.ErrNoDestination) {
		t.Fatalf("empty service: %+v %v", v, err)
	}
	h.addDest(k, rs1, ipvs.Masq, 0)
	v, err = h.e.Process(h.now, Packet{Proto: ipvs.ProtoTCP, Src: ap(client), Dst: ap(vip), Flags: conn.SYN})
	if v.Action != Drop || !errors.Is(err, sched.ErrNoDestination) {
		t.Fatalf("quiescent only: %+v %v", v, err)
	}
	t.Log(err)
}

func TestQuiesceKeepsConnections(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(tcpSvc(vip, "rr"))
	h.addDest(k, rs1, ipvs.Route, 1)
	h.in(ipvs.ProtoTCP, client, vip, conn.SYN)
	h.in(ipvs.ProtoTCP, client, vip, conn.ACK)
	h.addDest(k, rs2, ipvs.Route, 1)
	if err := h.e.EditDest(k, ipvs.Destination{Addr: addr("10.1.0.1"), Port: 80, Fwd: ipvs.Route, Weight: 0}); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if v := h.in(ipvs.ProtoTCP, "10.0.0.2:"+itoa(1000+i), vip, conn.SYN); v.Dest != ap(rs2) {
			t.Fatalf("new connection to quiescent destination: %s", v.Dest)
		}
	}
	if v := h.in(ipvs.ProtoTCP, client, vip, conn.ACK); v.Action != Forward || v.Dest != ap(rs1) {
		t.Fatalf("existing connection: %+v", v)
	}
	if got := h.counts(k, rs1); got != (counts{1, 0, 0}) {
		t.Fatalf("quiesced dest: %+v", got)
	}
	d, _ := h.dest(k, rs1)
	if d.Weight != 0 {
		t.Fatal("weight")
	}
}

func TestUDPConnection(t *testing.T) {
	h := newHarness(t, Options{Timeouts: conn.Timeouts{UDP: 60 * time.Second}})
	k := h.addService(udpSvc("192.0.2.1:53", "rr"))
	h.addDest(k, "10.1.0.1:53", ipvs.Masq, 1)
	h.addDest(k, "10.1.0.2:53", ipvs.Masq, 1)
	v := h.in(ipvs.ProtoUDP, client, "192.0.2.1:53", 0)
	if !v.New || v.State != "UDP" {
		t.Fatalf("%+v", v)
	}
	first := v.Dest
	h.advance(50 * time.Second)
	if v := h.in(ipvs.ProtoUDP, client, "192.0.2.1:53", 0); v.New || v.Dest != first {
		t.Fatalf("same flow rescheduled: %+v", v)
	}
	if v := h.out(ipvs.ProtoUDP, first.String(), client, 0); v.Action != Forward || v.Virtual != ap("192.0.2.1:53") {
		t.Fatalf("reply %+v", v)
	}
	if got := h.counts(k, first.String()); got != (counts{0, 1, 0}) {
		t.Fatalf("UDP counts as inactive: %+v", got)
	}
	h.advance(59 * time.Second)
	if h.e.ConnCount() != 1 {
		t.Fatal("refresh ignored")
	}
	h.advance(time.Second)
	if h.e.ConnCount() != 0 {
		t.Fatal("not expired after the UDP timeout")
	}
}

func TestOnePacketScheduling(t *testing.T) {
	h := newHarness(t, Options{})
	s := udpSvc("192.0.2.1:53", "rr")
	s.OnePacket = true
	k := h.addService(s)
	h.addDest(k, "10.1.0.1:53", ipvs.Masq, 1)
	h.addDest(k, "10.1.0.2:53", ipvs.Masq, 1)
	a := h.in(ipvs.ProtoUDP, client, "192.0.2.1:53", 0)
	b := h.in(ipvs.ProtoUDP, client, "192.0.2.1:53", 0)
	if !a.New || !b.New || a.Dest == b.Dest {
		t.Fatalf("datagrams of one flow not scheduled one by one: %+v %+v", a, b)
	}
	if h.e.ConnCount() != 0 {
		t.Fatal("a one-packet entry outlived its packet")
	}
	if st := h.svc(k).Stats; st.Conns != 2 || st.InPkts != 2 {
		t.Fatalf("stats %+v", st)
	}
	// One-packet applies to UDP only (a TCP fwmark service keeps entries).
	fw := ipvs.Service{ServiceKey: ipvs.FWMarkService(5, ipvs.IPv4), Scheduler: "rr", OnePacket: true}
	fk := h.addService(fw)
	h.addDest(fk, "10.1.0.1:0", ipvs.Route, 1)
	v, _ := h.e.Process(h.now, Packet{Proto: ipvs.ProtoTCP, Src: ap(client), Dst: ap("192.0.2.7:22"), FWMark: 5, Flags: conn.SYN})
	if v.Action != Forward || v.Dest != ap("10.1.0.1:22") || h.e.ConnCount() != 1 {
		t.Fatalf("fwmark TCP: %+v, %d entries", v, h.e.ConnCount())
	}
}

func TestConnReuseTimeWait(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(tcpSvc(vip, "rr"))
	h.addDest(k, rs1, ipvs.Masq, 1)
	h.addDest(k, rs2, ipvs.Masq, 1)
	first := h.in(ipvs.ProtoTCP, client, vip, conn.SYN).Dest
	h.out(ipvs.ProtoTCP, first.String(), client, conn.SYN|conn.ACK)
	h.in(ipvs.ProtoTCP, client, vip, conn.ACK)
	h.in(ipvs.ProtoTCP, client, vip, conn.FIN|conn.ACK)
	h.out(ipvs.ProtoTCP, first.String(), client, conn.FIN|conn.ACK)
	if v := h.in(ipvs.ProtoTCP, client, vip, conn.ACK); v.State != "TIME_WAIT" {
		t.Fatalf("%+v", v)
	}
	// Retransmitted SYN in SYN_RECV is not a new connection...
	// ...but a SYN for a TIME_WAIT entry is: rescheduled (rr moves on).
	v := h.in(ipvs.ProtoTCP, client, vip, conn.SYN)
	if !v.New || v.Dest == first || v.State != "SYN_RECV" {
		t.Fatalf("TIME_WAIT reuse: %+v (first %s)", v, first)
	}
	if h.e.ConnCount() != 1 {
		t.Fatalf("old entry kept: %d", h.e.ConnCount())
	}
	if v := h.in(ipvs.ProtoTCP, client, vip, conn.SYN); v.New {
		t.Fatal("retransmitted SYN rescheduled")
	}
}

func TestDestRemovalWithLiveConnections(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(tcpSvc(vip, "rr"))
	h.addDest(k, rs1, ipvs.Masq, 1)
	h.in(ipvs.ProtoTCP, client, vip, conn.SYN)
	h.in(ipvs.ProtoTCP, client, vip, conn.ACK)
	before := h.svc(k).Stats
	if err := h.e.DelDest(k, ipvs.DestKey{Addr: addr("10.1.0.1"), Port: 80}); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.dest(k, rs1); ok {
		t.Fatal("removed destination still listed")
	}
	// Without expire_nodest_conn the connection goes on, uncounted.
	if v := h.in(ipvs.ProtoTCP, client, vip, conn.ACK); v.Action != Forward || v.Dest != ap(rs1) {
		t.Fatalf("connection of removed dest: %+v", v)
	}
	if h.svc(k).Stats != before {
		t.Fatal("traffic of a removed destination counted")
	}
	// New connections find no destination.
	if v, err := h.e.Process(h.now, Packet{Proto: ipvs.ProtoTCP, Src: ap("10.0.0.2:1"), Dst: ap(vip), Flags: conn.SYN}); v.Action != Drop || err == nil {
		t.Fatalf("%+v %v", v, err)
	}
	// Re-adding revives it with its connection and counters.
	h.advance(time.Minute)
	h.addDest(k, rs1, ipvs.Masq, 2)
	d, ok := h.dest(k, rs1)
	if !ok || d.ActiveConns != 1 || d.Stats.Conns != 1 || d.Weight != 2 {
		t.Fatalf("revived %+v", d)
	}
}

func TestTrashFreedAfterIdle(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(tcpSvc(vip, "rr"))
	h.addDest(k, rs1, ipvs.Masq, 1)
	h.in(ipvs.ProtoTCP, client, vip, conn.SYN) // SYN_RECV: 60 s
	if err := h.e.DelDest(k, ipvs.DestKey{Addr: addr("10.1.0.1"), Port: 80}); err != nil {
		t.Fatal(err)
	}
	h.advance(60 * time.Second) // connection expires; dest idle from now
	if h.e.ConnCount() != 0 || len(h.e.trash) != 1 {
		t.Fatalf("conns %d trash %d", h.e.ConnCount(), len(h.e.trash))
	}
	h.advance(TrashPeriod - time.Second)
	if len(h.e.trash) != 1 {
		t.Fatal("freed early")
	}
	h.advance(time.Second)
	if len(h.e.trash) != 0 {
		t.Fatal("not freed after the trash period")
	}
	h.addDest(k, rs1, ipvs.Masq, 1)
	if d, _ := h.dest(k, rs1); d.Stats.Conns != 0 {
		t.Fatalf("a freed destination came back with counters: %+v", d.Stats)
	}
}

func TestRevivalIntoNewServiceZeroesStats(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(tcpSvc(vip, "rr"))
	h.addDest(k, rs1, ipvs.Masq, 1)
	h.in(ipvs.ProtoTCP, client, vip, conn.SYN)
	if err := h.e.DelService(k); err != nil {
		t.Fatal(err)
	}
	h.addService(tcpSvc(vip, "rr"))
	h.addDest(k, rs1, ipvs.Masq, 1)
	d, _ := h.dest(k, rs1)
	if d.InactConns != 1 || d.Stats.Conns != 0 {
		t.Fatalf("revived into a new service: %+v", d)
	}
	// The old connection is forwarded and counted again.
	if v := h.in(ipvs.ProtoTCP, client, vip, conn.ACK); v.Action != Forward || v.New {
		t.Fatalf("%+v", v)
	}
	if d, _ := h.dest(k, rs1); d.ActiveConns != 1 || d.Stats.InPkts != 1 {
		t.Fatalf("%+v", d)
	}
}

func TestExpireNodestConn(t *testing.T) {
	h := newHarness(t, Options{ExpireNodestConn: true})
	k := h.addService(tcpSvc(vip, "rr"))
	h.addDest(k, rs1, ipvs.Masq, 1)
	h.in(ipvs.ProtoTCP, client, vip, conn.SYN)
	h.in(ipvs.ProtoTCP, "10.0.0.2:1", vip, conn.SYN)
	h.addDest(k, rs2, ipvs.Masq, 1)
	if err := h.e.DelDest(k, ipvs.DestKey{Addr: addr("10.1.0.1"), Port: 80}); err != nil {
		t.Fatal(err)
	}
	// The next packet of a connection to the removed dest drops it: a
	// non-SYN is dropped, a SYN goes to a live destination.
	if v := h.in(ipvs.ProtoTCP, client, vip, conn.ACK); v.Action != Drop {
		t.Fatalf("packet of a removed destination's connection: %+v", v)
	}
	if h.e.ConnCount() != 1 {
		t.Fatalf("entries %d", h.e.ConnCount())
	}
	// Expire flushes the rest.
	h.advance(time.Second)
	if h.e.ConnCount() != 0 {
		t.Fatalf("flush left %d", h.e.ConnCount())
	}
	if v := h.in(ipvs.ProtoTCP, "10.0.0.2:1", vip, conn.SYN); !v.New || v.Dest != ap(rs2) {
		t.Fatalf("%+v", v)
	}
	// With expire_nodest_conn, a SYN reusing a connection to a weight-0
	// destination is rescheduled.
	h.in(ipvs.ProtoTCP, "10.0.0.3:1", vip, conn.SYN)
	h.addDest(k, rs1, ipvs.Masq, 1)
	if err := h.e.EditDest(k, ipvs.Destination{Addr: addr("10.1.0.2"), Port: 80, Fwd: ipvs.Masq}); err != nil {
		t.Fatal(err)
	}
	if v := h.in(ipvs.ProtoTCP, "10.0.0.3:1", vip, conn.SYN); !v.New || v.Dest != ap(rs1) {
		t.Fatalf("reuse with weight 0: %+v", v)
	}
}

func TestSetTimeoutsAppliesAtNextPacket(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(tcpSvc(vip, "rr"))
	h.addDest(k, rs1, ipvs.Route, 1)
	h.in(ipvs.ProtoTCP, client, vip, conn.SYN)
	h.in(ipvs.ProtoTCP, client, vip, conn.ACK)
	h.e.SetTimeouts(conn.Timeouts{TCP: 10 * time.Second})
	if cs := h.e.Conns(h.now); cs[0].Expires != 900*time.Second {
		t.Fatalf("changed before a packet: %v", cs[0].Expires)
	}
	h.in(ipvs.ProtoTCP, client, vip, conn.ACK)
	h.advance(10 * time.Second)
	if h.e.ConnCount() != 0 {
		t.Fatal("new ESTABLISHED timeout not applied")
	}
}

func TestEstimatorThroughEngine(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(tcpSvc(vip, "rr"))
	h.addDest(k, rs1, ipvs.Route, 1)
	h.e.Expire(h.now) // starts the estimator's clock
	for i := range 10 {
		h.in(ipvs.ProtoTCP, "10.0.0.1:"+itoa(2000+i), vip, conn.SYN)
	}
	h.advance(time.Second)
	if r := h.svc(k).Rates; r != (ipvs.Rates{}) {
		t.Fatalf("sampled early: %+v", r)
	}
	h.advance(time.Second)
	// 10 connections, 10 packets, 600 bytes in 2 s: scaled averages
	// 10<<9>>2 = 1280 -> (1280+511)>>10 = 1; bytes 600<<4>>2 = 2400 ->
	// (2400+15)>>5 = 75.
	want := ipvs.Rates{CPS: 1, InPPS: 1, InBPS: 75}
	if r := h.svc(k).Rates; r != want {
		t.Fatalf("service rates %+v, want %+v", r, want)
	}
	if d, _ := h.dest(k, rs1); d.Rates != want {
		t.Fatalf("dest rates %+v", d.Rates)
	}
	if err := h.e.Zero(nil); err != nil {
		t.Fatal(err)
	}
	if r := h.svc(k).Rates; r != (ipvs.Rates{}) {
		t.Fatalf("rates after -Z: %+v", r)
	}
}
