package director_test

import (
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/connsync/connsynctest"
	"github.com/govs/govs/internal/dataplane/dataplanetest"
	"github.com/govs/govs/internal/director"
	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/ipvs"
)

// wire is a fake multicast group between directors: whatever a master's
// sender sends reaches every backup's receiver.
type wire struct {
	mu sync.Mutex
	rx []*connsynctest.Receiver
}

type wireSender struct{ w *wire }

func (s wireSender) Send(_ int, msg []byte) error {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	for _, r := range s.w.rx {
		r.Deliver(msg)
	}
	return nil
}
func (wireSender) Close() error { return nil }

func (w *wire) opts(sweep time.Duration) director.SyncOptions {
	return director.SyncOptions{
		SweepPeriod:  sweep,
		PollInterval: 20 * time.Millisecond,
		Dial: func(connsync.Config, connsync.Settings) (connsync.Sender, error) {
			return wireSender{w}, nil
		},
		Listen: func(connsync.Config, connsync.Settings) ([]connsync.Receiver, error) {
			r := connsynctest.NewReceiver()
			w.mu.Lock()
			w.rx = append(w.rx, r)
			w.mu.Unlock()
			return []connsync.Receiver{r}, nil
		},
	}
}

var (
	syncVIP = ipvs.ServiceKey{Family: ipvs.IPv4, Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr("192.0.2.10"), Port: 80}
	syncRS  = ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.11"), Port: 80, Fwd: ipvs.Route, Weight: 1}
)

type syncRig struct {
	d   *director.Director
	eng *engine.Engine
}

func newSyncRig(t *testing.T, opts director.SyncOptions) *syncRig {
	t.Helper()
	r := &syncRig{eng: engine.New(engine.Options{})}
	var err error
	r.d, err = director.New(director.Config{Engine: r.eng, Dataplane: dataplanetest.New("fake"), Sync: opts,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.d.AddService(ctx, ipvs.Service{ServiceKey: syncVIP, Scheduler: "rr"}); err != nil {
		t.Fatal(err)
	}
	if err := r.d.AddDest(ctx, syncVIP, syncRS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.d.StopSync(ctx) })
	return r
}

func (r *syncRig) packet(t *testing.T, client string, f conn.TCPFlags) {
	t.Helper()
	_, err := r.eng.Process(time.Now(), engine.Packet{Dir: conn.DirIn, Proto: ipvs.ProtoTCP,
		Src: netip.MustParseAddrPort(client), Dst: netip.AddrPortFrom(syncVIP.Addr, 80), Flags: f, Len: 60})
	if err != nil {
		t.Fatal(err)
	}
}

func (r *syncRig) start(t *testing.T, role string) {
	t.Helper()
	if err := r.d.StartDaemon(ctx, api.SyncDaemon{State: role, Interface: "eth0", SyncID: 7}); err != nil {
		t.Fatalf("StartDaemon(%s): %v", role, err)
	}
}

// eventually polls cond for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func activeConns(r *syncRig) (int32, int32) {
	st, err := r.eng.Service(time.Now(), syncVIP)
	if err != nil || len(st.Dests) == 0 {
		return -1, -1
	}
	return int32(st.Dests[0].ActiveConns), int32(st.Dests[0].InactConns)
}

// TestSyncEnginePerPacketRules: the engine feeds the master per packet;
// the third packet of an established connection is synced and the backup
// installs it, counted as active.
func TestSyncEnginePerPacketRules(t *testing.T) {
	w := &wire{}
	m := newSyncRig(t, w.opts(time.Hour))
	b := newSyncRig(t, w.opts(time.Hour))
	b.start(t, "backup")
	m.start(t, "master")

	m.packet(t, "198.51.100.1:40000", conn.SYN)
	m.packet(t, "198.51.100.1:40000", conn.ACK)
	m.packet(t, "198.51.100.1:40000", conn.ACK)
	// The message waits at most FlushTime (2 s) before it is sent.
	eventually(t, 8*time.Second, "backup installs the connection", func() bool {
		a, _ := activeConns(b)
		return a == 1
	})
	cs := b.eng.Conns(time.Now())
	if len(cs) != 1 || cs[0].State != "ESTABLISHED" || cs[0].Dest != netip.AddrPortFrom(syncRS.Addr, 80) {
		t.Fatalf("backup connections = %+v", cs)
	}
	// The backup continues the connection: its next packet is forwarded,
	// not dropped as a non-SYN for an unknown connection.
	v, err := b.eng.Process(time.Now(), engine.Packet{Dir: conn.DirIn, Proto: ipvs.ProtoTCP,
		Src: netip.MustParseAddrPort("198.51.100.1:40000"), Dst: netip.AddrPortFrom(syncVIP.Addr, 80), Flags: conn.ACK})
	if err != nil || v.Action != engine.Forward || v.New {
		t.Errorf("backup's verdict for the synced connection = %+v, %v", v, err)
	}
	st := b.d.SyncStatus()
	if !st.Backup || st.BackupFirstHeard.IsZero() || st.BackupStats.Installed != 1 {
		t.Errorf("backup status = %+v", st)
	}
}

// TestSyncSweepTeachesIdleConnections: a connection that sends nothing
// is still learnt by a backup that starts later, from the master's sweep.
func TestSyncSweepTeachesIdleConnections(t *testing.T) {
	w := &wire{}
	m := newSyncRig(t, w.opts(100*time.Millisecond))
	b := newSyncRig(t, w.opts(100*time.Millisecond))
	for _, f := range []conn.TCPFlags{conn.SYN, conn.ACK} {
		m.packet(t, "198.51.100.2:40001", f)
	}
	m.start(t, "master")
	time.Sleep(50 * time.Millisecond)
	b.start(t, "backup")
	eventually(t, 2*time.Second, "backup learns the idle connection", func() bool {
		a, _ := activeConns(b)
		return a == 1
	})
}

func TestSyncDaemonLifecycle(t *testing.T) {
	w := &wire{}
	r := newSyncRig(t, w.opts(time.Hour))
	r.start(t, "master")
	r.start(t, "backup")
	if err := r.d.StartDaemon(ctx, api.SyncDaemon{State: "master", Interface: "eth0"}); !errors.Is(err, ipvs.ErrDaemonRunning) {
		t.Errorf("second master = %v, want ErrDaemonRunning", err)
	}
	ds, err := r.d.Daemons(ctx)
	if err != nil || len(ds) != 2 || ds[0].State != "master" || ds[1].State != "backup" {
		t.Fatalf("Daemons = %+v, %v", ds, err)
	}
	want := api.SyncDaemon{State: "master", Interface: "eth0", SyncID: 7, SyncMaxLen: 1472,
		Group: connsync.DefaultGroup, Port: 8848, TTL: 1}
	if ds[0] != want {
		t.Errorf("master = %+v, want %+v", ds[0], want)
	}
	if err := r.d.StopDaemon(ctx, "master"); err != nil {
		t.Fatal(err)
	}
	if err := r.d.StopDaemon(ctx, "master"); !errors.Is(err, ipvs.ErrNoDaemon) {
		t.Errorf("stop again = %v, want ErrNoDaemon", err)
	}
	if err := r.d.StartDaemon(ctx, api.SyncDaemon{State: "sideways", Interface: "eth0"}); err == nil {
		t.Error("unknown state accepted")
	}
}

// polledDP is a data plane with its own connection table, as ebpf has.
type polledDP struct {
	*dataplanetest.Fake
	mu      sync.Mutex
	entries []polled
	table   *connsynctest.Table
}

type polled struct {
	c    connsync.Conn
	pkts uint64
}

func (p *polledDP) SyncTable() connsync.Table { return p.table }

func (p *polledDP) SyncWalk(fn func(c *connsync.Conn, inPkts uint64, left time.Duration)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.entries {
		c := p.entries[i].c
		fn(&c, p.entries[i].pkts, c.Timeout)
	}
	return nil
}

func (p *polledDP) set(c connsync.Conn, pkts uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.entries {
		if p.entries[i].c.Client == c.Client {
			p.entries[i] = polled{c, pkts}
			return
		}
	}
	p.entries = append(p.entries, polled{c, pkts})
}

// TestSyncPolledDataplane: a data plane that counts packets itself is
// polled; its backup side is its own table, not the engine.
func TestSyncPolledDataplane(t *testing.T) {
	w := &wire{}
	mk := func() (*director.Director, *polledDP) {
		dp := &polledDP{Fake: dataplanetest.New("polled"), table: connsynctest.NewTable()}
		d, err := director.New(director.Config{Engine: engine.New(engine.Options{}), Dataplane: dp, Sync: w.opts(time.Hour),
			Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.StopSync(ctx) })
		return d, dp
	}
	md, mdp := mk()
	bd, bdp := mk()
	if err := bd.StartDaemon(ctx, api.SyncDaemon{State: "backup", Interface: "eth0"}); err != nil {
		t.Fatal(err)
	}
	if err := md.StartDaemon(ctx, api.SyncDaemon{State: "master", Interface: "eth0"}); err != nil {
		t.Fatal(err)
	}
	c := connsync.Conn{Proto: ipvs.ProtoTCP, Flags: connsync.FlagDRoute | connsync.FlagNoOutput,
		State: uint16(conn.TCPEstablished), Client: netip.MustParseAddrPort("198.51.100.3:40002"),
		Virtual: netip.AddrPortFrom(syncVIP.Addr, 80), Dest: netip.AddrPortFrom(syncRS.Addr, 80), Timeout: 900 * time.Second}
	// Two packets: below the threshold, nothing is synced.
	mdp.set(c, 2)
	time.Sleep(100 * time.Millisecond)
	// The count jumps past the threshold between two polls: synced once.
	mdp.set(c, 7)
	eventually(t, 8*time.Second, "backup table gets the polled connection", func() bool {
		e, ok := bdp.table.Get(&c)
		return ok && e.Conn.State == uint16(conn.TCPEstablished)
	})
	if n := len(bdp.table.Ops()); n != 1 {
		t.Errorf("backup saw %d operations, want 1: %+v", n, bdp.table.Ops())
	}
	// A state change is synced at once (at the next flush).
	c.State = uint16(conn.TCPFinWait)
	c.Flags |= connsync.FlagInactive
	mdp.set(c, 8)
	eventually(t, 8*time.Second, "backup sees FIN_WAIT", func() bool {
		e, ok := bdp.table.Get(&c)
		return ok && e.Conn.State == uint16(conn.TCPFinWait)
	})
}
