package realserver_test

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/govs/govs/internal/realserver"
	"github.com/govs/govs/internal/realserver/realservertest"
)

func vips(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, v := range s {
		out = append(out, netip.MustParseAddr(v))
	}
	return out
}

func opts(t *testing.T) realserver.Options {
	return realserver.Options{StatePath: filepath.Join(t.TempDir(), "rs.json")}
}

func text(t *testing.T, r *realserver.Report) string {
	t.Helper()
	var b bytes.Buffer
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// changes lists "kind target: before -> after" for the changed items.
func changes(r *realserver.Report) []string {
	var out []string
	for _, x := range r.Results {
		if x.Status == realserver.StatusChanged || x.Status == realserver.StatusRestored {
			out = append(out, string(x.Kind)+" "+x.Target+": "+x.Before+" -> "+x.After)
		}
	}
	return out
}

// roundTrip runs setup twice and teardown, checking the setup's
// changes, idempotency and that teardown restores the host exactly.
func roundTrip(t *testing.T, f *realservertest.Fake, cfg realserver.Config, want []string) {
	t.Helper()
	o := opts(t)
	before := f.Snapshot()
	rep, err := realserver.Setup(f, cfg, o)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	if got := changes(rep); !slices.Equal(got, want) {
		t.Errorf("setup changed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	t.Logf("first setup:\n%s", text(t, rep))
	after := f.Snapshot()

	calls := len(f.Calls)
	rep, err = realserver.Setup(f, cfg, o)
	if err != nil {
		t.Fatalf("second setup: %v", err)
	}
	if len(f.Calls) != calls {
		t.Errorf("second setup made changes: %v", f.Calls[calls:])
	}
	if out := text(t, rep); !strings.Contains(out, "setup: nothing changed, all") {
		t.Errorf("second setup did not say it changed nothing:\n%s", out)
	}

	st, err := realserver.StatusOf(f, nil, o)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if !st.OK() {
		t.Errorf("status after setup not OK:\n%s", text(t, st))
	}
	if f.Snapshot() != after {
		t.Error("status changed the host")
	}

	rep, err = realserver.Teardown(f, o)
	if err != nil {
		t.Fatalf("teardown: %v", err)
	}
	t.Logf("teardown:\n%s", text(t, rep))
	if got := f.Snapshot(); got != before {
		t.Errorf("teardown left\n%s\nwant\n%s", got, before)
	}
	if _, err := os.Stat(o.StatePath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file still there after teardown: %v", err)
	}
}

func TestSetupDR(t *testing.T) {
	roundTrip(t, realservertest.New(), realserver.Config{VIPs: vips("10.1.0.100")}, []string{
		"sysctl net.ipv4.conf.all.arp_ignore: 0 -> 1",
		"sysctl net.ipv4.conf.all.arp_announce: 0 -> 2",
		"sysctl net.ipv4.conf.lo.arp_ignore: 0 -> 1",
		"sysctl net.ipv4.conf.lo.arp_announce: 0 -> 2",
		"address 10.1.0.100/32 dev lo: absent -> present",
	})
}

func TestSetupDRIPv6Only(t *testing.T) {
	// No ARP for IPv6: ND answers only for addresses of the receiving
	// device, so the VIP on lo is all there is to do.
	roundTrip(t, realservertest.New(), realserver.Config{VIPs: vips("fd00:1::100")}, []string{
		"address fd00:1::100/128 dev lo: absent -> present",
	})
}

func TestSetupTUN(t *testing.T) {
	roundTrip(t, realservertest.New(), realserver.Config{VIPs: vips("10.1.0.100", "fd00:1::100"), Mode: realserver.ModeTUN, GUEPort: 6080}, []string{
		"sysctl net.ipv4.conf.all.arp_ignore: 0 -> 1",
		"sysctl net.ipv4.conf.all.arp_announce: 0 -> 2",
		"sysctl net.ipv4.conf.lo.arp_ignore: 0 -> 1",
		"sysctl net.ipv4.conf.lo.arp_announce: 0 -> 2",
		"sysctl net.ipv4.conf.all.rp_filter: 1 -> 2",
		"sysctl net.ipv4.conf.e0.rp_filter: 1 -> 2",
		"address 10.1.0.100/32 dev lo: absent -> present",
		"address fd00:1::100/128 dev lo: absent -> present",
		// 1500 - 20 outer - 8 UDP - 4 GUE - 20 IP - 20 TCP
		"route default dev e0 advmss: none -> 1428",
		"route 10.2.0.0/24 dev e0 advmss: none -> 1428",
		// 1500 - 40 outer - 8 - 4 - 40 IPv6 - 20 TCP; fe80::/64 untouched
		"route ::/0 dev e0 metric 1024 advmss: none -> 1388",
		"route fd00:2::/64 dev e0 metric 256 advmss: none -> 1388",
		"decap dev e0: none -> gue:6080",
	})
}

func TestSetupTUNOptions(t *testing.T) {
	f := realservertest.New()
	f.Links["e1"] = realserver.Link{Name: "e1", Index: 3, MTU: 9000}
	f.Sysctls["net/ipv4/conf/e1/rp_filter"] = "2" // loose is enough
	f.Sysctls["net/ipv4/conf/all/rp_filter"] = "0"
	f.RouteList = append(f.RouteList, realserver.Route{RouteKey: realserver.RouteKey{Dst: netip.MustParsePrefix("192.0.2.0/24"), Dev: "e1", Table: 254}, AdvMSS: 1000})
	f.RouteList = append(f.RouteList, realserver.Route{RouteKey: realserver.RouteKey{Dst: netip.MustParsePrefix("198.51.100.0/24"), Dev: "e1", Table: 254}, AdvMSS: 8000})
	roundTrip(t, f, realserver.Config{VIPs: vips("10.1.0.100"), Mode: realserver.ModeTUN, IngressDevs: []string{"e1"}, MTU: 8000}, []string{
		"sysctl net.ipv4.conf.all.arp_ignore: 0 -> 1",
		"sysctl net.ipv4.conf.all.arp_announce: 0 -> 2",
		"sysctl net.ipv4.conf.lo.arp_ignore: 0 -> 1",
		"sysctl net.ipv4.conf.lo.arp_announce: 0 -> 2",
		"address 10.1.0.100/32 dev lo: absent -> present",
		// A smaller advmss already there stays; a larger one is lowered.
		"route 198.51.100.0/24 dev e1 advmss: 8000 -> 7940",
		"decap dev e1: none -> ipip",
	})
}

func TestSetupKeepsWhatWasThere(t *testing.T) {
	f := realservertest.New()
	f.Sysctls["net/ipv4/conf/all/arp_ignore"] = "2"
	f.AddrList = append(f.AddrList, realserver.Addr{Dev: "lo", Prefix: netip.MustParsePrefix("10.1.0.100/32")})
	o := opts(t)
	if _, err := realserver.Setup(f, realserver.Config{VIPs: vips("10.1.0.100")}, o); err != nil {
		t.Fatal(err)
	}
	if _, err := realserver.Teardown(f, o); err != nil {
		t.Fatal(err)
	}
	if f.Sysctls["net/ipv4/conf/all/arp_ignore"] != "2" {
		t.Errorf("teardown changed arp_ignore setup had left alone")
	}
	if !slices.Contains(f.AddrList, realserver.Addr{Dev: "lo", Prefix: netip.MustParsePrefix("10.1.0.100/32")}) {
		t.Errorf("teardown removed a VIP that was there before setup")
	}
}

// A second setup with another configuration adds to the state file and
// keeps the first values, so one teardown restores the original host.
func TestSetupTwiceDifferentConfig(t *testing.T) {
	f := realservertest.New()
	before := f.Snapshot()
	o := opts(t)
	for _, cfg := range []realserver.Config{
		{VIPs: vips("10.1.0.100"), Mode: realserver.ModeTUN, GUEPort: 6080},
		{VIPs: vips("10.1.0.100", "10.1.0.101"), Mode: realserver.ModeTUN, MSS: 1300},
	} {
		rep, err := realserver.Setup(f, cfg, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s", text(t, rep))
	}
	if got := f.Decaps[realserver.DefaultBPFDir+"/e0"]; got != "ipip" {
		t.Errorf("decap is %q after the second setup, want ipip", got)
	}
	st, err := realserver.LoadState(o.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range st.Items {
		if it.Kind == realserver.KindDecap && it.Before != "none" {
			t.Errorf("state lost the decap's original value: %+v", it)
		}
	}
	if _, err := realserver.Teardown(f, o); err != nil {
		t.Fatal(err)
	}
	if got := f.Snapshot(); got != before {
		t.Errorf("teardown left\n%s\nwant\n%s", got, before)
	}
}

func TestSetupDryRun(t *testing.T) {
	f := realservertest.New()
	f.IsRoot = false // a plan needs no root
	o := opts(t)
	o.DryRun = true
	before := f.Snapshot()
	rep, err := realserver.Setup(f, realserver.Config{VIPs: vips("10.1.0.100"), Mode: realserver.ModeTUN}, o)
	if err != nil {
		t.Fatal(err)
	}
	out := text(t, rep)
	if len(f.Calls) != 0 || f.Snapshot() != before {
		t.Errorf("dry run changed the host: %v", f.Calls)
	}
	if _, err := os.Stat(o.StatePath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dry run wrote the state file")
	}
	for _, want := range []string{"would change sysctl   net.ipv4.conf.all.arp_ignore", "0 -> 1", "decap    dev e0", "nothing was changed"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
}

func TestSetupErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     realserver.Config
		host    func(*realservertest.Fake)
		wantIs  error
		wantSub string
	}{
		{name: "not root", cfg: realserver.Config{VIPs: vips("10.1.0.100")}, host: func(f *realservertest.Fake) { f.IsRoot = false }, wantIs: realserver.ErrNotRoot, wantSub: "sudo"},
		{name: "unknown dev", cfg: realserver.Config{VIPs: vips("10.1.0.100"), Dev: "dummy0"}, wantIs: realserver.ErrNoDevice, wantSub: "dummy0"},
		{name: "dev answers ARP", cfg: realserver.Config{VIPs: vips("10.1.0.100"), Dev: "e0"}, wantIs: realserver.ErrDevAnswersARP, wantSub: "arp off"},
		{name: "VIP elsewhere", cfg: realserver.Config{VIPs: vips("10.1.0.100")}, host: func(f *realservertest.Fake) {
			f.AddrList = append(f.AddrList, realserver.Addr{Dev: "e0", Prefix: netip.MustParsePrefix("10.1.0.100/24")})
		}, wantIs: realserver.ErrVIPElsewhere, wantSub: "ip addr del 10.1.0.100/24 dev e0"},
		{name: "VIP wide on lo", cfg: realserver.Config{VIPs: vips("10.1.0.100")}, host: func(f *realservertest.Fake) {
			f.AddrList = append(f.AddrList, realserver.Addr{Dev: "lo", Prefix: netip.MustParsePrefix("10.1.0.100/24")})
		}, wantSub: "not /32"},
		{name: "no default route", cfg: realserver.Config{VIPs: vips("10.1.0.100"), Mode: realserver.ModeTUN}, host: func(f *realservertest.Fake) {
			f.RouteList = f.RouteList[1:2]
		}, wantIs: realserver.ErrNoIngress, wantSub: "--ingress-dev"},
		{name: "unknown ingress", cfg: realserver.Config{VIPs: vips("10.1.0.100"), Mode: realserver.ModeTUN, IngressDevs: []string{"eth9"}}, wantIs: realserver.ErrNoDevice, wantSub: "eth9"},
		{name: "no VIP", cfg: realserver.Config{}, wantSub: "no VIP"},
		{name: "bad mode", cfg: realserver.Config{VIPs: vips("10.1.0.100"), Mode: "nat"}, wantSub: `unknown mode "nat"`},
		{name: "gue without port", cfg: realserver.Config{VIPs: vips("10.1.0.100"), Mode: realserver.ModeTUN, TunType: realserver.TunGUE}, wantSub: "needs --gue-port"},
		{name: "mss and mtu", cfg: realserver.Config{VIPs: vips("10.1.0.100"), Mode: realserver.ModeTUN, MSS: 1400, MTU: 1500}, wantSub: "give one"},
		{name: "tun flags in dr", cfg: realserver.Config{VIPs: vips("10.1.0.100"), MSS: 1400}, wantSub: "--mode tun only"},
		{name: "loopback vip", cfg: realserver.Config{VIPs: vips("127.0.0.2")}, wantSub: "not a unicast service address"},
		{name: "ingress is lo", cfg: realserver.Config{VIPs: vips("10.1.0.100"), Mode: realserver.ModeTUN, IngressDevs: []string{"lo"}}, wantSub: "not on lo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := realservertest.New()
			if tc.host != nil {
				tc.host(f)
			}
			o := opts(t)
			_, err := realserver.Setup(f, tc.cfg, o)
			if err == nil {
				t.Fatal("setup succeeded")
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v is not %v", err, tc.wantIs)
			}
			if !strings.Contains(err.Error(), tc.wantSub) {
				t.Errorf("error %q does not say %q", err, tc.wantSub)
			}
			if len(f.Calls) != 0 {
				t.Errorf("a failed setup changed the host: %v", f.Calls)
			}
		})
	}
}

// A change failing half way leaves the state file describing what was
// done, and teardown undoes it.
func TestSetupFailsHalfWay(t *testing.T) {
	f := realservertest.New()
	before := f.Snapshot()
	f.Fail = func(call string) error {
		if strings.HasPrefix(call, "AddAddr") {
			return os.ErrPermission
		}
		return nil
	}
	o := opts(t)
	rep, err := realserver.Setup(f, realserver.Config{VIPs: vips("10.1.0.100")}, o)
	if err == nil || !strings.Contains(err.Error(), "teardown undoes it") {
		t.Fatalf("setup error %v, want one pointing at teardown", err)
	}
	if rep.Count(realserver.StatusFailed) != 1 || rep.Count(realserver.StatusChanged) != 4 {
		t.Errorf("report:\n%s", text(t, rep))
	}
	f.Fail = nil
	if _, err := realserver.Teardown(f, o); err != nil {
		t.Fatal(err)
	}
	if got := f.Snapshot(); got != before {
		t.Errorf("teardown left\n%s\nwant\n%s", got, before)
	}
}

func TestTeardownPartial(t *testing.T) {
	f := realservertest.New()
	o := opts(t)
	cfg := realserver.Config{VIPs: vips("10.1.0.100"), Mode: realserver.ModeTUN}
	if _, err := realserver.Setup(f, cfg, o); err != nil {
		t.Fatal(err)
	}
	// The connected route went away with its address; a sysctl refuses.
	f.RouteList = slices.DeleteFunc(f.RouteList, func(r realserver.Route) bool { return r.Dst.String() == "10.2.0.0/24" })
	f.Fail = func(call string) error {
		if call == "SetSysctl net/ipv4/conf/lo/arp_ignore 0" {
			return os.ErrPermission
		}
		return nil
	}
	rep, err := realserver.Teardown(f, o)
	if err == nil {
		t.Fatal("teardown succeeded despite a failure")
	}
	out := text(t, rep)
	if rep.Count(realserver.StatusGone) != 1 || !strings.Contains(out, "the rest stays in") {
		t.Errorf("teardown report:\n%s", out)
	}
	st, err := realserver.LoadState(o.StatePath)
	if err != nil || st == nil || len(st.Items) != 1 || st.Items[0].Key != "net/ipv4/conf/lo/arp_ignore" {
		t.Fatalf("state after a partial teardown: %+v, %v", st, err)
	}
	f.Fail = nil
	if _, err := realserver.Teardown(f, o); err != nil {
		t.Fatal(err)
	}
	if f.Sysctls["net/ipv4/conf/lo/arp_ignore"] != "0" {
		t.Error("second teardown did not restore what the first could not")
	}
}

func TestTeardownWithoutState(t *testing.T) {
	_, err := realserver.Teardown(realservertest.New(), opts(t))
	if err == nil || !strings.Contains(err.Error(), "nothing to undo") {
		t.Fatalf("teardown without state: %v", err)
	}
}

func TestStatus(t *testing.T) {
	f := realservertest.New()
	o := opts(t)
	cfg := realserver.Config{VIPs: vips("10.1.0.100"), Mode: realserver.ModeTUN}
	if _, err := realserver.StatusOf(f, nil, o); err == nil {
		t.Error("status without state or configuration succeeded")
	}
	rep, err := realserver.StatusOf(f, &cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Count(realserver.StatusMissing) != 10 {
		t.Errorf("status before setup:\n%s", text(t, rep))
	}
	if _, err := realserver.Setup(f, cfg, o); err != nil {
		t.Fatal(err)
	}
	// Someone removes the VIP and detaches the decapsulator.
	f.AddrList = slices.DeleteFunc(f.AddrList, func(a realserver.Addr) bool { return a.Prefix.String() == "10.1.0.100/32" })
	clear(f.Decaps)
	rep, err = realserver.StatusOf(f, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	out := text(t, rep)
	if rep.OK() || rep.Count(realserver.StatusMissing) != 2 ||
		!strings.Contains(out, "MISSING      address  10.1.0.100/32 dev lo") ||
		!strings.Contains(out, "none, want ipip") || !strings.Contains(out, "2 of 10 items missing") {
		t.Errorf("status:\n%s", out)
	}
	// Setup puts back only what is missing.
	f.Calls = nil
	if _, err := realserver.Setup(f, cfg, o); err != nil {
		t.Fatal(err)
	}
	if want := []string{"AddAddr lo 10.1.0.100/32", "AttachDecap e0 ipip"}; !slices.Equal(f.Calls, want) {
		t.Errorf("repair made %v, want %v", f.Calls, want)
	}
}

func TestStateFileBad(t *testing.T) {
	o := opts(t)
	if err := os.WriteFile(o.StatePath, []byte(`{"version": 99}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := realserver.Teardown(realservertest.New(), o); err == nil || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("teardown with a future state file: %v", err)
	}
}
