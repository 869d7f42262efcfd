package director_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/dataplane/dataplanetest"
	"github.com/govs/govs/internal/director"
	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/ipvs"
)

var (
	ctx  = context.Background()
	vip  = ipvs.TCPService(netip.MustParseAddrPort("10.0.0.1:80"))
	vip2 = ipvs.UDPService(netip.MustParseAddrPort("[2001:db8::1]:53"))
	mark = ipvs.FWMarkService(7, ipvs.IPv4)
	rs1  = ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Fwd: ipvs.Route, Weight: 1}
	rs2  = ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.3"), Port: 8080, Fwd: ipvs.Masq, Weight: 2}
)

type rig struct {
	d   *director.Director
	eng *engine.Engine
	dp  *dataplanetest.Fake
	log *bytes.Buffer
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{eng: engine.New(engine.Options{}), dp: dataplanetest.New("fake"), log: &bytes.Buffer{}}
	var err error
	r.d, err = director.New(director.Config{
		Engine: r.eng, Dataplane: r.dp, Version: "test",
		Log: slog.New(slog.NewTextHandler(&lockedWriter{w: r.log}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func svc(k ipvs.ServiceKey, sched string) ipvs.Service {
	s := ipvs.Service{ServiceKey: k, Scheduler: sched}
	s.SetDefaults()
	return s
}

// config strips live state from a listing, sorted by key.
func config(ss []ipvs.ServiceState) []ipvs.ServiceState {
	out := make([]ipvs.ServiceState, 0, len(ss))
	for _, s := range ss {
		c := ipvs.ServiceState{Service: s.Service}
		for _, d := range s.Dests {
			c.Dests = append(c.Dests, ipvs.DestState{Destination: d.Destination})
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b ipvs.ServiceState) int {
		return cmp.Compare(fmt.Sprint(a.ServiceKey), fmt.Sprint(b.ServiceKey))
	})
	return out
}

// agree fails the test unless the engine and the data plane hold the
// same configuration, destinations in the same order.
func (r *rig) agree(t *testing.T) {
	t.Helper()
	e, f := config(r.eng.Services(time.Now())), config(r.dp.Config())
	if !reflect.DeepEqual(e, f) {
		t.Fatalf("engine and data plane disagree:\nengine %+v\n  fake %+v", e, f)
	}
	if got, want := r.dp.Timeouts(), r.eng.Timeouts(); got != want {
		t.Fatalf("timeouts disagree: engine %v, data plane %v", want, got)
	}
}

func (r *rig) mustAdd(t *testing.T, s ipvs.Service, dests ...ipvs.Destination) {
	t.Helper()
	if err := r.d.AddService(ctx, s); err != nil {
		t.Fatal(err)
	}
	for _, d := range dests {
		if err := r.d.AddDest(ctx, s.ServiceKey, d); err != nil {
			t.Fatal(err)
		}
	}
}

func methods(calls []dataplanetest.Call) []string {
	var out []string
	for _, c := range calls {
		out = append(out, c.Method)
	}
	return out
}

func TestChangesMirrored(t *testing.T) {
	r := newRig(t)
	r.mustAdd(t, svc(vip, "wrr"), rs1, rs2)
	r.mustAdd(t, svc(vip2, "rr"))
	if err := r.d.EditService(ctx, svc(vip, "lc")); err != nil {
		t.Fatal(err)
	}
	e := rs2
	e.Weight = 9
	if err := r.d.EditDest(ctx, vip, e); err != nil {
		t.Fatal(err)
	}
	if err := r.d.DelDest(ctx, vip, rs1.Key()); err != nil {
		t.Fatal(err)
	}
	if err := r.d.DelService(ctx, vip2); err != nil {
		t.Fatal(err)
	}
	r.agree(t)
	want := []string{
		"Services", // New adopts what the data plane already forwards
		"CheckService", "AddService", "CheckDest", "AddDest", "CheckDest", "AddDest",
		"CheckService", "AddService", "CheckService", "EditService", "CheckDest", "EditDest",
		"DelDest", "DelService",
	}
	if got := methods(r.dp.Calls()); !reflect.DeepEqual(got, want) {
		t.Errorf("data plane calls:\n got %v\nwant %v", got, want)
	}
	st, _ := r.eng.Service(time.Now(), vip)
	if st.Scheduler != "lc" || len(st.Dests) != 1 || st.Dests[0].Weight != 9 {
		t.Errorf("engine state %+v", st)
	}
	for _, msg := range []string{"service added", "destination added", "service edited", "destination edited", "destination deleted", "service deleted"} {
		if !strings.Contains(r.log.String(), msg) {
			t.Errorf("log lacks %q:\n%s", msg, r.log)
		}
	}
}

func TestNormalisedBeforeMirroring(t *testing.T) {
	r := newRig(t)
	// No family, no netmask, no scheduler: the engine's defaults, and the
	// data plane sees the same.
	k := ipvs.ServiceKey{Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr("::ffff:10.0.0.9"), Port: 443}
	if err := r.d.AddService(ctx, ipvs.Service{ServiceKey: k}); err != nil {
		t.Fatal(err)
	}
	// A DR destination cannot map ports: its port becomes the service's.
	if err := r.d.AddDest(ctx, k, ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Fwd: ipvs.Route, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	r.agree(t)
	got := r.dp.Config()[0]
	if got.Family != ipvs.IPv4 || got.Addr != netip.MustParseAddr("10.0.0.9") || got.Scheduler != "wlc" || got.Netmask != 32 {
		t.Errorf("data plane got service %+v", got.Service)
	}
	if got.Dests[0].Port != 443 {
		t.Errorf("data plane got destination %+v, want port 443", got.Dests[0])
	}
	// The same key, written either way, names the service.
	if _, err := r.d.Service(ctx, k); err != nil {
		t.Error(err)
	}
	if err := r.d.DelService(ctx, ipvs.TCPService(netip.MustParseAddrPort("10.0.0.9:443"))); err != nil {
		t.Error(err)
	}
	r.agree(t)
}

func TestDataplaneFailureRollsBack(t *testing.T) {
	tests := []struct {
		name   string
		method string
		change func(d *director.Director) error
	}{
		{"add service", "AddService", func(d *director.Director) error { return d.AddService(ctx, svc(vip2, "rr")) }},
		{"edit service", "EditService", func(d *director.Director) error { return d.EditService(ctx, svc(vip, "sh")) }},
		{"delete service", "DelService", func(d *director.Director) error { return d.DelService(ctx, vip) }},
		{"add destination", "AddDest", func(d *director.Director) error {
			return d.AddDest(ctx, vip, ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.4"), Port: 80, Weight: 1})
		}},
		{"edit destination", "EditDest", func(d *director.Director) error {
			e := rs2
			e.Weight, e.Upper = 0, 10
			return d.EditDest(ctx, vip, e)
		}},
		{"delete destination", "DelDest", func(d *director.Director) error { return d.DelDest(ctx, vip, rs1.Key()) }},
		{"flush", "DelService", func(d *director.Director) error { return d.Flush(ctx) }},
		{"flush at the end", "Flush", func(d *director.Director) error { return d.Flush(ctx) }},
		{"set timeouts", "SetTimeouts", func(d *director.Director) error {
			return d.SetTimeouts(ctx, conn.Timeouts{TCP: time.Hour, UDP: time.Minute})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			r.mustAdd(t, svc(vip, "wrr"), rs1, rs2)
			r.mustAdd(t, svc(mark, "sh"), rs1)
			before := config(r.eng.Services(time.Now()))
			beforeTO := r.eng.Timeouts()
			r.dp.FailNext(tt.method, nil)
			err := tt.change(r.d)
			if !errors.Is(err, dataplanetest.ErrInjected) {
				t.Fatalf("err = %v, want the data plane's failure", err)
			}
			if strings.Contains(err.Error(), "disagree") {
				t.Errorf("rollback failed: %v", err)
			}
			if tt.method != "Flush" {
				if after := config(r.eng.Services(time.Now())); !reflect.DeepEqual(after, before) {
					t.Errorf("engine changed:\nbefore %+v\n after %+v", before, after)
				}
			}
			if r.eng.Timeouts() != beforeTO {
				t.Errorf("timeouts changed to %v", r.eng.Timeouts())
			}
			r.agree(t)
		})
	}
}

func TestRefusedBeforeAnythingChanges(t *testing.T) {
	r := newRig(t)
	r.mustAdd(t, svc(vip, "wrr"), rs1)
	r.dp.Unsupported(ipvs.Tunnel)
	r.dp.ResetCalls()
	tun := ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.5"), Port: 80, Fwd: ipvs.Tunnel, Weight: 1}
	if err := r.d.AddDest(ctx, vip, tun); !errors.Is(err, dataplane.ErrUnsupported) {
		t.Fatalf("AddDest(tunnel) = %v, want ErrUnsupported", err)
	}
	e := rs1
	e.Fwd = ipvs.Tunnel
	if err := r.d.EditDest(ctx, vip, e); !errors.Is(err, dataplane.ErrUnsupported) {
		t.Fatalf("EditDest(tunnel) = %v, want ErrUnsupported", err)
	}
	r.dp.Fail("CheckService", fmt.Errorf("fwmark: %w", dataplane.ErrUnsupported))
	if err := r.d.AddService(ctx, svc(mark, "rr")); !errors.Is(err, dataplane.ErrUnsupported) {
		t.Fatalf("AddService(fwmark) = %v, want ErrUnsupported", err)
	}
	if err := r.d.EditService(ctx, svc(vip, "rr")); !errors.Is(err, dataplane.ErrUnsupported) {
		t.Fatalf("EditService = %v, want ErrUnsupported", err)
	}
	if calls := r.dp.ChangeCalls(); len(calls) != 0 {
		t.Errorf("the data plane was changed: %v", calls)
	}
	r.agree(t)
	st, _ := r.eng.Service(time.Now(), vip)
	if len(st.Dests) != 1 || st.Dests[0].Fwd != ipvs.Route || st.Scheduler != "wrr" {
		t.Errorf("engine changed: %+v", st)
	}
}

func TestEngineErrors(t *testing.T) {
	r := newRig(t)
	r.mustAdd(t, svc(vip, "wrr"), rs1)
	r.dp.ResetCalls()
	missing := ipvs.DestKey{Addr: netip.MustParseAddr("10.9.9.9"), Port: 80}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"duplicate service", r.d.AddService(ctx, svc(vip, "rr")), ipvs.ErrServiceExists},
		{"unknown scheduler", r.d.AddService(ctx, svc(vip2, "nope")), ipvs.ErrNoScheduler},
		{"invalid service", r.d.AddService(ctx, ipvs.Service{ServiceKey: ipvs.TCPService(netip.MustParseAddrPort("10.0.0.1:0"))}), ipvs.ErrInvalid},
		{"edit missing service", r.d.EditService(ctx, svc(vip2, "rr")), ipvs.ErrNoService},
		{"delete missing service", r.d.DelService(ctx, vip2), ipvs.ErrNoService},
		{"add dest to missing service", r.d.AddDest(ctx, vip2, rs1), ipvs.ErrNoService},
		{"duplicate dest", r.d.AddDest(ctx, vip, rs1), ipvs.ErrDestExists},
		{"invalid dest", r.d.AddDest(ctx, vip, ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.7"), Port: 80, Weight: -1}), ipvs.ErrInvalid},
		{"edit missing dest", r.d.EditDest(ctx, vip, ipvs.Destination{Addr: missing.Addr, Port: 80, Weight: 1}), ipvs.ErrNoDest},
		{"delete missing dest", r.d.DelDest(ctx, vip, missing), ipvs.ErrNoDest},
		{"delete dest of missing service", r.d.DelDest(ctx, vip2, missing), ipvs.ErrNoService},
		{"zero missing service", r.d.Zero(ctx, &vip2), ipvs.ErrNoService},
		{"read missing service", func() error { _, err := r.d.Service(ctx, vip2); return err }(), ipvs.ErrNoService},
		{"negative timeout", r.d.SetTimeouts(ctx, conn.Timeouts{TCP: -time.Second}), ipvs.ErrInvalid},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	if calls := r.dp.ChangeCalls(); len(calls) != 0 {
		t.Errorf("the data plane was changed: %v", calls)
	}
	r.agree(t)
}

func TestFlush(t *testing.T) {
	r := newRig(t)
	r.mustAdd(t, svc(vip, "wrr"), rs1, rs2)
	r.mustAdd(t, svc(vip2, "rr"))
	r.mustAdd(t, svc(mark, "sh"), rs1)
	// A failure half-way leaves the two agreeing on what is left.
	r.dp.ResetCalls()
	r.dp.FailNext("DelService", nil)
	if err := r.d.Flush(ctx); !errors.Is(err, dataplanetest.ErrInjected) {
		t.Fatalf("Flush = %v", err)
	}
	r.agree(t)
	if err := r.d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r.agree(t)
	if n := len(r.eng.Services(time.Now())); n != 0 {
		t.Errorf("%d services left", n)
	}
	if info, _ := r.d.Info(ctx); info.NumServices != 0 {
		t.Errorf("Info.NumServices = %d", info.NumServices)
	}
}

func TestReadsComeFromTheDataplane(t *testing.T) {
	r := newRig(t)
	r.mustAdd(t, svc(vip, "wrr"), rs1, rs2)
	r.mustAdd(t, svc(mark, "sh"))
	stats := ipvs.Counters{Conns: 7, InPkts: 70}
	if err := r.dp.SetStats(vip, stats, ipvs.Rates{CPS: 2}, map[ipvs.DestKey]ipvs.DestState{
		rs2.Key(): {ActiveConns: 5, InactConns: 1, Stats: ipvs.Counters{Conns: 6}},
	}); err != nil {
		t.Fatal(err)
	}
	conns := []conn.Info{{Proto: ipvs.ProtoTCP, Client: netip.MustParseAddrPort("192.0.2.1:4000"),
		Virtual: netip.MustParseAddrPort("10.0.0.1:80"), Dest: netip.MustParseAddrPort("10.0.0.3:8080"), State: "ESTABLISHED"}}
	r.dp.SetConns(conns)

	all, err := r.d.Services(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("Services = %v, %v", all, err)
	}
	one, err := r.d.Service(ctx, vip)
	if err != nil {
		t.Fatal(err)
	}
	if one.Stats != stats || one.Rates.CPS != 2 || one.Dests[0].ActiveConns != 5 || one.Dests[0].Key() != rs2.Key() {
		t.Errorf("Service = %+v", one)
	}
	if got, err := r.d.Conns(ctx); err != nil || !reflect.DeepEqual(got, conns) {
		t.Errorf("Conns = %v, %v", got, err)
	}

	if err := r.d.Zero(ctx, &vip); err != nil {
		t.Fatal(err)
	}
	if one, _ := r.d.Service(ctx, vip); one.Stats != (ipvs.Counters{}) {
		t.Errorf("after Zero: %+v", one.Stats)
	}
	if err := r.d.Zero(ctx, nil); err != nil {
		t.Fatal(err)
	}

	r.dp.Fail("Services", nil)
	if _, err := r.d.Services(ctx); !errors.Is(err, dataplanetest.ErrInjected) {
		t.Errorf("Services with a failing data plane: %v", err)
	}
	r.dp.Heal()
	r.dp.SetHealth(errors.New("detached"))
	if err := r.d.Health(); err == nil {
		t.Error("Health = nil with an unhealthy data plane")
	}
}

func TestTimeouts(t *testing.T) {
	r := newRig(t)
	if to, _ := r.d.Timeouts(ctx); to != conn.DefaultTimeouts {
		t.Errorf("Timeouts = %v", to)
	}
	if err := r.d.SetTimeouts(ctx, conn.Timeouts{UDP: 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
	want := conn.DefaultTimeouts
	want.UDP = 30 * time.Second
	if to, _ := r.d.Timeouts(ctx); to != want {
		t.Errorf("Timeouts = %v, want %v", to, want)
	}
	r.agree(t)
}

func TestInfoAndDaemons(t *testing.T) {
	r := newRig(t)
	r.mustAdd(t, svc(vip, "rr"))
	info, err := r.d.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := api.Info{Version: "1.2.1", ConnTabSize: 4096, NumServices: 1, Dataplane: "fake", GovsVersion: "test"}
	if info != want {
		t.Errorf("Info = %+v, want %+v", info, want)
	}
	ds, err := r.d.Daemons(ctx)
	if err != nil || len(ds) != 0 {
		t.Errorf("Daemons = %v, %v; want none", ds, err)
	}
	if err := r.d.StopDaemon(ctx, "master"); !errors.Is(err, ipvs.ErrNoDaemon) {
		t.Errorf("StopDaemon without a daemon = %v, want ErrNoDaemon", err)
	}
	if err := r.d.StartDaemon(ctx, api.SyncDaemon{State: "master"}); err == nil {
		t.Error("StartDaemon without --mcast-interface succeeded")
	}
}

func TestConcurrentChanges(t *testing.T) {
	r := newRig(t)
	r.mustAdd(t, svc(vip, "wrr"))
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			d := ipvs.Destination{Addr: netip.AddrFrom4([4]byte{10, 1, 0, byte(i + 1)}), Port: 80, Weight: int32(i)}
			if err := r.d.AddDest(ctx, vip, d); err != nil {
				t.Error(err)
			}
			d.Weight++
			if err := r.d.EditDest(ctx, vip, d); err != nil {
				t.Error(err)
			}
			if _, err := r.d.Services(ctx); err != nil {
				t.Error(err)
			}
			if i%2 == 0 {
				if err := r.d.DelDest(ctx, vip, d.Key()); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	r.agree(t)
	if st, _ := r.eng.Service(time.Now(), vip); len(st.Dests) != 10 {
		t.Errorf("%d destinations, want 10", len(st.Dests))
	}
}

// TestThroughTheAPI drives the director over the API socket, as govsadm
// does, and checks that the table's errors survive the trip.
func TestThroughTheAPI(t *testing.T) {
	r := newRig(t)
	l, err := api.Listen(filepath.Join(t.TempDir(), "govsd.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: api.NewServer(r.d, slog.New(slog.DiscardHandler))}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	c := api.NewClient(l.Addr().String())
	t.Cleanup(c.CloseIdleConnections)

	if err := c.AddService(ctx, ipvs.Service{ServiceKey: vip, Scheduler: "wrr", Persistent: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddDest(ctx, vip, rs2); err != nil {
		t.Fatal(err)
	}
	if err := c.AddService(ctx, ipvs.Service{ServiceKey: vip}); !errors.Is(err, ipvs.ErrServiceExists) {
		t.Errorf("duplicate: %v", err)
	}
	if err := c.DelDest(ctx, vip, rs1.Key()); !errors.Is(err, ipvs.ErrNoDest) {
		t.Errorf("missing dest: %v", err)
	}
	if err := c.StopDaemon(ctx, "backup"); !errors.Is(err, ipvs.ErrNoDaemon) {
		t.Errorf("StopDaemon: %v", err)
	}
	st, err := c.Service(ctx, vip)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Persistent || st.Timeout != ipvs.DefaultPersistTimeout || len(st.Dests) != 1 || st.Dests[0].Destination != rs2 {
		t.Errorf("Service = %+v", st)
	}
	r.agree(t)
}

func TestNewNeedsBoth(t *testing.T) {
	if _, err := director.New(director.Config{Dataplane: dataplanetest.New("")}); err == nil {
		t.Error("New without an engine succeeded")
	}
	if _, err := director.New(director.Config{Engine: engine.New(engine.Options{})}); err == nil {
		t.Error("New without a data plane succeeded")
	}
}

// TestNewAdoptsDataplaneState: a data plane that kept forwarding across a
// restart already holds services; the new director loads them into its
// engine, in the same list order, without mirroring them back.
func TestNewAdoptsDataplaneState(t *testing.T) {
	fake := dataplanetest.New("pinned")
	svc := ipvs.Service{ServiceKey: ipvs.TCPService(netip.MustParseAddrPort("10.0.0.1:80")), Scheduler: "wrr"}
	svc.SetDefaults()
	if err := fake.AddService(svc); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.0.1.1", "10.0.1.2"} {
		if err := fake.AddDest(svc.ServiceKey, ipvs.Destination{Addr: netip.MustParseAddr(a), Port: 80, Fwd: ipvs.Route, Weight: 1}); err != nil {
			t.Fatal(err)
		}
	}
	fake.ResetCalls()
	eng := engine.New(engine.Options{})
	if _, err := director.New(director.Config{Engine: eng, Dataplane: fake}); err != nil {
		t.Fatal(err)
	}
	st, err := eng.Service(time.Now(), svc.ServiceKey)
	if err != nil {
		t.Fatalf("engine lacks the adopted service: %v", err)
	}
	if len(st.Dests) != 2 || st.Dests[0].Addr.String() != "10.0.1.2" || st.Dests[1].Addr.String() != "10.0.1.1" {
		t.Fatalf("engine dests = %+v, want 10.0.1.2 then 10.0.1.1 (newest first, as the data plane has them)", st.Dests)
	}
	if calls := fake.ChangeCalls(); len(calls) != 0 {
		t.Fatalf("adoption mirrored changes back into the data plane: %v", calls)
	}
}
