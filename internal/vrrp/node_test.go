package vrrp_test

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/govs/govs/internal/vrrp"
	"github.com/govs/govs/internal/vrrp/vrrptest"
)

// sim runs nodes on a fake network and clock, one event at a time, in
// the test goroutine: deterministic and without sleeps.
type sim struct {
	t     *testing.T
	clk   *vrrptest.Clock
	nw    *vrrptest.Network
	nodes []*simNode
	start time.Time
}

type simNode struct {
	name string
	n    *vrrp.Node
	conn *vrrptest.Conn
	act  *vrrptest.Actions
	dead bool
}

func newSim(t *testing.T) *sim {
	clk := vrrptest.NewClock()
	return &sim{t: t, clk: clk, nw: vrrptest.NewNetwork(clk), start: clk.Now()}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func baseConfig(name string, prio uint8) vrrp.Config {
	return vrrp.Config{
		Name: name, Interface: "eth0", VirtualRouterID: 51, Priority: prio,
		VirtualIPAddresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.100/32")},
	}
}

// add creates a node and starts it now.
func (s *sim) add(cfg vrrp.Config, addr string) *simNode {
	s.t.Helper()
	conn := s.nw.Conn(netip.MustParseAddr(addr))
	act := vrrptest.NewActions(s.clk)
	n, err := vrrp.New(cfg, conn, act, vrrp.WithClock(s.clk), vrrp.WithLogger(quiet))
	if err != nil {
		s.t.Fatalf("New(%s): %v", cfg.Name, err)
	}
	sn := &simNode{name: cfg.Name, n: n, conn: conn, act: act}
	n.Start()
	s.nodes = append(s.nodes, sn)
	return sn
}

func (sn *simNode) ready(now time.Time) bool {
	if sn.dead {
		return false
	}
	d := sn.n.NextDeadline()
	return sn.conn.Pending() || sn.n.PendingEvents() > 0 || (!d.IsZero() && !now.Before(d))
}

// run advances the simulation by d.
func (s *sim) run(d time.Duration) {
	s.t.Helper()
	end := s.clk.Now().Add(d)
	ctx := context.Background()
	for steps := 0; ; steps++ {
		if steps > 1_000_000 {
			s.t.Fatal("simulation does not settle")
		}
		now := s.clk.Now()
		progressed := false
		for _, sn := range s.nodes {
			for sn.ready(now) {
				if err := sn.n.RunOnce(ctx); err != nil {
					s.t.Fatalf("%s: runOnce: %v", sn.name, err)
				}
				progressed = true
			}
		}
		if progressed {
			continue
		}
		var next time.Time
		for _, sn := range s.nodes {
			if dl := sn.n.NextDeadline(); !sn.dead && !dl.IsZero() && (next.IsZero() || dl.Before(next)) {
				next = dl
			}
		}
		if next.IsZero() || next.After(end) {
			s.clk.Set(end)
			return
		}
		s.clk.Set(next)
	}
}

// crash cuts a node off without a word, as a power failure would.
func (s *sim) crash(sn *simNode) {
	sn.conn.SetUp(false)
	sn.dead = true
}

// stop shuts a node down cleanly (priority 0), then cuts it off.
func (s *sim) stop(sn *simNode) {
	sn.n.Shutdown()
	sn.conn.SetUp(false)
	sn.dead = true
}

// masters returns the names of the nodes in MASTER.
func (s *sim) masters() []string {
	var out []string
	for _, sn := range s.nodes {
		if !sn.dead && sn.n.State() == vrrp.StateMaster {
			out = append(out, sn.name)
		}
	}
	return out
}

func (s *sim) wantMaster(name string) {
	s.t.Helper()
	if got := s.masters(); !slices.Equal(got, []string{name}) {
		s.t.Fatalf("at +%v masters = %v, want [%s]", s.clk.Now().Sub(s.start), got, name)
	}
}

// firstAdvert returns the first advert from src with prio after t, or
// fails.
func (s *sim) firstAdvert(src string, after time.Time, pred func(vrrp.Advert) bool) vrrptest.Sent {
	s.t.Helper()
	a := netip.MustParseAddr(src)
	for _, x := range s.nw.Log() {
		if x.Src == a && x.At.After(after) && (pred == nil || pred(x.Advert)) {
			return x
		}
	}
	s.t.Fatalf("no advert from %s after +%v", src, after.Sub(s.start))
	return vrrptest.Sent{}
}

var vip = netip.MustParsePrefix("192.0.2.100/32")

func TestElectionHigherPriorityWins(t *testing.T) {
	s := newSim(t)
	a := s.add(baseConfig("A", 150), "10.0.0.1")
	b := s.add(baseConfig("B", 100), "10.0.0.2")
	s.run(10 * time.Second)
	s.wantMaster("A")
	if !a.act.HasVIP(vip) || b.act.HasVIP(vip) {
		t.Fatalf("VIP on A=%v B=%v, want only on A", a.act.HasVIP(vip), b.act.HasVIP(vip))
	}
	if got, want := a.act.States(), []vrrp.State{vrrp.StateBackup, vrrp.StateMaster}; !slices.Equal(got, want) {
		t.Errorf("A notified %v, want %v", got, want)
	}
	if got, want := b.act.States(), []vrrp.State{vrrp.StateBackup}; !slices.Equal(got, want) {
		t.Errorf("B notified %v, want %v", got, want)
	}
	// A waited 3*1s + (256-150)/256 s before taking over.
	first := s.firstAdvert("10.0.0.1", s.start.Add(-1), nil)
	if want := vrrp.MasterDownInterval(2, time.Second, 150); first.At.Sub(s.start) != want {
		t.Errorf("A's first advert at +%v, want +%v", first.At.Sub(s.start), want)
	}
	// A master advertises once a second with its priority.
	n := 0
	for _, x := range s.nw.Log() {
		if x.Src == netip.MustParseAddr("10.0.0.1") {
			n++
			if x.Advert.Priority != 150 || x.Dst != vrrp.Group4 || x.Advert.Addresses[0] != vip.Addr() {
				t.Fatalf("advert %+v", x)
			}
		}
	}
	if n < 6 || n > 8 {
		t.Errorf("A sent %d adverts in 10s, want ~7", n)
	}
}

func TestEqualPriorityTieBreakByAddress(t *testing.T) {
	for _, order := range [][]string{{"10.0.0.1", "10.0.0.2"}, {"10.0.0.2", "10.0.0.1"}} {
		s := newSim(t)
		s.add(baseConfig("x"+order[0], 100), order[0])
		s.add(baseConfig("x"+order[1], 100), order[1])
		s.run(10 * time.Second)
		s.wantMaster("x10.0.0.2")
	}
}

func TestMasterDownIntervalTiming(t *testing.T) {
	for _, tc := range []struct {
		version  int
		interval time.Duration
	}{{2, time.Second}, {3, time.Second}, {3, 100 * time.Millisecond}, {3, 30 * time.Millisecond}} {
		s := newSim(t)
		ca, cb := baseConfig("A", 200), baseConfig("B", 100)
		ca.Version, cb.Version = tc.version, tc.version
		ca.AdvertInt, cb.AdvertInt = tc.interval, tc.interval
		a := s.add(ca, "10.0.0.1")
		s.add(cb, "10.0.0.2")
		s.run(10 * time.Second)
		s.wantMaster("A")
		s.crash(a)
		log := s.nw.Log()
		last := log[len(log)-1]
		s.run(10 * time.Second)
		s.wantMaster("B")
		took := s.firstAdvert("10.0.0.2", last.At, nil).At.Sub(last.At)
		want := vrrp.MasterDownInterval(tc.version, tc.interval, 100)
		if took != want {
			t.Errorf("v%d %v: takeover %v after the last advert, want %v", tc.version, tc.interval, took, want)
		}
	}
	// The formula itself, RFC 5798 6.1: 3*interval + (256-prio)*interval/256.
	if got, want := vrrp.MasterDownInterval(3, time.Second, 100), 3*time.Second+609375*time.Microsecond; got != want {
		t.Errorf("MasterDownInterval(v3, 1s, 100) = %v, want %v", got, want)
	}
	if got, want := vrrp.MasterDownInterval(2, 2*time.Second, 0), 7*time.Second; got != want {
		t.Errorf("MasterDownInterval(v2, 2s, 0) = %v, want %v", got, want)
	}
}

func TestShutdownSendsPriorityZero(t *testing.T) {
	s := newSim(t)
	a := s.add(baseConfig("A", 200), "10.0.0.1")
	b := s.add(baseConfig("B", 100), "10.0.0.2")
	s.run(10 * time.Second)
	s.wantMaster("A")
	stopAt := s.clk.Now()
	s.stop(a)
	zero := s.firstAdvert("10.0.0.1", stopAt.Add(-1), func(a vrrp.Advert) bool { return a.Priority == 0 })
	if a.act.HasVIP(vip) {
		t.Error("A kept the VIP after shutdown")
	}
	if got := a.act.States(); got[len(got)-1] != vrrp.StateInit {
		t.Errorf("A's last notify %v, want INIT (stop)", got)
	}
	s.run(5 * time.Second)
	s.wantMaster("B")
	// B took over after its skew time only: (256-100)/256 s.
	took := s.firstAdvert("10.0.0.2", zero.At.Add(-1), nil).At.Sub(zero.At)
	if want := 156 * time.Second / 256; took != want {
		t.Errorf("B took over %v after priority 0, want the skew time %v", took, want)
	}
	if !b.act.HasVIP(vip) || b.n.Stats().PriorityZeroReceived != 1 {
		t.Errorf("B: VIP %v, stats %+v", b.act.HasVIP(vip), b.n.Stats())
	}
}

func TestPreemption(t *testing.T) {
	s := newSim(t)
	b := s.add(baseConfig("B", 100), "10.0.0.2")
	s.run(10 * time.Second)
	s.wantMaster("B")
	joined := s.clk.Now()
	s.add(baseConfig("A", 200), "10.0.0.1")
	s.run(10 * time.Second)
	s.wantMaster("A")
	took := s.firstAdvert("10.0.0.1", joined.Add(-1), nil).At.Sub(joined)
	if want := vrrp.MasterDownInterval(2, time.Second, 200); took > want {
		t.Errorf("A preempted after %v, want at most %v", took, want)
	}
	if b.act.HasVIP(vip) {
		t.Error("B kept the VIP after being preempted")
	}
	if got, want := b.act.States(), []vrrp.State{vrrp.StateBackup, vrrp.StateMaster, vrrp.StateBackup}; !slices.Equal(got, want) {
		t.Errorf("B notified %v, want %v", got, want)
	}
}

func TestNoPreempt(t *testing.T) {
	s := newSim(t)
	s.add(baseConfig("B", 100), "10.0.0.2")
	s.run(10 * time.Second)
	ca := baseConfig("A", 200)
	ca.NoPreempt = true
	a := s.add(ca, "10.0.0.1")
	s.run(60 * time.Second)
	s.wantMaster("B")
	if a.act.HasVIP(vip) {
		t.Error("nopreempt A added the VIP")
	}
	// nopreempt still takes over from a dead master.
	s.crash(s.nodes[0])
	s.run(10 * time.Second)
	s.wantMaster("A")
}

func TestPreemptDelay(t *testing.T) {
	s := newSim(t)
	s.add(baseConfig("B", 100), "10.0.0.2")
	s.run(10 * time.Second)
	joined := s.clk.Now()
	ca := baseConfig("A", 200)
	ca.PreemptDelay = 20 * time.Second
	s.add(ca, "10.0.0.1")
	s.run(19 * time.Second)
	s.wantMaster("B")
	s.run(10 * time.Second)
	s.wantMaster("A")
	took := s.firstAdvert("10.0.0.1", joined, nil).At.Sub(joined)
	max := 20*time.Second + time.Second + vrrp.MasterDownInterval(2, time.Second, 200)
	if took < 20*time.Second || took > max {
		t.Errorf("A preempted after %v, want between 20s and %v", took, max)
	}
}

func TestPriorityOwner(t *testing.T) {
	s := newSim(t)
	s.add(baseConfig("B", 254), "10.0.0.2")
	s.run(10 * time.Second)
	joined := s.clk.Now()
	a := s.add(baseConfig("A", 255), "10.0.0.1")
	// The owner is master at once, without a master down interval.
	if a.n.State() != vrrp.StateMaster {
		t.Fatalf("owner state %v right after start, want MASTER", a.n.State())
	}
	if first := s.firstAdvert("10.0.0.1", joined.Add(-1), nil); !first.At.Equal(joined) || first.Advert.Priority != 255 {
		t.Errorf("owner's first advert %+v, want priority 255 at start", first)
	}
	s.run(time.Second)
	s.wantMaster("A")
	// Tracking never changes the owner's priority.
	if a.n.Priority() != 255 {
		t.Errorf("owner priority %d", a.n.Priority())
	}
}

func TestTwoOwnersConflict(t *testing.T) {
	s := newSim(t)
	s.add(baseConfig("A", 255), "10.0.0.1")
	s.add(baseConfig("B", 255), "10.0.0.2")
	s.run(10 * time.Second)
	// keepalived's rule: an owner that hears another owner lowers itself
	// to 254; one master remains.
	if got := s.masters(); len(got) != 1 {
		t.Fatalf("masters %v, want one", got)
	}
}

func TestStateMasterStartsAfterOneInterval(t *testing.T) {
	s := newSim(t)
	c := baseConfig("A", 100)
	c.State = "MASTER"
	s.add(c, "10.0.0.1")
	s.run(5 * time.Second)
	s.wantMaster("A")
	took := s.firstAdvert("10.0.0.1", s.start.Add(-1), nil).At.Sub(s.start)
	if want := time.Second + time.Second/256; took != want {
		t.Errorf("state MASTER took over after %v, want %v", took, want)
	}
}

func TestFaultViaTrackedInterface(t *testing.T) {
	s := newSim(t)
	ca := baseConfig("A", 200)
	ca.TrackInterface = []vrrp.Track{{Name: "eth1"}}
	a := s.add(ca, "10.0.0.1")
	b := s.add(baseConfig("B", 100), "10.0.0.2")
	s.run(10 * time.Second)
	s.wantMaster("A")

	a.n.SetTracked(vrrp.TrackInterface, "eth1", false)
	s.run(0)
	if a.n.State() != vrrp.StateFault || a.act.HasVIP(vip) {
		t.Fatalf("A: state %v VIP %v, want FAULT without VIP", a.n.State(), a.act.HasVIP(vip))
	}
	if a.n.Stats().PriorityZeroSent != 1 {
		t.Errorf("A sent %d priority 0 adverts entering FAULT, want 1", a.n.Stats().PriorityZeroSent)
	}
	s.run(time.Second)
	s.wantMaster("B")

	// FAULT ignores adverts; recovery goes through BACKUP and preempts.
	a.n.SetTracked(vrrp.TrackInterface, "eth1", true)
	s.run(10 * time.Second)
	s.wantMaster("A")
	if b.act.HasVIP(vip) {
		t.Error("B kept the VIP")
	}
	if got, want := a.act.States(), []vrrp.State{vrrp.StateBackup, vrrp.StateMaster, vrrp.StateFault, vrrp.StateBackup, vrrp.StateMaster}; !slices.Equal(got, want) {
		t.Errorf("A notified %v, want %v", got, want)
	}

	// The primary interface going down is a fault as well.
	a.n.SetTracked(vrrp.TrackInterface, "eth0", false)
	s.run(0)
	if a.n.State() != vrrp.StateFault {
		t.Errorf("primary interface down: state %v, want FAULT", a.n.State())
	}
}

func TestTrackScriptWeight(t *testing.T) {
	s := newSim(t)
	ca := baseConfig("A", 150)
	ca.TrackScript = []vrrp.Track{{Name: "chk_nginx", Weight: -60}, {Name: "chk_bonus", Weight: 10}}
	a := s.add(ca, "10.0.0.1")
	s.add(baseConfig("B", 100), "10.0.0.2")
	s.run(10 * time.Second)
	s.wantMaster("A")
	if a.n.Priority() != 160 {
		t.Errorf("priority %d, want 150+10", a.n.Priority())
	}
	a.n.SetTracked(vrrp.TrackScript, "chk_nginx", false)
	s.run(0)
	if a.n.Priority() != 100 {
		t.Errorf("priority %d after failing script, want 160-60", a.n.Priority())
	}
	// At 100 against B's 100, B accepts A (an equal priority advert
	// resets a backup's timer). Once A drops to 90, B ignores it and
	// takes over when its master down timer runs out.
	a.n.SetTracked(vrrp.TrackScript, "chk_bonus", false)
	s.run(10 * time.Second)
	s.wantMaster("B")
	if a.n.State() != vrrp.StateBackup {
		t.Errorf("A state %v, want BACKUP", a.n.State())
	}
}

func TestReceiveChecks(t *testing.T) {
	good := vrrp.Received{
		Advert: vrrp.Advert{Version: 2, VRID: 51, Priority: 200, AdvertInt: time.Second,
			Addresses: []netip.Addr{vip.Addr()}, AuthType: vrrp.AuthPass, AuthData: vrrp.PassData("secret")},
		Src: netip.MustParseAddr("10.0.0.9"), Dst: vrrp.Group4, TTL: 255,
	}
	for _, tc := range []struct {
		name    string
		mut     func(*vrrp.Received)
		unicast bool
		drop    bool
	}{
		{"good", func(*vrrp.Received) {}, false, false},
		{"ttl 64", func(r *vrrp.Received) { r.TTL = 64 }, false, true},
		{"ttl 64 unicast", func(r *vrrp.Received) { r.TTL = 64 }, true, false},
		{"bad password", func(r *vrrp.Received) { r.AuthData = vrrp.PassData("guess") }, false, true},
		{"no auth", func(r *vrrp.Received) { r.AuthType, r.AuthData = vrrp.AuthNone, [8]byte{} }, false, true},
		{"advert_int", func(r *vrrp.Received) { r.AdvertInt = 2 * time.Second }, false, true},
		{"version", func(r *vrrp.Received) { r.Version = 3 }, false, true},
		{"other vip", func(r *vrrp.Received) { r.Addresses = []netip.Addr{netip.MustParseAddr("192.0.2.1")} }, false, true},
		{"extra vip", func(r *vrrp.Received) { r.Addresses = append(r.Addresses, netip.MustParseAddr("192.0.2.1")) }, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t)
			c := baseConfig("B", 100)
			c.AuthType, c.AuthPass = "PASS", "secret"
			if tc.unicast {
				c.UnicastPeer = []netip.Addr{good.Src}
			}
			b := s.add(c, "10.0.0.2")
			// Feed a higher priority advert every second for 10s: a
			// valid one keeps B in BACKUP, an invalid one is dropped
			// and B takes over.
			for range 10 {
				r := good
				r.Addresses = slices.Clone(good.Addresses)
				tc.mut(&r)
				b.conn.Inject(&r)
				s.run(time.Second)
			}
			st := b.n.Stats()
			if tc.drop {
				if b.n.State() != vrrp.StateMaster || st.Dropped != 10 {
					t.Errorf("state %v dropped %d, want MASTER and 10 dropped", b.n.State(), st.Dropped)
				}
			} else if b.n.State() != vrrp.StateBackup || st.Dropped != 0 {
				t.Errorf("state %v dropped %d, want BACKUP and none dropped", b.n.State(), st.Dropped)
			}
		})
	}
}

func TestOtherVRIDIgnored(t *testing.T) {
	s := newSim(t)
	a := s.add(baseConfig("A", 200), "10.0.0.1")
	c := baseConfig("B", 100)
	c.VirtualRouterID = 52
	b := s.add(c, "10.0.0.2")
	s.run(10 * time.Second)
	if a.n.State() != vrrp.StateMaster || b.n.State() != vrrp.StateMaster {
		t.Errorf("different VRIDs: A %v B %v, want both MASTER", a.n.State(), b.n.State())
	}
	if a.n.Stats().Dropped != 0 {
		t.Errorf("other VRID counted as dropped")
	}
}

func TestUnicastPeers(t *testing.T) {
	s := newSim(t)
	ca, cb := baseConfig("A", 200), baseConfig("B", 100)
	ca.UnicastPeer = []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")}
	cb.UnicastPeer = []netip.Addr{netip.MustParseAddr("10.0.0.1")}
	s.add(ca, "10.0.0.1")
	s.add(cb, "10.0.0.2")
	s.run(10 * time.Second)
	s.wantMaster("A")
	dsts := map[netip.Addr]int{}
	for _, x := range s.nw.Log() {
		dsts[x.Dst]++
	}
	if dsts[vrrp.Group4] != 0 || dsts[netip.MustParseAddr("10.0.0.2")] == 0 || dsts[netip.MustParseAddr("10.0.0.3")] == 0 {
		t.Errorf("destinations %v, want only the unicast peers", dsts)
	}
}

func TestV3BackupLearnsMasterInterval(t *testing.T) {
	s := newSim(t)
	ca, cb := baseConfig("A", 200), baseConfig("B", 100)
	ca.Version, cb.Version = 3, 3
	ca.AdvertInt, cb.AdvertInt = 200*time.Millisecond, 2*time.Second
	a := s.add(ca, "10.0.0.1")
	s.add(cb, "10.0.0.2")
	s.run(10 * time.Second)
	s.wantMaster("A")
	s.crash(a)
	log := s.nw.Log()
	last := log[len(log)-1]
	s.run(10 * time.Second)
	took := s.firstAdvert("10.0.0.2", last.At, nil).At.Sub(last.At)
	// RFC 5798 6.4.2: Master_Adver_Interval is the master's, 200ms.
	if want := vrrp.MasterDownInterval(3, 200*time.Millisecond, 100); took != want {
		t.Errorf("takeover after %v, want %v (from the master's interval)", took, want)
	}
}

func TestGarpBursts(t *testing.T) {
	s := newSim(t)
	c := baseConfig("A", 255)
	c.VirtualIPAddressesExcluded = []netip.Prefix{netip.MustParsePrefix("198.51.100.7/24")}
	c.Garp = vrrp.DefaultGarp()
	c.Garp.MasterRefresh = 60 * time.Second
	a := s.add(c, "10.0.0.1")
	s.run(125 * time.Second)
	var at []time.Duration
	for _, call := range a.act.Calls("announce") {
		at = append(at, call.At.Sub(s.start))
		if len(call.Addrs) != 2 {
			t.Errorf("announced %v, want the VIP and the excluded VIP", call.Addrs)
		}
	}
	want := []time.Duration{0, 5 * time.Second, 60 * time.Second, 120 * time.Second}
	if !slices.Equal(at, want) {
		t.Fatalf("announcements at %v, want %v", at, want)
	}
	calls := a.act.Calls("announce")
	if calls[0].Repeat != 5 || calls[1].Repeat != 5 || calls[2].Repeat != 1 {
		t.Errorf("repeats %d %d %d, want 5 5 1", calls[0].Repeat, calls[1].Repeat, calls[2].Repeat)
	}
	if adds := a.act.Calls("add"); len(adds) != 1 || len(adds[0].Prefixes) != 2 {
		t.Errorf("adds %+v, want one add of both prefixes", adds)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mut  func(*vrrp.Config)
	}{
		{"no vrid", func(c *vrrp.Config) { c.VirtualRouterID = 0 }},
		{"no interface", func(c *vrrp.Config) { c.Interface = "" }},
		{"v2 subsecond", func(c *vrrp.Config) { c.AdvertInt = 500 * time.Millisecond }},
		{"v2 ipv6", func(c *vrrp.Config) {
			c.Version = 2
			c.VirtualIPAddresses = []netip.Prefix{netip.MustParsePrefix("2001:db8::1/128")}
		}},
		{"mixed families", func(c *vrrp.Config) {
			c.Version = 3
			c.VirtualIPAddresses = append(c.VirtualIPAddresses, netip.MustParsePrefix("2001:db8::1/128"))
		}},
		{"v3 auth", func(c *vrrp.Config) { c.Version, c.AuthType = 3, "PASS" }},
		{"AH", func(c *vrrp.Config) { c.AuthType = "AH" }},
		{"state", func(c *vrrp.Config) { c.State = "master" }},
	} {
		c := baseConfig("x", 100)
		tc.mut(&c)
		if _, err := vrrp.New(c, nil, nil); err == nil {
			t.Errorf("%s: New accepted %+v", tc.name, c)
		}
	}
	c := baseConfig("x", 0)
	c.VirtualIPAddresses = []netip.Prefix{netip.MustParsePrefix("2001:db8::1/128")}
	if _, err := vrrp.New(c, nil, nil); err != nil {
		t.Errorf("IPv6 instance without version (defaults to 3): %v", err)
	}
}

// TestRun drives two nodes with Run and the real clock over the fake
// network: the master's context ends, it sends priority 0, the backup
// takes over.
func TestRun(t *testing.T) {
	clk := vrrptest.NewClock()
	nw := vrrptest.NewNetwork(clk)
	mk := func(name string, prio uint8, addr string) (*vrrp.Node, *vrrptest.Actions) {
		c := baseConfig(name, prio)
		c.Version, c.AdvertInt = 3, 20*time.Millisecond
		act := vrrptest.NewActions(nil)
		n, err := vrrp.New(c, nw.Conn(netip.MustParseAddr(addr)), act, vrrp.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		return n, act
	}
	a, aact := mk("A", 200, "10.0.0.1")
	b, _ := mk("B", 100, "10.0.0.2")
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	doneA, doneB := make(chan error), make(chan error)
	go func() { doneA <- a.Run(ctxA) }()
	go func() { doneB <- b.Run(ctxB) }()
	defer func() {
		stopB()
		if err := <-doneB; err != nil {
			t.Errorf("B.Run: %v", err)
		}
	}()
	waitState(t, a, vrrp.StateMaster, 2*time.Second)
	waitState(t, b, vrrp.StateBackup, time.Second)
	stopA()
	if err := <-doneA; err != nil {
		t.Errorf("A.Run: %v", err)
	}
	if a.Stats().PriorityZeroSent != 1 || aact.HasVIP(vip) {
		t.Errorf("A after stop: %+v, VIP %v", a.Stats(), aact.HasVIP(vip))
	}
	// Skew time for priority 100 at 20ms: ~12ms.
	waitState(t, b, vrrp.StateMaster, time.Second)
}

func waitState(t *testing.T, n *vrrp.Node, want vrrp.State, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for n.State() != want {
		if time.Now().After(deadline) {
			t.Fatalf("state %v after %v, want %v", n.State(), within, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
