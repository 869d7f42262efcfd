package engine

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

func TestConfigErrors(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(tcpSvc("192.0.2.1:80", "rr"))
	h.addDest(k, "10.1.0.1:80", ipvs.Masq, 1)
	missing := ipvs.TCPService(ap("192.0.2.9:80"))
	rip := ipvs.Destination{Addr: addr("10.1.0.1"), Port: 80, Fwd: ipvs.Masq, Weight: 1}
	other := ipvs.Destination{Addr: addr("10.1.0.7"), Port: 80, Fwd: ipvs.Masq, Weight: 1}
	sctp := ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: ipvs.IPv4, Protocol: ipvs.ProtoSCTP, Addr: addr("192.0.2.1"), Port: 80}}
	tests := []struct {
		name string
		op   func() error
		want []error
	}{
		{"duplicate service", func() error { return h.e.AddService(tcpSvc("192.0.2.1:80", "wlc")) }, []error{ipvs.ErrServiceExists}},
		{"unknown scheduler", func() error { return h.e.AddService(tcpSvc("192.0.2.2:80", "nosuch")) }, []error{ipvs.ErrNoScheduler}},
		{"sip persistence engine", func() error {
			s := tcpSvc("192.0.2.2:80", "rr")
			s.Persistent, s.PE = true, "sip"
			return h.e.AddService(s)
		}, []error{ipvs.ErrNoScheduler}},
		{"sctp", func() error { return h.e.AddService(sctp) }, []error{conn.ErrUnsupportedProtocol, ipvs.ErrInvalid}},
		{"port zero without persistence", func() error { return h.e.AddService(tcpSvc("192.0.2.2:0", "rr")) }, []error{ipvs.ErrInvalid}},
		{"edit missing service", func() error { return h.e.EditService(tcpSvc("192.0.2.9:80", "rr")) }, []error{ipvs.ErrNoService}},
		{"edit to unknown scheduler", func() error { return h.e.EditService(tcpSvc("192.0.2.1:80", "nosuch")) }, []error{ipvs.ErrNoScheduler}},
		{"delete missing service", func() error { return h.e.DelService(missing) }, []error{ipvs.ErrNoService}},
		{"add dest to missing service", func() error { return h.e.AddDest(missing, rip) }, []error{ipvs.ErrNoService}},
		{"duplicate dest", func() error { return h.e.AddDest(k, rip) }, []error{ipvs.ErrDestExists}},
		{"negative weight", func() error {
			d := other
			d.Weight = -1
			return h.e.AddDest(k, d)
		}, []error{ipvs.ErrInvalid}},
		{"edit missing dest", func() error { return h.e.EditDest(k, other) }, []error{ipvs.ErrNoDest}},
		{"edit dest of missing service", func() error { return h.e.EditDest(missing, rip) }, []error{ipvs.ErrNoService}},
		{"delete missing dest", func() error { return h.e.DelDest(k, other.Key()) }, []error{ipvs.ErrNoDest}},
		{"delete dest of missing service", func() error { return h.e.DelDest(missing, rip.Key()) }, []error{ipvs.ErrNoService}},
		{"zero missing service", func() error { return h.e.Zero(&missing) }, []error{ipvs.ErrNoService}},
		{"list missing service", func() error { _, err := h.e.Service(h.now, missing); return err }, []error{ipvs.ErrNoService}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("%v: not %v", err, w)
				}
			}
		})
	}
	// The failed operations changed nothing.
	if s := h.e.Services(h.now); len(s) != 1 || len(s[0].Dests) != 1 || s[0].Scheduler != "rr" {
		t.Fatalf("table changed: %+v", s)
	}
}

func TestServicesSortedAndDefaults(t *testing.T) {
	h := newHarness(t, Options{})
	h.addService(ipvs.Service{ServiceKey: ipvs.FWMarkService(2, ipvs.IPv4)})
	h.addService(tcpSvc("192.0.2.2:80", ""))
	h.addService(udpSvc("192.0.2.1:53", "rr"))
	h.addService(tcpSvc("192.0.2.1:443", "rr"))
	h.addService(tcpSvc("192.0.2.1:80", "rr"))
	h.addService(tcpSvc("[2001:db8::1]:80", "rr"))
	h.addService(ipvs.Service{ServiceKey: ipvs.FWMarkService(1, ipvs.IPv6)})
	var got []string
	for _, s := range h.e.Services(h.now) {
		got = append(got, s.ServiceKey.String())
	}
	want := []string{
		"tcp 192.0.2.1:80", "tcp 192.0.2.1:443", "tcp 192.0.2.2:80", "udp 192.0.2.1:53",
		"tcp [2001:db8::1]:80", "fwmark 1 (ipv6)", "fwmark 2",
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
	s := h.svc(ipvs.TCPService(ap("192.0.2.2:80")))
	if s.Scheduler != "wlc" || s.Netmask != 32 {
		t.Fatalf("defaults not applied: %+v", s.Service)
	}
}

func TestDestinationsNewestFirst(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(tcpSvc("192.0.2.1:80", "rr"))
	for _, rip := range []string{"10.1.0.2:80", "10.1.0.1:80", "10.1.0.3:80"} {
		h.addDest(k, rip, ipvs.Route, 1)
	}
	var got []string
	for _, d := range h.svc(k).Dests {
		got = append(got, d.AddrPort().String())
	}
	if want := "[10.1.0.3:80 10.1.0.1:80 10.1.0.2:80]"; fmtSlice(got) != want {
		t.Fatalf("list %v, want %s", got, want)
	}
	// rr picks in list order, newest first.
	for i, want := range []string{"10.1.0.3:80", "10.1.0.1:80", "10.1.0.2:80", "10.1.0.3:80"} {
		v := h.in(ipvs.ProtoTCP, "10.0.0.1:"+itoa(1000+i), "192.0.2.1:80", conn.SYN)
		if v.Dest.String() != want {
			t.Fatalf("pick %d: %s, want %s", i, v.Dest, want)
		}
	}
}

func TestDestPortNormalized(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(tcpSvc("192.0.2.1:80", "rr"))
	// A DR destination cannot map ports: ipvsadm gives it the service's.
	if err := h.e.AddDest(k, ipvs.Destination{Addr: addr("10.1.0.1"), Fwd: ipvs.Route, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.dest(k, "10.1.0.1:80"); !ok {
		t.Fatal("port not normalized")
	}
	if err := h.e.AddDest(k, ipvs.Destination{Addr: addr("10.1.0.2"), Port: 8080, Fwd: ipvs.Masq, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	v := h.in(ipvs.ProtoTCP, "10.0.0.1:1000", "192.0.2.1:80", conn.SYN)
	if v.Dest != ap("10.1.0.2:8080") || v.Fwd != ipvs.Masq || v.Virtual != ap("192.0.2.1:80") || !v.New {
		t.Fatalf("verdict %+v", v)
	}
}

func TestEditServiceScheduler(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(tcpSvc("192.0.2.1:80", "rr"))
	h.addDest(k, "10.1.0.1:80", ipvs.Route, 1)
	h.addDest(k, "10.1.0.2:80", ipvs.Route, 3)
	first := h.in(ipvs.ProtoTCP, "10.0.0.1:1000", "192.0.2.1:80", conn.SYN).Dest
	// Same scheduler: state kept, the next pick moves on.
	s := tcpSvc("192.0.2.1:80", "rr")
	if err := h.e.EditService(s); err != nil {
		t.Fatal(err)
	}
	if v := h.in(ipvs.ProtoTCP, "10.0.0.1:1001", "192.0.2.1:80", conn.SYN); v.Dest == first {
		t.Fatalf("rr restarted after an edit that kept it: %s twice", first)
	}
	// New scheduler over the current list: wrr picks the heaviest first.
	s.Scheduler = "wrr"
	if err := h.e.EditService(s); err != nil {
		t.Fatal(err)
	}
	if got := h.svc(k).Scheduler; got != "wrr" {
		t.Fatalf("scheduler %s", got)
	}
	if v := h.in(ipvs.ProtoTCP, "10.0.0.1:1002", "192.0.2.1:80", conn.SYN); v.Dest != ap("10.1.0.2:80") {
		t.Fatalf("wrr picked %s first", v.Dest)
	}
}

func TestFlushAndZero(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(tcpSvc("192.0.2.1:80", "rr"))
	k2 := h.addService(udpSvc("192.0.2.1:53", "rr"))
	h.addDest(k, "10.1.0.1:80", ipvs.Masq, 1)
	h.addDest(k2, "10.1.0.1:53", ipvs.Masq, 1)
	h.in(ipvs.ProtoTCP, "10.0.0.1:1000", "192.0.2.1:80", conn.SYN)
	h.in(ipvs.ProtoUDP, "10.0.0.1:1000", "192.0.2.1:53", 0)
	if err := h.e.Zero(&k); err != nil {
		t.Fatal(err)
	}
	if st := h.svc(k).Stats; st != (ipvs.Counters{}) {
		t.Fatalf("zeroed service: %+v", st)
	}
	if d, _ := h.dest(k, "10.1.0.1:80"); d.Stats != (ipvs.Counters{}) || d.InactConns != 1 {
		t.Fatalf("zeroed dest: %+v (connection counts are not traffic counters)", d)
	}
	if st := h.svc(k2).Stats; st.Conns != 1 || st.InPkts != 1 || st.InBytes != 60 {
		t.Fatalf("other service zeroed too: %+v", st)
	}
	if err := h.e.Zero(nil); err != nil {
		t.Fatal(err)
	}
	if st := h.svc(k2).Stats; st != (ipvs.Counters{}) {
		t.Fatalf("zero all: %+v", st)
	}
	h.e.Flush()
	if len(h.e.Services(h.now)) != 0 {
		t.Fatal("Flush left services")
	}
	// Connections of flushed services live on, towards trashed dests.
	if h.e.ConnCount() != 2 {
		t.Fatalf("ConnCount %d", h.e.ConnCount())
	}
	if v := h.in(ipvs.ProtoTCP, "10.0.0.1:1000", "192.0.2.1:80", conn.ACK); v.Action != Forward {
		t.Fatalf("connection of a flushed service: %s", v.Action)
	}
}

func TestTimeouts(t *testing.T) {
	h := newHarness(t, Options{Timeouts: conn.Timeouts{UDP: 10e9}})
	if got := h.e.Timeouts(); got != (conn.Timeouts{TCP: 900e9, TCPFin: 120e9, UDP: 10e9}) {
		t.Fatalf("initial %+v", got)
	}
	h.e.SetTimeouts(conn.Timeouts{TCP: 60e9})
	if got := h.e.Timeouts(); got != (conn.Timeouts{TCP: 60e9, TCPFin: 120e9, UDP: 10e9}) {
		t.Fatalf("after --set %+v", got)
	}
}

func fmtSlice(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}

// TestConcurrentUse runs packets, snapshots, expiry and configuration
// changes from several goroutines (for the race detector).
func TestConcurrentUse(t *testing.T) {
	e := New(Options{})
	k := ipvs.TCPService(ap("192.0.2.1:80"))
	if err := e.AddService(ipvs.Service{ServiceKey: k, Scheduler: "wlc"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			now := t0
			for i := range 500 {
				now = now.Add(10 * time.Millisecond)
				src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(g), byte(i)}), uint16(1000+i))
				switch i % 50 {
				case 0:
					e.AddDest(k, ipvs.Destination{Addr: addr("10.1.0.1"), Port: 80, Fwd: ipvs.Masq, Weight: 1})
				case 25:
					e.DelDest(k, ipvs.DestKey{Addr: addr("10.1.0.1"), Port: 80})
				case 10:
					e.Services(now)
					e.Conns(now)
				case 20:
					e.Expire(now)
				}
				e.Process(now, Packet{Proto: ipvs.ProtoTCP, Src: src, Dst: ap("192.0.2.1:80"), Flags: conn.SYN})
			}
		}()
	}
	wg.Wait()
	checkInvariants(t, e)
}
