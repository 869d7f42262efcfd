package ha

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/director"
	"github.com/govs/govs/internal/vrrp"
)

// SyncController starts and stops the connection sync daemons;
// director.Director is one.
type SyncController interface {
	StartDaemon(ctx context.Context, d api.SyncDaemon) error
	StopDaemon(ctx context.Context, state string) error
	SyncStatus() director.SyncStatus
}

// Options configure a Manager. The functions that touch the system
// default to the real ones; tests pass fakes.
type Options struct {
	Plan *Plan
	// Sync runs the sync daemons (required when Plan.Sync is set).
	Sync SyncController
	// SweepPeriod is the sync masters' sweep period, for the readiness
	// gate (default director.DefaultSweepPeriod).
	SweepPeriod time.Duration
	// NoGate turns the readiness gate off (preempt as soon as VRRP says).
	NoGate bool
	Logger *slog.Logger
	// Clock is the VRRP nodes' and the gate's clock (nil: the system's).
	Clock vrrp.Clock

	// Dial opens an instance's socket (default vrrp.Dial).
	Dial func(vrrp.ConnConfig) (vrrp.Conn, error)
	// NewActions returns an instance's actions (default
	// vrrp.NewSystemActions).
	NewActions func(vrrp.SystemActionsConfig) (vrrp.Actions, io.Closer, error)
	// RunScript runs a vrrp_script's command with its timeout; nil error
	// is success (default: /bin/sh -c).
	RunScript func(ctx context.Context, command string) error
	// WatchLinks reports every interface's state now and on every change
	// until ctx ends (default: netlink link updates).
	WatchLinks func(ctx context.Context, report func(ifname string, up bool)) error
}

// Manager runs the VRRP instances of a keepalived.conf, their sync groups
// and vrrp_scripts, tracks interfaces, and makes the connection sync
// daemon follow the VRRP state (lvs_sync_daemon) behind the readiness
// gate.
type Manager struct {
	o    Options
	log  *slog.Logger
	gate *Gate
	// nmu guards the nodes map against State's readers while Run builds
	// and tears it down; Run's own goroutines start after it is built.
	nmu   sync.RWMutex
	nodes map[string]*node
	order []string

	mu      sync.Mutex
	ifUp    map[string]bool
	scripts map[string]bool // vrrp_script name -> up
	groupSt map[string]vrrp.State

	roles chan vrrp.State
}

type node struct {
	in      Instance
	n       *vrrp.Node
	conn    vrrp.Conn
	act     vrrp.Actions
	closer  io.Closer
	ownDown bool // the last "own fault" reported to the group
}

// New builds the instances of o.Plan (nothing runs until Run).
func New(o Options) (*Manager, error) {
	if o.Plan == nil {
		return nil, errors.New("ha: no plan")
	}
	if o.Plan.Sync != nil && o.Sync == nil {
		return nil, errors.New("ha: lvs_sync_daemon needs a sync controller")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SweepPeriod <= 0 {
		o.SweepPeriod = director.DefaultSweepPeriod
	}
	if o.Dial == nil {
		o.Dial = func(c vrrp.ConnConfig) (vrrp.Conn, error) { return vrrp.Dial(c) }
	}
	if o.NewActions == nil {
		o.NewActions = func(c vrrp.SystemActionsConfig) (vrrp.Actions, io.Closer, error) {
			a, err := vrrp.NewSystemActions(c)
			if err != nil {
				return nil, nil, err
			}
			return a, a, nil
		}
	}
	if o.RunScript == nil {
		o.RunScript = shellScript
	}
	if o.WatchLinks == nil {
		o.WatchLinks = watchLinks
	}
	m := &Manager{o: o, log: o.Logger, nodes: map[string]*node{}, ifUp: map[string]bool{},
		scripts: map[string]bool{}, groupSt: map[string]vrrp.State{}, roles: make(chan vrrp.State, 16)}
	if o.Plan.Sync != nil && !o.NoGate {
		var now func() time.Time
		if o.Clock != nil {
			now = o.Clock.Now
		}
		m.gate = &Gate{Status: o.Sync.SyncStatus, SweepPeriod: o.SweepPeriod, Now: now, Log: m.log}
	}
	return m, nil
}

// Run runs everything until ctx ends, then stops the instances (a master
// sends priority 0 and removes its addresses) and the sync daemons.
func (m *Manager) Run(ctx context.Context) error {
	p := m.o.Plan
	// 1. The sync backup starts before VRRP, so that no message of a
	// current master is missed (connsync's returning-master design).
	if p.Sync != nil {
		sd := *p.Sync
		sd.State = "backup"
		if err := m.o.Sync.StartDaemon(ctx, sd); err != nil {
			return fmt.Errorf("start the backup sync daemon: %w", err)
		}
	}
	var opts []vrrp.Option
	if m.o.Clock != nil {
		opts = append(opts, vrrp.WithClock(m.o.Clock))
	}
	// The gate holds the followed instance and every member of its sync
	// group: a member that preempted would pull the others to MASTER with
	// it (vrrp_sync_group), connection table learned or not.
	gated := func(in Instance) bool {
		return in.VRRP.Name == p.SyncInstance || (in.Group != "" && in.Group == p.syncGroup())
	}
	for _, in := range p.Instances {
		vc := in.VRRP
		if m.gate != nil && gated(in) {
			vc.PreemptGate = m.gate.Open
		}
		conn, err := m.o.Dial(in.Conn)
		if err != nil {
			m.closeAll()
			return fmt.Errorf("vrrp_instance %s: %w", in.VRRP.Name, err)
		}
		name := in.VRRP.Name
		act, closer, err := m.o.NewActions(vrrp.SystemActionsConfig{
			Notify: in.Notify, Garp: vc.Garp, Logger: m.log.With("instance", name),
			OnTransition: func(t vrrp.Transition) { m.onTransition(t) },
		})
		if err != nil {
			conn.Close()
			m.closeAll()
			return fmt.Errorf("vrrp_instance %s: %w", name, err)
		}
		// An address left behind by a crashed run must not answer for
		// the VIP while another director is master.
		if vips := in.vips(); len(vips) > 0 {
			if err := act.RemoveAddresses(vc.Interface, vips); err != nil {
				m.log.Warn("remove stale virtual addresses", "instance", name, "err", err)
			}
		}
		n, err := vrrp.New(vc, conn, act, append(opts, vrrp.WithLogger(m.log.With("component", "vrrp")))...)
		if err != nil {
			conn.Close()
			if closer != nil {
				closer.Close()
			}
			m.closeAll()
			return err
		}
		m.nmu.Lock()
		m.nodes[name] = &node{in: in, n: n, conn: conn, act: act, closer: closer}
		m.order = append(m.order, name)
		m.nmu.Unlock()
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var aux sync.WaitGroup
	if p.Sync != nil {
		aux.Add(1)
		go func() { defer aux.Done(); m.followRoles(ctx) }()
	}
	// Interface states first (the watcher reports every interface at
	// once), so that an instance whose interface is down starts in FAULT.
	aux.Add(1)
	go func() {
		defer aux.Done()
		err := m.o.WatchLinks(ctx, m.linkChanged)
		if err != nil && ctx.Err() == nil {
			m.log.Error("interface tracking stopped", "err", err)
		}
	}()
	for _, s := range p.Scripts {
		if !m.scriptUsed(s.Name) {
			continue
		}
		aux.Add(1)
		go func() { defer aux.Done(); m.runScript(ctx, s) }()
	}

	var wg sync.WaitGroup
	errc := make(chan error, len(m.order))
	for _, name := range m.order {
		nd := m.nodes[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := nd.n.Run(ctx); err != nil {
				errc <- fmt.Errorf("vrrp_instance %s: %w", name, err)
				cancel()
			}
		}()
	}
	wg.Wait()
	cancel()
	aux.Wait()
	m.closeAll()
	if p.Sync != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		for _, r := range []string{"master", "backup"} {
			_ = m.o.Sync.StopDaemon(sctx, r)
		}
		scancel()
	}
	close(errc)
	return <-errc
}

func (m *Manager) closeAll() {
	m.nmu.Lock()
	defer m.nmu.Unlock()
	for _, nd := range m.nodes {
		nd.conn.Close()
		if nd.closer != nil {
			nd.closer.Close()
		}
	}
	m.nodes = map[string]*node{}
	m.order = nil
}

// State returns the state of an instance (INIT if unknown).
func (m *Manager) State(instance string) vrrp.State {
	m.nmu.RLock()
	defer m.nmu.RUnlock()
	if nd := m.nodes[instance]; nd != nil {
		return nd.n.State()
	}
	return vrrp.StateInit
}

// onTransition runs on the node's goroutine: it must not block.
func (m *Manager) onTransition(t vrrp.Transition) {
	p := m.o.Plan
	if p.Sync != nil && t.Instance == p.SyncInstance {
		select {
		case m.roles <- t.To:
		default:
			m.log.Error("sync role queue full: transition dropped", "to", t.To)
		}
	}
	nd := m.nodes[t.Instance]
	if nd == nil || nd.in.Group == "" {
		return
	}
	g := nd.in.Group
	m.mu.Lock()
	changed := m.groupSt[g] != t.To && t.To != vrrp.StateInit
	if changed {
		m.groupSt[g] = t.To
	}
	m.mu.Unlock()
	if !changed {
		return
	}
	for _, grp := range p.Groups {
		if grp.Name != g {
			continue
		}
		go runNotify(m.log, grp.Notify, "GROUP", g, t.To, t.Priority)
		if t.To != vrrp.StateMaster && t.To != vrrp.StateBackup {
			return
		}
		for _, other := range grp.Instances {
			if o := m.nodes[other]; o != nil && other != t.Instance {
				// Follow queues an event; never call it synchronously
				// from a node's own goroutine into a full queue.
				go o.n.Follow(t.To)
			}
		}
	}
}

// followRoles switches the sync daemon as the followed instance's state
// changes, keepalived's lvs_sync_daemon semantics: MASTER -> sync master
// (started before the backup stops, so nothing is missed), BACKUP or
// FAULT -> sync backup.
func (m *Manager) followRoles(ctx context.Context) {
	cur := "backup"
	for {
		var to vrrp.State
		select {
		case <-ctx.Done():
			return
		case to = <-m.roles:
		}
		// Only the latest wanted role matters.
		for drained := false; !drained; {
			select {
			case to = <-m.roles:
			default:
				drained = true
			}
		}
		want := ""
		switch to {
		case vrrp.StateMaster:
			want = "master"
		case vrrp.StateBackup, vrrp.StateFault:
			want = "backup"
		}
		if want == "" || want == cur {
			continue
		}
		sd := *m.o.Plan.Sync
		sd.State = want
		if err := m.o.Sync.StartDaemon(ctx, sd); err != nil {
			m.log.Error("start sync daemon", "state", want, "err", err)
		}
		if err := m.o.Sync.StopDaemon(ctx, cur); err != nil {
			m.log.Warn("stop sync daemon", "state", cur, "err", err)
		}
		m.log.Info("sync role follows VRRP", "instance", m.o.Plan.SyncInstance, "vrrp", to, "sync", want)
		cur = want
	}
}

// linkChanged reports an interface's state to the instances on it or
// tracking it.
func (m *Manager) linkChanged(ifname string, up bool) {
	m.mu.Lock()
	old, known := m.ifUp[ifname]
	m.ifUp[ifname] = up
	m.mu.Unlock()
	if known && old == up {
		return
	}
	for _, name := range m.order {
		nd := m.nodes[name]
		vc := &nd.in.VRRP
		if vc.Interface == ifname {
			nd.n.SetTracked(vrrp.TrackInterface, ifname, up)
			continue
		}
		for _, t := range vc.TrackInterface {
			if t.Name == ifname {
				nd.n.SetTracked(vrrp.TrackInterface, ifname, up)
			}
		}
	}
	m.groupFaults()
}

func (m *Manager) scriptUsed(name string) bool {
	for _, nd := range m.nodes {
		for _, t := range nd.in.Scripts {
			if t.Name == name {
				return true
			}
		}
	}
	return false
}

// scriptChanged reports a vrrp_script's result to its instances.
func (m *Manager) scriptChanged(name string, up bool) {
	m.mu.Lock()
	m.scripts[name] = up
	m.mu.Unlock()
	for _, name2 := range m.order {
		nd := m.nodes[name2]
		for _, t := range nd.in.Scripts {
			if t.Name == name {
				nd.n.SetTracked(vrrp.TrackScript, name, up)
			}
		}
	}
	m.groupFaults()
}

// groupFaults shares FAULT within sync groups: a member whose own
// tracked objects put it in FAULT (a weight-0 object down, or its
// interface) takes every member of its group to FAULT, through the
// group's tracked object.
func (m *Manager) groupFaults() {
	m.mu.Lock()
	faulty := map[string]bool{}
	for _, nd := range m.nodes {
		if nd.in.Group != "" && m.ownFaultLocked(nd) {
			faulty[nd.in.Group] = true
		}
	}
	m.mu.Unlock()
	for _, g := range m.o.Plan.Groups {
		for _, name := range g.Instances {
			if nd := m.nodes[name]; nd != nil {
				nd.n.SetTracked(vrrp.TrackScript, groupTrack(g.Name), !faulty[g.Name])
			}
		}
	}
}

func (m *Manager) ownFaultLocked(nd *node) bool {
	vc := &nd.in.VRRP
	if up, ok := m.ifUp[vc.Interface]; ok && !up && !vc.DontTrackPrimary {
		return true
	}
	check := func(up, known bool, t vrrp.Track) bool {
		if !known {
			return false
		}
		if t.Reverse {
			up = !up
		}
		return t.Weight == 0 && !up
	}
	for _, t := range vc.TrackInterface {
		up, ok := m.ifUp[t.Name]
		if check(up, ok, t) {
			return true
		}
	}
	for _, t := range nd.in.Scripts {
		up, ok := m.scripts[t.Name]
		if check(up, ok, t) {
			return true
		}
	}
	return false
}

// runScript runs a vrrp_script every interval with its timeout and
// applies rise and fall: it goes down after fall consecutive failures
// and up after rise consecutive successes. It starts up, or down with
// init_fail (keepalived's initial states).
func (m *Manager) runScript(ctx context.Context, s Script) {
	up := !s.InitFail
	m.scriptChanged(s.Name, up)
	okRun, badRun := 0, 0
	interval := s.Interval
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		sctx, cancel := context.WithTimeout(ctx, max(s.Timeout, time.Millisecond))
		err := m.o.RunScript(sctx, s.Script.Command)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			okRun, badRun = okRun+1, 0
			if !up && okRun >= max(s.Rise, 1) {
				up = true
				m.log.Info("vrrp_script succeeded", "script", s.Name, "rise", s.Rise)
				m.scriptChanged(s.Name, true)
			}
		} else {
			okRun, badRun = 0, badRun+1
			if up && badRun >= max(s.Fall, 1) {
				up = false
				m.log.Warn("vrrp_script failed", "script", s.Name, "fall", s.Fall, "err", err)
				m.scriptChanged(s.Name, false)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// shellScript runs command through /bin/sh -c, killed at ctx's end.
func shellScript(ctx context.Context, command string) error {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	if out, err := cmd.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("timed out: %w", ctx.Err())
		}
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// runNotify runs a sync group's notify scripts for a state change:
// notify_master/backup/fault as given, notify with keepalived's
// arguments "GROUP" NAME STATE PRIORITY.
func runNotify(log *slog.Logger, s vrrp.NotifyScripts, kind, name string, to vrrp.State, prio uint8) {
	specific := map[vrrp.State]string{vrrp.StateMaster: s.Master, vrrp.StateBackup: s.Backup, vrrp.StateFault: s.Fault}[to]
	var cmds [][]string
	if specific != "" {
		cmds = append(cmds, []string{"/bin/sh", "-c", specific})
	}
	if s.Any != "" {
		cmds = append(cmds, []string{"/bin/sh", "-c", s.Any + ` "$@"`, "notify", kind, name, to.String(), strconv.Itoa(int(prio))})
	}
	for _, argv := range cmds {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		cancel()
		if err != nil {
			log.Warn("sync group notify script failed", "group", name, "state", to, "err", err, "output", string(out))
		}
	}
}
