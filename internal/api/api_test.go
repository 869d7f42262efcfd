package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/api/apitest"
	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/ipvs"
)

// serve starts an API server for d on a unix socket in a temporary
// directory and returns its path.
func serve(t *testing.T, d api.Director) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run", "govsd.sock")
	l, err := api.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := &http.Server{Handler: api.NewServer(d, log)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return path
}

func newPair(t *testing.T) (*apitest.Director, *api.Client) {
	t.Helper()
	fake := apitest.New()
	c := api.NewClient(serve(t, fake))
	t.Cleanup(c.CloseIdleConnections)
	return fake, c
}

var (
	tcp4   = ipvs.TCPService(netip.MustParseAddrPort("10.0.0.1:80"))
	udp6   = ipvs.UDPService(netip.MustParseAddrPort("[2001:db8::1]:53"))
	sctp4  = ipvs.ServiceKey{Family: ipvs.IPv4, Protocol: ipvs.ProtoSCTP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 9000}
	mark4  = ipvs.FWMarkService(7, ipvs.IPv4)
	mark6  = ipvs.FWMarkService(7, ipvs.IPv6)
	allKey = []ipvs.ServiceKey{tcp4, udp6, sctp4, mark4, mark6}
)

// lastCall returns the arguments of the fake's last call, which must be
// of method.
func lastCall(t *testing.T, fake *apitest.Director, method string) []any {
	t.Helper()
	calls := fake.Calls()
	if len(calls) == 0 {
		t.Fatalf("no calls, want %s", method)
	}
	c := calls[len(calls)-1]
	if c.Method != method {
		t.Fatalf("last call %s, want %s", c.Method, method)
	}
	return c.Args
}

func check(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func TestRoundTrip(t *testing.T) {
	fake, c := newPair(t)
	ctx := context.Background()

	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Info", info, api.Info{Version: "1.2.1", ConnTabSize: 4096, Dataplane: "fake", GovsVersion: "test"})

	// Services of every kind, with every field set.
	var svcs []ipvs.Service
	for i, k := range allKey {
		svc := ipvs.Service{ServiceKey: k, Scheduler: "wrr", SchedFlags: ipvs.SchedFallback | ipvs.SchedPort,
			Persistent: true, Timeout: uint32(300 + i), Netmask: 24, OnePacket: i%2 == 0}
		if i == 0 {
			svc.PE = "sip"
		}
		if err := c.AddService(ctx, svc); err != nil {
			t.Fatalf("AddService(%s): %v", k, err)
		}
		check(t, "AddService args", lastCall(t, fake, "AddService"), []any{svc})
		svcs = append(svcs, svc)
	}

	edited := svcs[3]
	edited.Scheduler, edited.Timeout = "sh", 60
	if err := c.EditService(ctx, edited); err != nil {
		t.Fatal(err)
	}
	check(t, "EditService args", lastCall(t, fake, "EditService"), []any{edited})
	svcs[3] = edited

	dests := []ipvs.Destination{
		{Addr: netip.MustParseAddr("10.0.0.2"), Port: 8080, Fwd: ipvs.Masq, Weight: 3, Upper: 100, Lower: 10},
		{Addr: netip.MustParseAddr("10.0.0.3"), Port: 80, Fwd: ipvs.Route, Weight: 0},
		{Addr: netip.MustParseAddr("2001:db8::9"), Port: 80, Fwd: ipvs.Tunnel, Weight: 1, TunType: ipvs.TunGUE, TunPort: 6080, TunFlags: ipvs.TunRemCsum},
		{Addr: netip.MustParseAddr("10.0.0.4"), Port: 80, Fwd: ipvs.Local, Weight: 1},
	}
	for _, k := range allKey {
		for _, d := range dests {
			if err := c.AddDest(ctx, k, d); err != nil {
				t.Fatalf("AddDest(%s, %s): %v", k, d.AddrPort(), err)
			}
			check(t, "AddDest args", lastCall(t, fake, "AddDest"), []any{k, d})
		}
	}
	ed := dests[2]
	ed.Weight, ed.TunFlags = 9, ipvs.TunCsum
	for _, k := range allKey {
		if err := c.EditDest(ctx, k, ed); err != nil {
			t.Fatalf("EditDest(%s): %v", k, err)
		}
		check(t, "EditDest args", lastCall(t, fake, "EditDest"), []any{k, ed})
	}
	if err := c.DelDest(ctx, mark6, dests[0].Key()); err != nil {
		t.Fatal(err)
	}
	check(t, "DelDest args", lastCall(t, fake, "DelDest"), []any{mark6, dests[0].Key()})

	// Reads return what the director has, counters and rates included.
	state, err := fake.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range state {
		state[i].Stats = ipvs.Counters{Conns: 1, InPkts: 2, OutPkts: 3, InBytes: 4, OutBytes: 1 << 62}
		state[i].Rates = ipvs.Rates{CPS: 5, InPPS: 6, OutPPS: 7, InBPS: 8, OutBPS: 9}
		for j := range state[i].Dests {
			state[i].Dests[j].ActiveConns, state[i].Dests[j].InactConns, state[i].Dests[j].PersistConns = 10, 11, 12
			state[i].Dests[j].Overloaded = j == 0
			state[i].Dests[j].Stats = ipvs.Counters{Conns: 13}
			state[i].Dests[j].Rates = ipvs.Rates{OutBPS: 14}
		}
	}
	conns := []conn.Info{
		{Proto: ipvs.ProtoTCP, Client: netip.MustParseAddrPort("192.0.2.1:40000"), Virtual: netip.MustParseAddrPort("10.0.0.1:80"),
			Dest: netip.MustParseAddrPort("10.0.0.2:8080"), State: "ESTABLISHED", Expires: 899*time.Second + 5*time.Millisecond,
			Fwd: ipvs.Masq, InPkts: 3, OutPkts: 4},
		{Proto: ipvs.ProtoUDP, Template: true, FWMark: 7, Client: netip.MustParseAddrPort("[2001:db8::100]:0"),
			Dest: netip.MustParseAddrPort("[2001:db8::9]:0"), State: "NONE", Expires: time.Minute, Fwd: ipvs.Tunnel},
	}
	fake.SetState(state, conns)

	got, err := c.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Services", got, state)
	for i, k := range allKey {
		one, err := c.Service(ctx, k)
		if err != nil {
			t.Fatalf("Service(%s): %v", k, err)
		}
		check(t, "Service "+k.String(), one, state[i])
		check(t, "Service config "+k.String(), one.Service, svcs[i])
	}
	gotConns, err := c.Conns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Conns", gotConns, conns)

	if err := c.Zero(ctx, &udp6); err != nil {
		t.Fatal(err)
	}
	check(t, "Zero(k) args", lastCall(t, fake, "Zero"), []any{udp6})
	if err := c.Zero(ctx, nil); err != nil {
		t.Fatal(err)
	}
	check(t, "Zero(nil) args", lastCall(t, fake, "Zero"), []any{nil})

	to, err := c.Timeouts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Timeouts", to, conn.DefaultTimeouts)
	set := conn.Timeouts{TCP: 1000 * time.Second, UDP: 1500 * time.Millisecond}
	if err := c.SetTimeouts(ctx, set); err != nil {
		t.Fatal(err)
	}
	check(t, "SetTimeouts args", lastCall(t, fake, "SetTimeouts"), []any{set})
	to, _ = c.Timeouts(ctx)
	check(t, "Timeouts after set", to, conn.Timeouts{TCP: 1000 * time.Second, TCPFin: 120 * time.Second, UDP: 1500 * time.Millisecond})

	sd := api.SyncDaemon{State: "master", Interface: "eth0", SyncID: 9, SyncMaxLen: 1472,
		Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1}
	if err := c.StartDaemon(ctx, sd); err != nil {
		t.Fatal(err)
	}
	check(t, "StartDaemon args", lastCall(t, fake, "StartDaemon"), []any{sd})
	ds, err := c.Daemons(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Daemons", ds, []api.SyncDaemon{sd})
	if err := c.StopDaemon(ctx, "master"); err != nil {
		t.Fatal(err)
	}
	check(t, "StopDaemon args", lastCall(t, fake, "StopDaemon"), []any{"master"})
	if ds, err := c.Daemons(ctx); err != nil || len(ds) != 0 {
		t.Errorf("Daemons after stop = %v, %v; want none", ds, err)
	}

	if err := c.DelService(ctx, sctp4); err != nil {
		t.Fatal(err)
	}
	check(t, "DelService args", lastCall(t, fake, "DelService"), []any{sctp4})
	if info, _ := c.Info(ctx); info.NumServices != 4 {
		t.Errorf("NumServices = %d after one delete, want 4", info.NumServices)
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	lastCall(t, fake, "Flush")
	got, err = c.Services(ctx)
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("Services after flush = %#v, %v; want an empty list", got, err)
	}
}

// methods calls every Director method of c once, with valid arguments.
func methods() map[string]func(context.Context, api.Director) error {
	d := ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Fwd: ipvs.Route, Weight: 1}
	svc := ipvs.Service{ServiceKey: tcp4, Scheduler: "wlc", Netmask: 32}
	return map[string]func(context.Context, api.Director) error{
		"Info":        func(ctx context.Context, c api.Director) error { _, err := c.Info(ctx); return err },
		"AddService":  func(ctx context.Context, c api.Director) error { return c.AddService(ctx, svc) },
		"EditService": func(ctx context.Context, c api.Director) error { return c.EditService(ctx, svc) },
		"DelService":  func(ctx context.Context, c api.Director) error { return c.DelService(ctx, mark6) },
		"Flush":       func(ctx context.Context, c api.Director) error { return c.Flush(ctx) },
		"AddDest":     func(ctx context.Context, c api.Director) error { return c.AddDest(ctx, udp6, d) },
		"EditDest":    func(ctx context.Context, c api.Director) error { return c.EditDest(ctx, mark4, d) },
		"DelDest":     func(ctx context.Context, c api.Director) error { return c.DelDest(ctx, tcp4, d.Key()) },
		"Zero":        func(ctx context.Context, c api.Director) error { return c.Zero(ctx, &tcp4) },
		"Services":    func(ctx context.Context, c api.Director) error { _, err := c.Services(ctx); return err },
		"Service":     func(ctx context.Context, c api.Director) error { _, err := c.Service(ctx, sctp4); return err },
		"Conns":       func(ctx context.Context, c api.Director) error { _, err := c.Conns(ctx); return err },
		"Timeouts":    func(ctx context.Context, c api.Director) error { _, err := c.Timeouts(ctx); return err },
		"SetTimeouts": func(ctx context.Context, c api.Director) error {
			return c.SetTimeouts(ctx, conn.Timeouts{TCP: time.Second})
		},
		"StartDaemon": func(ctx context.Context, c api.Director) error {
			return c.StartDaemon(ctx, api.SyncDaemon{State: "backup", Interface: "eth1"})
		},
		"StopDaemon": func(ctx context.Context, c api.Director) error { return c.StopDaemon(ctx, "backup") },
		"Daemons":    func(ctx context.Context, c api.Director) error { _, err := c.Daemons(ctx); return err },
	}
}

func TestErrorCodes(t *testing.T) {
	fake, c := newPair(t)
	ctx := context.Background()
	codes := []struct {
		err    error
		code   string
		status int
	}{
		{ipvs.ErrServiceExists, api.CodeServiceExists, 409},
		{ipvs.ErrNoService, api.CodeNoService, 404},
		{ipvs.ErrDestExists, api.CodeDestExists, 409},
		{ipvs.ErrNoDest, api.CodeNoDest, 404},
		{ipvs.ErrNoScheduler, api.CodeNoScheduler, 422},
		{ipvs.ErrDaemonRunning, api.CodeDaemonRunning, 409},
		{ipvs.ErrNoDaemon, api.CodeNoDaemon, 404},
		{dataplane.ErrUnsupported, api.CodeUnsupported, 501},
		{ipvs.ErrInvalid, api.CodeInvalid, 400},
		{errors.New("disk on fire"), api.CodeInternal, 500},
	}
	sentinels := []error{ipvs.ErrServiceExists, ipvs.ErrNoService, ipvs.ErrDestExists, ipvs.ErrNoDest,
		ipvs.ErrNoScheduler, ipvs.ErrDaemonRunning, ipvs.ErrNoDaemon, dataplane.ErrUnsupported, ipvs.ErrInvalid}
	for name, call := range methods() {
		for _, tc := range codes {
			t.Run(name+"/"+tc.code, func(t *testing.T) {
				sent := fmt.Errorf("%s of something: %w", name, tc.err)
				fake.Fail(name, sent)
				defer fake.Fail(name, nil)
				err := call(ctx, c)
				if err == nil {
					t.Fatal("no error")
				}
				if err.Error() != sent.Error() {
					t.Errorf("message %q, want %q", err, sent)
				}
				var ae *api.Error
				if !errors.As(err, &ae) || ae.Code != tc.code || ae.Status != tc.status {
					t.Fatalf("error %#v, want code %s status %d", err, tc.code, tc.status)
				}
				for _, s := range sentinels {
					if got, want := errors.Is(err, s), s == tc.err; got != want {
						t.Errorf("errors.Is(err, %q) = %v, want %v", s, got, want)
					}
				}
			})
		}
	}
}

func TestJoinedValidationErrors(t *testing.T) {
	fake, c := newPair(t)
	joined := errors.Join(
		&ipvs.FieldError{Field: "service.timeout", Value: 0, Msg: "persistence timeout must be 1..2678400 seconds"},
		&ipvs.FieldError{Field: "service.netmask", Value: 0, Msg: "must be 1..32"})
	fake.Fail("AddService", joined)
	err := c.AddService(context.Background(), ipvs.Service{ServiceKey: tcp4})
	if !errors.Is(err, ipvs.ErrInvalid) || err.Error() != joined.Error() {
		t.Errorf("err = %v, want the joined validation errors", err)
	}
}

func TestRealFakeErrors(t *testing.T) {
	// The fake's own table rules, through the socket.
	_, c := newPair(t)
	ctx := context.Background()
	svc := ipvs.Service{ServiceKey: tcp4, Scheduler: "rr", Netmask: 32}
	if err := c.AddService(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if err := c.AddService(ctx, svc); !errors.Is(err, ipvs.ErrServiceExists) {
		t.Errorf("second AddService: %v, want ErrServiceExists", err)
	}
	if _, err := c.Service(ctx, udp6); !errors.Is(err, ipvs.ErrNoService) {
		t.Errorf("Service(missing): %v, want ErrNoService", err)
	}
	if err := c.DelDest(ctx, tcp4, ipvs.DestKey{Addr: netip.MustParseAddr("10.9.9.9"), Port: 80}); !errors.Is(err, ipvs.ErrNoDest) {
		t.Errorf("DelDest(missing): %v, want ErrNoDest", err)
	}
	if err := c.StopDaemon(ctx, "master"); !errors.Is(err, ipvs.ErrNoDaemon) {
		t.Errorf("StopDaemon: %v, want ErrNoDaemon", err)
	}
}

func TestClientRejectsUnencodableKeys(t *testing.T) {
	fake, c := newPair(t)
	ctx := context.Background()
	bad := ipvs.ServiceKey{Family: ipvs.IPv6, Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}
	d := ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80}
	for name, err := range map[string]error{
		"EditService": c.EditService(ctx, ipvs.Service{ServiceKey: bad}),
		"DelService":  c.DelService(ctx, bad),
		"AddDest":     c.AddDest(ctx, bad, d),
		"EditDest":    c.EditDest(ctx, tcp4, ipvs.Destination{}),
		"DelDest":     c.DelDest(ctx, tcp4, ipvs.DestKey{Addr: netip.MustParseAddr("fe80::1%eth0")}),
		"Zero":        c.Zero(ctx, &bad),
		"StopDaemon":  c.StopDaemon(ctx, ""),
	} {
		if !errors.Is(err, ipvs.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if calls := fake.Calls(); len(calls) != 0 {
		t.Errorf("the director was called: %v", calls)
	}
}

// raw sends a request straight to the socket and returns the status, the
// Allow header and the decoded error body.
func raw(t *testing.T, socket, method, path, body string) (int, string, api.ErrorBody) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequest(method, "http://govsd"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb api.ErrorBody
	if resp.StatusCode >= 300 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", method, path, ct)
		}
		if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
			t.Errorf("%s %s: error body: %v", method, path, err)
		}
	}
	return resp.StatusCode, resp.Header.Get("Allow"), eb
}

func TestServerRequests(t *testing.T) {
	fake := apitest.New()
	socket := serve(t, fake)
	svcJSON := `{"protocol":"tcp","addr":"10.0.0.1","port":80,"scheduler":"rr","netmask":32}`
	tests := []struct {
		method, path, body string
		status             int
		code, allow        string
	}{
		// The family may be left out: it is the address's.
		{"POST", "/v1/services", svcJSON, 201, "", ""},
		{"POST", "/v1/services", svcJSON, 409, api.CodeServiceExists, ""},
		{"GET", "/v1/services/tcp/10.0.0.1:80", "", 200, "", ""},
		{"PUT", "/v1/services/tcp/10.0.0.1:80", `{"scheduler":"wlc","netmask":32}`, 204, "", ""},
		{"PUT", "/v1/services/tcp/10.0.0.1:80", svcJSON, 204, "", ""},
		{"PUT", "/v1/services/tcp/10.0.0.1:80", `{"protocol":"tcp","addr":"10.0.0.1","port":81,"scheduler":"rr"}`, 400, api.CodeInvalid, ""},
		{"POST", "/v1/services/tcp/10.0.0.1:80/dests", `{"addr":"10.0.0.2","port":80,"fwd":"route","weight":1}`, 201, "", ""},
		{"PUT", "/v1/services/tcp/10.0.0.1:80/dests/10.0.0.2:80", `{"fwd":"route","weight":5}`, 204, "", ""},
		{"PUT", "/v1/services/tcp/10.0.0.1:80/dests/10.0.0.2:80", `{"addr":"10.0.0.3","port":80,"weight":5}`, 400, api.CodeInvalid, ""},
		{"DELETE", "/v1/services/tcp/10.0.0.1:80/dests/10.0.0.3:80", "", 404, api.CodeNoDest, ""},
		{"DELETE", "/v1/services/tcp/10.0.0.1:80/dests/nonsense", "", 400, api.CodeInvalid, ""},
		{"POST", "/v1/services/tcp/10.0.0.1:80/zero", "", 204, "", ""},
		{"GET", "/v1/services/tcp/10.0.0.1:80/zero", "", 405, api.CodeMethodNotAllowed, "POST"},
		{"POST", "/v1/services/tcp/10.0.0.1:80", "", 405, api.CodeMethodNotAllowed, "GET, PUT, DELETE"},
		{"GET", "/v1/services/tcp/10.0.0.1:80/other", "", 404, api.CodeNotFound, ""},
		{"GET", "/v1/services/tcp/10.0.0.1", "", 400, api.CodeInvalid, ""},
		{"GET", "/v1/services/fwmark/7", "", 400, api.CodeInvalid, ""},
		{"GET", "/v1/services/fwmark/7/ipv4", "", 404, api.CodeNoService, ""},
		{"PUT", "/v1/services/fwmark/7/ipv6", `{"fwmark":7,"scheduler":"rr"}`, 404, api.CodeNoService, ""},
		{"PUT", "/v1/services/fwmark/7/ipv6", `{"fwmark":7,"family":"ipv4","scheduler":"rr"}`, 400, api.CodeInvalid, ""},
		{"GET", "/v1/services/udp/%5B2001:db8::1%5D:53", "", 404, api.CodeNoService, ""},
		{"POST", "/v1/services", `{"protocol":"tcp"`, 400, api.CodeInvalid, ""},
		{"POST", "/v1/services", ``, 400, api.CodeInvalid, ""},
		{"POST", "/v1/services", `{"protocol":"tcp","colour":"blue"}`, 400, api.CodeInvalid, ""},
		{"POST", "/v1/services", `{"protocol":"icmp"}`, 400, api.CodeInvalid, ""},
		{"POST", "/v1/services", `{} {}`, 400, api.CodeInvalid, ""},
		{"PUT", "/v1/timeouts", `{"tcp":1000000000000}`, 204, "", ""},
		{"POST", "/v1/info", "", 405, api.CodeMethodNotAllowed, "GET, HEAD"},
		{"GET", "/v2/info", "", 404, api.CodeNotFound, ""},
		{"DELETE", "/v1/daemons/master", "", 404, api.CodeNoDaemon, ""},
		{"DELETE", "/v1/services", "", 204, "", ""},
	}
	for _, tt := range tests {
		status, allow, eb := raw(t, socket, tt.method, tt.path, tt.body)
		if status != tt.status || eb.Code != tt.code || allow != tt.allow {
			t.Errorf("%s %s %s: %d %q allow %q (%s); want %d %q allow %q",
				tt.method, tt.path, tt.body, status, eb.Code, allow, eb.Message, tt.status, tt.code, tt.allow)
		}
		if tt.code != "" && eb.Message == "" {
			t.Errorf("%s %s: empty error message", tt.method, tt.path)
		}
	}
	// The PUT with no key in the body edited the service of the path.
	var edits []ipvs.Service
	for _, c := range fake.Calls() {
		if c.Method == "EditService" {
			edits = append(edits, c.Args[0].(ipvs.Service))
		}
	}
	// The fwmark PUT without a family got the path's.
	if len(edits) != 3 || edits[0].ServiceKey != tcp4 || edits[0].Scheduler != "wlc" || edits[1].ServiceKey != tcp4 || edits[2].ServiceKey != mark6 {
		t.Errorf("EditService calls = %+v", edits)
	}
}

func TestUnreachable(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()

	// No socket file at all.
	missing := filepath.Join(dir, "missing.sock")
	_, err := api.NewClient(missing).Info(ctx)
	if !errors.Is(err, api.ErrUnreachable) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing socket: %v, want ErrUnreachable and ErrNotExist", err)
	}
	if err != nil && (!strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), api.SocketEnv)) {
		t.Errorf("missing socket: message %q should name the socket and %s", err, api.SocketEnv)
	}

	// A socket file nobody listens on (a govsd that died).
	stale := staleSocket(t, dir)
	if _, err := api.NewClient(stale).Services(ctx); !errors.Is(err, api.ErrUnreachable) {
		t.Errorf("stale socket: %v, want ErrUnreachable", err)
	}
}

// staleSocket leaves a socket file with no listener behind, as a killed
// govsd does.
func staleSocket(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestListen(t *testing.T) {
	dir := t.TempDir()

	t.Run("creates the directory, mode 0660, removes the socket on close", func(t *testing.T) {
		path := filepath.Join(dir, "a", "b", "govsd.sock")
		l, err := api.Listen(path)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != api.SocketMode {
			t.Errorf("mode %v, want socket %v", fi.Mode(), api.SocketMode)
		}
		l.Close()
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("socket still there after Close: %v", err)
		}
	})

	t.Run("replaces a stale socket", func(t *testing.T) {
		path := staleSocket(t, dir)
		l, err := api.Listen(path)
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
	})

	t.Run("refuses a live socket", func(t *testing.T) {
		path := filepath.Join(dir, "live.sock")
		l, err := api.Listen(path)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if l2, err := api.Listen(path); !errors.Is(err, api.ErrSocketInUse) {
			if l2 != nil {
				l2.Close()
			}
			t.Fatalf("second Listen: %v, want ErrSocketInUse", err)
		}
		// The first listener still works.
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatalf("first listener lost its socket: %v", err)
		}
		c.Close()
	})

	t.Run("never removes a file that is not a socket", func(t *testing.T) {
		path := filepath.Join(dir, "file")
		if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := api.Listen(path); !errors.Is(err, fs.ErrExist) {
			t.Errorf("Listen on a file: %v, want ErrExist", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "precious" {
			t.Error("the file was touched")
		}
	})

	t.Run("names the directory it cannot create", func(t *testing.T) {
		path := filepath.Join(dir, "file", "sub", "govsd.sock")
		if _, err := api.Listen(path); err == nil || !strings.Contains(err.Error(), "create socket directory") {
			t.Errorf("Listen under a file: %v", err)
		}
	})
}

func TestContextCancel(t *testing.T) {
	_, c := newPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Info(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Info with a cancelled context: %v, want context.Canceled", err)
	}
}
