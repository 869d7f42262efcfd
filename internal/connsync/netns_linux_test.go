package connsync_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/connsync/connsynctest"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/netns"
)

// TestNetnsSyncMulticast runs a master in one namespace and a backup in
// another, joined by a veth pair, over real multicast sockets: the
// backup installs what the master sends, and ignores another syncid.
func TestNetnsSyncMulticast(t *testing.T) {
	netns.RequireRoot(t)
	for _, tc := range []struct {
		name   string
		group  string
		addrA  string
		addrB  string
		client string
	}{
		{"ipv4", "", "10.99.0.1/24", "10.99.0.2/24", "10.0.0.1"},
		{"ipv6", "ff02::81", "fd00:99::1/64", "fd00:99::2/64", "2001:db8::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := netns.New(t, "syncm")
			b := netns.New(t, "syncb")
			la, lb := netns.Veth(t, a, "synca", nil, b, "syncb", nil)
			la.AddAddr(tc.addrA)
			lb.AddAddr(tc.addrB)
			var group netip.Addr
			if tc.group != "" {
				group = netip.MustParseAddr(tc.group)
			}
			s := connsync.DefaultSettings()
			s.Ports = 2 // two threads: ports 8848 and 8849

			mcfg := connsync.Config{Role: connsync.RoleMaster, Interface: "synca", SyncID: 7, Group: group}
			bcfg := connsync.Config{Role: connsync.RoleBackup, Interface: "syncb", SyncID: 7, Group: group}

			var snd *connsync.UDPSender
			a.MustDo(func() (err error) { snd, err = connsync.Dial(mcfg, s); return err })
			t.Cleanup(func() { _ = snd.Close() })
			var rs []*connsync.UDPReceiver
			b.MustDo(func() (err error) { rs, err = connsync.Listen(bcfg, s); return err })

			tbl := connsynctest.NewTable()
			backup, err := connsync.NewBackup(bcfg, s, tbl, 1500, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			recv := make([]connsync.Receiver, len(rs))
			for i, r := range rs {
				recv[i] = r
			}
			go func() { done <- backup.Run(ctx, recv...) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("backup: %v", err)
				}
			}()

			// A message of another syncid, sent first, must be ignored.
			other, err := connsync.NewMaster(connsync.Config{Role: connsync.RoleMaster, Interface: "synca", SyncID: 8, Group: group}, s, nil)
			if err != nil {
				t.Fatal(err)
			}
			mk := func(i int) connsync.Conn {
				vip, rip := "192.168.1.110", "192.168.1.11"
				if group.Is6() {
					vip, rip = "2001:db8:1::80", "2001:db8:2::b"
				}
				return connsync.Conn{
					Proto: ipvs.ProtoTCP, Flags: connsync.FlagDRoute | connsync.FlagNoOutput,
					State:   uint16(conn.TCPEstablished),
					Client:  netip.AddrPortFrom(netip.MustParseAddr(tc.client), uint16(10000+i)),
					Virtual: netip.AddrPortFrom(netip.MustParseAddr(vip), 80),
					Dest:    netip.AddrPortFrom(netip.MustParseAddr(rip), 80),
					Timeout: 900 * time.Second,
				}
			}
			foreign := mk(9999)
			other.Announce(time.Now(), &foreign)
			other.Flush()
			if err := other.SendQueued(snd); err != nil {
				t.Fatal(err)
			}

			m, err := connsync.NewMaster(mcfg, s, nil)
			if err != nil {
				t.Fatal(err)
			}
			const n = 100 // several messages over both threads
			for i := range n {
				u := &connsync.Update{Conn: mk(i), Sync: &connsync.SyncState{}}
				for range connsync.DefaultThreshold {
					m.Packet(time.Now(), u)
				}
			}
			m.Flush()
			if err := m.SendQueued(snd); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for tbl.Len() < n && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if tbl.Len() != n {
				t.Fatalf("backup installed %d connections, want %d (backup stats %+v, master stats %+v)",
					tbl.Len(), n, backup.Stats(), m.Stats())
			}
			c := mk(42)
			e, _ := tbl.Get(&c)
			if e.Conn.Dest != c.Dest || e.Conn.Timeout != 900*time.Second || e.Conn.Flags&connsync.FlagSync == 0 {
				t.Errorf("installed %+v", e.Conn)
			}
			if _, ok := tbl.Get(&foreign); ok {
				t.Error("a message of syncid 8 was installed by a syncid 7 backup")
			}
			st := backup.Stats()
			if st.Ignored != 1 || st.Malformed != 0 {
				t.Errorf("backup stats %+v, want 1 ignored message", st)
			}
			if ms := m.Stats(); ms.Messages < 3 {
				t.Errorf("master sent %d messages, want several", ms.Messages)
			}
		})
	}
}
