package dataplanetest_test

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/dataplane/dataplanetest"
	"github.com/govs/govs/internal/ipvs"
)

func TestFake(t *testing.T) {
	f := dataplanetest.New("")
	if f.Name() != "fake" {
		t.Errorf("Name = %q", f.Name())
	}
	k := ipvs.TCPService(netip.MustParseAddrPort("10.0.0.1:80"))
	svc := ipvs.Service{ServiceKey: k, Scheduler: "rr", Netmask: 32}
	d1 := ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Weight: 1}
	d2 := ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.3"), Port: 80, Weight: 2}
	for _, err := range []error{f.AddService(svc), f.AddDest(k, d1), f.AddDest(k, d2)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := f.AddService(svc); !errors.Is(err, ipvs.ErrServiceExists) {
		t.Errorf("duplicate AddService: %v", err)
	}
	if err := f.DelDest(k, ipvs.DestKey{Addr: netip.MustParseAddr("10.9.9.9"), Port: 80}); !errors.Is(err, ipvs.ErrNoDest) {
		t.Errorf("DelDest of a missing destination: %v", err)
	}
	want := []ipvs.ServiceState{{Service: svc, Dests: []ipvs.DestState{{Destination: d2}, {Destination: d1}}}}
	if got := f.Config(); !reflect.DeepEqual(got, want) {
		t.Errorf("Config = %+v, want newest first %+v", got, want)
	}
	if err := f.SetStats(k, ipvs.Counters{Conns: 5}, ipvs.Rates{CPS: 1}, map[ipvs.DestKey]ipvs.DestState{
		d1.Key(): {ActiveConns: 3, Stats: ipvs.Counters{Conns: 4}},
	}); err != nil {
		t.Fatal(err)
	}
	st, err := f.Services()
	if err != nil || st[0].Stats.Conns != 5 || st[0].Dests[1].ActiveConns != 3 || st[0].Dests[1].Destination != d1 {
		t.Errorf("Services = %+v, %v", st, err)
	}
	if err := f.Zero(nil); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Services(); st[0].Stats.Conns != 0 || st[0].Dests[1].Stats.Conns != 0 || st[0].Dests[1].ActiveConns != 3 {
		t.Errorf("after Zero: %+v", st)
	}

	f.FailNext("EditService", nil)
	if err := f.EditService(svc); !errors.Is(err, dataplanetest.ErrInjected) {
		t.Errorf("FailNext: %v", err)
	}
	if err := f.EditService(svc); err != nil {
		t.Errorf("FailNext failed twice: %v", err)
	}
	sentinel := errors.New("map full")
	f.Fail("AddDest", sentinel)
	for range 2 {
		if err := f.AddDest(k, ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.9"), Port: 80}); !errors.Is(err, sentinel) {
			t.Errorf("Fail: %v", err)
		}
	}
	f.Heal()
	f.Unsupported(ipvs.Tunnel)
	if err := f.CheckDest(svc, ipvs.Destination{Fwd: ipvs.Tunnel}); !errors.Is(err, dataplane.ErrUnsupported) {
		t.Errorf("CheckDest(tunnel): %v", err)
	}
	if err := f.CheckDest(svc, d1); err != nil {
		t.Errorf("CheckDest(route): %v", err)
	}
	f.SetHealth(sentinel)
	if err := f.Health(); !errors.Is(err, sentinel) {
		t.Errorf("Health: %v", err)
	}

	var methods []string
	for _, c := range f.ChangeCalls() {
		methods = append(methods, c.Method)
	}
	wantM := []string{"AddService", "AddDest", "AddDest", "AddService", "DelDest", "Zero", "EditService", "EditService", "AddDest", "AddDest"}
	if !reflect.DeepEqual(methods, wantM) {
		t.Errorf("ChangeCalls = %v, want %v", methods, wantM)
	}
	if err := f.Close(); err != nil || !f.Closed() {
		t.Errorf("Close: %v", err)
	}
	if err := f.Flush(); err == nil {
		t.Error("Flush after Close succeeded")
	}
}

// TestFakeOrderAndScale: services list in the order they were added (a
// deleted and re-added one goes last), and lookups do not slow down with
// the table: 10,000 services with 10 destinations each take well under a
// second (a linear search made it quadratic).
func TestFakeOrderAndScale(t *testing.T) {
	f := dataplanetest.New("")
	key := func(i int) ipvs.ServiceKey {
		return ipvs.TCPService(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 100, byte(i / 250), byte(1 + i%250)}), 80))
	}
	const n = 10_000
	for i := range n {
		if err := f.AddService(ipvs.Service{ServiceKey: key(i), Scheduler: "rr"}); err != nil {
			t.Fatal(err)
		}
		for j := range 10 {
			if err := f.AddDest(key(i), ipvs.Destination{Addr: netip.AddrFrom4([4]byte{10, 2, 0, byte(j)}), Port: 80, Weight: 1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.DelService(key(1)); err != nil {
		t.Fatal(err)
	}
	if err := f.AddService(ipvs.Service{ServiceKey: key(1), Scheduler: "rr"}); err != nil {
		t.Fatal(err)
	}
	svcs, err := f.Services()
	if err != nil || len(svcs) != n {
		t.Fatalf("Services: %d, %v", len(svcs), err)
	}
	if svcs[0].ServiceKey != key(0) || svcs[1].ServiceKey != key(2) || svcs[n-1].ServiceKey != key(1) || len(svcs[n-1].Dests) != 0 || len(svcs[0].Dests) != 10 {
		t.Errorf("order: %v %v ... %v", svcs[0].ServiceKey, svcs[1].ServiceKey, svcs[n-1].ServiceKey)
	}
}
