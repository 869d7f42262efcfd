package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/dataplane/dataplanetest"
	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/ipvs"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testEnv(stderr io.Writer, fake *dataplanetest.Fake) env {
	return env{
		stderr: stderr,
		getenv: func(string) string { return "" },
		newDataplane: func(dataplaneOptions, *engine.Engine, *slog.Logger) (dataplane.Dataplane, error) {
			return fake, nil
		},
	}
}

func TestRunServesAndShutsDown(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "run", "govsd.sock")
	fake := dataplanetest.New("fake")
	var stderr syncBuffer
	e := testEnv(&stderr, fake)
	ready := make(chan string, 1)
	e.ready = func(_, metricsAddr string) { ready <- metricsAddr }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--socket", socket, "--metrics-address", "127.0.0.1:0", "--log-level", "debug"}, e)
	}()
	var metricsAddr string
	select {
	case metricsAddr = <-ready:
	case err := <-done:
		t.Fatalf("run returned early: %v\n%s", err, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("govsd did not become ready")
	}

	c := api.NewClient(socket)
	defer c.CloseIdleConnections()
	k := ipvs.TCPService(netip.MustParseAddrPort("10.0.0.1:80"))
	if err := c.AddService(ctx, ipvs.Service{ServiceKey: k, Scheduler: "rr"}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddDest(ctx, k, ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	if len(fake.Config()) != 1 {
		t.Errorf("data plane holds %+v", fake.Config())
	}
	info, err := c.Info(ctx)
	if err != nil || info.Version != "1.2.1" || info.ConnTabSize != 4096 || info.Dataplane != "fake" || info.NumServices != 1 {
		t.Errorf("Info = %+v, %v", info, err)
	}

	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`govs_dataplane_up{dataplane="fake"} 1`, `govs_destination_weight{family="ipv4"`, "go_goroutines"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("govsd did not stop")
	}
	if _, err := os.Stat(socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
	if !fake.Closed() {
		t.Error("data plane not closed")
	}
	if _, err := c.Info(context.Background()); !errors.Is(err, api.ErrUnreachable) {
		t.Errorf("after shutdown: %v, want ErrUnreachable", err)
	}
	for _, want := range []string{"govsd started", "service added", "destination added", "govsd stopped"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, stderr.String())
		}
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live.sock")
	l, err := api.Listen(live)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	badRules := filepath.Join(dir, "bad.rules")
	if err := os.WriteFile(badRules, []byte("-A -t 127.0.0.1:80 -s rr\n-A -t 127.0.0.1:81 -s nosuch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"socket in use", []string{"--socket", live}, "another govsd answers on it"},
		{"socket under a file", []string{"--socket", filepath.Join(dir, "live.sock", "x.sock")}, "pass --socket"},
		{"metrics address in use", []string{"--socket", filepath.Join(dir, "a.sock"), "--metrics-address", busy.Addr().String()}, `--metrics-address ""`},
		{"rules file missing", []string{"--socket", filepath.Join(dir, "b.sock"), "--rules", filepath.Join(dir, "none.rules")}, "open rules:"},
		{"rules line refused", []string{"--socket", filepath.Join(dir, "c.sock"), "--rules", badRules}, "bad.rules:2: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := dataplanetest.New("fake")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, tt.args, testEnv(io.Discard, fake))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run = %v, want an error saying %q", err, tt.want)
			}
			if !fake.Closed() {
				t.Error("data plane not closed")
			}
		})
	}
}

func TestFlags(t *testing.T) {
	e := testEnv(io.Discard, nil)
	e.getenv = func(k string) string {
		if k == api.SocketEnv {
			return "/tmp/from-env.sock"
		}
		return ""
	}
	o, err := parseFlags(nil, e)
	if err != nil || o.socket != "/tmp/from-env.sock" || o.dataplane.name != "proxy" || o.metricsAddress != "127.0.0.1:9477" || o.logLevel != slog.LevelInfo {
		t.Errorf("defaults = %+v, %v", o, err)
	}
	o, err = parseFlags([]string{"--socket", "/x.sock", "--dataplane", "ebpf", "--metrics-address", "", "--log-level", "warn"}, e)
	if err != nil || o.socket != "/x.sock" || o.dataplane.name != "ebpf" || o.metricsAddress != "" || o.logLevel != slog.LevelWarn {
		t.Errorf("flags = %+v, %v", o, err)
	}
	for _, bad := range [][]string{{"--dataplane", "xdp"}, {"--log-level", "loud"}, {"extra"}, {"--socket", ""}, {"-t"}, {"-f", "k.conf", "--rules", "r"}} {
		if _, err := parseFlags(bad, e); !errors.Is(err, errUsage) {
			t.Errorf("parseFlags(%q) = %v, want a usage error", bad, err)
		}
	}
	if o, err := parseFlags([]string{"--dataplane", "ebpf", "--interface", "eth0,eth1", "--interface", "eth2", "--xdp"}, testEnv(io.Discard, nil)); err != nil ||
		strings.Join(o.dataplane.interfaces, " ") != "eth0 eth1 eth2" || !o.dataplane.xdp {
		t.Errorf("ebpf flags: %+v, %v", o.dataplane, err)
	}
	if o, _ := parseFlags(nil, testEnv(io.Discard, nil)); o.socket != api.DefaultSocket {
		t.Errorf("default socket %q", o.socket)
	}
}

func TestNewDataplane(t *testing.T) {
	eng := engine.New(engine.Options{})
	if _, err := newDataplane(dataplaneOptions{name: "ebpf"}, eng, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "pass --interface") {
		t.Errorf("ebpf without interfaces: %v", err)
	}
	if _, err := newDataplane(dataplaneOptions{name: "nope"}, eng, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("unknown data plane accepted")
	}
}

// TestRunDemo runs govsd --demo as the README's quick start does, with
// the real proxy data plane, for three requests.
func TestRunDemo(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	vip := l.Addr().String()
	l.Close()
	var stdout, stderr syncBuffer
	e := env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }, newDataplane: newDataplane}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	socket := filepath.Join(t.TempDir(), "demo.sock")
	if err := run(ctx, []string{"--demo", "--demo-vip", vip, "--demo-requests", "3", "--socket", socket}, e); err != nil {
		t.Fatalf("run --demo: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"IP Virtual Server version 1.2.1 (size=4096)",
		"TCP  " + vip + " wrr",
		"Try it:   curl http://" + vip + "/",
		"GOVS_SOCKET=" + socket,
		"request 3 -> rs1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

func TestRunRestoresRules(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "ok.rules")
	if err := os.WriteFile(rules, []byte("-A -t 127.0.0.1:80 -s rr\n-a -t 127.0.0.1:80 -r 127.0.0.2:80 -m -w 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fake := dataplanetest.New("fake")
	e := testEnv(io.Discard, fake)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var svcs []ipvs.ServiceState
	var err error
	e.ready = func(string, string) { svcs, err = fake.Services(); cancel() }
	if err := run(ctx, []string{"--socket", filepath.Join(dir, "s.sock"), "--metrics-address", "", "--rules", rules}, e); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 1 || len(svcs[0].Dests) != 1 || svcs[0].Dests[0].Weight != 2 {
		t.Fatalf("data plane has %+v, want the rules' one service with one weight-2 destination", svcs)
	}
}
