package keepalived

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/healthcheck"
	"github.com/govs/govs/internal/ipvs"
)

// DefaultDrainTimeout is how long a realserver or service removed by a
// reload keeps its connections before it is deleted anyway.
const DefaultDrainTimeout = 60 * time.Second

// DefaultDrainPoll is how often draining realservers' connections are
// counted.
const DefaultDrainPoll = time.Second

// ErrClosed is returned by calls on a closed Manager.
var ErrClosed = errors.New("keepalived manager is closed")

// Options configure a Manager. Director is required.
type Options struct {
	// Director receives every change: services from the configuration,
	// destinations as the health checks decide.
	Director api.Director
	// Path is the keepalived.conf Reload reads.
	Path string
	// LoadOptions are passed to config.Load (tests read from an fs.FS).
	LoadOptions []config.Option
	Logger      *slog.Logger // nil: discard
	// Clock times the checkers (nil: the wall clock).
	Clock healthcheck.Clock
	// Now is the clock of drain deadlines and status (nil: time.Now).
	Now func() time.Time
	// Notifier runs quorum_up/down and notify_up/down (nil: an
	// healthcheck.ExecNotifier logging to Logger).
	Notifier healthcheck.Notifier
	// DrainTimeout bounds how long removed realservers and services keep
	// their connections (0: DefaultDrainTimeout).
	DrainTimeout time.Duration
	// DrainPoll is how often connections of draining realservers are
	// counted (0: DefaultDrainPoll).
	DrainPoll time.Duration
	// NewChecker builds a checker from its plan (nil: Plan.New). Tests
	// hand out scripted checkers here.
	NewChecker func(service ipvs.ServiceKey, dest ipvs.DestKey, p Plan) (healthcheck.Checker, error)
	// Rand is the runners' warmup randomness (nil: math/rand).
	Rand func() float64
}

// Manager runs a keepalived configuration against a director: it creates
// the virtual services, runs a health check Runner per realserver and a
// Policy per virtual service, applies the policies' actions, and reloads.
// Policies and the table changes they cause run on one goroutine; the
// methods are safe for concurrent use.
type Manager struct {
	opts Options
	dir  api.Director
	log  *slog.Logger

	reqs chan func()
	stop chan struct{}
	done chan struct{}
	once sync.Once

	evMu  sync.Mutex
	evq   []queuedEvent
	evSig chan struct{}

	runWG sync.WaitGroup

	// Owned by the loop goroutine.
	cfg       *config.Config
	svcs      []config.ServiceConfig
	services  map[ipvs.ServiceKey]*service
	runners   map[string]*rsRunner
	drains    map[drainKey]time.Time
	svcDrains map[ipvs.ServiceKey]time.Time
	loadedAt  time.Time
}

type queuedEvent struct {
	r *rsRunner
	e healthcheck.Event
}

type drainKey struct {
	svc  ipvs.ServiceKey
	dest ipvs.DestKey
}

// service is one virtual service under a policy.
type service struct {
	sc       config.ServiceConfig
	policy   *healthcheck.Policy
	gate     *gateNotifier
	policyFP string
	members  []member
}

// member is a realserver of a service: its destination and runner.
type member struct {
	id   string
	dest ipvs.Destination
	rs   *config.RealServer
}

// rsRunner runs the checkers of one real_server block; in a
// virtual_server group its results apply to every service of the group.
type rsRunner struct {
	id      string
	fp      string
	runner  *healthcheck.Runner // nil: no checkers, always up
	cancel  context.CancelFunc
	weight  int32
	targets []drainKey
	reason  string // the last event's reason
}

// New returns a manager over opts.Director and starts its goroutine;
// Start applies a first configuration, Close stops it.
func New(opts Options) (*Manager, error) {
	if opts.Director == nil {
		return nil, errors.New("new keepalived manager: no director")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Clock == nil {
		opts.Clock = healthcheck.RealClock{}
	}
	if opts.Notifier == nil {
		opts.Notifier = &healthcheck.ExecNotifier{Logger: opts.Logger}
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	if opts.DrainPoll <= 0 {
		opts.DrainPoll = DefaultDrainPoll
	}
	if opts.NewChecker == nil {
		opts.NewChecker = func(_ ipvs.ServiceKey, _ ipvs.DestKey, p Plan) (healthcheck.Checker, error) { return p.New() }
	}
	m := &Manager{
		opts: opts, dir: opts.Director, log: opts.Logger,
		reqs: make(chan func()), stop: make(chan struct{}), done: make(chan struct{}),
		evSig:    make(chan struct{}, 1),
		services: map[ipvs.ServiceKey]*service{}, runners: map[string]*rsRunner{},
		drains: map[drainKey]time.Time{}, svcDrains: map[ipvs.ServiceKey]time.Time{},
	}
	go m.loop()
	return m, nil
}

// do runs f on the manager's goroutine and waits for it.
func (m *Manager) do(ctx context.Context, f func()) error {
	fin := make(chan struct{})
	select {
	case m.reqs <- func() { defer close(fin); f() }:
	case <-m.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	<-fin
	return nil
}

func (m *Manager) loop() {
	defer close(m.done)
	t := time.NewTicker(m.opts.DrainPoll)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case f := <-m.reqs:
			f()
		case <-m.evSig:
			m.handleEvents()
		case <-t.C:
			m.checkDrains(context.Background())
		}
	}
}

// onEvent queues a runner's event for the loop; it never blocks, so a
// runner being stopped by the loop cannot deadlock with it.
func (m *Manager) onEvent(r *rsRunner, e healthcheck.Event) {
	m.evMu.Lock()
	m.evq = append(m.evq, queuedEvent{r, e})
	m.evMu.Unlock()
	select {
	case m.evSig <- struct{}{}:
	default:
	}
}

// handleEvents feeds queued runner events to the policies and applies the
// resulting actions.
func (m *Manager) handleEvents() {
	m.evMu.Lock()
	q := m.evq
	m.evq = nil
	m.evMu.Unlock()
	ctx := context.Background()
	for _, qe := range q {
		r := qe.r
		if m.runners[r.id] != r {
			continue // a runner replaced or stopped by a reload
		}
		r.reason = qe.e.Reason
		for _, t := range r.targets {
			s := m.services[t.svc]
			if s == nil || s.policy == nil {
				continue
			}
			e := qe.e
			e.Service, e.Dest = t.svc, t.dest
			wasQuorum, wasSorry := s.policy.QuorumUp(), s.policy.SorryActive()
			acts := s.policy.HandleEvent(e)
			m.logQuorum(s, wasQuorum, wasSorry)
			m.apply(ctx, acts)
		}
	}
}

func (m *Manager) logQuorum(s *service, wasQuorum, wasSorry bool) {
	k := s.sc.Service.ServiceKey.String()
	if q := s.policy.QuorumUp(); q != wasQuorum {
		if q {
			m.log.Info("quorum gained", "service", k)
		} else {
			m.log.Warn("quorum lost", "service", k)
		}
	}
	if a := s.policy.SorryActive(); a != wasSorry {
		if a {
			m.log.Warn("sorry server takes over", "service", k, "sorry_server", s.sc.Sorry.AddrPort().String())
		} else {
			m.log.Info("sorry server released", "service", k)
		}
	}
}

// Start applies cfg (loaded and checked with Load) as the first
// configuration: services are created and the checkers start.
func (m *Manager) Start(ctx context.Context, cfg *config.Config) (api.ReloadResult, error) {
	return m.Apply(ctx, cfg)
}

// Close stops the checkers and takes the services' destinations out
// (keepalived's shutdown, with omega's notifications), then deletes the
// services the configuration created. It waits for the runners to end.
func (m *Manager) Close(ctx context.Context) error {
	var err error
	m.once.Do(func() {
		err = m.do(ctx, func() { m.shutdown(ctx) })
		close(m.stop)
		<-m.done
		m.runWG.Wait()
	})
	return err
}

func (m *Manager) shutdown(ctx context.Context) {
	for _, r := range m.runners {
		r.cancel()
	}
	for _, k := range m.sortedServices() {
		s := m.services[k]
		if s.policy != nil {
			m.apply(ctx, s.policy.Shutdown())
		}
		if err := m.dir.DelService(ctx, k); err != nil && !errors.Is(err, ipvs.ErrNoService) {
			m.log.Error("delete service at shutdown", "service", k.String(), "err", err)
		}
	}
	for k := range m.svcDrains {
		if err := m.dir.DelService(ctx, k); err != nil && !errors.Is(err, ipvs.ErrNoService) {
			m.log.Error("delete draining service at shutdown", "service", k.String(), "err", err)
		}
	}
	m.services, m.runners = map[ipvs.ServiceKey]*service{}, map[string]*rsRunner{}
	m.drains, m.svcDrains = map[drainKey]time.Time{}, map[ipvs.ServiceKey]time.Time{}
}

func (m *Manager) sortedServices() []ipvs.ServiceKey {
	ks := make([]ipvs.ServiceKey, 0, len(m.services))
	for k := range m.services {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, cmpKey)
	return ks
}

func cmpKey(a, b ipvs.ServiceKey) int {
	as, bs := a.String(), b.String()
	switch {
	case as < bs:
		return -1
	case as > bs:
		return 1
	}
	return 0
}

// gateNotifier passes notifications on, except while a policy is rebuilt
// by a reload: its Init must not rerun quorum_up for a quorum that never
// went away.
type gateNotifier struct {
	next  healthcheck.Notifier
	muted bool
	held  []healthcheck.Notification
}

func (g *gateNotifier) Notify(n healthcheck.Notification) {
	if g.muted {
		g.held = append(g.held, n)
		return
	}
	g.next.Notify(n)
}

// apply makes the director's table what the actions say, change by
// change: only the last action for a destination counts (a rebuilt
// policy may add a realserver and take it out again for the sorry
// server), an add of a present destination is an edit, a change that
// leaves a destination as it is is skipped, and a deletion of an absent
// one is nothing.
func (m *Manager) apply(ctx context.Context, acts []healthcheck.Action) {
	if len(acts) == 0 {
		return
	}
	type final struct {
		a   healthcheck.Action
		pos int
	}
	last := map[drainKey]*final{}
	var order []drainKey
	for _, a := range acts {
		k := drainKey{a.Service, a.Dest.Key()}
		if f, ok := last[k]; ok {
			f.a = a
			continue
		}
		last[k] = &final{a: a}
		order = append(order, k)
	}
	tables := map[ipvs.ServiceKey]map[ipvs.DestKey]ipvs.Destination{}
	for _, k := range order {
		a := last[k].a
		tab, ok := tables[k.svc]
		if !ok {
			tab = m.table(ctx, k.svc)
			tables[k.svc] = tab
		}
		cur, present := tab[k.dest]
		var err error
		switch {
		case a.Kind == healthcheck.DelDest && present:
			err = m.dir.DelDest(ctx, k.svc, k.dest)
		case a.Kind == healthcheck.DelDest:
		case present && sameDest(cur, a.Dest):
		case present:
			err = m.dir.EditDest(ctx, k.svc, a.Dest)
		default:
			err = m.dir.AddDest(ctx, k.svc, a.Dest)
		}
		if err != nil {
			m.log.Error("apply health check action", "action", a.String(), "reason", a.Reason, "err", err)
		}
	}
}

func sameDest(a, b ipvs.Destination) bool {
	// Every attribute counts, so that one added to the model later is
	// never silently skipped by a reload.
	return a == b
}

// table reads the destinations service k has in the director.
func (m *Manager) table(ctx context.Context, k ipvs.ServiceKey) map[ipvs.DestKey]ipvs.Destination {
	out := map[ipvs.DestKey]ipvs.Destination{}
	st, err := m.dir.Service(ctx, k)
	if err != nil {
		return out
	}
	for _, d := range st.Dests {
		out[d.Key()] = d.Destination
	}
	return out
}
