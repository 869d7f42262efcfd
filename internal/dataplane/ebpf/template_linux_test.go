package ebpf

import (
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/ipvs"
)

// TestFixtureTemplateControl checks that a persistence template lives
// while it controls connections, as in the engine: its deadline passing
// re-arms it (deferred expiry), the connections it controls release it as
// they go, and PersistConn/InActConn agree with the engine at every step.
func TestFixtureTemplateControl(t *testing.T) {
	f := newFixture(t)
	eng := engine.New(engine.Options{})
	to := conn.Timeouts{UDP: 2 * time.Second}
	if err := f.tab.setTimeouts(to); err != nil {
		t.Fatal(err)
	}
	eng.SetTimeouts(to)
	svc := udpService(vipv4, 53, "rr")
	svc.Persistent, svc.Timeout = true, 1
	svc.SetDefaults()
	svc.Timeout = 1
	d1 := ipvs.Destination{Addr: rs1v4, Port: 53, Fwd: ipvs.Route, Weight: 1}
	d2 := ipvs.Destination{Addr: rs2v4, Port: 53, Fwd: ipvs.Route, Weight: 1}
	for _, add := range []func() error{
		func() error { return eng.AddService(svc) },
		func() error { return f.tab.addService(svc) },
		func() error { return eng.AddDest(svc.ServiceKey, d1) },
		func() error { return f.tab.addDest(svc.ServiceKey, d1) },
		func() error { return eng.AddDest(svc.ServiceKey, d2) },
		func() error { return f.tab.addDest(svc.ServiceKey, d2) },
	} {
		if err := add(); err != nil {
			t.Fatal(err)
		}
	}
	send := func(sport uint16) {
		t.Helper()
		pkt := ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoUDP, sport: sport, dport: 53, payload: []byte("q")})
		if ret, _ := f.run(frame(macClient, macCL0, false, pkt), 0); ret != actRedirect {
			t.Fatalf("verdict %d, want redirect", ret)
		}
		if _, err := eng.Process(time.Now(), engine.Packet{Dir: conn.DirIn, Proto: ipvs.ProtoUDP,
			Src: netip.AddrPortFrom(cipv4, sport), Dst: netip.AddrPortFrom(vipv4, 53), Len: len(pkt)}); err != nil {
			t.Fatal(err)
		}
	}
	compare := func(when string) {
		t.Helper()
		if _, err := f.tab.sweep(monotonicNow()); err != nil {
			t.Fatal(err)
		}
		for _, ds := range eng.Services(time.Now())[0].Dests {
			l := f.destLive(t, ds.Addr, 53)
			if uint32(l.Persist) != ds.PersistConns || uint32(l.Inact) != ds.InactConns || uint32(l.Active) != ds.ActiveConns {
				t.Errorf("%s: %s bpf active/inact/persist %d/%d/%d, engine %d/%d/%d", when, ds.Addr,
					l.Active, l.Inact, l.Persist, ds.ActiveConns, ds.InactConns, ds.PersistConns)
			}
		}
	}
	tkey := govsConnKey{Src: addrWords(cipv4), Dst: addrWords(vipv4), Dport: htons(53), Proto: 17, Family: afInet, Kind: 1}
	template := func() (govsConn, bool) {
		var v govsConn
		err := f.objs.Conns.Lookup(tkey, &v)
		return v, err == nil
	}

	send(1000)
	send(1001)
	compare("two datagrams")
	if v, ok := template(); !ok || v.N_control != 2 {
		t.Fatalf("template %+v (found %v), want it controlling 2 connections", v, ok)
	}
	time.Sleep(1500 * time.Millisecond) // the template's 1 s deadline passes
	compare("template deadline passed")
	v, ok := template()
	if !ok || v.N_control != 2 || v.Sf&connFDeferred == 0 {
		t.Fatalf("template %+v (found %v), want it kept (deferred) with 2 connections", v, ok)
	}
	send(1002)                          // placed by the deferred template: the same realserver
	time.Sleep(1000 * time.Millisecond) // 1000 and 1001 expire (2 s)
	compare("controlled connections expired")
	if v, ok := template(); !ok || v.N_control != 1 {
		t.Fatalf("template %+v (found %v), want it controlling 1 connection", v, ok)
	}
	// The deferred template goes at its first re-arm tick that finds it
	// controlling nothing: run the expiry a minute and more ahead.
	time.Sleep(1200 * time.Millisecond)
	compare("all connections expired")
	if v, ok := template(); !ok || v.N_control != 0 {
		t.Fatalf("template %+v (found %v), want it idle but alive until its tick", v, ok)
	}
	if n, err := f.tab.sweep(monotonicNow() + uint64(61*time.Second)); err != nil || n != 1 {
		t.Fatalf("sweep a minute ahead removed %d (%v), want the template", n, err)
	}
	if l := f.destLive(t, rs2v4, 53); l.Persist != 0 {
		t.Errorf("template gone but PersistConn %d", l.Persist)
	}
}

// TestFixtureTableFull checks the full-table rule: with room for 4
// entries, the fifth new connection is dropped (and counted), the
// existing ones continue, and the destination's counters stay exact.
func TestFixtureTableFull(t *testing.T) {
	f := newFixture(t)
	spec, err := loadGovs()
	if err != nil {
		t.Fatal(err)
	}
	spec.Maps["conns"].MaxEntries = 4
	spec.Maps["nat"].MaxEntries = 4
	var objs govsObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.Close() })
	f.objs = &objs
	f.tab = newTables(&objs)
	if err := f.tab.setTimeouts(conn.DefaultTimeouts); err != nil {
		t.Fatal(err)
	}
	f.addService(tcpService(vipv4, 80, "rr"), ipvs.Destination{Addr: rs1v4, Fwd: ipvs.Route, Weight: 1})
	syn := func(port uint16) uint32 {
		ret, _ := f.run(frame(macClient, macCL0, false, ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoTCP, sport: port, dport: 80, flags: conn.SYN})), 0)
		return ret
	}
	for p := uint16(1); p <= 4; p++ {
		if ret := syn(p); ret != actRedirect {
			t.Fatalf("connection %d: verdict %d, want redirect", p, ret)
		}
	}
	if ret := syn(5); ret != actShot {
		t.Errorf("fifth connection: verdict %d, want drop (table full)", ret)
	}
	if ret := syn(1); ret != actRedirect {
		t.Errorf("existing connection: verdict %d, want redirect", ret)
	}
	var per []uint64
	if err := objs.Ctr.Lookup(uint32(16) /* CTR_DROP_TABLE_FULL */, &per); err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	if n != 1 {
		t.Errorf("CTR_DROP_TABLE_FULL %d, want 1", n)
	}
	if l := f.destLive(t, rs1v4, 80); l.Inact != 4 || l.Active != 0 {
		t.Errorf("counters %+v, want 4 inactive", l)
	}
}
