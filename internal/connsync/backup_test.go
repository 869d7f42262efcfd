package connsync_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/connsync/connsynctest"
	"github.com/govs/govs/internal/ipvs"
)

func newBackup(t *testing.T, syncID uint8, tbl connsync.Table) *connsync.Backup {
	t.Helper()
	b, err := connsync.NewBackup(connsync.Config{Role: connsync.RoleBackup, Interface: "eth0", SyncID: syncID},
		connsync.DefaultSettings(), tbl, 1500, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func encode(t *testing.T, syncID uint8, cs ...connsync.Conn) []byte {
	t.Helper()
	b, err := connsync.Encode(&connsync.Message{SyncID: syncID, Conns: cs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBackupInstall(t *testing.T) {
	tbl := connsynctest.NewTable()
	b := newBackup(t, 4, tbl)
	c := tcpConn(conn.TCPEstablished)
	// Bits outside IP_VS_CONN_F_BACKUP_MASK are dropped, SYNC is set.
	c.Flags |= connsync.FlagOnePacket | connsync.FlagHashed | 1<<16
	c.Timeout = 123 * time.Second
	c.PEData, c.PEName = []byte("id"), "sip" // kept only for templates
	if err := b.Process(t0, encode(t, 4, c)); err != nil {
		t.Fatal(err)
	}
	e, ok := tbl.Get(&c)
	if !ok {
		t.Fatal("not installed")
	}
	want := connsync.FlagDRoute | connsync.FlagNoOutput | connsync.FlagSync
	if e.Conn.Flags != want || e.Conn.Timeout != 123*time.Second || e.Pkts != connsync.DefaultThreshold ||
		e.Conn.PEData != nil || e.Conn.State != uint16(conn.TCPEstablished) {
		t.Errorf("installed %+v pkts %d; want flags %#x, timeout 123s, pkts 3, no PE data", e.Conn, e.Pkts, want)
	}
	if !b.LastHeard().Equal(t0) {
		t.Errorf("LastHeard %v", b.LastHeard())
	}
}

func TestBackupTimeouts(t *testing.T) {
	tbl := connsynctest.NewTable()
	tbl.T = conn.Timeouts{TCP: 1000 * time.Second}
	b := newBackup(t, 0, tbl)
	udp := connsync.Conn{Proto: ipvs.ProtoUDP, Flags: connsync.FlagMasq, Client: ap("10.0.0.9:5000"),
		Virtual: ap("10.1.0.1:53"), Dest: ap("10.2.0.1:53")}
	tpl := connsync.Conn{Proto: ipvs.ProtoTCP, Flags: connsync.FlagTemplate, Client: ap("10.0.0.0:0"),
		Virtual: ap("10.1.0.1:80"), Dest: ap("10.2.0.1:80")}
	es := tcpConn(conn.TCPEstablished)
	es.Timeout = 0
	tw := tcpConn(conn.TCPTimeWait)
	tw.Client = ap("10.0.0.1:40001")
	tw.Timeout = 0
	if err := b.Process(t0, encode(t, 9, es, tw, udp, tpl)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c    connsync.Conn
		want time.Duration
	}{
		{es, 1000 * time.Second},        // --set tcp
		{tw, 2 * time.Minute},           // the state's default
		{udp, conn.DefaultTimeouts.UDP}, // --set udp (default)
		{tpl, connsync.TemplateTimeout}, // templates: 3 minutes
	} {
		e, ok := tbl.Get(&tc.c)
		if !ok || e.Conn.Timeout != tc.want {
			t.Errorf("%v: installed %v timeout %v, want %v", tc.c.Client, ok, e.Conn.Timeout, tc.want)
		}
	}
}

func TestBackupUpdate(t *testing.T) {
	tbl := connsynctest.NewTable()
	b := newBackup(t, 0, tbl)
	c := tcpConn(conn.TCPSynRecv)
	c.Flags |= connsync.FlagInactive
	c.Seq = &connsync.SeqOptions{In: connsync.Seq{InitSeq: 7}}
	if err := b.Process(t0, encode(t, 1, c)); err != nil {
		t.Fatal(err)
	}
	// The master says ESTABLISHED and active; it also claims another
	// forwarding method, which an update cannot change.
	u := tcpConn(conn.TCPEstablished)
	u.Flags = connsync.FlagMasq
	if err := b.Process(t0, encode(t, 1, u)); err != nil {
		t.Fatal(err)
	}
	e, _ := tbl.Get(&c)
	want := connsync.FlagDRoute | connsync.FlagNoOutput | connsync.FlagSync
	if e.Conn.Flags != want || e.Conn.State != uint16(conn.TCPEstablished) || e.Conn.Timeout != 900*time.Second ||
		e.Conn.Seq == nil || e.Conn.Seq.In.InitSeq != 7 {
		t.Errorf("updated to %+v; want flags %#x, ESTABLISHED, 900s, sequence kept", e.Conn, want)
	}
	ops := tbl.Ops()
	if len(ops) != 2 || ops[0].Op != "install" || ops[1].Op != "update" {
		t.Errorf("ops %+v", ops)
	}
	if st := b.Stats(); st.Installed != 1 || st.Updated != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestBackupDestinationMoved(t *testing.T) {
	tbl := connsynctest.NewTable()
	b := newBackup(t, 0, tbl)
	c := tcpConn(conn.TCPEstablished)
	if err := b.Process(t0, encode(t, 1, c)); err != nil {
		t.Fatal(err)
	}
	// An inactive message for another destination is the expiry of the
	// old connection the master has replaced: ignored.
	stale := c
	stale.Dest = ap("192.168.1.12:80")
	stale.State, stale.Flags = uint16(conn.TCPClose), stale.Flags|connsync.FlagInactive
	if err := b.Process(t0, encode(t, 1, stale)); err != nil {
		t.Fatal(err)
	}
	if e, _ := tbl.Get(&c); e.Conn.Dest != c.Dest {
		t.Fatalf("stale message moved the connection to %v", e.Conn.Dest)
	}
	// An active one replaces the connection.
	moved := c
	moved.Dest = ap("192.168.1.12:80")
	if err := b.Process(t0, encode(t, 1, moved)); err != nil {
		t.Fatal(err)
	}
	if e, _ := tbl.Get(&c); e.Conn.Dest != moved.Dest {
		t.Errorf("connection at %v, want %v", e.Conn.Dest, moved.Dest)
	}
	if st := b.Stats(); st.Replaced != 1 || st.Skipped != 1 || st.Installed != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestBackupFilters(t *testing.T) {
	badState := tcpConn(conn.TCPEstablished)
	badState.State = conn.NumTCPStates
	udpState := connsync.Conn{Proto: ipvs.ProtoUDP, State: 1, Client: ap("10.0.0.1:1"), Virtual: ap("10.1.0.1:53"), Dest: ap("10.2.0.1:53")}
	sctp := tcpConn(conn.TCPEstablished)
	sctp.Proto = ipvs.ProtoSCTP
	noName := tcpConn(conn.TCPEstablished)
	noName.Flags |= connsync.FlagTemplate
	noName.PEData = []byte("x")
	unknownPE := noName
	unknownPE.PEName = "nope"
	sip := noName
	sip.PEName = "sip"
	tplState := tcpConn(conn.TCPEstablished)
	tplState.Flags |= connsync.FlagTemplate
	tplState.Client = ap("10.0.0.7:0")
	tplState.State = 99 // only logged by the kernel
	for _, tc := range []struct {
		name      string
		backupID  uint8
		msgID     uint8
		c         connsync.Conn
		installed bool
	}{
		{"same syncid", 4, 4, tcpConn(conn.TCPEstablished), true},
		{"other syncid", 4, 5, tcpConn(conn.TCPEstablished), false},
		{"syncid 0 takes all", 0, 77, tcpConn(conn.TCPEstablished), true},
		{"tcp state out of range", 0, 0, badState, false},
		{"udp state out of range", 0, 0, udpState, false},
		{"sctp", 0, 0, sctp, false},
		{"PE data without name", 0, 0, noName, false},
		{"unknown PE", 0, 0, unknownPE, false},
		{"sip template", 0, 0, sip, true},
		{"template state not checked", 0, 0, tplState, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tbl := connsynctest.NewTable()
			b := newBackup(t, tc.backupID, tbl)
			if err := b.Process(t0, encode(t, tc.msgID, tc.c)); err != nil {
				t.Fatal(err)
			}
			e, ok := tbl.Get(&tc.c)
			if ok != tc.installed {
				t.Fatalf("installed %v, want %v (stats %+v)", ok, tc.installed, b.Stats())
			}
			if ok && tc.c.IsTemplate() && string(e.Conn.PEData) != string(tc.c.PEData) {
				t.Errorf("template PE data %q, want %q", e.Conn.PEData, tc.c.PEData)
			}
		})
	}
}

func TestBackupVersion0(t *testing.T) {
	tbl := connsynctest.NewTable()
	b := newBackup(t, 9, tbl)
	if err := b.Process(t0, goldenV0); err != nil {
		t.Fatal(err)
	}
	// Version 0 flags are taken whole (less HASHED) with SYNC added; the
	// timeouts are the states' defaults.
	e, ok := tbl.Get(&goldenV0Conns[1])
	if !ok || e.Conn.Flags != connsync.FlagSeqMask|connsync.FlagSync || e.Conn.Timeout != 2*time.Minute || e.Conn.Seq == nil {
		t.Errorf("installed %v: %+v", ok, e.Conn)
	}
	if tbl.Len() != 2 {
		t.Errorf("%d entries, want 2", tbl.Len())
	}
}

func TestBackupMalformed(t *testing.T) {
	tbl := connsynctest.NewTable()
	b := newBackup(t, 0, tbl)
	c1 := tcpConn(conn.TCPEstablished)
	c2 := c1
	c2.Client = ap("10.0.0.1:40001")
	msg := encode(t, 1, c1, c2)
	msg[connsync.HeaderLen+connsync.ConnLenV4+3] = 0xff // entry 1's size (low byte) runs past the end
	err := b.Process(t0, msg)
	if !errors.Is(err, connsync.ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
	// The entries before the bad one are installed, as in the kernel.
	if _, ok := tbl.Get(&c1); !ok || tbl.Len() != 1 {
		t.Errorf("%d entries installed, want the first only", tbl.Len())
	}
	if err := b.Process(t0, []byte{1, 2}); !errors.Is(err, connsync.ErrMalformed) {
		t.Errorf("short: err = %v", err)
	}
	tbl.Err = errors.New("table full")
	if err := b.Process(t0, encode(t, 1, c2)); err == nil || !strings.Contains(err.Error(), "table full") {
		t.Errorf("table error not reported: %v", err)
	}
	if st := b.Stats(); st.Malformed != 2 || st.Failed != 1 || st.Messages != 3 {
		t.Errorf("stats %+v", st)
	}
}

// TestMasterToBackup runs a master and a backup joined by fakes.
func TestMasterToBackup(t *testing.T) {
	s := connsync.DefaultSettings()
	m := newMaster(t, s)
	tbl := connsynctest.NewTable()
	b := newBackup(t, 4, tbl)
	rcv := connsynctest.NewReceiver()
	snd := &connsynctest.Sender{To: rcv}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, rcv) }()

	tpl := connsync.Conn{Proto: ipvs.ProtoTCP, Flags: connsync.FlagTemplate | connsync.FlagDRoute,
		Client: ap("10.0.0.0:0"), Virtual: ap("192.168.1.110:80"), Dest: ap("192.168.1.11:80"), Timeout: 360 * time.Second}
	tu := &connsync.Update{Conn: tpl, Sync: &connsync.SyncState{}}
	u := &connsync.Update{Conn: tcpConn(conn.TCPEstablished), Sync: &connsync.SyncState{}, Control: tu}
	for i := range 3 {
		m.Packet(t0.Add(time.Duration(i)*time.Millisecond), u)
	}
	m.Flush()
	if err := m.SendQueued(snd); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for tbl.Len() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, ok := tbl.Get(&u.Conn); !ok {
		t.Error("connection not installed")
	}
	if e, ok := tbl.Get(&tpl); !ok || e.Conn.Timeout != 360*time.Second {
		t.Errorf("template installed %v, timeout %v", ok, e.Conn.Timeout)
	}
}
