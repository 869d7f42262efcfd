package ipvsadm_test

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/api/apitest"
	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// fixture is an IPv4, an IPv6 and two firewall-mark services, stored out
// of order and with destinations newest first, so listings must sort.
func fixture() *apitest.Director {
	f := apitest.New()
	f.Put(ipvs.ServiceState{
		Service: ipvs.Service{ServiceKey: ipvs.FWMarkService(8, ipvs.IPv6), Scheduler: "lc", Netmask: 128},
		Dests: []ipvs.DestState{{Destination: ipvs.Destination{
			Addr: netip.MustParseAddr("2001:db8::20"), Fwd: ipvs.Tunnel, Weight: 3,
			TunType: ipvs.TunGUE, TunPort: 6080, TunFlags: ipvs.TunCsum}}},
	})
	k6 := ipvs.TCPService(ap("[2001:db8::1]:443"))
	f.Put(ipvs.ServiceState{
		Service: ipvs.Service{ServiceKey: k6, Scheduler: "sh", SchedFlags: ipvs.SchedPort,
			Persistent: true, Timeout: 300, Netmask: 64},
		Dests: []ipvs.DestState{{Destination: ipvs.Destination{
			Addr: netip.MustParseAddr("2001:db8::10"), Port: 443, Fwd: ipvs.Route, Weight: 1}}},
	})
	f.Put(ipvs.ServiceState{
		Service: ipvs.Service{ServiceKey: ipvs.UDPService(ap("10.0.0.1:53")), Scheduler: "rr", OnePacket: true, Netmask: 32},
		Dests: []ipvs.DestState{{Destination: ipvs.Destination{
			Addr: netip.MustParseAddr("10.1.0.1"), Port: 5353, Fwd: ipvs.Masq, Weight: 5}}},
	})
	f.Put(ipvs.ServiceState{
		Service: ipvs.Service{ServiceKey: ipvs.FWMarkService(7, ipvs.IPv4), Scheduler: "wlc",
			Persistent: true, Timeout: 300, Netmask: 24},
		Dests: []ipvs.DestState{{Destination: ipvs.Destination{
			Addr: netip.MustParseAddr("10.2.0.1"), Fwd: ipvs.Route, Weight: 1}}},
	})
	f.Put(ipvs.ServiceState{
		Service: ipvs.Service{ServiceKey: ipvs.TCPService(ap("192.168.1.110:80")), Scheduler: "wrr",
			Persistent: true, Timeout: 360, Netmask: 32},
		Stats: ipvs.Counters{Conns: 12345, InPkts: 123456789, OutPkts: 99999999, InBytes: 12345678901, OutBytes: 123456789012345},
		Rates: ipvs.Rates{CPS: 5, InPPS: 100, OutPPS: 90, InBPS: 1234567890, OutBPS: 99},
		Dests: []ipvs.DestState{
			{Destination: ipvs.Destination{Addr: netip.MustParseAddr("192.168.1.12"), Port: 80, Fwd: ipvs.Route, Weight: 2, Upper: 100, Lower: 50},
				ActiveConns: 3, InactConns: 7, PersistConns: 2},
			{Destination: ipvs.Destination{Addr: netip.MustParseAddr("192.168.1.11"), Port: 80, Fwd: ipvs.Route, Weight: 1},
				Stats: ipvs.Counters{Conns: 1}, Rates: ipvs.Rates{CPS: 1, InPPS: 2, OutPPS: 3, InBPS: 4, OutBPS: 5}},
		},
	})
	return f
}

func TestListGolden(t *testing.T) {
	for _, tc := range []struct {
		name  string
		names bool
		args  []string
		want  string
	}{
		{"numeric", false, []string{"-L", "-n"}, wantListNumeric},
		{"numeric-cluster", false, []string{"-Ln"}, wantListNumeric},
		{"numeric-long", false, []string{"--list", "--numeric"}, wantListNumeric},
		{"lowercase-l", false, []string{"-l", "-n"}, wantListNumeric},
		{"sort-noop", false, []string{"-L", "-n", "--sort"}, wantListNumeric},
		{"names", true, []string{"-L"}, wantListNames},
		{"no-resolver-names-fall-back", false, []string{"-L"}, wantListNumeric},
		{"stats", false, []string{"-L", "-n", "--stats"}, wantStats},
		{"stats-exact", false, []string{"-L", "-n", "--stats", "--exact"}, wantStatsExact},
		{"stats-exact-short", false, []string{"-LnX", "--stats"}, wantStatsExact},
		{"rate", false, []string{"-L", "-n", "--rate"}, wantRate},
		{"rate-exact", false, []string{"-L", "-n", "--rate", "--exact"}, wantRateExact},
		{"stats-wins-over-rate", false, []string{"-L", "-n", "--rate", "--stats"}, wantStats},
		{"thresholds", false, []string{"-L", "-n", "--thresholds"}, wantThresholds},
		{"persistent-conn", false, []string{"-L", "-n", "--persistent-conn"}, wantPersistentConn},
		{"tun-info", false, []string{"-L", "-n", "--tun-info"}, wantTunInfo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r *fakeResolver
			if tc.names {
				r = newFakeResolver()
			}
			var res result
			if r != nil {
				res = run(t, fixture(), r, "", append([]string{"ipvsadm"}, tc.args...)...)
			} else {
				res = run(t, fixture(), nil, "", append([]string{"ipvsadm"}, tc.args...)...)
			}
			if res.code != 0 || res.stderr != "" {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			diff(t, tc.name, res.stdout, tc.want)
		})
	}
}

func TestListNoArgs(t *testing.T) {
	// ipvsadm with no arguments lists, with names.
	res := run(t, fixture(), newFakeResolver(), "", "ipvsadm")
	diff(t, "ipvsadm", res.stdout, wantListNames)
}

func TestListNoSort(t *testing.T) {
	f := apitest.New()
	k := ipvs.TCPService(ap("10.0.0.2:80"))
	f.Put(ipvs.ServiceState{Service: ipvs.Service{ServiceKey: k, Scheduler: "rr", Netmask: 32},
		Dests: []ipvs.DestState{
			{Destination: ipvs.Destination{Addr: netip.MustParseAddr("10.9.0.2"), Port: 80, Fwd: ipvs.Masq, Weight: 1}},
			{Destination: ipvs.Destination{Addr: netip.MustParseAddr("10.9.0.1"), Port: 80, Fwd: ipvs.Masq, Weight: 1}},
		}})
	f.Put(ipvs.ServiceState{Service: ipvs.Service{ServiceKey: ipvs.TCPService(ap("10.0.0.1:80")), Scheduler: "rr", Netmask: 32}})
	// "%s %s" service, "  -> %-28s %-7s %-6d %-10u %-10u\n" destination
	want := golden(`
		IP Virtual Server version 1.2.1 (size=4096)$
		Prot LocalAddress:Port Scheduler Flags$
		  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn$
		TCP  10.0.0.2:80 rr$
		  -> 10.9.0.2:80                  Masq    1      0          0         $
		  -> 10.9.0.1:80                  Masq    1      0          0         $
		TCP  10.0.0.1:80 rr$
	`)
	diff(t, "nosort", run(t, f, nil, "", "ipvsadm", "-Ln", "--nosort").stdout, want)
}

func TestListSortQuirk(t *testing.T) {
	// libipvs compares addresses by subtracting them as int: 10.0.0.1 -
	// 200.0.0.1 wraps positive, so ipvsadm lists 200.0.0.1 first.
	f := apitest.New()
	for _, a := range []string{"10.0.0.1:80", "200.0.0.1:80"} {
		f.Put(ipvs.ServiceState{Service: ipvs.Service{ServiceKey: ipvs.TCPService(ap(a)), Scheduler: "rr", Netmask: 32}})
	}
	out := run(t, f, nil, "", "ipvsadm", "-Ln").stdout
	if i, j := strings.Index(out, "200.0.0.1"), strings.Index(out, "10.0.0.1"); i > j {
		t.Errorf("want 200.0.0.1 before 10.0.0.1 (glibc qsort with libipvs's comparator):\n%s", out)
	}
}

func TestListOneService(t *testing.T) {
	// list_service prints the title and the service, not the header.
	want := golden(`
		Prot LocalAddress:Port Scheduler Flags$
		  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn$
		TCP  [2001:db8::1]:443 sh (sh-port) persistent 300 mask 64$
		  -> [2001:db8::10]:443           Route   1      0          0         $
	`)
	res := run(t, fixture(), nil, "", "ipvsadm", "-L", "-n", "-t", "[2001:db8::1]:443")
	diff(t, "-L -t", res.stdout, want)

	want = golden(`
		Prot LocalAddress:Port Scheduler Flags$
		  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn$
		FWM  8 IPv6 lc$
		  -> [2001:db8::20]:0             Tunnel  3      0          0         $
	`)
	diff(t, "-L -f -6", run(t, fixture(), nil, "", "ipvsadm", "-Ln", "-f", "8", "-6").stdout, want)

	res = run(t, fixture(), nil, "", "ipvsadm", "-L", "-t", "10.9.9.9:80")
	if res.code != 1 || res.stderr != "No such service\n" {
		t.Errorf("missing service: exit %d stderr %q, want 1 and \"No such service\\n\"", res.code, res.stderr)
	}
}

func TestListLongNameTruncated(t *testing.T) {
	// svc_name is cut at 33 bytes and a destination at 28 (IPv4 only).
	f := apitest.New()
	k := ipvs.TCPService(ap("192.168.100.100:8080"))
	f.Put(ipvs.ServiceState{Service: ipvs.Service{ServiceKey: k, Scheduler: "wlc", Netmask: 32},
		Dests: []ipvs.DestState{{Destination: ipvs.Destination{Addr: netip.MustParseAddr("192.168.100.101"), Port: 8080, Fwd: ipvs.Masq, Weight: 1}}}})
	r := newFakeResolver()
	r.hosts["a-very-long-host-name.example.com"] = netip.MustParseAddr("192.168.100.100")
	r.hosts["another-long-realserver-name.example.com"] = netip.MustParseAddr("192.168.100.101")
	want := golden(`
		IP Virtual Server version 1.2.1 (size=4096)$
		Prot LocalAddress:Port Scheduler Flags$
		  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn$
		TCP  a-very-long-host-name.exampl wlc$
		  -> another-long-realserver-name Masq    1      0          0         $
	`)
	diff(t, "truncated", run(t, f, r, "", "ipvsadm", "-L").stdout, want)
}

func TestListTimeoutDaemonConns(t *testing.T) {
	f := fixture()
	// "Timeout (tcp tcpfin udp): %d %d %d\n"
	diff(t, "--timeout", run(t, f, nil, "", "ipvsadm", "-L", "--timeout").stdout, "Timeout (tcp tcpfin udp): 900 120 300\n")
	if r := run(t, f, nil, "", "ipvsadm", "--set", "1000", "0", "30"); r.code != 0 {
		t.Fatalf("--set: %+v", r)
	}
	diff(t, "--timeout after --set", run(t, f, nil, "", "ipvsadm", "-l", "--timeout").stdout, "Timeout (tcp tcpfin udp): 1000 120 30\n")

	for _, args := range [][]string{
		{"--start-daemon", "master", "--mcast-interface", "eth1", "--syncid", "7"},
		{"--start-daemon", "backup", "--mcast-interface", "eth2", "--syncid", "9", "--sync-maxlen", "1400",
			"--mcast-group", "239.1.1.1", "--mcast-port", "8849", "--mcast-ttl", "2"},
	} {
		if r := run(t, f, nil, "", append([]string{"ipvsadm"}, args...)...); r.code != 0 {
			t.Fatalf("%v: %+v", args, r)
		}
	}
	// "%s sync daemon (mcast=%s, syncid=%d" ", maxlen=%u" ", group=%s" ", port=%u" ", ttl=%u" ")\n"
	want := "master sync daemon (mcast=eth1, syncid=7)\n" +
		"backup sync daemon (mcast=eth2, syncid=9, maxlen=1400, group=239.1.1.1, port=8849, ttl=2)\n"
	diff(t, "--daemon", run(t, f, nil, "", "ipvsadm", "-L", "--daemon").stdout, want)
	r := run(t, f, nil, "", "ipvsadm", "--start-daemon", "master")
	if r.code != 255 || r.stderr != "Daemon has already run\n" {
		t.Errorf("second master: %+v", r)
	}

	f.SetConns([]conn.Info{
		{Proto: ipvs.ProtoTCP, Client: ap("10.9.0.5:40000"), Virtual: ap("192.168.1.110:80"), Dest: ap("192.168.1.11:80"),
			State: "ESTABLISHED", Expires: 899 * time.Second},
		{Proto: ipvs.ProtoUDP, Client: ap("[2001:db8::99]:5000"), Virtual: ap("[2001:db8::1]:53"), Dest: ap("[2001:db8::10]:53"),
			State: "UDP", Expires: 65 * time.Second},
		{Template: true, FWMark: 7, Client: ap("10.9.0.0:0"), Dest: ap("10.2.0.1:0"), Expires: 6000 * time.Second},
	})
	// "pro expire %-11s %-18s %-18s %s\n" title,
	// "%-3s %-6s %-11s %-18s %-18s %s\n" entries, expire "%02d:%02d"
	want = golden(`
		IPVS connection entries$
		pro expire state       source             virtual            destination$
		TCP 14:59  ESTABLISHED 10.9.0.5:40000     192.168.1.110:80   192.168.1.11:80$
		UDP 01:05  UDP         [2001:db8::99]:5000 [2001:db8::1]:53   [2001:db8::10]:53$
		IP  100:00 NONE        10.9.0.0:0         0.0.0.7:0          10.2.0.1:0$
	`)
	diff(t, "-Lcn", run(t, f, nil, "", "ipvsadm", "-Lcn").stdout, want)
	want = golden(`
		IPVS connection entries$
		pro expire state       source             virtual            destination$
		TCP 14:59  ESTABLISHED 10.9.0.5:40000     www.example.com:http rs1.example.com:http$
		UDP 01:05  UDP         [2001:db8::99]:5000 [v6.example.com]:domain [2001:db8::10]:domain$
		IP  100:00 NONE        10.9.0.0:0         0.0.0.7:0          10.2.0.1:0$
	`)
	diff(t, "-Lc", run(t, f, newFakeResolver(), "", "ipvsadm", "-L", "-c").stdout, want)
	// "pro expire %-11s %-18s %-18s %-18s %-16s %s\n" with --persistent-conn
	want = golden(`
		IPVS connection entries$
		pro expire state       source             virtual            destination        pe name          pe_data$
	`)
	f.SetConns(nil)
	diff(t, "-Lc --persistent-conn", run(t, f, nil, "", "ipvsadm", "-Lcn", "--persistent-conn").stdout, want)
}

func TestListJSON(t *testing.T) {
	f := fixture()
	res := run(t, f, nil, "", "govsadm", "-L", "--json")
	if res.code != 0 {
		t.Fatalf("%+v", res)
	}
	var l struct {
		Info     api.Info            `json:"info"`
		Services []ipvs.ServiceState `json:"services"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &l); err != nil {
		t.Fatalf("decode: %v\n%s", err, res.stdout)
	}
	if l.Info.ConnTabSize != 4096 || len(l.Services) != 5 {
		t.Fatalf("got %+v", l)
	}
	first := l.Services[0]
	if first.Addr != netip.MustParseAddr("192.168.1.110") || first.Dests[0].Addr != netip.MustParseAddr("192.168.1.11") ||
		first.Stats.OutBytes != 123456789012345 {
		t.Errorf("JSON not sorted or incomplete: %+v", first)
	}
	for _, args := range [][]string{{"-L", "--json", "-c"}, {"-L", "--json", "--timeout"}, {"-L", "--json", "--daemon"}, {"-L", "--json", "-t", "192.168.1.110:80"}} {
		res := run(t, f, nil, "", append([]string{"govsadm"}, args...)...)
		if res.code != 0 || !json.Valid([]byte(res.stdout)) {
			t.Errorf("%v: %+v", args, res)
		}
	}
	// Under the name ipvsadm, --json is not an option.
	res = run(t, f, nil, "", "ipvsadm", "-L", "--json")
	if res.code != 255 || res.stderr != "--json: unknown option\n" {
		t.Errorf("ipvsadm --json: %+v", res)
	}
	res = run(t, f, nil, "", "govsadm", "-S", "--json")
	if res.code != 2 || res.stderr != "Illegal 'json' option with the 'save' command\n" {
		t.Errorf("govsadm -S --json: %+v", res)
	}
}
