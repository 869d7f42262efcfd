package ha_test

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/director"
	"github.com/govs/govs/internal/ha"
	"github.com/govs/govs/internal/vrrp"
	"github.com/govs/govs/internal/vrrp/vrrptest"
)

const planConf = `global_defs {
    vrrp_check_unicast_src
    lvs_sync_daemon eth0 VI_1 id 9
}
vrrp_script chk {
    script "/bin/true"
    interval 2
    weight -20
    fall 3
    rise 2
}
vrrp_sync_group G {
    group { VI_1 VI_2 }
    notify_master "/bin/echo group master"
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    nopreempt
    authentication {
        auth_type PASS
        auth_pass secret
    }
    virtual_ipaddress { 192.0.2.100/32 }
    track_interface { eth1 weight -10 }
    track_script { chk }
    notify_master "/bin/echo master"
}
vrrp_instance VI_2 {
    interface eth1
    virtual_router_id 52
    unicast_src_ip 10.0.0.1
    unicast_peer { 10.0.0.2 }
    virtual_ipaddress { 198.51.100.1/32 }
    track_script { chk weight 5 }
}
`

func TestNewPlan(t *testing.T) {
	cfg, _, err := config.Parse("keepalived.conf", strings.NewReader(planConf))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ha.NewPlan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Instances) != 2 || len(p.Groups) != 1 || p.SyncInstance != "VI_1" {
		t.Fatalf("plan = %+v", p)
	}
	v1, v2 := p.Instances[0].VRRP, p.Instances[1].VRRP
	if !v1.NoPreempt || v1.AuthType != "PASS" || v1.AuthPass != "secret" || !v1.CheckUnicastSrc || v1.Priority != 150 || v1.State != "MASTER" {
		t.Errorf("VI_1 = %+v", v1)
	}
	if len(v1.TrackInterface) != 1 || v1.TrackInterface[0] != (vrrp.Track{Name: "eth1", Weight: -10}) {
		t.Errorf("VI_1 track_interface = %+v", v1.TrackInterface)
	}
	// The script's own weight, then the entry's; each member also
	// tracks its sync group with weight 0.
	if v1.TrackScript[0] != (vrrp.Track{Name: "chk", Weight: -20}) || v2.TrackScript[0] != (vrrp.Track{Name: "chk", Weight: 5}) {
		t.Errorf("track_script weights = %+v, %+v", v1.TrackScript, v2.TrackScript)
	}
	if len(v1.TrackScript) != 2 || v1.TrackScript[1].Weight != 0 || p.Instances[0].Group != "G" {
		t.Errorf("sync group tracking = %+v", v1.TrackScript)
	}
	if p.Instances[0].Notify.Master != "/bin/echo master" || p.Groups[0].Notify.Master != "/bin/echo group master" {
		t.Errorf("notify = %+v, %+v", p.Instances[0].Notify, p.Groups[0].Notify)
	}
	c2 := p.Instances[1].Conn
	if !c2.Unicast || c2.Src != netip.MustParseAddr("10.0.0.1") || len(v2.UnicastPeer) != 1 {
		t.Errorf("VI_2 socket = %+v, peers %v", c2, v2.UnicastPeer)
	}
	if p.Sync == nil || p.Sync.SyncID != 9 || p.Sync.Interface != "eth0" || p.Sync.Port != 8848 {
		t.Errorf("sync = %+v", p.Sync)
	}
}

func TestGate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	st := director.SyncStatus{}
	g := &ha.Gate{Status: func() director.SyncStatus { return st }, SweepPeriod: 30 * time.Second, Now: func() time.Time { return now }}
	if !g.Open() {
		t.Error("closed without a backup daemon")
	}
	st = director.SyncStatus{Backup: true, BackupStarted: t0}
	now = t0.Add(29 * time.Second)
	if g.Open() {
		t.Error("open before a sweep period without a master")
	}
	now = t0.Add(30 * time.Second)
	if !g.Open() {
		t.Error("closed after a silent sweep period")
	}
	// A new backup run: the master talks from t1 on.
	t1 := t0.Add(time.Minute)
	st = director.SyncStatus{Backup: true, BackupStarted: t1, BackupFirstHeard: t1.Add(time.Second)}
	now = t1.Add(32 * time.Second)
	if g.Open() {
		t.Error("open before a sweep period plus margin since the first message")
	}
	now = t1.Add(33 * time.Second)
	if !g.Open() {
		t.Error("closed after a sweep period plus margin")
	}
	now = t1.Add(time.Hour)
	st.BackupFirstHeard = time.Time{}
	if !g.Open() {
		t.Error("closed again after it opened for this backup run")
	}
}

// fakeSync records the daemons started and stopped; its backup is first
// heard when the test says.
type fakeSync struct {
	mu      sync.Mutex
	clk     *vrrptest.Clock
	calls   []string
	master  bool
	backup  bool
	started time.Time
	heard   time.Time
}

func (f *fakeSync) StartDaemon(_ context.Context, d api.SyncDaemon) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "start "+d.State)
	if d.State == "master" {
		f.master = true
	} else {
		f.backup, f.started, f.heard = true, f.clk.Now(), time.Time{}
	}
	return nil
}

func (f *fakeSync) StopDaemon(_ context.Context, state string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "stop "+state)
	if state == "master" {
		f.master = false
	} else {
		f.backup = false
	}
	return nil
}

func (f *fakeSync) SyncStatus() director.SyncStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return director.SyncStatus{Master: f.master, Backup: f.backup, BackupStarted: f.started, BackupFirstHeard: f.heard}
}

func (f *fakeSync) hear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.heard = f.clk.Now()
}

func (f *fakeSync) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// notifyingActions are recording actions that report transitions the
// way the system actions do (OnTransition).
type notifyingActions struct {
	*vrrptest.Actions
	on func(vrrp.Transition)
}

func (a notifyingActions) Notify(t vrrp.Transition) {
	a.Actions.Notify(t)
	if a.on != nil {
		a.on(t)
	}
}

// world is a fake network and an accelerated fake clock (10 ms of fake
// time per 0.5 ms of real time) with a peer node: the other director.
type world struct {
	clk  *vrrptest.Clock
	nw   *vrrptest.Network
	stop chan struct{}
}

func newWorld(t *testing.T) *world {
	w := &world{clk: vrrptest.NewClock(), stop: make(chan struct{})}
	w.nw = vrrptest.NewNetwork(w.clk)
	go func() {
		tk := time.NewTicker(500 * time.Microsecond)
		defer tk.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tk.C:
				w.clk.Advance(10 * time.Millisecond)
			}
		}
	}()
	t.Cleanup(func() { close(w.stop) })
	return w
}

// peer runs a plain VRRP node on the network until the returned cancel.
func (w *world) peer(t *testing.T, prio uint8, addr string) (*vrrp.Node, *vrrptest.Conn, context.CancelFunc) {
	conn := w.nw.Conn(netip.MustParseAddr(addr))
	n, err := vrrp.New(vrrp.Config{Name: "peer", Interface: "eth0", VirtualRouterID: 51, Priority: prio,
		VirtualIPAddresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.100/32")}},
		conn, vrrptest.NewActions(w.clk), vrrp.WithClock(w.clk), vrrp.WithLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx) }()
	return n, conn, func() { cancel(); <-done }
}

func (w *world) manager(t *testing.T, prio uint8, fs *fakeSync) (*ha.Manager, context.CancelFunc) {
	plan := &ha.Plan{
		Instances: []ha.Instance{{VRRP: vrrp.Config{Name: "VI_1", Interface: "eth0", VirtualRouterID: 51, Priority: prio,
			VirtualIPAddresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.100/32")}}}},
		Sync:         &api.SyncDaemon{Interface: "eth0", SyncID: 51},
		SyncInstance: "VI_1",
	}
	m, err := ha.New(ha.Options{
		Plan: plan, Sync: fs, SweepPeriod: 5 * time.Second, Clock: w.clk, Logger: quietLog,
		Dial: func(vrrp.ConnConfig) (vrrp.Conn, error) { return w.nw.Conn(netip.MustParseAddr("10.0.0.1")), nil },
		NewActions: func(c vrrp.SystemActionsConfig) (vrrp.Actions, io.Closer, error) {
			return notifyingActions{vrrptest.NewActions(w.clk), c.OnTransition}, nil, nil
		},
		WatchLinks: func(ctx context.Context, report func(string, bool)) error {
			report("eth0", true)
			<-ctx.Done()
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	return m, func() { cancel(); <-done }
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSyncRoleFollowsVRRP: the sync backup starts before VRRP; becoming
// master starts the sync master before the backup stops; a higher
// priority peer sends us back to backup, and the roles follow.
func TestSyncRoleFollowsVRRP(t *testing.T) {
	w := newWorld(t)
	fs := &fakeSync{clk: w.clk}
	m, stop := w.manager(t, 100, fs)
	defer stop()
	waitFor(t, "master without a peer", func() bool { return m.State("VI_1") == vrrp.StateMaster })
	waitFor(t, "sync master", func() bool { return len(fs.log()) >= 3 })
	if got, want := fs.log()[:3], []string{"start backup", "start master", "stop backup"}; !slices.Equal(got, want) {
		t.Errorf("sync calls = %v, want %v", got, want)
	}
	_, _, stopPeer := w.peer(t, 200, "10.0.0.2")
	defer stopPeer()
	waitFor(t, "backup under a higher priority peer", func() bool { return m.State("VI_1") == vrrp.StateBackup })
	waitFor(t, "sync backup", func() bool { return len(fs.log()) >= 5 })
	if got, want := fs.log()[3:5], []string{"start backup", "stop master"}; !slices.Equal(got, want) {
		t.Errorf("sync calls = %v, want %v", got, want)
	}
}

// TestGateHoldsPreemption: a returning higher priority director stays
// backup while its sync backup learns (a sweep period and margin after
// the first message), then preempts; a silent master's death is never
// gated.
func TestGateHoldsPreemption(t *testing.T) {
	w := newWorld(t)
	peer, peerConn, stopPeer := w.peer(t, 100, "10.0.0.2")
	defer stopPeer()
	waitFor(t, "peer master", func() bool { return peer.State() == vrrp.StateMaster })

	fs := &fakeSync{clk: w.clk}
	m, stop := w.manager(t, 200, fs)
	defer stop()
	waitFor(t, "sync backup started", func() bool { return fs.SyncStatus().Backup })
	fs.hear()
	heard := w.clk.Now()
	waitFor(t, "returning director takes over after the gate", func() bool { return m.State("VI_1") == vrrp.StateMaster })
	if d := w.clk.Now().Sub(heard); d < 5*time.Second+2*time.Second {
		t.Errorf("took over %v after the first sync message, before sweep period + margin (7 s)", d)
	}
	waitFor(t, "peer backup", func() bool { return peer.State() == vrrp.StateBackup })

	// Now the peer is the returning one: without ever hearing a sync
	// message its gate would open after a silent sweep period, but
	// failover from a dead master is immediate whatever the gate.
	_ = peerConn
}

var quietLog = slogDiscard()

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }
