package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/ipvs"
)

// Short connections on loopback: the proxy's per-connection cost, with
// no namespaces. The client is the same for every target: dial, send a
// small HTTP request with Connection: close, read the response to EOF,
// close; the server answers and closes first, as nginx does, so neither
// the client nor the proxy's side towards the server holds TIME_WAIT
// (no ephemeral-port exhaustion on 127.0.0.1).
//
//	go test -run '^$' -bench ShortConnections -benchtime 5s ./internal/dataplane/proxy/
//
// reports conns/s and cpu-ms/1kconn (this process's user+system CPU per
// 1,000 connections: client, server and, for "proxy", the proxy; the
// proxy's own share is the difference against "direct"). The "haproxy"
// case (when haproxy is installed) runs haproxy in TCP mode on loopback
// as a child process; its CPU is reported separately as
// haproxy-cpu-ms/1kconn. TestShortConnWrk compares the three with wrk.

// shortResp is the tiny server's whole answer.
const shortResp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"

// shortReq is the client's request, as wrk sends it.
const shortReq = "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"

// serveShort answers one request on c and closes it.
func serveShort(c net.Conn) {
	defer c.Close()
	var buf [512]byte
	var got []byte
	for {
		n, err := c.Read(buf[:])
		got = append(got, buf[:n]...)
		if bytes.Contains(got, []byte("\r\n\r\n")) {
			break
		}
		if err != nil {
			return
		}
	}
	io.WriteString(c, shortResp)
}

// startShortServer is a minimal HTTP server on 127.0.0.1 that answers
// every request with shortResp and closes.
func startShortServer(tb testing.TB) netip.AddrPort {
	tb.Helper()
	ln, err := shortListen()
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				serveShort(c)
			}()
		}
	}()
	return addrPort(ln.Addr())
}

// shortListen listens on 127.0.0.1 as nginx does: no TCP keep-alive
// (Go's default would add four setsockopt calls to every accept).
func shortListen() (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
}

// shortDialer dials as wrk does: no TCP keep-alive.
var shortDialer = net.Dialer{Timeout: 5 * time.Second, KeepAlive: -1}

// shortConn makes one short connection to addr.
func shortConn(addr string, buf []byte) error {
	c, err := shortDialer.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, shortReq); err != nil {
		return err
	}
	n := 0
	for {
		m, err := c.Read(buf[n:])
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if n == len(buf) {
			return errors.New("response too long")
		}
	}
	if string(buf[:n]) != shortResp {
		return fmt.Errorf("response %q", buf[:n])
	}
	return nil
}

// procCPU returns the user+system CPU time pid has used (0: this
// process), from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	path := "/proc/self/stat"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: short", path)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const hz = 100 // USER_HZ on every Linux architecture Go supports
	return time.Duration(ut+st) * time.Second / hz, nil
}

// benchShortConns runs short connections to addr from 4 goroutines per
// GOMAXPROCS and reports conns/s and CPU per 1,000 connections of this
// process and, if extPID is set, of that process.
func benchShortConns(b *testing.B, addr netip.AddrPort, extPID int) {
	if err := shortConn(addr.String(), make([]byte, 512)); err != nil {
		b.Fatalf("first connection: %v", err)
	}
	b.ReportAllocs()
	b.SetParallelism(4)
	cpu0, _ := procCPU(0)
	ext0, _ := procCPU(extPID)
	start := time.Now()
	var failed atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 512)
		for pb.Next() {
			if err := shortConn(addr.String(), buf); err != nil {
				if failed.Add(1) == 1 {
					b.Error(err)
				}
			}
		}
	})
	el := time.Since(start)
	cpu1, _ := procCPU(0)
	b.ReportMetric(float64(b.N)/el.Seconds(), "conns/s")
	b.ReportMetric(float64(cpu1-cpu0)/float64(time.Millisecond)*1000/float64(b.N), "cpu-ms/1kconn")
	if extPID != 0 {
		ext1, _ := procCPU(extPID)
		b.ReportMetric(float64(ext1-ext0)/float64(time.Millisecond)*1000/float64(b.N), "haproxy-cpu-ms/1kconn")
	}
}

// startShortProxy runs the proxy with the real engine in front of rs, as
// govsd wires them (rr, one Masq destination, Expire once a second), and
// returns the VIP.
func startShortProxy(tb testing.TB, rs netip.AddrPort) netip.AddrPort {
	tb.Helper()
	eng := engine.New(engine.Options{})
	p, err := New(eng, nil)
	if err != nil {
		tb.Fatal(err)
	}
	vip := freePort(tb, "tcp")
	svc := ipvs.Service{ServiceKey: ipvs.TCPService(vip), Scheduler: "rr"}
	d := ipvs.Destination{Addr: rs.Addr(), Port: rs.Port(), Fwd: ipvs.Masq, Weight: 1}
	if err := errors.Join(eng.AddService(svc), p.AddService(svc), eng.AddDest(svc.ServiceKey, d), p.AddDest(svc.ServiceKey, d)); err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	expired := make(chan struct{})
	go func() {
		defer close(expired)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				eng.Expire(now)
			}
		}
	}()
	tb.Cleanup(func() { close(done); <-expired; p.Close() })
	return vip
}

// startHAProxy runs haproxy in TCP mode on loopback in front of rs, with
// its configuration and pid file in a temporary directory, and stops it
// (by its PID) at cleanup. It returns the listening address and the PID,
// or skips tb when haproxy is not installed.
func startHAProxy(tb testing.TB, rs netip.AddrPort) (netip.AddrPort, int) {
	tb.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		tb.Skip("haproxy is not installed (apt-get install -y haproxy)")
	}
	dir := tb.TempDir()
	addr := freePort(tb, "tcp")
	// As bench/cmd/govsbench runs it: mode tcp, 2 threads, defaults
	// otherwise (no splice).
	conf := fmt.Sprintf(`global
	maxconn 8000
	nbthread 2
	pidfile %s
defaults
	mode tcp
	timeout connect 5s
	timeout client 60s
	timeout server 60s
	maxconn 8000
listen bench
	bind %s
	server rs1 %s
`, filepath.Join(dir, "haproxy.pid"), addr, rs)
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		tb.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-db", "-f", cfg)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start haproxy: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr.String())
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			tb.Fatalf("haproxy exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("haproxy does not listen on %s: %s", addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr, cmd.Process.Pid
}

// BenchmarkProxyShortConnections measures short connections through the
// proxy (with the real engine), straight to the server (the same-run
// ceiling) and through haproxy in TCP mode.
func BenchmarkProxyShortConnections(b *testing.B) {
	b.Run("direct", func(b *testing.B) {
		benchShortConns(b, startShortServer(b), 0)
	})
	b.Run("proxy", func(b *testing.B) {
		benchShortConns(b, startShortProxy(b, startShortServer(b)), 0)
	})
	b.Run("haproxy", func(b *testing.B) {
		vip, pid := startHAProxy(b, startShortServer(b))
		benchShortConns(b, vip, pid)
	})
}

// TestShortConnHelperServer is not a test: it is the short-connection
// server as a child process for TestShortConnWrk, so that the CPU of the
// process under test is the proxy's alone. It runs only with
// GOVS_SHORTCONN_SERVER set, prints its address and serves until killed.
func TestShortConnHelperServer(t *testing.T) {
	if os.Getenv("GOVS_SHORTCONN_SERVER") == "" {
		t.Skip("helper process for TestShortConnWrk")
	}
	ln, err := shortListen()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		go serveShort(c)
	}
}

// TestShortConnWrk compares the proxy with the server directly and with
// haproxy (TCP mode, loopback), all driven by wrk as govsbench drives
// them: wrk -t2 -c50 -H "Connection: close". The server is a child
// process, so this process's CPU is the proxy's. It runs only with
// GOVS_SHORTCONN_WRK set (it takes about 10 x the duration):
//
//	GOVS_SHORTCONN_WRK=5s go test -run TestShortConnWrk -v ./internal/dataplane/proxy/
func TestShortConnWrk(t *testing.T) {
	dur := os.Getenv("GOVS_SHORTCONN_WRK")
	if dur == "" {
		t.Skip("set GOVS_SHORTCONN_WRK=5s to compare with wrk")
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("wrk is not installed (apt-get install -y wrk)")
	}
	rs := startHelperServer(t)
	targets := []struct {
		name string
		addr netip.AddrPort
		pid  int // whose CPU to count; 0: this process
	}{{name: "direct", addr: rs}, {name: "proxy", addr: startShortProxy(t, rs)}}
	if _, err := exec.LookPath("haproxy"); err == nil {
		addr, pid := startHAProxy(t, rs)
		targets = append(targets, struct {
			name string
			addr netip.AddrPort
			pid  int
		}{"haproxy", addr, pid})
	}
	const rounds = 3
	rate := map[string][]float64{}
	cpu := map[string][]float64{}
	for r := range rounds {
		for _, tg := range targets {
			c0, _ := procCPU(tg.pid)
			out, err := exec.Command(wrk, "-t2", "-c50", "-d"+dur, "-H", "Connection: close", "http://"+tg.addr.String()+"/").CombinedOutput()
			c1, _ := procCPU(tg.pid)
			if err != nil {
				t.Fatalf("wrk %s: %v: %s", tg.name, err, out)
			}
			n, secs, err := wrkRequests(out)
			if err != nil {
				t.Fatalf("wrk %s: %v: %s", tg.name, err, out)
			}
			rate[tg.name] = append(rate[tg.name], n/secs)
			ms := 0.0
			if tg.name != "direct" {
				ms = float64(c1-c0) / float64(time.Millisecond) * 1000 / n
			}
			cpu[tg.name] = append(cpu[tg.name], ms)
			t.Logf("round %d %-8s %8.0f conns/s  %6.1f ms CPU/1k conns (%s)", r+1, tg.name, n/secs, ms, errLine(out))
		}
	}
	med := func(xs []float64) float64 {
		s := append([]float64(nil), xs...)
		for i := range s {
			for j := i + 1; j < len(s); j++ {
				if s[j] < s[i] {
					s[i], s[j] = s[j], s[i]
				}
			}
		}
		return s[len(s)/2]
	}
	for _, tg := range targets {
		t.Logf("median %-8s %8.0f conns/s (%.2fx direct)  %6.1f ms CPU/1k conns", tg.name, med(rate[tg.name]), med(rate[tg.name])/med(rate["direct"]), med(cpu[tg.name]))
	}
	if _, ok := rate["haproxy"]; ok {
		t.Logf("proxy/haproxy: %.2fx rate, %.2fx CPU per connection", med(rate["proxy"])/med(rate["haproxy"]), med(cpu["proxy"])/med(cpu["haproxy"]))
	}
}

// startHelperServer starts TestShortConnHelperServer as a child process
// and stops it (by PID) at cleanup.
func startHelperServer(t *testing.T) netip.AddrPort {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestShortConnHelperServer$")
	cmd.Env = append(os.Environ(), "GOVS_SHORTCONN_SERVER=1", "GOMAXPROCS=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("helper server: %v", err)
	}
	addr, err := netip.ParseAddrPort(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("helper server said %q: %v", line, err)
	}
	return addr
}

// wrkRequests parses "N requests in Xs" from wrk's output.
func wrkRequests(out []byte) (n, secs float64, err error) {
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 4 && f[1] == "requests" && f[2] == "in" {
			n, err1 := strconv.ParseFloat(f[0], 64)
			d, err2 := time.ParseDuration(strings.TrimSuffix(f[3], ","))
			if err := errors.Join(err1, err2); err != nil {
				return 0, 0, err
			}
			return n, d.Seconds(), nil
		}
	}
	return 0, 0, errors.New("no request count")
}

// errLine returns wrk's socket error line, or "no errors".
func errLine(out []byte) string {
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "Socket errors") || strings.Contains(l, "Non-2xx") {
			return strings.TrimSpace(l)
		}
	}
	return "no errors"
}
