package director

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/ipvs"
)

// ConnSyncer is what a data plane that keeps its own connection table
// (ebpf) offers to connection sync. The proxy data plane runs on the
// engine, whose table is used directly.
type ConnSyncer interface {
	// SyncTable is where a sync backup installs entries.
	SyncTable() connsync.Table
	// SyncWalk calls fn for every live entry with its incoming packet
	// count and the time it has left; the sync master polls it.
	SyncWalk(fn func(c *connsync.Conn, inPkts uint64, left time.Duration)) error
}

// SyncOptions configure the connection sync daemons.
type SyncOptions struct {
	// Settings are the sync sysctls (zero: connsync.DefaultSettings).
	Settings connsync.Settings
	// SweepPeriod is how often a master announces every established
	// connection and template, so that a returning director learns the
	// idle ones too (default DefaultSweepPeriod).
	SweepPeriod time.Duration
	// PollInterval is how often a master polls a ConnSyncer data plane
	// for connection updates (default DefaultPollInterval).
	PollInterval time.Duration
	// Dial and Listen open the multicast sockets (default connsync.Dial
	// and connsync.Listen); tests pass fakes.
	Dial   func(connsync.Config, connsync.Settings) (connsync.Sender, error)
	Listen func(connsync.Config, connsync.Settings) ([]connsync.Receiver, error)
}

// Defaults of SyncOptions.
const (
	DefaultSweepPeriod  = 30 * time.Second
	DefaultPollInterval = 200 * time.Millisecond
)

func (o SyncOptions) withDefaults() SyncOptions {
	if o.Settings == (connsync.Settings{}) {
		o.Settings = connsync.DefaultSettings()
	}
	if o.SweepPeriod <= 0 {
		o.SweepPeriod = DefaultSweepPeriod
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.Dial == nil {
		o.Dial = func(c connsync.Config, s connsync.Settings) (connsync.Sender, error) { return connsync.Dial(c, s) }
	}
	if o.Listen == nil {
		o.Listen = func(c connsync.Config, s connsync.Settings) ([]connsync.Receiver, error) {
			rs, err := connsync.Listen(c, s)
			if err != nil {
				return nil, err
			}
			out := make([]connsync.Receiver, len(rs))
			for i, r := range rs {
				out[i] = r
			}
			return out, nil
		}
	}
	return o
}

// SyncStatus is the state of the sync daemons, for the readiness gate
// and for logs.
type SyncStatus struct {
	Master, Backup bool
	// BackupStarted is when the running backup started; BackupFirstHeard
	// and BackupLastHeard when it first and last accepted a message (zero
	// if none).
	BackupStarted, BackupFirstHeard, BackupLastHeard time.Time
	MasterStats                                      connsync.MasterStats
	BackupStats                                      connsync.BackupStats
}

// syncDaemons are the running daemons; at most one per role, as in the
// kernel.
type syncDaemons struct {
	mu     sync.Mutex
	opts   SyncOptions
	master *masterDaemon
	backup *backupDaemon
}

type masterDaemon struct {
	sd     api.SyncDaemon
	m      *connsync.Master
	cancel context.CancelFunc
	done   chan struct{}
}

type backupDaemon struct {
	sd      api.SyncDaemon
	b       *connsync.Backup
	started time.Time
	cancel  context.CancelFunc
	done    chan struct{}
}

// syncConfig turns ipvsadm's daemon settings into connsync's.
func syncConfig(sd api.SyncDaemon) (connsync.Config, error) {
	role, err := connsync.ParseRole(sd.State)
	if err != nil {
		return connsync.Config{}, &ipvs.FieldError{Field: "sync_daemon.state", Value: sd.State, Msg: "use master or backup"}
	}
	c := connsync.Config{Role: role, Interface: sd.Interface, SyncID: sd.SyncID, MaxLen: int(sd.SyncMaxLen),
		Group: sd.Group, Port: sd.Port, TTL: sd.TTL}.WithDefaults()
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// reported is sd as ipvsadm -L --daemon shows a running daemon: with the
// defaults the kernel filled in.
func reported(c connsync.Config, maxLen int) api.SyncDaemon {
	return api.SyncDaemon{State: c.Role.String(), Interface: c.Interface, SyncID: c.SyncID,
		SyncMaxLen: uint16(maxLen), Group: c.Group, Port: c.Port, TTL: c.TTL}
}

// StartDaemon implements [api.Director]: ipvsadm --start-daemon. A master
// sends the data plane's connection updates by the kernel's rules (the
// engine feeds it per packet; a ConnSyncer data plane is polled) and
// sweeps the table every SweepPeriod; a backup installs what it receives
// in the data plane. One daemon per role; ipvs.ErrDaemonRunning if that
// role runs already.
func (d *Director) StartDaemon(ctx context.Context, sd api.SyncDaemon) error {
	c, err := syncConfig(sd)
	if err != nil {
		return fmt.Errorf("start sync daemon: %w", err)
	}
	s := &d.sync
	s.mu.Lock()
	defer s.mu.Unlock()
	opts := s.opts
	switch c.Role {
	case connsync.RoleMaster:
		if s.master != nil {
			return fmt.Errorf("start %s sync daemon: %w", c.Role, ipvs.ErrDaemonRunning)
		}
		m, err := connsync.NewMaster(c, opts.Settings, d.log.With("sync", "master"))
		if err != nil {
			return fmt.Errorf("start sync daemon: %w", err)
		}
		snd, err := opts.Dial(c, opts.Settings)
		if err != nil {
			return fmt.Errorf("start master sync daemon: %w", err)
		}
		if _, ok := d.dp.(ConnSyncer); !ok {
			// Fed from the next packet on: set before StartDaemon returns.
			d.eng.SetSyncFeed(m.Packet)
		}
		rctx, cancel := context.WithCancel(context.Background())
		md := &masterDaemon{sd: reported(c, m.MaxLen()), m: m, cancel: cancel, done: make(chan struct{})}
		var wg sync.WaitGroup
		wg.Add(3)
		go func() { defer wg.Done(); _ = m.Run(rctx, snd) }()
		go func() { defer wg.Done(); d.feedMaster(rctx, m, opts) }()
		go func() { defer wg.Done(); d.sweepMaster(rctx, m, opts) }()
		go func() { wg.Wait(); _ = snd.Close(); close(md.done) }()
		s.master = md
	case connsync.RoleBackup:
		if s.backup != nil {
			return fmt.Errorf("start %s sync daemon: %w", c.Role, ipvs.ErrDaemonRunning)
		}
		table := d.eng.SyncTable(d.now)
		if cs, ok := d.dp.(ConnSyncer); ok {
			table = cs.SyncTable()
		}
		b, err := connsync.NewBackup(c, opts.Settings, table, interfaceMTU(c.Interface), d.log.With("sync", "backup"))
		if err != nil {
			return fmt.Errorf("start sync daemon: %w", err)
		}
		rs, err := opts.Listen(c, opts.Settings)
		if err != nil {
			return fmt.Errorf("start backup sync daemon: %w", err)
		}
		rctx, cancel := context.WithCancel(context.Background())
		bd := &backupDaemon{sd: reported(c, b.MaxLen()), b: b, started: d.now(), cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(bd.done)
			if err := b.Run(rctx, rs...); err != nil {
				d.log.Error("backup sync daemon stopped", "err", err)
			}
		}()
		s.backup = bd
	}
	d.log.Info("sync daemon started", "state", c.Role.String(), "mcast_interface", c.Interface, "syncid", c.SyncID,
		"group", c.Group.String(), "port", c.Port)
	return nil
}

// StopDaemon implements [api.Director]: ipvsadm --stop-daemon. A master
// discards what it had queued; a backup keeps what it installed.
// ipvs.ErrNoDaemon if the role does not run.
func (d *Director) StopDaemon(ctx context.Context, state string) error {
	role, err := connsync.ParseRole(state)
	if err != nil {
		return fmt.Errorf("stop sync daemon: %w", &ipvs.FieldError{Field: "sync_daemon.state", Value: state, Msg: "use master or backup"})
	}
	s := &d.sync
	s.mu.Lock()
	var cancel context.CancelFunc
	var done chan struct{}
	switch role {
	case connsync.RoleMaster:
		if s.master != nil {
			cancel, done = s.master.cancel, s.master.done
			s.master = nil
		}
	case connsync.RoleBackup:
		if s.backup != nil {
			cancel, done = s.backup.cancel, s.backup.done
			s.backup = nil
		}
	}
	s.mu.Unlock()
	if cancel == nil {
		return fmt.Errorf("stop %s sync daemon: %w", role, ipvs.ErrNoDaemon)
	}
	cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("stop %s sync daemon: %w", role, ctx.Err())
	}
	d.log.Info("sync daemon stopped", "state", role.String())
	return nil
}

// Daemons implements [api.Director]: ipvsadm -L --daemon, master first.
func (d *Director) Daemons(ctx context.Context) ([]api.SyncDaemon, error) {
	s := &d.sync
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []api.SyncDaemon
	if s.master != nil {
		out = append(out, s.master.sd)
	}
	if s.backup != nil {
		out = append(out, s.backup.sd)
	}
	return out, nil
}

// SyncStatus returns the state of the sync daemons. It never waits for a
// configuration change, so the VRRP readiness gate can call it.
func (d *Director) SyncStatus() SyncStatus {
	s := &d.sync
	s.mu.Lock()
	defer s.mu.Unlock()
	var st SyncStatus
	if s.master != nil {
		st.Master = true
		st.MasterStats = s.master.m.Stats()
	}
	if s.backup != nil {
		st.Backup = true
		st.BackupStarted = s.backup.started
		st.BackupFirstHeard = s.backup.b.FirstHeard()
		st.BackupLastHeard = s.backup.b.LastHeard()
		st.BackupStats = s.backup.b.Stats()
	}
	return st
}

// StopSync stops every sync daemon (govsd's shutdown).
func (d *Director) StopSync(ctx context.Context) {
	for _, r := range []string{"master", "backup"} {
		if err := d.StopDaemon(ctx, r); err != nil && !errors.Is(err, ipvs.ErrNoDaemon) {
			d.log.Warn("stop sync daemon", "state", r, "err", err)
		}
	}
}

// feedMaster hands the data plane's connection updates to m until ctx
// ends: the engine's per-packet feed, or polling for a ConnSyncer.
func (d *Director) feedMaster(ctx context.Context, m *connsync.Master, opts SyncOptions) {
	cs, ok := d.dp.(ConnSyncer)
	if !ok {
		// StartDaemon set the engine's feed.
		<-ctx.Done()
		d.eng.SetSyncFeed(nil)
		return
	}
	p := NewPoller(m, opts.Settings)
	t := time.NewTicker(opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := d.now()
		p.Begin()
		if err := cs.SyncWalk(func(c *connsync.Conn, inPkts uint64, _ time.Duration) { p.Observe(now, c, inPkts) }); err != nil {
			d.log.Warn("sync master: poll the connection table", "err", err)
			continue
		}
		p.End()
	}
}

// sweepMaster announces every established connection and template every
// SweepPeriod (the first sweep at once), so that a backup that just
// started learns idle connections too.
func (d *Director) sweepMaster(ctx context.Context, m *connsync.Master, opts SyncOptions) {
	t := time.NewTicker(opts.SweepPeriod)
	defer t.Stop()
	for {
		n, err := d.sweepOnce(ctx, m, opts)
		if err != nil {
			d.log.Warn("sync master: sweep", "err", err)
		} else {
			d.log.Debug("sync master: sweep announced", "entries", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepOnce announces the table once, pacing itself so that the master's
// queue never fills (a full queue drops messages).
func (d *Director) sweepOnce(ctx context.Context, m *connsync.Master, opts SyncOptions) (int, error) {
	var conns []connsync.Conn
	if cs, ok := d.dp.(ConnSyncer); ok {
		err := cs.SyncWalk(func(c *connsync.Conn, _ uint64, left time.Duration) {
			if !announced(c) {
				return
			}
			cc := *c
			if left < cc.Timeout {
				cc.Timeout = max(left.Round(time.Second), time.Second)
			}
			conns = append(conns, cc)
		})
		if err != nil {
			return 0, err
		}
	} else {
		conns = d.eng.SyncConns(d.now())
	}
	limit := max(opts.Settings.QLenMax/2, 1)
	for i := range conns {
		for m.Pending() >= limit {
			select {
			case <-ctx.Done():
				return i, nil
			case <-time.After(10 * time.Millisecond):
			}
		}
		m.Announce(d.now(), &conns[i])
		if i%64 == 63 {
			m.Flush()
		}
	}
	m.Flush()
	return len(conns), nil
}

// announced reports whether a sweep announces c: templates, UDP, and TCP
// in ESTABLISHED (other states are synced by the per-packet rules).
func announced(c *connsync.Conn) bool {
	if c.IsTemplate() {
		return true
	}
	if c.Proto == ipvs.ProtoTCP {
		return c.State == 1 // ESTABLISHED
	}
	return true
}

// interfaceMTU is the MTU of the named interface, 1500 if unknown.
func interfaceMTU(name string) int {
	if ifi, err := net.InterfaceByName(name); err == nil && ifi.MTU > 0 {
		return ifi.MTU
	}
	return 1500
}
