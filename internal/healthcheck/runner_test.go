package healthcheck_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/healthcheck"
	"github.com/govs/govs/internal/healthcheck/healthchecktest"
	"github.com/govs/govs/internal/ipvs"
)

var (
	svc  = ipvs.TCPService(netip.MustParseAddrPort("192.0.2.10:80"))
	rs1  = ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80, Weight: 5}
	rs2  = ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Weight: 3}
	rs3  = ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.3"), Port: 80, Weight: 1}
	t0   = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	loop = 10 * time.Second
)

type harness struct {
	t      *testing.T
	clock  *healthchecktest.FakeClock
	runner *healthcheck.Runner
	mu     sync.Mutex
	events []healthcheck.Event
	cancel context.CancelFunc
	done   chan struct{}
}

func start(t *testing.T, specs []healthcheck.CheckerSpec, rnd float64) *harness {
	t.Helper()
	h := &harness{t: t, clock: healthchecktest.NewFakeClock(t0), done: make(chan struct{})}
	r, err := healthcheck.NewRunner(healthcheck.RealServerSpec{Service: svc, Dest: rs1, Checkers: specs}, healthcheck.RunnerOptions{
		Clock: h.clock, Rand: func() float64 { return rnd },
		OnEvent: func(e healthcheck.Event) { h.mu.Lock(); h.events = append(h.events, e); h.mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	h.runner = r
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { r.Run(ctx); close(h.done) }()
	t.Cleanup(func() { cancel(); <-h.done })
	h.clock.BlockUntil(len(specs))
	return h
}

// step advances the clock by d and waits for the checks due to run and
// for every checker to wait again.
func (h *harness) step(d time.Duration, checks int, c *healthchecktest.Checker, n int) {
	h.t.Helper()
	h.clock.Advance(d)
	for range checks {
		select {
		case <-c.Done:
		case <-time.After(5 * time.Second):
			h.t.Fatalf("check did not run after advancing %s", d)
		}
	}
	h.clock.BlockUntil(n)
}

func (h *harness) take() []healthcheck.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.events
	h.events = nil
	return e
}

func kinds(es []healthcheck.Event) string {
	s := ""
	for _, e := range es {
		s += e.Kind.String()
		if e.Initial {
			s += "(initial)"
		}
		s += " "
	}
	return s
}

func TestRunnerRetryAndFlap(t *testing.T) {
	c := healthchecktest.NewChecker(true)
	h := start(t, []healthcheck.CheckerSpec{{Name: "TCP_CHECK", Checker: c, Timing: healthcheck.Timing{DelayLoop: loop, Retry: 2, DelayBeforeRetry: 2 * time.Second}}}, 0)
	if !h.runner.Up() {
		t.Fatal("non-alpha realserver starts down")
	}
	h.step(0, 1, c, 1) // warmup 0: first check at once
	if p := h.clock.Pending(); len(p) != 1 || p[0] != loop {
		t.Fatalf("next check in %v, want %s", p, loop)
	}
	c.SetUp(false)
	h.step(loop, 1, c, 1) // failure 1: retry
	if p := h.clock.Pending(); p[0] != 2*time.Second {
		t.Fatalf("retry in %v, want delay_before_retry 2s", p)
	}
	h.step(2*time.Second, 1, c, 1) // failure 2: retry
	if !h.runner.Up() || len(h.take()) != 0 {
		t.Fatal("down before the retries are used up")
	}
	h.step(2*time.Second, 1, c, 1) // failure 3: down
	if ev := h.take(); h.runner.Up() || kinds(ev) != "down " || ev[0].Time != t0.Add(loop+4*time.Second) {
		t.Fatalf("after retry+1 failures: up=%v events %v", h.runner.Up(), ev)
	}
	if p := h.clock.Pending(); p[0] != loop {
		t.Fatalf("down checker next check in %v, want delay_loop", p)
	}
	h.step(loop, 1, c, 1) // still down: no retries for a down checker
	if p := h.clock.Pending(); p[0] != loop || len(h.take()) != 0 {
		t.Fatalf("down checker retries: next %v", p)
	}
	c.SetUp(true)
	h.step(loop, 1, c, 1) // one success brings it back
	if ev := h.take(); !h.runner.Up() || kinds(ev) != "up " {
		t.Fatalf("after success: up=%v events %v", h.runner.Up(), kinds(ev))
	}
	// A single failure between successes (flap) is absorbed by retry.
	c.Queue(healthcheck.Result{}, healthcheck.Result{Up: true})
	h.step(loop, 1, c, 1)
	h.step(2*time.Second, 1, c, 1)
	if ev := h.take(); !h.runner.Up() || len(ev) != 0 {
		t.Fatalf("flap: up=%v events %v", h.runner.Up(), kinds(ev))
	}
	st := h.runner.Status()
	if st.Failures != 5 || st.Checkers[0].Consecutive != 0 || st.Checkers[0].Checks != 8 || !st.LastCheck.Equal(h.clock.Now()) {
		t.Fatalf("status %+v", st)
	}
}

func TestRunnerAlphaAndWarmup(t *testing.T) {
	c := healthchecktest.NewChecker(false)
	h := start(t, []healthcheck.CheckerSpec{{Name: "HTTP_GET", Checker: c, Alpha: true, Timing: healthcheck.Timing{DelayLoop: loop, Retry: 1, Warmup: 8 * time.Second}}}, 0.5)
	if h.runner.Up() {
		t.Fatal("alpha realserver starts up")
	}
	if p := h.clock.Pending(); len(p) != 1 || p[0] != 4*time.Second {
		t.Fatalf("first check in %v, want warmup*rand = 4s", p)
	}
	h.step(4*time.Second, 1, c, 1) // failure, retried (has not run yet)
	if ev := h.take(); len(ev) != 0 {
		t.Fatalf("events during retry: %v", kinds(ev))
	}
	h.step(time.Second, 1, c, 1) // default delay_before_retry 1s; confirmed down
	if ev := h.take(); kinds(ev) != "down(initial) " {
		t.Fatalf("events %q, want the initial down", kinds(ev))
	}
	c.SetUp(true)
	h.step(loop, 1, c, 1)
	if ev := h.take(); !h.runner.Up() || kinds(ev) != "up " {
		t.Fatalf("alpha first success: up=%v events %v", h.runner.Up(), kinds(ev))
	}
}

func TestRunnerSeveralCheckersAndWeight(t *testing.T) {
	a := healthchecktest.NewChecker(true)
	b := healthchecktest.NewChecker(true)
	tm := healthcheck.Timing{DelayLoop: loop}
	h := start(t, []healthcheck.CheckerSpec{{Name: "a", Checker: a, Timing: tm}, {Name: "b", Checker: b, Timing: tm}}, 0)
	h.clock.Advance(0)
	<-a.Done
	<-b.Done
	h.clock.BlockUntil(2)
	a.SetUp(false)
	h.clock.Advance(loop)
	<-a.Done
	<-b.Done
	h.clock.BlockUntil(2)
	if ev := h.take(); h.runner.Up() || kinds(ev) != "down " || ev[0].Checker != "a" {
		t.Fatalf("one checker down: up=%v events %v", h.runner.Up(), ev)
	}
	b.SetUp(false)
	h.clock.Advance(loop)
	<-a.Done
	<-b.Done
	h.clock.BlockUntil(2)
	a.SetUp(true)
	h.clock.Advance(loop)
	<-a.Done
	<-b.Done
	h.clock.BlockUntil(2)
	if ev := h.take(); h.runner.Up() || len(ev) != 0 {
		t.Fatalf("a up, b down: up=%v events %v", h.runner.Up(), kinds(ev))
	}
	// Dynamic weight: b passes with a weight request, a adds an offset.
	w, off := 20, -3
	b.SetUp(true)
	b.Queue(healthcheck.Result{Up: true, Weight: &w})
	a.Queue(healthcheck.Result{Up: true, Offset: &off})
	h.clock.Advance(loop)
	<-a.Done
	<-b.Done
	h.clock.BlockUntil(2)
	if !h.runner.Up() || h.runner.Weight() != 17 {
		t.Fatalf("up=%v weight=%d, want up with 20-3", h.runner.Up(), h.runner.Weight())
	}
	ev := h.take()
	last := ev[len(ev)-1]
	if last.Weight != 17 {
		t.Fatalf("events %v", ev)
	}
	// A pass without a request restores the configured weight (5), offset stays.
	h.clock.Advance(loop)
	<-a.Done
	<-b.Done
	h.clock.BlockUntil(2)
	if h.runner.Weight() != 2 {
		t.Fatalf("weight %d, want 5-3", h.runner.Weight())
	}
}

func TestNewRunnerErrors(t *testing.T) {
	if _, err := healthcheck.NewRunner(healthcheck.RealServerSpec{Dest: rs1}, healthcheck.RunnerOptions{}); err == nil {
		t.Error("no checkers accepted")
	}
	if _, err := healthcheck.NewRunner(healthcheck.RealServerSpec{Dest: rs1, Checkers: []healthcheck.CheckerSpec{{Name: "x"}}}, healthcheck.RunnerOptions{}); err == nil {
		t.Error("nil checker accepted")
	}
}
