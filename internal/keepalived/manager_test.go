package keepalived_test

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/dataplane/dataplanetest"
	"github.com/govs/govs/internal/director"
	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/healthcheck"
	"github.com/govs/govs/internal/healthcheck/healthchecktest"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/keepalived"
)

var ctx = context.Background()

// rig is a manager over a real director (engine + fake data plane) with
// scripted checkers and a fake clock.
type rig struct {
	t     *testing.T
	fsys  fstest.MapFS
	fake  *dataplanetest.Fake
	dir   *director.Director
	clock *healthchecktest.FakeClock
	rec   *healthchecktest.Recorder
	m     *keepalived.Manager

	mu       sync.Mutex
	checkers map[string][]*healthchecktest.Checker // by "addr:port", newest last
	now      time.Time
}

const confPath = "/etc/keepalived/keepalived.conf"

func newRig(t *testing.T, conf string) *rig {
	t.Helper()
	r := &rig{t: t, fsys: fstest.MapFS{}, fake: dataplanetest.New("fake"), checkers: map[string][]*healthchecktest.Checker{},
		clock: healthchecktest.NewFakeClock(time.Unix(1000, 0)), rec: &healthchecktest.Recorder{}, now: time.Unix(1000, 0)}
	r.write(conf)
	d, err := director.New(director.Config{Engine: engine.New(engine.Options{}), Dataplane: r.fake})
	if err != nil {
		t.Fatal(err)
	}
	r.dir = d
	m, err := keepalived.New(keepalived.Options{
		Director: d, Path: confPath, LoadOptions: []config.Option{config.WithFS(r.fsys)},
		Clock: r.clock, Notifier: r.rec, Rand: func() float64 { return 0 },
		Now:          r.timeNow,
		DrainTimeout: 30 * time.Second, DrainPoll: 5 * time.Millisecond,
		NewChecker: func(_ ipvs.ServiceKey, dk ipvs.DestKey, p keepalived.Plan) (healthcheck.Checker, error) {
			c := healthchecktest.NewChecker(true)
			r.mu.Lock()
			defer r.mu.Unlock()
			k := netip.AddrPortFrom(dk.Addr, dk.Port).String()
			r.checkers[k] = append(r.checkers[k], c)
			return c, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.m = m
	t.Cleanup(func() { m.Close(ctx) })
	cfg, _, err := keepalived.Load(confPath, config.WithFS(r.fsys))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) timeNow() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

func (r *rig) advanceNow(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now = r.now.Add(d)
}

func (r *rig) write(conf string) {
	r.fsys[strings.TrimPrefix(confPath, "/")] = &fstest.MapFile{Data: []byte(conf)}
}

func (r *rig) checker(addr string) *healthchecktest.Checker {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	cs := r.checkers[addr]
	if len(cs) == 0 {
		r.t.Fatalf("no checker for %s", addr)
	}
	return cs[len(cs)-1]
}

func (r *rig) nCheckers(addr string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.checkers[addr])
}

// table returns "addr:port=weight" of service svc, sorted, or nil when
// the service does not exist.
func (r *rig) table(svc string) map[string]int32 {
	st, err := r.dir.Service(ctx, key(svc))
	if err != nil {
		return nil
	}
	out := map[string]int32{}
	for _, d := range st.Dests {
		out[d.AddrPort().String()] = d.Weight
	}
	return out
}

func key(s string) ipvs.ServiceKey { return ipvs.TCPService(netip.MustParseAddrPort(s)) }

func (r *rig) waitTable(svc string, want map[string]int32) {
	r.t.Helper()
	eventually(r.t, func() bool { return equal(r.table(svc), want) }, func() string {
		return "table of " + svc + " = " + fmtTable(r.table(svc)) + ", want " + fmtTable(want)
	})
}

func equal(a, b map[string]int32) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func fmtTable(m map[string]int32) string {
	if m == nil {
		return "<no service>"
	}
	var b strings.Builder
	for k, v := range m {
		b.WriteString(k + "=" + strconv.Itoa(int(v)) + " ")
	}
	return "{" + b.String() + "}"
}

func eventually(t *testing.T, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// fail makes the checker of addr fail and runs the clock until the
// realserver is reported down (retry 0: one failed check).
func (r *rig) setUp(addr string, up bool) {
	r.t.Helper()
	c := r.checker(addr)
	c.SetUp(up)
	n := c.Calls()
	// The runner waits delay_loop (5 s) between checks.
	eventually(r.t, func() bool {
		r.clock.Advance(5 * time.Second)
		return c.Calls() > n
	}, func() string { return "checker of " + addr + " did not run" })
}

const base = `
virtual_server 10.0.0.1 80 {
    delay_loop 5
    lb_algo rr
    lb_kind NAT
    protocol TCP
    retry 0
    %RS%
}
`

func conf(rs ...string) string { return strings.Replace(base, "%RS%", strings.Join(rs, "\n"), 1) }

func rs(addr string, extra ...string) string {
	return "real_server " + addr + " 80 {\n weight 1\n" + strings.Join(extra, "\n") + "\n TCP_CHECK { connect_timeout 1 }\n}"
}

func TestDownAndUp(t *testing.T) {
	r := newRig(t, conf(rs("10.0.0.2"), rs("10.0.0.3")))
	svc := "10.0.0.1:80"
	r.waitTable(svc, map[string]int32{"10.0.0.2:80": 1, "10.0.0.3:80": 1})

	r.setUp("10.0.0.2:80", false)
	r.waitTable(svc, map[string]int32{"10.0.0.3:80": 1})
	hs, err := r.m.HealthStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h, ok := hs.Find(key(svc), netip.MustParseAddr("10.0.0.2"), 80)
	if !ok || h.Up || h.State != api.StateDown || !strings.Contains(h.Reason, "scripted failure") || h.Failures == 0 || h.LastCheck.IsZero() {
		t.Errorf("health of 10.0.0.2 = %+v, %v", h, ok)
	}

	r.setUp("10.0.0.2:80", true)
	r.waitTable(svc, map[string]int32{"10.0.0.2:80": 1, "10.0.0.3:80": 1})
	var kinds []string
	for _, n := range r.rec.Take() {
		kinds = append(kinds, n.Kind.String())
	}
	if got := strings.Join(kinds, " "); got != "quorum_up notify_down notify_up" {
		t.Errorf("notifications = %s", got)
	}
}

func TestInhibitAndSorryServer(t *testing.T) {
	r := newRig(t, strings.Replace(conf(rs("10.0.0.2", "inhibit_on_failure"), rs("10.0.0.3")), "retry 0",
		"retry 0\n sorry_server 10.0.0.9 80\n quorum_up \"/bin/true up\"\n quorum_down \"/bin/true down\"", 1))
	svc := "10.0.0.1:80"
	r.waitTable(svc, map[string]int32{"10.0.0.2:80": 1, "10.0.0.3:80": 1})

	r.setUp("10.0.0.2:80", false)
	r.waitTable(svc, map[string]int32{"10.0.0.2:80": 0, "10.0.0.3:80": 1})

	r.setUp("10.0.0.3:80", false)
	r.waitTable(svc, map[string]int32{"10.0.0.2:80": 0, "10.0.0.9:80": 1})
	hs, _ := r.m.HealthStatus(ctx)
	if s := hs.Services[0]; s.QuorumUp || !s.SorryActive {
		t.Errorf("service health = %+v", s)
	}
	var scripts []string
	for _, n := range r.rec.Take() {
		if n.Kind == healthcheck.NotifyQuorumDown || n.Kind == healthcheck.NotifyQuorumUp {
			scripts = append(scripts, n.Script)
		}
	}
	if got := strings.Join(scripts, ","); got != "/bin/true up,/bin/true down" {
		t.Errorf("quorum scripts = %s", got)
	}

	r.setUp("10.0.0.3:80", true)
	r.waitTable(svc, map[string]int32{"10.0.0.2:80": 0, "10.0.0.3:80": 1})
}

func TestReloadKeepsUnchangedCheckers(t *testing.T) {
	r := newRig(t, conf(rs("10.0.0.2"), rs("10.0.0.3"), rs("10.0.0.4")))
	svc := "10.0.0.1:80"
	r.waitTable(svc, map[string]int32{"10.0.0.2:80": 1, "10.0.0.3:80": 1, "10.0.0.4:80": 1})
	r.setUp("10.0.0.4:80", false)
	r.waitTable(svc, map[string]int32{"10.0.0.2:80": 1, "10.0.0.3:80": 1})
	before := len(r.fake.Calls())

	// Nothing changed: nothing happens.
	res, err := r.m.Reload(ctx)
	if err != nil || len(res.Changes) != 0 || res.CheckersKept != 3 || res.CheckersStarted != 0 {
		t.Fatalf("Reload = %+v, %v", res, err)
	}
	if n := len(r.fake.Calls()); n != before {
		t.Errorf("an unchanged reload made %d data plane calls: %v", n-before, r.fake.Calls()[before:])
	}

	// .2 gets weight 3 (edited in place, checker kept), .3 goes
	// (drained), .5 comes; .4 stays down with its checker.
	// .3 has a connection, so it stays draining.
	d3 := ipvs.DestKey{Addr: netip.MustParseAddr("10.0.0.3"), Port: 80}
	r.fake.SetStats(key(svc), ipvs.Counters{}, ipvs.Rates{}, map[ipvs.DestKey]ipvs.DestState{d3: {ActiveConns: 1}})
	r.write(conf(strings.Replace(rs("10.0.0.2"), "weight 1", "weight 3", 1), rs("10.0.0.4"), rs("10.0.0.5")))
	res, err = r.m.Reload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.CheckersKept != 2 || res.CheckersStarted != 1 || res.CheckersStopped != 1 {
		t.Errorf("Reload = %+v", res)
	}
	for _, a := range []string{"10.0.0.2:80", "10.0.0.4:80"} {
		if n := r.nCheckers(a); n != 1 {
			t.Errorf("%s: %d checkers built, want the first kept", a, n)
		}
	}
	r.waitTable(svc, map[string]int32{"10.0.0.2:80": 3, "10.0.0.3:80": 0, "10.0.0.5:80": 1})
	// The kept checker still decides: .4 comes back.
	r.setUp("10.0.0.4:80", true)
	r.waitTable(svc, map[string]int32{"10.0.0.2:80": 3, "10.0.0.3:80": 0, "10.0.0.4:80": 1, "10.0.0.5:80": 1})

	hs, _ := r.m.HealthStatus(ctx)
	if h, ok := hs.Find(key(svc), netip.MustParseAddr("10.0.0.3"), 80); !ok || h.State != api.StateDraining {
		t.Errorf("health of removed 10.0.0.3 = %+v, %v", h, ok)
	}
}

func TestDrainWaitsForConnections(t *testing.T) {
	r := newRig(t, conf(rs("10.0.0.2"), rs("10.0.0.3")))
	svc := "10.0.0.1:80"
	r.waitTable(svc, map[string]int32{"10.0.0.2:80": 1, "10.0.0.3:80": 1})
	d3 := ipvs.DestKey{Addr: netip.MustParseAddr("10.0.0.3"), Port: 80}
	busy := map[ipvs.DestKey]ipvs.DestState{d3: {ActiveConns: 2, InactConns: 1}}
	if err := r.fake.SetStats(key(svc), ipvs.Counters{}, ipvs.Rates{}, busy); err != nil {
		t.Fatal(err)
	}
	r.write(conf(rs("10.0.0.2")))
	if _, err := r.m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	r.waitTable(svc, map[string]int32{"10.0.0.2:80": 1, "10.0.0.3:80": 0})
	time.Sleep(50 * time.Millisecond) // several drain polls
	r.waitTable(svc, map[string]int32{"10.0.0.2:80": 1, "10.0.0.3:80": 0})
	r.fake.SetStats(key(svc), ipvs.Counters{}, ipvs.Rates{}, map[ipvs.DestKey]ipvs.DestState{d3: {}})
	r.waitTable(svc, map[string]int32{"10.0.0.2:80": 1})

	// A removed service drains too; the drain timeout ends it even
	// with connections left.
	d2 := ipvs.DestKey{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80}
	r.fake.SetStats(key(svc), ipvs.Counters{}, ipvs.Rates{}, map[ipvs.DestKey]ipvs.DestState{d2: {ActiveConns: 5}})
	r.write(`virtual_server 10.0.0.7 80 { protocol TCP
  real_server 10.0.0.8 80 { TCP_CHECK { } } }`)
	if _, err := r.m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	r.waitTable(svc, map[string]int32{"10.0.0.2:80": 0})
	hs, _ := r.m.HealthStatus(ctx)
	if len(hs.Services) != 2 || !hs.Services[0].Draining && !hs.Services[1].Draining {
		t.Errorf("health = %+v", hs.Services)
	}
	time.Sleep(30 * time.Millisecond)
	if r.table(svc) == nil {
		t.Fatal("service with connections deleted before the drain timeout")
	}
	r.advanceNow(31 * time.Second)
	eventually(t, func() bool { return r.table(svc) == nil }, func() string { return "service not deleted at the drain timeout" })
}

func TestReloadRefusesBadConfig(t *testing.T) {
	r := newRig(t, conf(rs("10.0.0.2")))
	r.write(conf(rs("10.0.0.2"), "real_server 10.0.0.3 80 { weight x }"))
	_, err := r.m.Reload(ctx)
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "keepalived.conf:") {
		t.Fatalf("Reload of a bad config = %v, want ErrInvalid with file:line", err)
	}
	r.waitTable("10.0.0.1:80", map[string]int32{"10.0.0.2:80": 1})
}
