package engine

import (
	"errors"
	"testing"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/ipvs"
)

// TestSyncTable: the engine as a sync backup's table: install binds the
// destination with the right counter, an INACTIVE change moves one count,
// expiry and removal give it back, and the installed connection is
// continued (forwarded, not dropped) by its next packet.
func TestSyncTable(t *testing.T) {
	h := newHarness(t, Options{})
	k := h.addService(tcpSvc("192.0.2.1:80", "rr"))
	h.addDest(k, "10.0.0.1:80", ipvs.Route, 1)
	tab := h.e.SyncTable(func() time.Time { return h.now })
	c := connsync.Conn{Proto: ipvs.ProtoTCP, Flags: connsync.FlagDRoute, State: uint16(conn.TCPEstablished),
		Client: ap("198.51.100.1:1000"), Virtual: ap("192.0.2.1:80"), Dest: ap("10.0.0.1:80"), Timeout: 900 * time.Second}
	if err := tab.Install(c, 3); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, h.e)
	if got := h.counts(k, "10.0.0.1:80"); got != (counts{1, 0, 0}) {
		t.Errorf("after install: %+v", got)
	}
	if got, ok := tab.Lookup(&c); !ok || got.Dest != c.Dest || got.State != c.State {
		t.Errorf("Lookup = %+v, %v", got, ok)
	}
	c.State, c.Flags = uint16(conn.TCPFinWait), c.Flags|connsync.FlagInactive
	if err := tab.Update(c, 3); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, h.e)
	if got := h.counts(k, "10.0.0.1:80"); got != (counts{0, 1, 0}) {
		t.Errorf("after update to FIN_WAIT: %+v", got)
	}
	if v := h.in(ipvs.ProtoTCP, "198.51.100.1:1000", "192.0.2.1:80", conn.ACK); v.Action != Forward || v.New {
		t.Errorf("synced connection's next packet: %+v", v)
	}
	if err := tab.Remove(&c); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, h.e)
	if got := h.counts(k, "10.0.0.1:80"); got != (counts{}) {
		t.Errorf("after remove: %+v", got)
	}
	c.Dest = ap("10.0.0.9:80")
	if err := tab.Install(c, 3); !errors.Is(err, ErrSyncNoDest) {
		t.Errorf("install to an unknown destination = %v", err)
	}
}

// TestSyncFeedAndSweep: with a feed set, Process hands every incoming
// packet's update to it, with the SyncState that persists per entry and
// the controlling template; SyncConns lists established connections and
// templates for the sweep.
func TestSyncFeedAndSweep(t *testing.T) {
	h := newHarness(t, Options{})
	svc := tcpSvc("192.0.2.1:80", "rr")
	svc.Persistent, svc.Timeout = true, 300
	k := h.addService(svc)
	h.addDest(k, "10.0.0.1:80", ipvs.Route, 1)
	var got []connsync.Update
	h.e.SetSyncFeed(func(_ time.Time, u *connsync.Update) {
		u.Sync.InPkts++
		got = append(got, *u)
	})
	for _, f := range []conn.TCPFlags{conn.SYN, conn.ACK, conn.ACK} {
		h.in(ipvs.ProtoTCP, "198.51.100.1:1000", "192.0.2.1:80", f)
	}
	if len(got) != 3 || got[2].Sync.InPkts != 3 || got[2].Control == nil || !got[2].Control.Conn.IsTemplate() {
		t.Fatalf("feed got %d updates: %+v", len(got), got)
	}
	if got[2].Conn.State != uint16(conn.TCPEstablished) || got[2].Conn.Flags&connsync.FlagInactive != 0 {
		t.Errorf("third update = %+v", got[2].Conn)
	}
	h.e.SetSyncFeed(nil)
	h.in(ipvs.ProtoTCP, "198.51.100.1:1000", "192.0.2.1:80", conn.ACK)
	if len(got) != 3 {
		t.Errorf("feed called after it was removed")
	}
	cs := h.e.SyncConns(h.now)
	if len(cs) != 2 {
		t.Fatalf("SyncConns = %+v, want the connection and its template", cs)
	}
	h.advance(20 * time.Minute)
	if cs := h.e.SyncConns(h.now); len(cs) != 0 {
		t.Errorf("SyncConns after expiry = %+v", cs)
	}
	if n := len(h.e.syncStates); n != 0 {
		t.Errorf("%d sync states left after every entry expired", n)
	}
}
