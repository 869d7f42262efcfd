package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/govs/govs/internal/ipvs"
)

// Timing is a checker's schedule, keepalived's delay_loop, retry,
// delay_before_retry and warmup, already resolved from the virtual
// server, real server and checker levels.
type Timing struct {
	// DelayLoop is the time between checks; 0 means 60 s.
	DelayLoop time.Duration
	// Retry is how many more failed checks an up checker tolerates before
	// it goes down (keepalived's defaults: 1; MISC_CHECK 0; DNS_CHECK 3).
	Retry int
	// DelayBeforeRetry is the time before a retry; 0 means 1 s.
	DelayBeforeRetry time.Duration
	// Warmup is the maximum of the random delay before the first check;
	// 0 starts at once (keepalived's default is delay_loop).
	Warmup time.Duration
}

func (t Timing) delayLoop() time.Duration {
	if t.DelayLoop <= 0 {
		return 60 * time.Second
	}
	return t.DelayLoop
}

func (t Timing) delayBeforeRetry() time.Duration {
	if t.DelayBeforeRetry <= 0 {
		return time.Second
	}
	return t.DelayBeforeRetry
}

// CheckerSpec is one checker of a realserver.
type CheckerSpec struct {
	// Name identifies the checker in events and status ("HTTP_GET",
	// "MISC_CHECK /bin/check.sh").
	Name    string
	Checker Checker
	Timing  Timing
	// Alpha starts the checker failed, so the realserver stays out until
	// the first success; without it the checker starts up.
	Alpha bool
}

// RealServerSpec is a realserver with its checkers.
type RealServerSpec struct {
	Service ipvs.ServiceKey
	// Dest is the configured destination; Dest.Weight is the weight
	// dynamic checkers start from.
	Dest     ipvs.Destination
	Checkers []CheckerSpec
}

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	EventUp     EventKind = iota + 1 // the realserver passed all checkers again
	EventDown                        // a checker of the realserver went down
	EventWeight                      // the effective weight changed
)

func (k EventKind) String() string {
	switch k {
	case EventUp:
		return "up"
	case EventDown:
		return "down"
	case EventWeight:
		return "weight"
	}
	return fmt.Sprintf("event%d", uint8(k))
}

// Event is a state change of a realserver.
type Event struct {
	Kind    EventKind
	Service ipvs.ServiceKey
	Dest    ipvs.DestKey
	// Up is the realserver's state after the event; Weight its effective
	// weight.
	Up     bool
	Weight int
	// Initial marks the first result of an alpha checker confirming the
	// down state it started in (keepalived runs notify_down for it).
	Initial bool
	Checker string
	Reason  string
	Time    time.Time
}

// RunnerOptions are a Runner's dependencies; all may be zero.
type RunnerOptions struct {
	Clock  Clock        // nil: RealClock
	Logger *slog.Logger // nil: discard
	// Rand returns a number in [0,1) for the warmup delay; nil: math/rand.
	Rand func() float64
	// OnEvent receives every Event, in order, from the runner's
	// goroutines; it must not block for long.
	OnEvent func(Event)
}

type checkerState struct {
	spec        CheckerSpec
	isUp        bool
	hasRun      bool
	settled     bool // a first verdict (success, or failure after retries) was reached
	retryIt     int
	override    *int // weight asked for by the last passing result
	offset      int
	lastCheck   time.Time
	last        Result
	checks      uint64
	failures    uint64
	consecutive uint64
}

// Runner runs the checkers of one realserver with keepalived's timing and
// state rules, and reports the realserver's transitions.
type Runner struct {
	spec RealServerSpec
	opts RunnerOptions

	mu       sync.Mutex
	emitMu   sync.Mutex
	checkers []*checkerState
	up       bool
	weight   int
}

// NewRunner returns a runner for spec. The realserver starts up unless a
// checker is alpha.
func NewRunner(spec RealServerSpec, opts RunnerOptions) (*Runner, error) {
	if len(spec.Checkers) == 0 {
		return nil, fmt.Errorf("%w: realserver %s has no checkers", ErrConfig, spec.Dest.AddrPort())
	}
	var errs []error
	for i, c := range spec.Checkers {
		if c.Checker == nil {
			errs = append(errs, fmt.Errorf("%w: realserver %s: checker %d (%s) is nil", ErrConfig, spec.Dest.AddrPort(), i+1, c.Name))
		}
		if c.Timing.Retry < 0 {
			errs = append(errs, fmt.Errorf("%w: realserver %s: checker %s: retry %d is negative", ErrConfig, spec.Dest.AddrPort(), c.Name, c.Timing.Retry))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if opts.Clock == nil {
		opts.Clock = RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	r := &Runner{spec: spec, opts: opts}
	for _, c := range spec.Checkers {
		r.checkers = append(r.checkers, &checkerState{spec: c, isUp: !c.Alpha})
	}
	r.up = r.failedLocked() == 0
	r.weight = r.weightLocked()
	return r, nil
}

// Run runs the checkers until ctx is done.
func (r *Runner) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range r.checkers {
		wg.Go(func() { r.loop(ctx, i) })
	}
	wg.Wait()
}

func (r *Runner) loop(ctx context.Context, i int) {
	spec := r.checkers[i].spec
	var delay time.Duration
	if w := spec.Timing.Warmup; w > 0 {
		delay = time.Duration(float64(w) * r.opts.Rand())
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.opts.Clock.After(delay):
		}
		res := spec.Checker.Check(ctx)
		if ctx.Err() != nil {
			return
		}
		delay = r.record(i, res)
	}
}

// record applies one result and returns the delay before the next check.
func (r *Runner) record(i int, res Result) time.Duration {
	r.mu.Lock()
	c := r.checkers[i]
	now := r.opts.Clock.Now()
	wasSettled := c.settled
	changed, delay := c.apply(res)
	c.lastCheck = now
	var evs []Event
	newUp, newWeight := r.failedLocked() == 0, r.weightLocked()
	base := Event{Service: r.spec.Service, Dest: r.spec.Dest.Key(), Up: newUp, Weight: newWeight, Checker: c.spec.Name, Reason: res.String(), Time: now}
	switch {
	case newUp != r.up:
		e := base
		e.Kind = EventDown
		if newUp {
			e.Kind = EventUp
		}
		evs = append(evs, e)
	case !wasSettled && c.settled && c.spec.Alpha && !c.isUp && !changed:
		e := base
		e.Kind, e.Initial = EventDown, true
		evs = append(evs, e)
	}
	if newWeight != r.weight {
		e := base
		e.Kind = EventWeight
		evs = append(evs, e)
	}
	r.up, r.weight = newUp, newWeight
	if !res.Up && (changed || r.opts.Logger.Enabled(context.Background(), slog.LevelDebug)) {
		r.opts.Logger.Debug("check failed", "service", r.spec.Service.String(), "realserver", r.spec.Dest.AddrPort().String(), "checker", c.spec.Name, "err", res.Err)
	}
	r.emitMu.Lock()
	r.mu.Unlock()
	defer r.emitMu.Unlock()
	for _, e := range evs {
		r.opts.Logger.Info("realserver "+e.Kind.String(), "service", e.Service.String(), "realserver", r.spec.Dest.AddrPort().String(), "up", e.Up, "weight", e.Weight, "checker", e.Checker, "reason", e.Reason)
		if r.opts.OnEvent != nil {
			r.opts.OnEvent(e)
		}
	}
	return delay
}

// apply is keepalived's per-checker rule: a failure of an up (or not yet
// settled) checker is retried Retry times, delay_before_retry apart, before
// the checker goes down; a success resets the retries and brings it up.
// It reports whether isUp changed and the delay to the next check.
func (c *checkerState) apply(res Result) (changed bool, next time.Duration) {
	t := c.spec.Timing
	c.last = res
	c.checks++
	if res.Offset != nil {
		c.offset = *res.Offset
	}
	c.hasRun = true
	if res.Up {
		c.consecutive = 0
		c.override = res.Weight
		c.retryIt = 0
		c.settled = true
		changed = !c.isUp
		c.isUp = true
		return changed, t.delayLoop()
	}
	c.failures++
	c.consecutive++
	if !c.isUp && c.settled {
		return false, t.delayLoop()
	}
	if c.retryIt < t.Retry {
		c.retryIt++
		return false, t.delayBeforeRetry()
	}
	c.retryIt = 0
	c.settled = true
	changed = c.isUp
	c.isUp = false
	return changed, t.delayLoop()
}

func (r *Runner) failedLocked() int {
	n := 0
	for _, c := range r.checkers {
		if !c.isUp {
			n++
		}
	}
	return n
}

// weightLocked is the effective weight: the configured weight, or the
// first checker's dynamic request, plus every checker's offset, clamped
// to what IPVS accepts.
func (r *Runner) weightLocked() int {
	w := int64(r.spec.Dest.Weight)
	for _, c := range r.checkers {
		if c.override != nil {
			w = int64(*c.override)
			break
		}
	}
	for _, c := range r.checkers {
		w += int64(c.offset)
	}
	return int(max(0, min(w, math.MaxInt32)))
}

// CheckerStatus is one checker's state, for metrics and listings.
type CheckerStatus struct {
	Name      string        `json:"name"`
	Up        bool          `json:"up"`
	HasRun    bool          `json:"has_run"`
	LastCheck time.Time     `json:"last_check,omitzero"`
	LastError string        `json:"last_error,omitempty"`
	Duration  time.Duration `json:"duration"`
	Checks    uint64        `json:"checks"`
	Failures  uint64        `json:"failures"`
	// Consecutive counts failures since the last success.
	Consecutive uint64 `json:"consecutive_failures"`
	Retrying    int    `json:"retrying,omitempty"`
}

// RealServerStatus is a realserver's health, for metrics and listings.
type RealServerStatus struct {
	Service   ipvs.ServiceKey `json:"service"`
	Dest      ipvs.DestKey    `json:"dest"`
	Up        bool            `json:"up"`
	Weight    int             `json:"weight"`
	LastCheck time.Time       `json:"last_check,omitzero"`
	Failures  uint64          `json:"failures"`
	Checkers  []CheckerStatus `json:"checkers"`
}

// Status returns a snapshot of the realserver's and its checkers' state.
func (r *Runner) Status() RealServerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := RealServerStatus{Service: r.spec.Service, Dest: r.spec.Dest.Key(), Up: r.up, Weight: r.weight}
	for _, c := range r.checkers {
		cs := CheckerStatus{Name: c.spec.Name, Up: c.isUp, HasRun: c.hasRun, LastCheck: c.lastCheck, Duration: c.last.Duration,
			Checks: c.checks, Failures: c.failures, Consecutive: c.consecutive, Retrying: c.retryIt}
		if c.last.Err != nil {
			cs.LastError = c.last.Err.Error()
		}
		if c.lastCheck.After(s.LastCheck) {
			s.LastCheck = c.lastCheck
		}
		s.Failures += c.failures
		s.Checkers = append(s.Checkers, cs)
	}
	return s
}

// Up reports whether the realserver passes all its checkers.
func (r *Runner) Up() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.up
}

// Weight is the realserver's effective weight.
func (r *Runner) Weight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.weight
}

// SetWeight changes the realserver's configured weight (a reload that
// edits only the weight keeps the runner and its checkers running) and
// returns the new effective weight. It emits no event: the caller that
// changed the weight applies it.
func (r *Runner) SetWeight(w int32) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spec.Dest.Weight = w
	r.weight = r.weightLocked()
	return r.weight
}
