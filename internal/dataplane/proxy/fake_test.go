package proxy

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/ipvs"
)

// fakeEngine is a tiny engine for the proxy's own mechanics: round robin
// over dests, the kernel's TCP state table per connection, and a record
// of every packet. The end-to-end tests with the real engine are in
// engine_test.go.
type fakeEngine struct {
	mu       sync.Mutex
	dests    []netip.AddrPort
	fwd      ipvs.FwdMethod
	next     int
	timeouts conn.Timeouts
	conns    map[[2]netip.AddrPort]*fakeConn // by client, virtual
	pkts     []engine.Packet
	refuse   bool // answer Drop for everything but new connections
	norecord bool // keep no packets (benchmarks)
	// proxy is each destination's ProxyProtocol, which Service reports
	// as the real engine reports a destination's configuration.
	proxy map[netip.AddrPort]uint8
}

type fakeConn struct {
	client, vip, dest netip.AddrPort
	state             conn.State
}

func newFakeEngine(dests ...netip.AddrPort) *fakeEngine {
	return &fakeEngine{dests: dests, timeouts: conn.DefaultTimeouts, conns: make(map[[2]netip.AddrPort]*fakeConn)}
}

func (e *fakeEngine) Process(now time.Time, p engine.Packet) (engine.Verdict, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.norecord {
		e.pkts = append(e.pkts, p)
	}
	var c *fakeConn
	if p.Dir == conn.DirIn {
		c = e.conns[[2]netip.AddrPort{p.Src, p.Dst}]
	} else {
		for _, x := range e.conns {
			if x.dest == p.Src && x.client == p.Dst {
				c = x
			}
		}
	}
	if c == nil {
		if p.Dir != conn.DirIn || (p.Proto == ipvs.ProtoTCP && p.Flags&conn.SYN == 0) {
			return engine.Verdict{Action: engine.Drop}, nil
		}
		if len(e.dests) == 0 {
			return engine.Verdict{Action: engine.Drop}, nil
		}
		c = &fakeConn{client: p.Src, vip: p.Dst, dest: e.dests[e.next%len(e.dests)]}
		e.next++
		e.conns[[2]netip.AddrPort{p.Src, p.Dst}] = c
	} else if e.refuse {
		return engine.Verdict{Action: engine.Drop}, nil
	}
	if p.Proto == ipvs.ProtoTCP {
		t := conn.TableInput
		if p.Dir == conn.DirOut {
			t = conn.TableOutput
		}
		c.state = conn.NextTCPState(t, c.state, p.Flags)
	}
	return engine.Verdict{Action: engine.Forward, Dest: c.dest, Fwd: e.fwd, Virtual: c.vip, State: c.state.TCPString()}, nil
}

// Service lists every destination of the fake, with its ProxyProtocol,
// under whatever service is asked for.
func (e *fakeEngine) Service(_ time.Time, k ipvs.ServiceKey) (ipvs.ServiceState, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := ipvs.ServiceState{Service: ipvs.Service{ServiceKey: k}}
	for _, d := range e.dests {
		st.Dests = append(st.Dests, ipvs.DestState{Destination: ipvs.Destination{
			Addr: d.Addr(), Port: d.Port(), Fwd: e.fwd, Weight: 1, ProxyProtocol: e.proxy[d]}})
	}
	return st, nil
}

// Dest reports every destination of the fake, with its ProxyProtocol,
// under whatever service is asked for.
func (e *fakeEngine) Dest(_ ipvs.ServiceKey, dk ipvs.DestKey) (ipvs.Destination, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, d := range e.dests {
		if d.Addr() == dk.Addr && d.Port() == dk.Port {
			return ipvs.Destination{Addr: d.Addr(), Port: d.Port(), Fwd: e.fwd, Weight: 1, ProxyProtocol: e.proxy[d]}, true
		}
	}
	return ipvs.Destination{}, false
}

// setProxy sets the ProxyProtocol of the destination at d.
func (e *fakeEngine) setProxy(d netip.AddrPort, ver uint8) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.proxy == nil {
		e.proxy = map[netip.AddrPort]uint8{}
	}
	e.proxy[d] = ver
}

func (e *fakeEngine) Services(time.Time) []ipvs.ServiceState { return nil }
func (e *fakeEngine) Conns(time.Time) []conn.Info            { return nil }
func (e *fakeEngine) Zero(*ipvs.ServiceKey) error            { return nil }
func (e *fakeEngine) Timeouts() conn.Timeouts {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.timeouts
}

// state returns the TCP state of client's connection.
func (e *fakeEngine) state(client netip.AddrPort) conn.State {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.conns {
		if c.client == client {
			return c.state
		}
	}
	return conn.TCPNone
}

// packets returns the packets of client's connection, with flags and
// direction only, e.g. "in:SYN out:SYN|ACK in:ACK in:data".
func (e *fakeEngine) packets(client netip.AddrPort) []engine.Packet {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []engine.Packet
	for _, p := range e.pkts {
		if p.Src == client || p.Dst == client {
			out = append(out, p)
		}
	}
	return out
}

func startFake(t *testing.T, proto ipvs.Protocol, e *fakeEngine, opts ...Option) (*Proxy, netip.AddrPort) {
	t.Helper()
	p := newProxy(e, nil, opts...)
	t.Cleanup(func() { p.Close() })
	vip := freePort(t, strings.ToLower(proto.String()))
	svc := ipvs.Service{ServiceKey: addrKey(proto, vip), Scheduler: "rr"}
	if err := p.AddService(svc); err != nil {
		t.Fatal(err)
	}
	return p, vip
}

func addrKey(p ipvs.Protocol, ap netip.AddrPort) ipvs.ServiceKey {
	if p == ipvs.ProtoUDP {
		return ipvs.UDPService(ap)
	}
	return ipvs.TCPService(ap)
}

func TestFakeTCPStatesAndHalfClose(t *testing.T) {
	b := startBackend(t, "rs1", false)
	e := newFakeEngine(b.addr)
	_, vip := startFake(t, ipvs.ProtoTCP, e)

	c, r, name := dialVIP(t, vip)
	if name != "rs1" {
		t.Fatalf("greeting %q", name)
	}
	client := addrPort(c.LocalAddr())
	eventually(t, "ESTABLISHED", func() bool { return e.state(client) == conn.TCPEstablished })

	// Half-close: the client's FIN reaches the server, whose echo and
	// FIN still come back.
	io.WriteString(c, "hello")
	c.CloseWrite()
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "hello" {
		t.Fatalf("echo after half-close = %q, %v", got, err)
	}
	eventually(t, "TIME_WAIT", func() bool { return e.state(client) == conn.TCPTimeWait })

	var seq []string
	var inBytes, outBytes int
	for _, p := range e.packets(client) {
		s := p.Dir.String() + ":" + flagString(p.Flags)
		if p.Flags == conn.ACK && p.Len > ip4HdrLen+tcpHdrLen {
			s = p.Dir.String() + ":data"
			if p.Dir == conn.DirIn {
				inBytes += p.Len - ip4HdrLen - tcpHdrLen
			} else {
				outBytes += p.Len - ip4HdrLen - tcpHdrLen
			}
		}
		if len(seq) == 0 || seq[len(seq)-1] != s {
			seq = append(seq, s)
		}
	}
	want := "in:SYN out:SYN|ACK in:ACK out:data in:data"
	if got := strings.Join(seq, " "); !strings.HasPrefix(got, want) || !strings.Contains(got, "in:FIN|ACK") || !strings.Contains(got, "out:FIN|ACK") {
		t.Errorf("packets = %s, want %s ... in:FIN|ACK ... out:FIN|ACK", got, want)
	}
	if inBytes != len("hello") || outBytes != len("rs1\nhello") {
		t.Errorf("payload bytes in/out = %d/%d, want %d/%d", inBytes, outBytes, len("hello"), len("rs1\nhello"))
	}
}

func flagString(f conn.TCPFlags) string {
	var s []string
	for _, x := range []struct {
		f conn.TCPFlags
		n string
	}{{conn.SYN, "SYN"}, {conn.FIN, "FIN"}, {conn.RST, "RST"}, {conn.ACK, "ACK"}} {
		if f&x.f != 0 {
			s = append(s, x.n)
		}
	}
	return strings.Join(s, "|")
}

func TestFakeTCPRoundRobin(t *testing.T) {
	b1, b2 := startBackend(t, "rs1", false), startBackend(t, "rs2", false)
	e := newFakeEngine(b1.addr, b2.addr)
	_, vip := startFake(t, ipvs.ProtoTCP, e)
	var got []string
	for range 4 {
		got = append(got, roundTrip(t, vip, "x"))
	}
	if strings.Join(got, ",") != "rs1,rs2,rs1,rs2" {
		t.Errorf("order = %v", got)
	}
}

func TestFakeTCPDialRefused(t *testing.T) {
	dead := freePort(t, "tcp") // nothing listens there
	e := newFakeEngine(dead)
	_, vip := startFake(t, ipvs.ProtoTCP, e)
	// Bind the client's port, so the entry can be found even when the
	// reset beats connect(2).
	client := freePort(t, "tcp")
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(client)}
	if c, err := d.Dial("tcp", vip.String()); err == nil {
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("read %d bytes from a service whose realserver is down", n)
		}
	}
	eventually(t, "CLOSE", func() bool { return e.state(client) == conn.TCPClose })
}

func TestFakeTCPNoDestination(t *testing.T) {
	e := newFakeEngine()
	_, vip := startFake(t, ipvs.ProtoTCP, e)
	c, err := net.Dial("tcp", vip.String())
	if err != nil {
		return // reset before connect(2) returned: refused, as wanted
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); err == nil || ok && ne.Timeout() {
		t.Fatalf("connection without a destination was not closed: %v", err)
	}
}

func TestFakeTCPClientReset(t *testing.T) {
	b := startBackend(t, "rs1", false)
	e := newFakeEngine(b.addr)
	_, vip := startFake(t, ipvs.ProtoTCP, e)
	c, _, _ := dialVIP(t, vip)
	client := addrPort(c.LocalAddr())
	eventually(t, "ESTABLISHED", func() bool { return e.state(client) == conn.TCPEstablished })
	resetTCP(c)
	eventually(t, "CLOSE", func() bool { return e.state(client) == conn.TCPClose })
}

func TestFakeTCPEngineRefusesChunk(t *testing.T) {
	b := startBackend(t, "rs1", false)
	e := newFakeEngine(b.addr)
	_, vip := startFake(t, ipvs.ProtoTCP, e)
	c, r, _ := dialVIP(t, vip)
	e.mu.Lock()
	e.refuse = true // e.g. the entry expired
	e.mu.Unlock()
	io.WriteString(c, "more")
	if _, err := io.ReadAll(r); err == nil {
		t.Fatal("connection the engine refused was not reset")
	}
}

func TestFakeCloseStopsForwarding(t *testing.T) {
	b := startBackend(t, "rs1", false)
	e := newFakeEngine(b.addr)
	p, vip := startFake(t, ipvs.ProtoTCP, e)
	c, r, _ := dialVIP(t, vip)
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(r); done <- err }()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Log("client saw EOF on Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close left the client connection open")
	}
	c.Close()
	if _, err := net.DialTimeout("tcp", vip.String(), time.Second); err == nil {
		t.Fatal("listener still accepts after Close")
	}
	if err := p.Health(); !errors.Is(err, ErrClosed) {
		t.Errorf("Health after Close = %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestFakeUDP(t *testing.T) {
	b1, b2 := startUDPBackend(t, "rs1", false), startUDPBackend(t, "rs2", false)
	e := newFakeEngine(b1.addr, b2.addr)
	p, vip := startFake(t, ipvs.ProtoUDP, e)

	c, err := net.Dial("udp", vip.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	for i := range 3 {
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		// One flow: every datagram of the client goes to the same
		// realserver.
		if got := string(buf[:n]); got != "rs1:ping" {
			t.Fatalf("reply %d = %q", i, got)
		}
	}
	// The reply comes from the VIP, as through NAT.
	if ra := addrPort(c.RemoteAddr()); ra != vip {
		t.Fatalf("remote %s", ra)
	}
	var in, out int
	for _, pk := range e.packets(addrPort(c.LocalAddr())) {
		if pk.Dir == conn.DirIn {
			in++
		} else {
			out++
		}
	}
	if in != 3 || out != 3 {
		t.Errorf("packets in/out = %d/%d, want 3/3", in, out)
	}

	// A shorter UDP timeout closes the idle flow.
	e.mu.Lock()
	e.timeouts.UDP = 50 * time.Millisecond
	e.mu.Unlock()
	p.SetTimeouts(conn.Timeouts{UDP: 50 * time.Millisecond})
	u := p.udp[ipvs.UDPService(vip)]
	eventually(t, "flow expiry", func() bool {
		u.mu.Lock()
		defer u.mu.Unlock()
		return len(u.flows) == 0
	})
}

// TestFakeProxyProtocol: the header the destination's configuration asks
// for, and only to that destination.
func TestFakeProxyProtocol(t *testing.T) {
	for _, ver := range []int{1, 2} {
		b, plain := startBackend(t, "rs1", true), startBackend(t, "rs2", false)
		e := newFakeEngine(b.addr, plain.addr)
		e.setProxy(b.addr, uint8(ver))
		_, vip := startFake(t, ipvs.ProtoTCP, e)
		c, _, name := dialVIP(t, vip)
		hs, _ := b.seen()
		want := proxyInfo{ver: ver, src: addrPort(c.LocalAddr()), dst: vip}
		if name != "rs1" || len(hs) != 1 || hs[0] != want {
			t.Errorf("v%d: %s, backend saw %+v, want %+v", ver, name, hs, want)
		}
		// rs2 has none: it would echo a header back if it got one.
		if got := roundTrip(t, vip, "plain"); got != "rs2" {
			t.Errorf("v%d: greeting from the destination without PROXY protocol = %q", ver, got)
		}
	}
}

func TestFakeProxyProtocolUDP(t *testing.T) {
	b := startUDPBackend(t, "rs1", true)
	e := newFakeEngine(b.addr)
	e.setProxy(b.addr, 2)
	_, vip := startFake(t, ipvs.ProtoUDP, e)
	c, err := net.Dial("udp", vip.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("q"))
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "rs1:q" {
		t.Fatalf("reply %q, %v", buf[:n], err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	want := proxyInfo{ver: 2, src: addrPort(c.LocalAddr()), dst: vip}
	if len(b.headers) != 1 || b.headers[0] != want {
		t.Errorf("backend saw %+v, want %+v", b.headers, want)
	}
}

func TestCheck(t *testing.T) {
	p := newProxy(newFakeEngine(), nil)
	defer p.Close()
	vip := netip.MustParseAddrPort("127.0.0.1:80")
	tcp := ipvs.Service{ServiceKey: ipvs.TCPService(vip), Scheduler: "wrr"}
	for _, tc := range []struct {
		name string
		svc  ipvs.Service
		want string
	}{
		{"tcp", tcp, ""},
		{"udp", ipvs.Service{ServiceKey: ipvs.UDPService(vip)}, ""},
		{"fwmark", ipvs.Service{ServiceKey: ipvs.FWMarkService(7, ipvs.IPv4)}, "firewall-mark"},
		{"sctp", ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: ipvs.IPv4, Protocol: ipvs.ProtoSCTP, Addr: vip.Addr(), Port: 80}}, "SCTP"},
		{"port0", ipvs.Service{ServiceKey: ipvs.TCPService(netip.AddrPortFrom(vip.Addr(), 0)), Persistent: true}, "port 0"},
	} {
		err := p.CheckService(tc.svc)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, dataplane.ErrUnsupported) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrUnsupported mentioning %q", tc.name, err, tc.want)
		}
	}
	rs := netip.MustParseAddr("10.0.0.2")
	for _, tc := range []struct {
		fwd  ipvs.FwdMethod
		want string
	}{
		{ipvs.Masq, ""},
		{ipvs.Route, "destination 10.0.0.2:80 uses Route (direct routing); the proxy data plane forwards only Masq (NAT): use -m, or run govsd --dataplane ebpf for Route/Tunnel"},
		{ipvs.Tunnel, "uses Tunnel"},
		{ipvs.Local, "is Local"},
	} {
		err := p.CheckDest(tcp, ipvs.Destination{Addr: rs, Port: 80, Fwd: tc.fwd, Weight: 1})
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.fwd, err)
			}
			continue
		}
		if !errors.Is(err, dataplane.ErrUnsupported) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrUnsupported with %q", tc.fwd, err, tc.want)
		}
	}
}

func TestFakeIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	vip := addrPort(ln.Addr())
	ln.Close()
	b := startBackend6(t)
	e := newFakeEngine(b)
	p := newProxy(e, nil)
	defer p.Close()
	if err := p.AddService(ipvs.Service{ServiceKey: ipvs.TCPService(vip), Scheduler: "rr"}); err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, vip, "six"); got != "rs6" {
		t.Fatalf("greeting %q", got)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if pk := e.pkts[0]; pk.Len != ip6HdrLen+tcpSynHdrLen || !pk.Src.Addr().Is6() {
		t.Errorf("first packet %+v", pk)
	}
}

// startBackend6 is an IPv6 realserver greeting "rs6".
func startBackend6(t *testing.T) netip.AddrPort {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: "rs6"}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go b.serve(c.(*net.TCPConn))
		}
	}()
	return addrPort(ln.Addr())
}

// TestFakeDelServiceKeepsConnections: as in the kernel, deleting a
// service stops new connections but not established ones.
func TestFakeDelServiceKeepsConnections(t *testing.T) {
	b := startBackend(t, "rs1", false)
	p, vip := startFake(t, ipvs.ProtoTCP, newFakeEngine(b.addr))
	c, r, _ := dialVIP(t, vip)
	if err := p.DelService(ipvs.TCPService(vip)); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", vip.String(), time.Second); err == nil {
		t.Fatal("deleted service still accepts")
	}
	io.WriteString(c, "on")
	c.CloseWrite()
	if got, err := io.ReadAll(r); err != nil || string(got) != "on" {
		t.Fatalf("established connection after DelService: %q, %v", got, err)
	}
	if err := p.DelService(ipvs.TCPService(vip)); !errors.Is(err, ipvs.ErrNoService) {
		t.Errorf("second DelService = %v", err)
	}
}
