package keepalived_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/dataplane/proxy"
	"github.com/govs/govs/internal/director"
	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/keepalived"
)

// backend is a real HTTP realserver on a loopback address that the test
// can stop and start again on the same address and port.
type backend struct {
	t    *testing.T
	addr string // "127.0.0.x:port"
	name string
	mu   sync.Mutex
	srv  *http.Server
}

func newBackend(t *testing.T, ip, name string) *backend {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("listen on %s (loopback 127.0.0.0/8 needed): %v", ip, err)
	}
	b := &backend{t: t, addr: l.Addr().String(), name: name}
	b.serve(l)
	t.Cleanup(b.stop)
	return b
}

func (b *backend) serve(l net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, b.name)
	}), ReadHeaderTimeout: 5 * time.Second}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go srv.Serve(l)
}

func (b *backend) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		b.srv.Close()
		b.srv = nil
	}
}

func (b *backend) start() {
	b.t.Helper()
	l, err := net.Listen("tcp", b.addr)
	if err != nil {
		b.t.Fatalf("restart %s: %v", b.addr, err)
	}
	b.serve(l)
}

func (b *backend) rs(extra string) string {
	ap := netip.MustParseAddrPort(b.addr)
	return fmt.Sprintf(`    real_server %s %d {
        weight 1
        %s
        HTTP_GET {
            url { path /health }
            connect_timeout 0.5
            delay_loop 1
            warmup 0
            retry 0
        }
    }
`, ap.Addr(), ap.Port(), extra)
}

func freePort(t *testing.T, ip string) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return netip.MustParseAddrPort(l.Addr().String()).Port()
}

// e2e is govsd's keepalived glue over the real proxy data plane.
type e2e struct {
	t    *testing.T
	path string
	vip  netip.AddrPort
	dir  *director.Director
	m    *keepalived.Manager
}

func newE2E(t *testing.T, vsExtra string, rss ...string) *e2e {
	t.Helper()
	vip := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), freePort(t, "127.0.0.1"))
	e := &e2e{t: t, path: filepath.Join(t.TempDir(), "keepalived.conf"), vip: vip}
	e.write(vsExtra, rss...)
	eng := engine.New(engine.Options{})
	p, err := proxy.New(eng, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	e.dir, err = director.New(director.Config{Engine: eng, Dataplane: p})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e.m, err = keepalived.New(keepalived.Options{Director: e.dir, Path: e.path, Logger: log,
		DrainTimeout: 2 * time.Second, DrainPoll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.m.Close(ctx) })
	cfg, _, err := keepalived.Load(e.path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (e *e2e) write(vsExtra string, rss ...string) {
	conf := fmt.Sprintf("virtual_server %s %d {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    %s\n%s}\n",
		e.vip.Addr(), e.vip.Port(), vsExtra, strings.Join(rss, ""))
	if err := os.WriteFile(e.path, []byte(conf), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *e2e) weights() map[string]int32 {
	st, err := e.dir.Service(ctx, ipvs.TCPService(e.vip))
	if err != nil {
		return nil
	}
	out := map[string]int32{}
	for _, d := range st.Dests {
		out[d.AddrPort().String()] = d.Weight
	}
	return out
}

// waitWeights waits up to within for the table to be want.
func (e *e2e) waitWeights(want map[string]int32, within time.Duration) time.Duration {
	e.t.Helper()
	start := time.Now()
	for !equal(e.weights(), want) {
		if time.Since(start) > within {
			e.t.Fatalf("after %s the table is %v, want %v", within, e.weights(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

var client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func (e *e2e) get() (string, error) {
	resp, err := client.Get("http://" + e.vip.String() + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// The budget for taking a realserver out: delay_loop (1 s) plus one
// check's connect_timeout (retry 0), with slack for a loaded machine.
const outBudget = 1*time.Second + 500*time.Millisecond + 1500*time.Millisecond

func TestE2EDownUpInhibitSorry(t *testing.T) {
	b1 := newBackend(t, "127.0.0.2", "rs1")
	b2 := newBackend(t, "127.0.0.3", "rs2")
	sorry := newBackend(t, "127.0.0.4", "sorry")
	sp := netip.MustParseAddrPort(sorry.addr)
	e := newE2E(t, fmt.Sprintf("sorry_server %s %d", sp.Addr(), sp.Port()), b1.rs(""), b2.rs("inhibit_on_failure"))
	e.waitWeights(map[string]int32{b1.addr: 1, b2.addr: 1}, 3*time.Second)
	seen := map[string]bool{}
	for range 4 {
		body, err := e.get()
		if err != nil {
			t.Fatal(err)
		}
		seen[body] = true
	}
	if !seen["rs1"] || !seen["rs2"] {
		t.Errorf("rr over two realservers answered %v", seen)
	}

	// Stopped: taken out within delay_loop + the retry budget.
	b1.stop()
	took := e.waitWeights(map[string]int32{b2.addr: 1}, outBudget)
	t.Logf("rs1 taken out after %s", took)
	if body, err := e.get(); err != nil || body != "rs2" {
		t.Errorf("with rs1 down: %q, %v", body, err)
	}
	hs, err := e.m.HealthStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(b1.addr)
	if h, ok := hs.Find(ipvs.TCPService(e.vip), ap.Addr(), ap.Port()); !ok || h.State != api.StateDown || h.Reason == "" {
		t.Errorf("health of stopped rs1 = %+v", h)
	}

	// Started again: back.
	b1.start()
	e.waitWeights(map[string]int32{b1.addr: 1, b2.addr: 1}, outBudget)

	// inhibit_on_failure: weight 0 instead of removal.
	b2.stop()
	e.waitWeights(map[string]int32{b1.addr: 1, b2.addr: 0}, outBudget)

	// All down: the sorry server takes over.
	b1.stop()
	e.waitWeights(map[string]int32{b2.addr: 0, sorry.addr: 1}, outBudget)
	if body, err := e.get(); err != nil || body != "sorry" {
		t.Errorf("with all down: %q, %v", body, err)
	}
	b1.start()
	e.waitWeights(map[string]int32{b1.addr: 1, b2.addr: 0}, outBudget)
}

// TestE2EReloadUnderTraffic reloads several times, adding and removing
// realservers, while a client keeps making requests through the VIP:
// none may fail.
func TestE2EReloadUnderTraffic(t *testing.T) {
	bs := []*backend{
		newBackend(t, "127.0.0.2", "a"), newBackend(t, "127.0.0.3", "b"),
		newBackend(t, "127.0.0.5", "c"), newBackend(t, "127.0.0.6", "d"),
	}
	e := newE2E(t, "", bs[0].rs(""), bs[1].rs(""))
	e.waitWeights(map[string]int32{bs[0].addr: 1, bs[1].addr: 1}, 3*time.Second)

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := e.get(); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				} else {
					ok.Add(1)
				}
			}
		})
	}
	steps := [][]int{{0, 1, 2}, {1, 2}, {1, 2, 3}, {3}, {0, 3}, {0, 1, 2, 3}, {2}}
	for _, step := range steps {
		time.Sleep(300 * time.Millisecond)
		var rss []string
		for _, i := range step {
			rss = append(rss, bs[i].rs(""))
		}
		e.write("", rss...)
		res, err := e.m.Reload(ctx)
		if err != nil {
			t.Fatalf("reload to %v: %v", step, err)
		}
		t.Logf("reload to %v: %v", step, res.Changes)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d requests, %d failed", ok.Load()+failed.Load(), failed.Load())
	if failed.Load() > 0 {
		t.Errorf("%d of %d requests failed during reloads; first: %v", failed.Load(), ok.Load()+failed.Load(), firstErr.Load())
	}
	if ok.Load() < 100 {
		t.Errorf("only %d requests went through", ok.Load())
	}
	// The removed ones drain away (2 s drain timeout at most).
	e.waitWeights(map[string]int32{bs[2].addr: 1}, 5*time.Second)
}
