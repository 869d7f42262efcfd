package ebpf

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/ipvs"
)

// shadow feeds the engine every TCP segment the director receives on d0
// (an AF_PACKET tap sees ingress frames before TC does), so that after
// real traffic the engine shows what IPVS would show for exactly those
// packets.
type shadow struct {
	eng     *engine.Engine
	vip     netip.AddrPort
	rips    map[netip.Addr]bool
	fd      int
	stop    atomic.Bool
	done    chan struct{}
	mu      sync.Mutex
	packets int
}

func newShadow(t *testing.T, tp *topo, eng *engine.Engine) *shadow {
	t.Helper()
	sh := &shadow{eng: eng, vip: netip.AddrPortFrom(tp.vip, 80), rips: map[netip.Addr]bool{}, done: make(chan struct{})}
	for _, r := range tp.rip {
		sh.rips[r] = true
	}
	tp.dir.MustDo(func() error {
		ifi, err := net.InterfaceByName("d0")
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ALL))
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, proto)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifi.Index}); err != nil {
			return fmt.Errorf("bind packet socket: %w", err)
		}
		tv := unix.Timeval{Usec: 100000}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		sh.fd = fd
		return nil
	})
	go sh.run()
	t.Cleanup(sh.close)
	return sh
}

func (sh *shadow) close() {
	if sh.stop.Swap(true) {
		return
	}
	<-sh.done
	unix.Close(sh.fd)
}

func (sh *shadow) run() {
	defer close(sh.done)
	buf := make([]byte, 65536)
	for !sh.stop.Load() {
		n, from, err := unix.Recvfrom(sh.fd, buf, 0)
		if err != nil {
			continue
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		sh.feed(buf[:n])
	}
}

// feed decodes an Ethernet frame carrying IPv4 TCP and gives it to the
// engine: DirIn if it is for the VIP:80, DirOut if it comes from a
// realserver's port 80 (NAT replies).
func (sh *shadow) feed(f []byte) {
	if len(f) < 14+20+20 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[14+9] != 6 {
		return
	}
	ip := f[14:]
	hl := int(ip[0]&0xf) * 4
	tl := int(binary.BigEndian.Uint16(ip[2:]))
	if len(ip) < hl+20 {
		return
	}
	tcp := ip[hl:]
	src := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[12:16])), binary.BigEndian.Uint16(tcp[0:]))
	dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[16:20])), binary.BigEndian.Uint16(tcp[2:]))
	p := engine.Packet{Proto: ipvs.ProtoTCP, Src: src, Dst: dst, Flags: conn.TCPFlags(tcp[13]), Len: tl}
	switch {
	case dst == sh.vip:
		p.Dir = conn.DirIn
	case sh.rips[src.Addr()] && src.Port() == 80:
		p.Dir = conn.DirOut
	default:
		return
	}
	sh.mu.Lock()
	sh.packets++
	sh.mu.Unlock()
	sh.eng.Process(time.Now(), p)
}

// settle returns once the tap has been quiet for 150 ms: the engine has
// caught up with the traffic.
func (sh *shadow) settle() {
	last := -1
	for {
		sh.mu.Lock()
		n := sh.packets
		sh.mu.Unlock()
		if n == last {
			return
		}
		last = n
		time.Sleep(150 * time.Millisecond)
	}
}

// keepAlive is an open HTTP/1.1 connection from the client to the VIP.
type keepAlive struct {
	c  net.Conn
	br []byte
}

func (tp *topo) dial(t *testing.T) *keepAlive {
	t.Helper()
	var c net.Conn
	tp.client.MustDo(func() error {
		var err error
		c, err = net.DialTimeout("tcp", netip.AddrPortFrom(tp.vip, 80).String(), 3*time.Second)
		return err
	})
	return &keepAlive{c: c, br: make([]byte, 4096)}
}

// ask sends one request on the connection and returns who answered.
func (k *keepAlive) ask(t *testing.T) string {
	t.Helper()
	k.c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(k.c, "GET / HTTP/1.1\r\nHost: vip\r\n\r\n")
	n, err := k.c.Read(k.br)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	_, body, _ := strings.Cut(string(k.br[:n]), "\r\n\r\n")
	name, _, _ := strings.Cut(body, " ")
	return name
}

func configure(t *testing.T, tp *topo, eng *engine.Engine, svc ipvs.Service, dests []ipvs.Destination) {
	t.Helper()
	svc.SetDefaults()
	if err := tp.dp.AddService(svc); err != nil {
		t.Fatal(err)
	}
	if eng != nil {
		if err := eng.AddService(svc); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range dests {
		d.Normalize(&svc)
		if err := tp.dp.AddDest(svc.ServiceKey, d); err != nil {
			t.Fatal(err)
		}
		if eng != nil {
			if err := eng.AddDest(svc.ServiceKey, d); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// testNetnsDrain sets a destination's weight to 0 while a connection to
// it is open: that connection keeps working on it, new connections go to
// the other one; and ActiveConn/InActConn equal what the engine shows
// after seeing the same packets.
func testNetnsDrain(t *testing.T, fwd ipvs.FwdMethod) {
	tp := newTopo(t, fwd, 0)
	tp.serve(t, 0)
	tp.serve(t, 1)
	eng := engine.New(engine.Options{})
	sh := newShadow(t, tp, eng)
	svc := ipvs.Service{ServiceKey: ipvs.TCPService(netip.AddrPortFrom(tp.vip, 80)), Scheduler: "wrr"}
	svc.SetDefaults()
	dests := []ipvs.Destination{
		{Addr: tp.rip[0], Port: 80, Fwd: fwd, Weight: 1},
		{Addr: tp.rip[1], Port: 80, Fwd: fwd, Weight: 1},
	}
	configure(t, tp, eng, svc, dests)

	a := tp.dial(t) // wrr, newest first: rs2
	if got := a.ask(t); got != "rs2" {
		t.Fatalf("first connection answered by %s, want rs2", got)
	}
	b := tp.dial(t)
	if got := b.ask(t); got != "rs1" {
		t.Fatalf("second connection answered by %s, want rs1", got)
	}

	// The engine must have seen every packet so far before it is told of
	// the edit, as the data plane had.
	sh.settle()
	drained := dests[1]
	drained.Weight = 0
	drained.Normalize(&svc)
	if err := tp.dp.EditDest(svc.ServiceKey, drained); err != nil {
		t.Fatal(err)
	}
	if err := eng.EditDest(svc.ServiceKey, drained); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if got := a.ask(t); got != "rs2" {
			t.Errorf("drained connection, request %d: answered by %s, want rs2 still", i, got)
		}
	}
	for i := range 4 {
		body, err := tp.get(t)
		if err != nil {
			t.Fatal(err)
		}
		if name, _, _ := strings.Cut(body, " "); name != "rs1" {
			t.Errorf("new connection %d after weight 0: answered by %s, want rs1", i, name)
		}
	}
	b.c.Close()
	time.Sleep(100 * time.Millisecond)
	sh.settle()
	sh.close()

	st, err := tp.dp.Services()
	if err != nil {
		t.Fatal(err)
	}
	want := eng.Services(time.Now())
	t.Logf("engine saw %d packets", sh.packets)

	got := map[netip.Addr]ipvs.DestState{}
	for _, d := range st[0].Dests {
		got[d.Addr] = d
	}
	for _, w := range want[0].Dests {
		g := got[w.Addr]
		t.Logf("%s weight %d: bpf %d active %d inactive, engine %d/%d", w.Addr, g.Weight, g.ActiveConns, g.InactConns, w.ActiveConns, w.InactConns)
		if g.ActiveConns != w.ActiveConns || g.InactConns != w.InactConns {
			t.Errorf("%s: ActiveConn/InActConn %d/%d, engine %d/%d", w.Addr, g.ActiveConns, g.InactConns, w.ActiveConns, w.InactConns)
		}
	}
	// What the kernel would show, independently of the engine: the
	// drained server holds the one open connection; rs1 holds the four
	// finished ones and the closed one, all inactive.
	if g := got[tp.rip[1]]; g.ActiveConns != 1 || g.InactConns != 0 {
		t.Errorf("drained %s: %d active %d inactive, want 1/0", tp.rip[1], g.ActiveConns, g.InactConns)
	}
	if g := got[tp.rip[0]]; g.ActiveConns != 0 || g.InactConns != 5 {
		t.Errorf("%s: %d active %d inactive, want 0/5", tp.rip[0], g.ActiveConns, g.InactConns)
	}
	a.c.Close()
}

func TestNetnsDrainNAT(t *testing.T) { testNetnsDrain(t, ipvs.Masq) }
func TestNetnsDrainDR(t *testing.T)  { testNetnsDrain(t, ipvs.Route) }

// TestNetnsRestartBulk restarts the data plane (Close, then New adopting
// the pins, then the control plane's replay) while the client downloads
// 50 MB over HTTP through the VIP; the download completes intact.
func TestNetnsRestartBulk(t *testing.T) {
	for _, xdp := range []bool{false, true} {
		name := "tc"
		if xdp {
			name = "xdp"
		}
		t.Run(name, func(t *testing.T) { testNetnsRestartBulk(t, xdp) })
	}
}

func testNetnsRestartBulk(t *testing.T, xdp bool) {
	const size = 50 << 20
	tp := newTopoConfig(t, topoConfig{fwd: ipvs.Masq, xdp: xdp})
	blob := make([]byte, size)
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	sum := sha256.Sum256(blob)
	var ln net.Listener
	tp.rs[0].MustDo(func() error {
		var err error
		ln, err = net.Listen("tcp", ":80")
		return err
	})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(blob) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	svc := ipvs.Service{ServiceKey: ipvs.TCPService(netip.AddrPortFrom(tp.vip, 80)), Scheduler: "rr"}
	dests := []ipvs.Destination{{Addr: tp.rip[0], Port: 80, Fwd: ipvs.Masq, Weight: 1}}
	configure(t, tp, nil, svc, dests)

	var read atomic.Int64
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	res := make(chan result, 1)
	go func() {
		tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := tp.client.Do(func() error {
				var err error
				c, err = (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		}}
		resp, err := (&http.Client{Transport: tr, Timeout: 60 * time.Second}).Get("http://" + netip.AddrPortFrom(tp.vip, 80).String() + "/")
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		h := sha256.New()
		buf := make([]byte, 256<<10)
		var n int64
		for {
			m, err := resp.Body.Read(buf)
			h.Write(buf[:m])
			n += int64(m)
			read.Store(n)
			if err == io.EOF {
				break
			}
			if err != nil {
				res <- result{n: n, err: err}
				return
			}
			time.Sleep(5 * time.Millisecond) // a slow reader: the transfer lasts about a second
		}
		var r result
		copy(r.sum[:], h.Sum(nil))
		r.n = n
		res <- r
	}()
	for read.Load() < 5<<20 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := tp.dp.Close(); err != nil {
		t.Fatal(err)
	}
	tp.start(t)
	configure(t, tp, nil, svc, dests)
	at := read.Load()
	r := <-res
	if r.err != nil {
		t.Fatalf("download: %v after %d bytes", r.err, r.n)
	}
	if r.n != size || r.sum != sum {
		t.Fatalf("downloaded %d bytes (sha256 match %v), want %d intact", r.n, r.sum == sum, size)
	}
	if at >= size {
		t.Errorf("the restart finished after the transfer (%d bytes read): not a test of anything", at)
	}
	t.Logf("restarted at %d of %d bytes; download complete and intact", at, size)
}
