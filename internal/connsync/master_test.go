package connsync_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/connsync/connsynctest"
	"github.com/govs/govs/internal/ipvs"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func newMaster(t *testing.T, s connsync.Settings) *connsync.Master {
	t.Helper()
	m, err := connsync.NewMaster(connsync.Config{Role: connsync.RoleMaster, Interface: "eth0", SyncID: 4}, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func tcpConn(state conn.State) connsync.Conn {
	return connsync.Conn{
		Proto: ipvs.ProtoTCP, Flags: connsync.FlagDRoute | connsync.FlagNoOutput, State: uint16(state),
		Client: ap("10.0.0.1:40000"), Virtual: ap("192.168.1.110:80"), Dest: ap("192.168.1.11:80"),
		Timeout: conn.DefaultTCPTimeout(state),
	}
}

// step feeds one packet and reports how many entries it put into messages.
func step(m *connsync.Master, now time.Time, u *connsync.Update) int {
	before := m.Stats().Conns
	m.Packet(now, u)
	return int(m.Stats().Conns - before)
}

// syncedAt feeds n packets of u (one per millisecond) and returns the
// packet numbers (1-based) that synced something.
func syncedAt(m *connsync.Master, u *connsync.Update, n int) []int {
	var got []int
	for i := 1; i <= n; i++ {
		if step(m, t0.Add(time.Duration(i)*time.Millisecond), u) > 0 {
			got = append(got, i)
		}
	}
	return got
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMasterThresholds(t *testing.T) {
	def := connsync.DefaultSettings()
	once := def
	once.Period = 0
	for _, tc := range []struct {
		name string
		s    connsync.Settings
		c    connsync.Conn
		n    int
		want []int
	}{
		// pkts % 50 == 3.
		{"tcp established", def, tcpConn(conn.TCPEstablished), 160, []int{3, 53, 103, 153}},
		{"udp", def, connsync.Conn{
			Proto: ipvs.ProtoUDP, Flags: connsync.FlagDRoute, Client: ap("10.0.0.1:53000"),
			Virtual: ap("192.168.1.110:53"), Dest: ap("192.168.1.11:53"), Timeout: 300 * time.Second,
		}, 110, []int{3, 53, 103}},
		// TCP states other than ES, FW, CW, TW, CL are never synced.
		{"tcp syn_recv", def, tcpConn(conn.TCPSynRecv), 60, nil},
		{"tcp syn_sent", def, tcpConn(conn.TCPSynSent), 60, nil},
		{"tcp last_ack", def, tcpConn(conn.TCPLastAck), 60, nil},
		// Entering FIN_WAIT is synced at once, then by the count.
		{"tcp fin_wait", def, tcpConn(conn.TCPFinWait), 60, []int{1, 3, 53}},
		{"tcp close", def, tcpConn(conn.TCPClose), 4, []int{1, 3}},
		// Period 0: once at the threshold, then only on state changes.
		{"period 0", once, tcpConn(conn.TCPEstablished), 200, []int{3}},
		{"threshold 0", connsync.Settings{Threshold: 0, Period: 10, QLenMax: 8, Ports: 1}, tcpConn(conn.TCPEstablished), 30, []int{10, 20, 30}},
		// One-packet connections are never synced.
		{"one packet", def, func() connsync.Conn {
			c := tcpConn(conn.TCPEstablished)
			c.Proto, c.Flags = ipvs.ProtoUDP, c.Flags|connsync.FlagOnePacket
			return c
		}(), 60, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMaster(t, tc.s)
			u := &connsync.Update{Conn: tc.c, Sync: &connsync.SyncState{}}
			if got := syncedAt(m, u, tc.n); !equalInts(got, tc.want) {
				t.Errorf("synced at packets %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMasterTCPStateChanges(t *testing.T) {
	m := newMaster(t, connsync.DefaultSettings())
	st := &connsync.SyncState{}
	u := &connsync.Update{Sync: st}
	type pkt struct {
		state conn.State
		sync  bool
	}
	// A DR connection's life: SYN, handshake ACK, data, FIN, ...
	for i, p := range []pkt{
		{conn.TCPSynRecv, false},     // 1: not a synced state
		{conn.TCPEstablished, false}, // 2: ESTABLISHED is not forced; 2 % 50 != 3
		{conn.TCPEstablished, true},  // 3: threshold; a state change counts as forced
		{conn.TCPEstablished, false}, // 4
		{conn.TCPFinWait, true},      // 5: forced
		{conn.TCPFinWait, false},     // 6: same state again
		{conn.TCPTimeWait, true},     // 7: forced
		{conn.TCPClose, true},        // 8: forced
		{conn.TCPEstablished, false}, // 9: back to ESTABLISHED (reused port): waits for the count
	} {
		u.Conn = tcpConn(p.state)
		if got := step(m, t0.Add(time.Duration(i)*time.Second), u) > 0; got != p.sync {
			t.Errorf("packet %d in %s: synced %v, want %v", i+1, p.state.TCPString(), got, p.sync)
		}
	}
	if st.InPkts != 9 || st.OldState != uint16(conn.TCPClose) {
		t.Errorf("sync state %+v, want 9 packets and old state CLOSE", st)
	}
}

func TestMasterTemplates(t *testing.T) {
	tpl := connsync.Conn{
		Proto: ipvs.ProtoTCP, Flags: connsync.FlagTemplate | connsync.FlagDRoute,
		Client: ap("10.0.0.0:0"), Virtual: ap("192.168.1.110:80"), Dest: ap("192.168.1.11:80"),
		Timeout: 360 * time.Second,
	}
	t.Run("template follows every packet", func(t *testing.T) {
		m := newMaster(t, connsync.DefaultSettings())
		tu := &connsync.Update{Conn: tpl, Sync: &connsync.SyncState{}}
		u := &connsync.Update{Conn: tcpConn(conn.TCPEstablished), Sync: &connsync.SyncState{}, Control: tu}
		n := 0
		for i := 1; i <= 5; i++ {
			n += step(m, t0.Add(time.Duration(i)*time.Second), u)
		}
		// 5 template syncs plus the connection's at packet 3.
		if n != 6 || tu.Sync.InPkts != 5 {
			t.Errorf("%d entries, template count %d; want 6 and 5", n, tu.Sync.InPkts)
		}
	})
	t.Run("one-packet connection syncs only its template", func(t *testing.T) {
		m := newMaster(t, connsync.DefaultSettings())
		tu := &connsync.Update{Conn: tpl, Sync: &connsync.SyncState{}}
		c := tcpConn(conn.TCPEstablished)
		c.Proto, c.Flags = ipvs.ProtoUDP, c.Flags|connsync.FlagOnePacket
		u := &connsync.Update{Conn: c, Sync: &connsync.SyncState{}, Control: tu}
		if n := step(m, t0, u); n != 1 || u.Sync.InPkts != 0 {
			t.Errorf("%d entries, connection count %d; want the template only", n, u.Sync.InPkts)
		}
	})
	t.Run("persist mode", func(t *testing.T) {
		s := connsync.DefaultSettings()
		s.PersistMode = true
		m := newMaster(t, s)
		tu := &connsync.Update{Conn: tpl, Sync: &connsync.SyncState{}}
		u := &connsync.Update{Conn: tcpConn(conn.TCPFinWait), Sync: &connsync.SyncState{}, Control: tu}
		if n := step(m, t0, u); n != 1 {
			t.Errorf("%d entries, want the template only", n)
		}
	})
	t.Run("refresh period limits templates", func(t *testing.T) {
		s := connsync.DefaultSettings()
		s.RefreshPeriod = 30 * time.Second
		m := newMaster(t, s)
		tu := &connsync.Update{Conn: tpl, Sync: &connsync.SyncState{}}
		u := &connsync.Update{Conn: tcpConn(conn.TCPSynRecv), Sync: &connsync.SyncState{}, Control: tu}
		var at []int
		for i := 0; i <= 70; i++ {
			if step(m, t0.Add(time.Duration(i)*time.Second), u) > 0 {
				at = append(at, i)
			}
		}
		if !equalInts(at, []int{0, 30, 60}) {
			t.Errorf("template synced at seconds %v, want [0 30 60]", at)
		}
	})
}

func TestMasterRefreshPeriod(t *testing.T) {
	t.Run("no retries", func(t *testing.T) {
		s := connsync.DefaultSettings()
		s.Period, s.RefreshPeriod = 0, 120*time.Second
		m := newMaster(t, s)
		u := &connsync.Update{Conn: tcpConn(conn.TCPEstablished), Sync: &connsync.SyncState{}}
		var at []int
		for _, sec := range []int{0, 10, 100, 119, 121, 200, 242} {
			if step(m, t0.Add(time.Duration(sec)*time.Second), u) > 0 {
				at = append(at, sec)
			}
		}
		// The expiry must move by min(120 s, max(900/2, 10) s) = 120 s.
		if !equalInts(at, []int{0, 121, 242}) {
			t.Errorf("synced at %v, want [0 121 242]", at)
		}
	})
	t.Run("retries", func(t *testing.T) {
		s := connsync.DefaultSettings()
		s.Period, s.RefreshPeriod, s.Retries = 0, 80*time.Second, 2
		m := newMaster(t, s)
		u := &connsync.Update{Conn: tcpConn(conn.TCPEstablished), Sync: &connsync.SyncState{}}
		var at []int
		for _, sec := range []int{0, 5, 11, 15, 22, 40, 60, 103} {
			if step(m, t0.Add(time.Duration(sec)*time.Second), u) > 0 {
				at = append(at, sec)
			}
		}
		// Resends RefreshPeriod/8 = 10 s after the last sync, twice; then
		// nothing until the expiry moved by 80 s.
		if !equalInts(at, []int{0, 11, 22, 103}) {
			t.Errorf("synced at %v, want [0 11 22 103]", at)
		}
	})
	t.Run("short timeout", func(t *testing.T) {
		s := connsync.DefaultSettings()
		s.Period, s.RefreshPeriod = 0, time.Hour
		m := newMaster(t, s)
		c := tcpConn(conn.TCPEstablished)
		c.Timeout = 30 * time.Second
		u := &connsync.Update{Conn: c, Sync: &connsync.SyncState{}}
		var at []int
		for _, sec := range []int{0, 9, 10, 15, 21} {
			if step(m, t0.Add(time.Duration(sec)*time.Second), u) > 0 {
				at = append(at, sec)
			}
		}
		// min(1 h, max(15 s, 10 s)) = 15 s.
		if !equalInts(at, []int{0, 15}) {
			t.Errorf("synced at %v, want [0 15]", at)
		}
	})
}

func TestMasterBatchingAndFlush(t *testing.T) {
	s := connsync.DefaultSettings()
	s.Period, s.Threshold = 0, 1 // every connection syncs at its first packet
	s.QLenMax = 2
	m := newMaster(t, s)
	if m.MaxLen() != 1472 {
		t.Fatalf("MaxLen %d, want 1500-28", m.MaxLen())
	}
	snd := &connsynctest.Sender{}
	feed := func(now time.Time, n int) {
		for i := range n {
			c := tcpConn(conn.TCPEstablished)
			c.Client = netip.AddrPortFrom(c.Client.Addr(), uint16(1000+i))
			m.Packet(now, &connsync.Update{Conn: c, Sync: &connsync.SyncState{}})
		}
	}
	// 40 IPv4 entries fill a 1472-byte message; the 41st starts the next.
	feed(t0, 41)
	if m.Pending() != 1 {
		t.Fatalf("%d messages queued, want 1", m.Pending())
	}
	// The partial message waits up to FlushTime from its first entry.
	m.Tick(t0.Add(connsync.FlushTime - time.Millisecond))
	if m.Pending() != 1 {
		t.Fatalf("flushed early: %d queued", m.Pending())
	}
	m.Tick(t0.Add(connsync.FlushTime))
	if m.Pending() != 2 {
		t.Fatalf("%d queued after FlushTime, want 2", m.Pending())
	}
	if err := m.SendQueued(snd); err != nil {
		t.Fatal(err)
	}
	sent := snd.Sent()
	if len(sent) != 2 {
		t.Fatalf("%d sent, want 2", len(sent))
	}
	for i, want := range []int{40, 1} {
		msg, err := connsync.Decode(sent[i].Msg)
		if err != nil {
			t.Fatal(err)
		}
		if msg.SyncID != 4 || len(msg.Conns) != want || sent[i].Thread != 0 {
			t.Errorf("message %d: syncid %d, %d conns, thread %d; want 4, %d, 0", i, msg.SyncID, len(msg.Conns), sent[i].Thread, want)
		}
	}
	if st := m.Stats(); st.Messages != 2 || st.Conns != 41 {
		t.Errorf("stats %+v", st)
	}

	// The queue holds QLenMax messages; more are dropped.
	feed(t0, 40*4)
	m.Flush()
	if st := m.Stats(); m.Pending() != 2 || st.Dropped != 2 {
		t.Errorf("%d queued, %d dropped; want 2 and 2", m.Pending(), st.Dropped)
	}

	// A failing sender drops the messages and reports the error.
	bad := &connsynctest.Sender{Err: errors.New("boom")}
	if err := m.SendQueued(bad); err == nil || m.Pending() != 0 || m.Stats().SendErrors != 2 {
		t.Errorf("err %v, %d queued, %d send errors", err, m.Pending(), m.Stats().SendErrors)
	}
}

func TestMasterPorts(t *testing.T) {
	s := connsync.DefaultSettings()
	s.Period, s.Threshold, s.Ports = 0, 1, 4
	m := newMaster(t, s)
	for i := range 64 {
		c := tcpConn(conn.TCPEstablished)
		c.Client = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i), 1}), uint16(2000+i))
		m.Packet(t0, &connsync.Update{Conn: c, Sync: &connsync.SyncState{}})
	}
	m.Flush()
	snd := &connsynctest.Sender{}
	if err := m.SendQueued(snd); err != nil {
		t.Fatal(err)
	}
	threads := map[int]int{}
	total := 0
	for _, e := range snd.Sent() {
		msg, err := connsync.Decode(e.Msg)
		if err != nil {
			t.Fatal(err)
		}
		threads[e.Thread] += len(msg.Conns)
		total += len(msg.Conns)
	}
	if total != 64 || len(threads) < 2 {
		t.Errorf("%d entries over threads %v; want 64 spread over several", total, threads)
	}
	for th := range threads {
		if th < 0 || th >= 4 {
			t.Errorf("thread %d out of range", th)
		}
	}
}

func TestMasterRun(t *testing.T) {
	s := connsync.DefaultSettings()
	s.Period, s.Threshold = 0, 1
	m := newMaster(t, s)
	snd := &connsynctest.Sender{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, snd) }()
	// One entry: sent by the periodic check within FlushTime+CheckPeriod.
	m.Packet(time.Now(), &connsync.Update{Conn: tcpConn(conn.TCPEstablished), Sync: &connsync.SyncState{}})
	deadline := time.Now().Add(connsync.FlushTime + 3*connsync.CheckPeriod)
	for len(snd.Sent()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(snd.Sent()) != 1 {
		t.Fatalf("%d messages sent, want 1", len(snd.Sent()))
	}
}

func TestMasterSkipsUnencodable(t *testing.T) {
	m := newMaster(t, connsync.DefaultSettings())
	c := tcpConn(conn.TCPFinWait)
	c.Dest = ap("[2001:db8::1]:80") // mixed families cannot be sent
	m.Packet(t0, &connsync.Update{Conn: c, Sync: &connsync.SyncState{}})
	if st := m.Stats(); st.Invalid != 1 || st.Conns != 0 {
		t.Errorf("stats %+v, want 1 invalid", st)
	}
	// A sub-second timeout is sent in whole seconds, FlagHashed never.
	c = tcpConn(conn.TCPFinWait)
	c.Timeout = 1500 * time.Millisecond
	c.Flags |= connsync.FlagHashed
	m.Packet(t0, &connsync.Update{Conn: c, Sync: &connsync.SyncState{}})
	m.Flush()
	snd := &connsynctest.Sender{}
	_ = m.SendQueued(snd)
	msg, err := connsync.Decode(snd.Sent()[0].Msg)
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Conns[0]; got.Timeout != time.Second || got.Flags&connsync.FlagHashed != 0 {
		t.Errorf("sent timeout %v flags %#x", got.Timeout, got.Flags)
	}
}
