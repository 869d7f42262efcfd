package ebpf

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/ipvs"
)

// syncFixture is a fixture with a Dataplane around its objects, for the
// sync table (nothing attached, no sweeper).
func syncFixture(t *testing.T, xdp bool) (*fixture, *Dataplane) {
	f := newFixtureMode(t, xdp)
	return f, &Dataplane{objs: *f.objs, tab: f.tab}
}

func syncBackup(t *testing.T, tab connsync.Table) *connsync.Backup {
	t.Helper()
	b, err := connsync.NewBackup(connsync.Config{Role: connsync.RoleBackup, Interface: "eth0", SyncID: 51},
		connsync.DefaultSettings(), tab, 1500, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSyncProgram runs govs_sync through the sync table: what it did
// (install, update, template link, NAT reply entry) and the counters.
func TestSyncProgram(t *testing.T) {
	f, d := syncFixture(t, false)
	web := tcpService(vipv4, 80, "rr")
	f.addService(web, ipvs.Destination{Addr: rs1v4, Port: 8080, Fwd: ipvs.Masq, Weight: 1})
	pers := tcpService(vipv4, 443, "rr")
	pers.Persistent, pers.Timeout = true, 300
	f.addService(pers, ipvs.Destination{Addr: rs1v4, Port: 443, Fwd: ipvs.Route, Weight: 1},
		ipvs.Destination{Addr: rs2v4, Port: 443, Fwd: ipvs.Route, Weight: 1})
	tab := d.SyncTable()
	run := func(op uint32, c connsync.Conn, want uint32) {
		t.Helper()
		done, err := d.runSync(op, &c)
		if err != nil || done != want {
			t.Errorf("govs_sync op %d %s -> %s: done %#x, %v; want %#x", op, c.Client, c.Virtual, done, err, want)
		}
	}
	cip := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(cipv4, port) }

	// NAT: installed with its reply entry; the reply entry comes back
	// with the next update if it went missing.
	nat := connsync.Conn{Proto: ipvs.ProtoTCP, Flags: connsync.FlagMasq, State: uint16(conn.TCPEstablished),
		Client: cip(1000), Virtual: netip.AddrPortFrom(vipv4, 80), Dest: netip.AddrPortFrom(rs1v4, 8080), Timeout: 900 * time.Second}
	run(syncOpInstall, nat, syncDInstalled|syncDNAT)
	nk := govsNatKey{Src: addrWords(rs1v4), Dst: addrWords(cipv4), Sport: htons(8080), Dport: htons(1000), Proto: 6, Family: afInet}
	if err := f.objs.Nat.Delete(&nk); err != nil {
		t.Fatalf("NAT reply entry after install: %v", err)
	}
	run(syncOpUpdate, nat, syncDUpdated|syncDNAT)
	var ck govsNatVal
	if sk := syncKeyOf(&nat); f.objs.Nat.Lookup(&nk, &ck) != nil || ck.Vaddr != sk.Dst || ck.Vport != sk.Dport {
		err := f.objs.Nat.Lookup(&nk, &ck)
		t.Errorf("NAT reply entry after update: %+v, %v", ck, err)
	}
	// Install of an entry that is there is an update: counted once.
	run(syncOpInstall, nat, syncDUpdated|syncDNAT)
	if l := f.destLive(t, rs1v4, 8080); l.Active != 1 || l.Inact != 0 {
		t.Errorf("NAT destination: %+v, want 1 active", l)
	}
	// Update of nothing fails, installs nothing.
	gone := nat
	gone.Client = cip(1001)
	if err := tab.Update(gone, 3); err == nil {
		t.Error("update of a missing entry succeeded")
	}
	if _, ok := tab.Lookup(&gone); ok {
		t.Error("update of a missing entry installed it")
	}

	// Persistence: a connection that arrives before its template is
	// not linked; the template arrives; the next update links it,
	// once; a connection after the template is linked at install.
	tpl := connsync.Conn{Proto: ipvs.ProtoTCP, Flags: connsync.FlagTemplate | connsync.FlagDRoute,
		Client: netip.AddrPortFrom(cipv4, 0), Virtual: netip.AddrPortFrom(vipv4, 443), Dest: netip.AddrPortFrom(rs2v4, 443),
		Timeout: 300 * time.Second}
	c1 := connsync.Conn{Proto: ipvs.ProtoTCP, Flags: connsync.FlagDRoute, State: uint16(conn.TCPEstablished),
		Client: cip(2000), Virtual: netip.AddrPortFrom(vipv4, 443), Dest: netip.AddrPortFrom(rs2v4, 443), Timeout: 900 * time.Second}
	c2 := c1
	c2.Client = cip(2001)
	run(syncOpInstall, c1, syncDInstalled)
	run(syncOpInstall, tpl, syncDInstalled)
	run(syncOpUpdate, c1, syncDUpdated|syncDLinked)
	run(syncOpUpdate, c1, syncDUpdated)
	run(syncOpInstall, c2, syncDInstalled|syncDLinked)
	tk := syncKeyOf(&tpl)
	var tv govsConn
	if err := f.objs.Conns.Lookup(&tk, &tv); err != nil || tv.N_control != 2 {
		t.Errorf("template: n_control %d (%v), want 2", tv.N_control, err)
	}
	if l := f.destLive(t, rs2v4, 443); l != (govsDestLive{Active: 2, Persist: 1}) {
		t.Errorf("persistent destination: %+v, want 2 active, 1 persistent", l)
	}
	// A state change moves the count; removal releases the template.
	c1.State, c1.Flags = uint16(conn.TCPFinWait), c1.Flags|connsync.FlagInactive
	run(syncOpUpdate, c1, syncDUpdated)
	if l := f.destLive(t, rs2v4, 443); l != (govsDestLive{Active: 1, Inact: 1, Persist: 1}) {
		t.Errorf("after FIN_WAIT: %+v", l)
	}
	// Removing a template that controls connections defers it, as
	// ip_vs_conn_expire_now does (its connections keep their template).
	if out, err := d.tab.runSync(&govsSyncArgs{Key: tk, Op: syncOpRemove}); err != nil || out.Done != syncDDeferred {
		t.Errorf("remove of a template in use: done %#x, %v; want deferred", out.Done, err)
	}
	if err := f.objs.Conns.Lookup(&tk, &tv); err != nil || tv.N_control != 2 || tv.Sf&0x1000 == 0 {
		t.Errorf("deferred template: %+v, %v", tv, err)
	}
	for _, c := range []connsync.Conn{c1, c2} {
		if err := tab.Remove(&c); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.objs.Conns.Lookup(&tk, &tv); err != nil || tv.N_control != 0 {
		t.Errorf("template after its connections left: n_control %d (%v), want 0", tv.N_control, err)
	}
	if err := tab.Remove(&tpl); err != nil {
		t.Fatal(err)
	}
	if l := f.destLive(t, rs2v4, 443); l != (govsDestLive{}) {
		t.Errorf("after removal: %+v", l)
	}

	// An expired entry still in the map (not swept yet) is expired and
	// installed afresh, counted once.
	short := nat
	short.Client, short.Timeout = cip(3000), 50*time.Millisecond
	run(syncOpInstall, short, syncDInstalled|syncDNAT)
	time.Sleep(100 * time.Millisecond)
	short.Timeout = 900 * time.Second
	run(syncOpInstall, short, syncDInstalled|syncDNAT)
	if l := f.destLive(t, rs1v4, 8080); l.Active != 2 || l.Inact != 0 {
		t.Errorf("after re-install over an expired entry: %+v, want 2 active", l)
	}
}

// TestSyncDiffEngine feeds the same random sync messages (installs,
// updates, moves to another destination, expiry messages, removals, with
// templates of a persistent service) to a connsync.Backup over the
// engine's table and one over the ebpf table: after every message both
// must show the same ActiveConn, InActConn, PersistConn and overload
// flag for every destination, and every template's n_control must equal
// the connections linked to it.
func TestSyncDiffEngine(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) { runSyncDiff(t, seed, 300) })
	}
}

func runSyncDiff(t *testing.T, seed uint64, steps int) {
	f, d := syncFixture(t, false)
	eng := engine.New(engine.Options{})
	rnd := rand.New(rand.NewPCG(seed, 7))
	web := tcpService(vipv4, 80, "rr")
	pers := tcpService(vipv4, 443, "rr")
	pers.Persistent, pers.Timeout = true, 300
	services := []struct {
		svc   ipvs.Service
		dests []ipvs.Destination
	}{
		{web, []ipvs.Destination{{Addr: rs1v4, Port: 8080, Fwd: ipvs.Masq, Weight: 1, Upper: 4},
			{Addr: rs2v4, Port: 8080, Fwd: ipvs.Masq, Weight: 1, Upper: 6, Lower: 2}}},
		{pers, []ipvs.Destination{{Addr: rs1v4, Port: 443, Fwd: ipvs.Route, Weight: 1},
			{Addr: rs2v4, Port: 443, Fwd: ipvs.Route, Weight: 1}}},
	}
	for _, s := range services {
		s.svc.SetDefaults()
		f.addService(s.svc, s.dests...)
		if err := eng.AddService(s.svc); err != nil {
			t.Fatal(err)
		}
		for _, dst := range s.dests {
			dst.Normalize(&s.svc)
			if err := eng.AddDest(s.svc.ServiceKey, dst); err != nil {
				t.Fatal(err)
			}
		}
	}
	engTab, bpfTab := eng.SyncTable(time.Now), d.SyncTable()
	engB, bpfB := syncBackup(t, engTab), syncBackup(t, bpfTab)
	clients := []netip.Addr{cipv4, netip.MustParseAddr("192.168.1.101"), netip.MustParseAddr("192.168.1.102")}
	states := []conn.State{conn.TCPEstablished, conn.TCPEstablished, conn.TCPSynRecv, conn.TCPFinWait, conn.TCPTimeWait,
		conn.TCPClose, conn.TCPCloseWait}
	entry := func() connsync.Conn {
		svc := services[rnd.IntN(len(services))]
		dst := svc.dests[rnd.IntN(len(svc.dests))]
		c := connsync.Conn{Proto: ipvs.ProtoTCP, Flags: connsync.FwdFlags(dst.Fwd),
			Client:  netip.AddrPortFrom(clients[rnd.IntN(len(clients))], uint16(1000+rnd.IntN(8))),
			Virtual: netip.AddrPortFrom(vipv4, svc.svc.Port), Dest: netip.AddrPortFrom(dst.Addr, dst.Port),
			Timeout: time.Duration(60+rnd.IntN(900)) * time.Second}
		if svc.svc.Persistent && rnd.IntN(3) == 0 {
			c.Flags |= connsync.FlagTemplate
			c.Client = netip.AddrPortFrom(c.Client.Addr(), 0)
			return c
		}
		st := states[rnd.IntN(len(states))]
		c.State = uint16(st)
		if st != conn.TCPEstablished {
			c.Flags |= connsync.FlagInactive
		}
		return c
	}
	for step := range steps {
		var cs []connsync.Conn
		for range 1 + rnd.IntN(3) {
			cs = append(cs, entry())
		}
		if rnd.IntN(8) == 0 && !cs[0].IsTemplate() {
			// The backup's removal (of a connection the master moved).
			// Not of templates: the engine does not link synced
			// connections to them, ebpf does, and a template that
			// controls connections is deferred, not removed.
			c := cs[0]
			errE, errB := engTab.Remove(&c), bpfTab.Remove(&c)
			if errE != nil || errB != nil {
				t.Fatalf("step %d: remove: engine %v, ebpf %v", step, errE, errB)
			}
		} else {
			msg, err := connsync.Encode(&connsync.Message{SyncID: 51, Conns: cs})
			if err != nil {
				t.Fatal(err)
			}
			errE, errB := engB.Process(time.Now(), msg), bpfB.Process(time.Now(), msg)
			if (errE == nil) != (errB == nil) {
				t.Fatalf("step %d: engine %v, ebpf %v", step, errE, errB)
			}
		}
		if t.Failed() {
			return
		}
		compareSyncCounters(t, step, eng, d)
	}
	checkN_control(t, f)
	es, bs := engB.Stats(), bpfB.Stats()
	if es != bs {
		t.Errorf("backup stats: engine %+v, ebpf %+v", es, bs)
	}
	t.Logf("backup stats: %+v", bs)
}

func compareSyncCounters(t *testing.T, step int, eng *engine.Engine, d *Dataplane) {
	t.Helper()
	type counts struct {
		active, inact, persist uint32
		over                   bool
	}
	collect := func(st []ipvs.ServiceState) map[string]counts {
		m := map[string]counts{}
		for _, s := range st {
			for _, ds := range s.Dests {
				m[fmt.Sprintf("%s %v", s.ServiceKey, ds.Key())] = counts{ds.ActiveConns, ds.InactConns, ds.PersistConns, ds.Overloaded}
			}
		}
		return m
	}
	bst, err := d.Services()
	if err != nil {
		t.Fatal(err)
	}
	em, bm := collect(eng.Services(time.Now())), collect(bst)
	for k, e := range em {
		if b := bm[k]; b != e {
			t.Errorf("step %d: %s: engine %+v, ebpf %+v", step, k, e, b)
		}
	}
	if len(em) != len(bm) {
		t.Errorf("step %d: %d destinations in the engine, %d in ebpf", step, len(em), len(bm))
	}
}

// checkN_control: every template's n_control is the number of connections
// flagged CONTROLLED under it.
func checkN_control(t *testing.T, f *fixture) {
	t.Helper()
	var (
		k    govsConnKey
		v    govsConn
		want = map[govsConnKey]uint32{}
		got  = map[govsConnKey]uint32{}
	)
	it := f.objs.Conns.Iterate()
	for it.Next(&k, &v) {
		if k.Kind == syncKindTmpl {
			got[k] = v.N_control
			continue
		}
		if v.Sf&0x0400 != 0 {
			dv := (&destReader{m: f.objs.Dests}).get(v.DestId)
			c := syncConnOf(&k, &v, &dv)
			tk := syncKeyOf(&connsync.Conn{Proto: c.Proto, Flags: connsync.FlagTemplate,
				Client: netip.AddrPortFrom(c.Client.Addr(), 0), Virtual: c.Virtual})
			want[tk]++
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	linked := 0
	for tk, n := range got {
		if want[tk] != n {
			t.Errorf("template %+v: n_control %d, %d connections linked", tk, n, want[tk])
		}
		linked += int(n)
	}
	for tk, n := range want {
		if _, ok := got[tk]; !ok {
			t.Errorf("%d connections linked to a missing template %+v", n, tk)
		}
	}
	t.Logf("%d templates, %d linked connections", len(got), linked)
}

// TestFixtureSyncNAT: a NAT connection installed by sync (as a backup
// that then becomes master has it) gets its replies translated back to
// the VIP and its client's packets forwarded to its realserver, at TC
// and at XDP; a DR connection installed by sync is forwarded.
func TestFixtureSyncNAT(t *testing.T) {
	for _, xdp := range []bool{false, true} {
		name := "TC"
		if xdp {
			name = "XDP"
		}
		t.Run(name, func(t *testing.T) {
			f, d := syncFixture(t, xdp)
			f.addService(tcpService(vipv4, 80, "rr"), ipvs.Destination{Addr: rs1v4, Port: 8080, Fwd: ipvs.Masq, Weight: 1},
				ipvs.Destination{Addr: rs2v4, Port: 8080, Fwd: ipvs.Masq, Weight: 1})
			f.addService(tcpService(vipv4, 22, "rr"), ipvs.Destination{Addr: rs1v4, Fwd: ipvs.Route, Weight: 1},
				ipvs.Destination{Addr: rs2v4, Fwd: ipvs.Route, Weight: 1})
			tab := d.SyncTable()
			// rs2: not what rr would pick for a new connection.
			nat := connsync.Conn{Proto: ipvs.ProtoTCP, Flags: connsync.FlagMasq, State: uint16(conn.TCPEstablished),
				Client: netip.AddrPortFrom(cipv4, 40000), Virtual: netip.AddrPortFrom(vipv4, 80),
				Dest: netip.AddrPortFrom(rs2v4, 8080), Timeout: 900 * time.Second}
			dr := connsync.Conn{Proto: ipvs.ProtoTCP, Flags: connsync.FlagDRoute, State: uint16(conn.TCPEstablished),
				Client: netip.AddrPortFrom(cipv4, 40001), Virtual: netip.AddrPortFrom(vipv4, 22),
				Dest: netip.AddrPortFrom(rs2v4, 22), Timeout: 900 * time.Second}
			for _, c := range []connsync.Conn{nat, dr} {
				if err := tab.Install(c, 3); err != nil {
					t.Fatal(err)
				}
			}
			ack := l4{proto: ipvs.ProtoTCP, sport: 40000, dport: 80, flags: conn.ACK, payload: []byte("GET /")}
			ackRS := ack
			ackRS.dport = 8080
			reply := l4{proto: ipvs.ProtoTCP, sport: 8080, dport: 40000, flags: conn.ACK, payload: []byte("HTTP/1.1 200")}
			replyVIP := reply
			replyVIP.sport = 80
			drAck := ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoTCP, sport: 40001, dport: 22, flags: conn.ACK})
			f.check([]step{
				{desc: "client's next segment: to the synced realserver, translated", in: frame(macClient, macCL0, false,
					ipPacket(t, cipv4, vipv4, ack)), verdict: actRedirect, out: frame(macRS0, macRS2, false, ipPacket(t, cipv4, rs2v4, ackRS))},
				{desc: "realserver's reply: source back to the VIP", in: frame(macRS2, macRS0, false, ipPacket(t, rs2v4, cipv4, reply)),
					verdict: actRedirect, out: frame(macCL0, macClient, false, ipPacket(t, vipv4, cipv4, replyVIP))},
				{desc: "DR: to the synced realserver", in: frame(macClient, macCL0, false, drAck), verdict: actRedirect,
					out: frame(macRS0, macRS2, false, drAck)},
			})
			if l := f.destLive(t, rs2v4, 8080); l.Active != 1 || l.Inact != 0 {
				t.Errorf("NAT destination: %+v, want 1 active", l)
			}
			if l := f.destLive(t, rs1v4, 8080); l != (govsDestLive{}) {
				t.Errorf("other destination: %+v, want nothing", l)
			}
		})
	}
}
