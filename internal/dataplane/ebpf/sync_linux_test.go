package ebpf

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/netns"
)

// TestSyncTableAndWalk: a synced connection installed in the conns map
// is bound to its destination (the counters ipvsadm shows), listed by
// SyncWalk, moves a count on an INACTIVE change and gives it back when
// removed; a NAT connection gets its reply entry.
func TestSyncTableAndWalk(t *testing.T) {
	netns.RequireRoot(t)
	pin := fmt.Sprintf("/sys/fs/bpf/govs-synctest-%d", os.Getpid())
	d, err := New(Options{PinPath: pin}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Close()
		if err := Remove(pin); err != nil {
			t.Error(err)
		}
	})
	vip := ipvs.ServiceKey{Family: ipvs.IPv4, Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 80}
	svc := ipvs.Service{ServiceKey: vip, Scheduler: "rr"}
	svc.SetDefaults()
	if err := d.AddService(svc); err != nil {
		t.Fatal(err)
	}
	for _, dst := range []ipvs.Destination{
		{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80, Fwd: ipvs.Route, Weight: 1},
		{Addr: netip.MustParseAddr("10.0.0.2"), Port: 8080, Fwd: ipvs.Masq, Weight: 1},
	} {
		if err := d.AddDest(vip, dst); err != nil {
			t.Fatal(err)
		}
	}
	counts := func(i int) [3]uint32 {
		t.Helper()
		st, err := d.Services()
		if err != nil || len(st) != 1 {
			t.Fatalf("Services = %+v, %v", st, err)
		}
		for _, ds := range st[0].Dests {
			if ds.Addr == netip.MustParseAddr(fmt.Sprintf("10.0.0.%d", i)) {
				return [3]uint32{ds.ActiveConns, ds.InactConns, ds.PersistConns}
			}
		}
		t.Fatalf("no destination 10.0.0.%d", i)
		return [3]uint32{}
	}
	tab := d.SyncTable()
	dr := connsync.Conn{Proto: ipvs.ProtoTCP, Flags: connsync.FlagDRoute, State: uint16(conn.TCPEstablished),
		Client: netip.MustParseAddrPort("198.51.100.1:1000"), Virtual: netip.MustParseAddrPort("192.0.2.1:80"),
		Dest: netip.MustParseAddrPort("10.0.0.1:80"), Timeout: 900 * time.Second}
	nat := dr
	nat.Flags, nat.Client, nat.Dest = connsync.FlagMasq|connsync.FlagInactive, netip.MustParseAddrPort("198.51.100.2:2000"),
		netip.MustParseAddrPort("10.0.0.2:8080")
	nat.State = uint16(conn.TCPSynRecv)
	for _, c := range []connsync.Conn{dr, nat} {
		if err := tab.Install(c, 3); err != nil {
			t.Fatal(err)
		}
	}
	if got := counts(1); got != [3]uint32{1, 0, 0} {
		t.Errorf("DR destination after install: %v", got)
	}
	if got := counts(2); got != [3]uint32{0, 1, 0} {
		t.Errorf("NAT destination after install: %v", got)
	}
	if got, ok := tab.Lookup(&dr); !ok || got.Dest != dr.Dest || got.State != dr.State || got.Flags&connsync.FlagNoOutput == 0 {
		t.Errorf("Lookup = %+v, %v", got, ok)
	}
	seen := map[netip.AddrPort]connsync.Conn{}
	if err := d.SyncWalk(func(c *connsync.Conn, pkts uint64, left time.Duration) {
		if left <= 0 || left > 900*time.Second {
			t.Errorf("%s: %v left", c.Client, left)
		}
		seen[c.Client] = *c
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[dr.Client].Timeout != 900*time.Second || seen[nat.Client].Flags&connsync.FlagInactive == 0 {
		t.Errorf("SyncWalk = %+v", seen)
	}
	var nk govsNatKey
	var ck govsNatVal
	nk = govsNatKey{Src: addrWords(nat.Dest.Addr()), Dst: addrWords(nat.Client.Addr()), Sport: htons(8080), Dport: htons(2000), Proto: 6, Family: afInet}
	if err := d.objs.Nat.Lookup(&nk, &ck); err != nil {
		t.Errorf("NAT reply entry: %v", err)
	}
	nat.State, nat.Flags = uint16(conn.TCPEstablished), nat.Flags&^connsync.FlagInactive
	if err := tab.Update(nat, 3); err != nil {
		t.Fatal(err)
	}
	if got := counts(2); got != [3]uint32{1, 0, 0} {
		t.Errorf("NAT destination after ESTABLISHED: %v", got)
	}
	for _, c := range []connsync.Conn{dr, nat} {
		if err := tab.Remove(&c); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := counts(1), counts(2); a != [3]uint32{} || b != [3]uint32{} {
		t.Errorf("after remove: %v %v", a, b)
	}
	if _, ok := tab.Lookup(&dr); ok {
		t.Error("removed entry still there")
	}
}
