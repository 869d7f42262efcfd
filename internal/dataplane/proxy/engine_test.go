package proxy

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/ipvs"
)

// lvs is a director as govsd wires it: one engine, the proxy on it, and
// every change applied to the engine first, then mirrored into the proxy
// (what package director does).
type lvs struct {
	t   testing.TB
	eng *engine.Engine
	p   *Proxy
	svc ipvs.Service
}

func newLVS(t testing.TB, svc ipvs.Service, opts ...Option) *lvs {
	t.Helper()
	eng := engine.New(engine.Options{})
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := New(eng, log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	svc.SetDefaults()
	if err := p.CheckService(svc); err != nil {
		t.Fatal(err)
	}
	if err := eng.AddService(svc); err != nil {
		t.Fatal(err)
	}
	if err := p.AddService(svc); err != nil {
		t.Fatal(err)
	}
	return &lvs{t: t, eng: eng, p: p, svc: svc}
}

// testWriter sends the proxy's log to the test's.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

func (l *lvs) addDest(addr netip.AddrPort, weight int32) {
	l.t.Helper()
	l.add(ipvs.Destination{Addr: addr.Addr(), Port: addr.Port(), Fwd: ipvs.Masq, Weight: weight})
}

// add adds d as the director does: the data plane's check, the engine,
// then the data plane.
func (l *lvs) add(d ipvs.Destination) {
	l.t.Helper()
	if err := l.p.CheckDest(l.svc, d); err != nil {
		l.t.Fatal(err)
	}
	if err := l.eng.AddDest(l.svc.ServiceKey, d); err != nil {
		l.t.Fatal(err)
	}
	if err := l.p.AddDest(l.svc.ServiceKey, d); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lvs) editDest(addr netip.AddrPort, weight int32) {
	l.t.Helper()
	l.edit(ipvs.Destination{Addr: addr.Addr(), Port: addr.Port(), Fwd: ipvs.Masq, Weight: weight})
}

// edit changes a destination as the director does: engine, then data
// plane.
func (l *lvs) edit(d ipvs.Destination) {
	l.t.Helper()
	if err := l.eng.EditDest(l.svc.ServiceKey, d); err != nil {
		l.t.Fatal(err)
	}
	if err := l.p.EditDest(l.svc.ServiceKey, d); err != nil {
		l.t.Fatal(err)
	}
}

// state returns the service's state as the data plane reports it.
func (l *lvs) state() ipvs.ServiceState {
	l.t.Helper()
	ss, err := l.p.Services()
	if err != nil {
		l.t.Fatal(err)
	}
	for _, s := range ss {
		if s.ServiceKey == l.svc.ServiceKey {
			return s
		}
	}
	l.t.Fatalf("service %s not listed", l.svc.ServiceKey)
	return ipvs.ServiceState{}
}

// counts returns ActiveConn and InActConn of the destination at addr.
func (l *lvs) counts(addr netip.AddrPort) (active, inact uint32) {
	for _, d := range l.state().Dests {
		if d.AddrPort() == addr {
			return d.ActiveConns, d.InactConns
		}
	}
	l.t.Fatalf("destination %s not listed", addr)
	return 0, 0
}

func tcpSvc(t testing.TB, sched string) ipvs.Service {
	return ipvs.Service{ServiceKey: ipvs.TCPService(freePort(t, "tcp")), Scheduler: sched}
}

func (l *lvs) vip() netip.AddrPort { return netip.AddrPortFrom(l.svc.Addr, l.svc.Port) }

// TestEngineWRROrder: sequential connections land on the realservers in
// the order of the kernel's wrr for a service built by -a A:4, B:3, C:2
// (destinations newest first; see sched's TestWRRSequences).
func TestEngineWRROrder(t *testing.T) {
	l := newLVS(t, tcpSvc(t, "wrr"))
	for _, rs := range []struct {
		name string
		w    int32
	}{{"A", 4}, {"B", 3}, {"C", 2}} {
		l.addDest(startBackend(t, rs.name, false).addr, rs.w)
	}
	var got []string
	for range 13 {
		got = append(got, roundTrip(t, l.vip(), "x"))
	}
	if want := "C B A A B A C B A C B A A"; strings.Join(got, " ") != want {
		t.Errorf("order = %s, want %s", strings.Join(got, " "), want)
	}
	st := l.state()
	if st.Stats.Conns != 13 {
		t.Errorf("service Conns = %d, want 13", st.Stats.Conns)
	}
}

// TestEnginePersistence: with -p every connection of a client goes to
// the realserver of its first.
func TestEnginePersistence(t *testing.T) {
	svc := tcpSvc(t, "rr")
	svc.Persistent = true
	svc.Timeout = 300
	l := newLVS(t, svc)
	l.addDest(startBackend(t, "rs1", false).addr, 1)
	l.addDest(startBackend(t, "rs2", false).addr, 1)
	first := roundTrip(t, l.vip(), "x")
	for i := range 5 {
		if got := roundTrip(t, l.vip(), "x"); got != first {
			t.Fatalf("connection %d went to %s, the client's first to %s", i+2, got, first)
		}
	}
}

// TestEngineQuiescent: weight 0 stops new connections to a realserver,
// while its existing connection keeps working.
func TestEngineQuiescent(t *testing.T) {
	l := newLVS(t, tcpSvc(t, "rr"))
	b1, b2 := startBackend(t, "rs1", false), startBackend(t, "rs2", false)
	l.addDest(b1.addr, 1)
	l.addDest(b2.addr, 1)
	long, r, name := dialVIP(t, l.vip())
	quiet := b1
	if name == "rs2" {
		quiet = b2
	}
	l.editDest(quiet.addr, 0)
	for range 4 {
		if got := roundTrip(t, l.vip(), "x"); got == quiet.name {
			t.Fatalf("new connection went to quiescent %s", got)
		}
	}
	io.WriteString(long, "still here")
	long.CloseWrite()
	if got, err := io.ReadAll(r); err != nil || string(got) != "still here" {
		t.Fatalf("existing connection to quiescent %s: %q, %v", quiet.name, got, err)
	}
}

// TestEngineCountersAndExpiry: a long connection is ActiveConn; closed,
// it is InActConn (TIME_WAIT); two minutes later it is gone. Traffic
// counters match what was sent.
func TestEngineCountersAndExpiry(t *testing.T) {
	l := newLVS(t, tcpSvc(t, "wlc"))
	b := startBackend(t, "rs1", false)
	l.addDest(b.addr, 1)

	c, r, _ := dialVIP(t, l.vip())
	eventually(t, "ActiveConn 1", func() bool { a, i := l.counts(b.addr); return a == 1 && i == 0 })
	conns, err := l.p.Conns()
	if err != nil || len(conns) != 1 || conns[0].State != "ESTABLISHED" || conns[0].Client != addrPort(c.LocalAddr()) {
		t.Fatalf("Conns = %+v, %v", conns, err)
	}

	msg := strings.Repeat("0123456789", 10000)
	io.WriteString(c, msg)
	c.CloseWrite()
	if got, err := io.ReadAll(r); err != nil || len(got) != len(msg) {
		t.Fatalf("echo: %d bytes, %v", len(got), err)
	}
	c.Close()
	eventually(t, "InActConn 1", func() bool { a, i := l.counts(b.addr); return a == 0 && i == 1 })
	conns, _ = l.p.Conns()
	if len(conns) != 1 || conns[0].State != "TIME_WAIT" {
		t.Fatalf("Conns after close = %+v", conns)
	}

	st := l.state().Stats
	t.Logf("stats after one connection, %d bytes each way: %+v", len(msg), st)
	greeting := len("rs1\n")
	if st.Conns != 1 || st.InPkts < 4 || st.OutPkts < 3 ||
		st.InBytes < uint64(len(msg)) || st.InBytes > uint64(len(msg))+4096 ||
		st.OutBytes < uint64(len(msg)+greeting) || st.OutBytes > uint64(len(msg)+greeting)+4096 {
		t.Errorf("stats = %+v for %d bytes each way", st, len(msg))
	}

	l.eng.Expire(time.Now().Add(121 * time.Second))
	if a, i := l.counts(b.addr); a != 0 || i != 0 {
		t.Errorf("after TIME_WAIT expiry: ActiveConn %d InActConn %d, want 0 0", a, i)
	}
	if conns, _ := l.p.Conns(); len(conns) != 0 {
		t.Errorf("Conns after expiry = %+v", conns)
	}
}

// TestEngineUDP: a round trip through the engine, the entry, and the
// flow's expiry with the UDP timeout.
func TestEngineUDP(t *testing.T) {
	l := newLVS(t, ipvs.Service{ServiceKey: ipvs.UDPService(freePort(t, "udp")), Scheduler: "rr"})
	b := startUDPBackend(t, "rs1", false)
	l.addDest(b.addr, 1)

	c, err := net.Dial("udp", l.vip().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	for range 2 {
		c.Write([]byte("ping"))
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != "rs1:ping" {
			t.Fatalf("reply %q, %v", buf[:n], err)
		}
	}
	if a, i := l.counts(b.addr); a != 0 || i != 1 {
		t.Errorf("UDP flow: ActiveConn %d InActConn %d, want 0 1", a, i)
	}
	st := l.state().Stats
	if st.Conns != 1 || st.InPkts != 2 || st.OutPkts != 2 || st.InBytes != 2*(20+8+4) || st.OutBytes != uint64(2*(20+8+len("rs1:ping"))) {
		t.Errorf("stats = %+v", st)
	}

	// ipvsadm --set 0 0 1: the flow's socket closes after a second
	// idle, and the engine's entry, re-armed by the next datagram as in
	// the kernel, expires by the same timeout.
	to := conn.Timeouts{UDP: time.Second}
	l.eng.SetTimeouts(to)
	l.p.SetTimeouts(to)
	c.Write([]byte("ping"))
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	u := l.p.udp[l.svc.ServiceKey]
	eventually(t, "flow expiry", func() bool {
		u.mu.Lock()
		defer u.mu.Unlock()
		return len(u.flows) == 0
	})
	l.eng.Expire(time.Now().Add(2 * time.Second))
	if conns, _ := l.p.Conns(); len(conns) != 0 {
		t.Errorf("Conns after expiry = %+v", conns)
	}
}

// TestEngineUDPOnePacket: with -o every datagram is scheduled on its own.
func TestEngineUDPOnePacket(t *testing.T) {
	svc := ipvs.Service{ServiceKey: ipvs.UDPService(freePort(t, "udp")), Scheduler: "rr", OnePacket: true}
	l := newLVS(t, svc)
	l.addDest(startUDPBackend(t, "rs1", false).addr, 1)
	l.addDest(startUDPBackend(t, "rs2", false).addr, 1)
	c, err := net.Dial("udp", l.vip().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	seen := map[string]int{}
	for range 4 {
		c.Write([]byte("q"))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		seen[string(buf[:n])]++
	}
	if seen["rs1:q"] != 2 || seen["rs2:q"] != 2 {
		t.Errorf("one-packet replies = %v, want 2 from each", seen)
	}
}

// TestEngineProxyProtocol: the realserver learns the client's address,
// by the version its Destination in the engine asks for.
func TestEngineProxyProtocol(t *testing.T) {
	for _, ver := range []uint8{ipvs.ProxyProtocolV1, ipvs.ProxyProtocolV2} {
		b := startBackend(t, "rs1", true)
		l := newLVS(t, tcpSvc(t, "rr"))
		l.add(ipvs.Destination{Addr: b.addr.Addr(), Port: b.addr.Port(), Fwd: ipvs.Masq, Weight: 1, ProxyProtocol: ver})
		c, _, _ := dialVIP(t, l.vip())
		hs, _ := b.seen()
		if want := (proxyInfo{ver: int(ver), src: addrPort(c.LocalAddr()), dst: l.vip()}); len(hs) != 1 || hs[0] != want {
			t.Errorf("v%d: backend saw %+v, want %+v", ver, hs, want)
		}
	}
}

// TestEngineProxyProtocolUDP: version 2 before every datagram of a flow.
func TestEngineProxyProtocolUDP(t *testing.T) {
	b := startUDPBackend(t, "rs1", true)
	l := newLVS(t, ipvs.Service{ServiceKey: ipvs.UDPService(freePort(t, "udp")), Scheduler: "rr"})
	l.add(ipvs.Destination{Addr: b.addr.Addr(), Port: b.addr.Port(), Fwd: ipvs.Masq, Weight: 1, ProxyProtocol: ipvs.ProxyProtocolV2})
	c, err := net.Dial("udp", l.vip().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	for i := range 2 {
		c.Write([]byte("q"))
		if n, err := c.Read(buf); err != nil || string(buf[:n]) != "rs1:q" {
			t.Fatalf("reply %d: %q, %v", i, buf[:n], err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	want := proxyInfo{ver: 2, src: addrPort(c.LocalAddr()), dst: l.vip()}
	if len(b.headers) != 2 || b.headers[0] != want || b.headers[1] != want {
		t.Errorf("backend saw %+v, want %+v twice", b.headers, want)
	}
}

// TestEngineProxyProtocolEdit: ipvsadm -e turns the header on and off for
// the next connection; a connection under way keeps what it started with.
func TestEngineProxyProtocolEdit(t *testing.T) {
	plain := startBackend(t, "rs1", false)
	l := newLVS(t, tcpSvc(t, "rr"))
	d := ipvs.Destination{Addr: plain.addr.Addr(), Port: plain.addr.Port(), Fwd: ipvs.Masq, Weight: 1}
	l.add(d)
	long, r, _ := dialVIP(t, l.vip())

	d.ProxyProtocol = ipvs.ProxyProtocolV2
	l.edit(d)
	// The connection opened before the edit got no header: the plain
	// backend echoes exactly what the client sends.
	io.WriteString(long, "before")
	long.CloseWrite()
	if got, err := io.ReadAll(r); err != nil || string(got) != "before" {
		t.Fatalf("connection from before the edit: %q, %v", got, err)
	}
	// A new connection gets the header, which the plain backend echoes
	// back in front of the greeting's echo.
	c, r2, _ := dialVIP(t, l.vip())
	c.CloseWrite()
	got, err := io.ReadAll(r2)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := parseProxyV2(got); err != nil || info.src != addrPort(c.LocalAddr()) || info.dst != l.vip() {
		t.Fatalf("connection after the edit: echo %q: %+v, %v", got, info, err)
	}

	d.ProxyProtocol = 0
	l.edit(d)
	if got := roundTrip(t, l.vip(), "after"); got != "rs1" {
		t.Fatalf("greeting %q", got)
	}
}

// TestEngineProxyProtocolV1UDPRefused: the engine's validation refuses
// version 1 for a UDP service before the proxy could be asked for it.
func TestEngineProxyProtocolV1UDPRefused(t *testing.T) {
	l := newLVS(t, ipvs.Service{ServiceKey: ipvs.UDPService(freePort(t, "udp")), Scheduler: "rr"})
	d := ipvs.Destination{Addr: loopback, Port: 53, Fwd: ipvs.Masq, Weight: 1, ProxyProtocol: ipvs.ProxyProtocolV1}
	err := l.eng.AddDest(l.svc.ServiceKey, d)
	if !errors.Is(err, ipvs.ErrInvalid) || !strings.Contains(err.Error(), "PROXY protocol version 1 is for TCP services only and has no UDP form: use version 2") {
		t.Fatalf("AddDest(UDP, v1) = %v", err)
	}
}

// TestEngineRouteRefused: the director asks CheckDest before the engine
// takes a Route destination, and shows the message.
func TestEngineRouteRefused(t *testing.T) {
	l := newLVS(t, tcpSvc(t, "rr"))
	d := ipvs.Destination{Addr: loopback, Port: l.svc.Port, Fwd: ipvs.Route, Weight: 1}
	err := l.p.CheckDest(l.svc, d)
	if err == nil || !strings.Contains(err.Error(), "uses Route (direct routing); the proxy data plane forwards only Masq (NAT)") {
		t.Fatalf("CheckDest(Route) = %v", err)
	}
}

// TestEngineNoDestination: with every realserver quiescent the client
// is refused at once, and an established connection outlives the
// service's deletion, as in the kernel.
func TestEngineNoDestination(t *testing.T) {
	l := newLVS(t, tcpSvc(t, "wlc"))
	b := startBackend(t, "rs1", false)
	l.addDest(b.addr, 1)
	long, r, _ := dialVIP(t, l.vip())
	l.editDest(b.addr, 0)
	if c, err := net.Dial("tcp", l.vip().String()); err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); err == nil || ok && ne.Timeout() {
			t.Fatalf("client of a service without destinations: %v", err)
		}
		c.Close()
	}

	if err := l.eng.DelService(l.svc.ServiceKey); err != nil {
		t.Fatal(err)
	}
	if err := l.p.DelService(l.svc.ServiceKey); err != nil {
		t.Fatal(err)
	}
	io.WriteString(long, "after")
	long.CloseWrite()
	if got, err := io.ReadAll(r); err != nil || string(got) != "after" {
		t.Fatalf("established connection after -D: %q, %v", got, err)
	}
}

func BenchmarkProxyTCPThroughput(b *testing.B) {
	l := newLVS(b, tcpSvc(b, "wlc"))
	l.addDest(startSink(b), 1)
	benchThroughput(b, l.vip())
}
