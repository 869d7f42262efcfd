package ipvsadm_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/api/apitest"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/ipvsadm"
)

func parse(t testing.TB, args ...string) (*ipvsadm.Command, error) {
	t.Helper()
	p := &ipvsadm.Parser{Prog: "ipvsadm", Compat: true, Resolver: newFakeResolver()}
	return p.Parse(context.Background(), args)
}

func mustParse(t *testing.T, args ...string) *ipvsadm.Command {
	t.Helper()
	c, err := parse(t, args...)
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	return c
}

func TestParseService(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want ipvs.Service
	}{
		{[]string{"-A", "-t", "10.0.0.1:80"},
			ipvs.Service{ServiceKey: ipvs.TCPService(ap("10.0.0.1:80")), Scheduler: "wlc", Netmask: 32}},
		{[]string{"--add-service", "--tcp-service=10.0.0.1:http", "--scheduler", "rr"},
			ipvs.Service{ServiceKey: ipvs.TCPService(ap("10.0.0.1:80")), Scheduler: "rr", Netmask: 32}},
		{[]string{"-At", "www.example.com:http", "-s", "wrr", "-p"},
			ipvs.Service{ServiceKey: ipvs.TCPService(ap("192.168.1.110:80")), Scheduler: "wrr", Persistent: true, Timeout: 300, Netmask: 32}},
		{[]string{"-A", "-t", "10.0.0.1:0", "-p", "60", "-M", "255.255.0.0"},
			ipvs.Service{ServiceKey: ipvs.TCPService(ap("10.0.0.1:0")), Scheduler: "wlc", Persistent: true, Timeout: 60, Netmask: 16}},
		{[]string{"-A", "-t", "10.0.0.1:0", "--persistent=60", "--netmask", "255.255.255.0"},
			ipvs.Service{ServiceKey: ipvs.TCPService(ap("10.0.0.1:0")), Scheduler: "wlc", Persistent: true, Timeout: 60, Netmask: 24}},
		{[]string{"-A", "-t", "10.0.0.1:0", "-p60"},
			ipvs.Service{ServiceKey: ipvs.TCPService(ap("10.0.0.1:0")), Scheduler: "wlc", Persistent: true, Timeout: 60, Netmask: 32}},
		{[]string{"-E", "-u", "10.0.0.1:domain", "-o"},
			ipvs.Service{ServiceKey: ipvs.UDPService(ap("10.0.0.1:53")), Scheduler: "wlc", OnePacket: true, Netmask: 32}},
		{[]string{"-A", "--sctp-service", "10.0.0.1:9", "-s", "mh", "-b", "mh-fallback,mh-port"},
			ipvs.Service{ServiceKey: ipvs.ServiceKey{Family: ipvs.IPv4, Protocol: ipvs.ProtoSCTP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 9},
				Scheduler: "mh", SchedFlags: ipvs.SchedFallback | ipvs.SchedPort, Netmask: 32}},
		{[]string{"-A", "-t", "[2001:db8::1]:443", "-p", "-M", "64", "--pe", "sip"},
			ipvs.Service{ServiceKey: ipvs.TCPService(ap("[2001:db8::1]:443")), Scheduler: "wlc", Persistent: true, Timeout: 300, Netmask: 64, PE: "sip"}},
		{[]string{"-A", "-f", "7", "-s", "sh", "--sched-flags", "sh-port,flag-3"},
			ipvs.Service{ServiceKey: ipvs.FWMarkService(7, ipvs.IPv4), Scheduler: "sh", SchedFlags: ipvs.SchedPort | ipvs.SchedFlag3, Netmask: 32}},
		{[]string{"-A", "--fwmark-service", "4294967295", "--ipv6", "-p", "10"},
			ipvs.Service{ServiceKey: ipvs.FWMarkService(4294967295, ipvs.IPv6), Scheduler: "wlc", Persistent: true, Timeout: 10, Netmask: 128}},
		{[]string{"-A", "-f", "1", "-6", "-M", "48", "-p"},
			ipvs.Service{ServiceKey: ipvs.FWMarkService(1, ipvs.IPv6), Scheduler: "wlc", Persistent: true, Timeout: 300, Netmask: 48}},
		// inet_aton's short forms, strtol's sign and spaces.
		{[]string{"-A", "-t", "10.1:+80"},
			ipvs.Service{ServiceKey: ipvs.TCPService(ap("10.0.0.1:80")), Scheduler: "wlc", Netmask: 32}},
		{[]string{"-A", "-t", "0x0a000001: 80", "-s", "a-scheduler-name-too-long"},
			ipvs.Service{ServiceKey: ipvs.TCPService(ap("10.0.0.1:80")), Scheduler: "a-scheduler-nam", Netmask: 32}},
	} {
		c := mustParse(t, tc.args...)
		if !c.HasService || c.Service != tc.want {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.args, c.Service, tc.want)
		}
	}
}

func TestParseDest(t *testing.T) {
	for _, tc := range []struct {
		args []string
		cmd  ipvsadm.Cmd
		want ipvs.Destination
	}{
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2"}, ipvsadm.CmdAddDest,
			ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Fwd: ipvs.Route, Weight: 1}},
		// DR cannot map ports: the service's port wins.
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2:8080", "-g"}, ipvsadm.CmdAddDest,
			ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Fwd: ipvs.Route, Weight: 1}},
		{[]string{"--add-server", "-t", "10.0.0.1:80", "--real-server", "rs1.example.com:8080", "--masquerading", "--weight", "0", "-x", "100", "-y", "50"}, ipvsadm.CmdAddDest,
			ipvs.Destination{Addr: netip.MustParseAddr("192.168.1.11"), Port: 8080, Fwd: ipvs.Masq, Weight: 0, Upper: 100, Lower: 50}},
		{[]string{"-e", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-m", "-w", "65535", "--u-threshold=2147483647", "--l-threshold=0"}, ipvsadm.CmdEditDest,
			ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Fwd: ipvs.Masq, Weight: 65535, Upper: 2147483647}},
		{[]string{"-d", "-t", "10.0.0.1:80", "-r", "10.0.0.2"}, ipvsadm.CmdDelDest,
			ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Fwd: ipvs.Route, Weight: 1}},
		// A tunnel may cross families.
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "[2001:db8::2]:80", "-i"}, ipvsadm.CmdAddDest,
			ipvs.Destination{Addr: netip.MustParseAddr("2001:db8::2"), Port: 80, Fwd: ipvs.Tunnel, Weight: 1}},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "--ipip", "--tun-type", "gue", "--tun-port", "6080", "--tun-remcsum"}, ipvsadm.CmdAddDest,
			ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Fwd: ipvs.Tunnel, Weight: 1, TunType: ipvs.TunGUE, TunPort: 6080, TunFlags: ipvs.TunRemCsum}},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-i", "--tun-type", "gre", "--tun-csum"}, ipvsadm.CmdAddDest,
			ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Fwd: ipvs.Tunnel, Weight: 1, TunType: ipvs.TunGRE, TunFlags: ipvs.TunCsum}},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-i", "--tun-type", "gre", "--tun-nocsum"}, ipvsadm.CmdAddDest,
			ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Fwd: ipvs.Tunnel, Weight: 1, TunType: ipvs.TunGRE}},
		{[]string{"-a", "-f", "7", "-r", "10.0.0.2", "-w3"}, ipvsadm.CmdAddDest,
			ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Fwd: ipvs.Route, Weight: 3}},
		{[]string{"-a", "-f", "7", "-6", "-r", "[2001:db8::2]:0", "-w=3"}, ipvsadm.CmdAddDest,
			ipvs.Destination{Addr: netip.MustParseAddr("2001:db8::2"), Fwd: ipvs.Route, Weight: 3}},
	} {
		c := mustParse(t, tc.args...)
		if c.Cmd != tc.cmd || c.Dest != tc.want {
			t.Errorf("%q:\n got %s %+v\nwant %s %+v", tc.args, c.Cmd, c.Dest, tc.cmd, tc.want)
		}
	}
}

func TestParseOther(t *testing.T) {
	c := mustParse(t, "--set", "900", "0", "300")
	if c.Cmd != ipvsadm.CmdTimeout || c.Timeouts.TCP != 900*time.Second || c.Timeouts.TCPFin != 0 || c.Timeouts.UDP != 300*time.Second {
		t.Errorf("--set: %s", c)
	}
	c = mustParse(t, "--start-daemon", "master")
	if c.Daemon.State != "master" || c.Daemon.Interface != "eth0" || c.Daemon.SyncID != 0 {
		t.Errorf("--start-daemon defaults: %+v", c.Daemon)
	}
	c = mustParse(t, "--start-daemon=backup", "--mcast-interface", "eth1", "--syncid", "255", "--mcast-group", "ff02::81", "--mcast-port", "1", "--mcast-ttl", "255", "--sync-maxlen", "65507")
	if c.Daemon.State != "backup" || c.Daemon.Interface != "eth1" || c.Daemon.SyncID != 255 || c.Daemon.Group != netip.MustParseAddr("ff02::81") ||
		c.Daemon.Port != 1 || c.Daemon.TTL != 255 || c.Daemon.SyncMaxLen != 65507 {
		t.Errorf("--start-daemon: %+v", c.Daemon)
	}
	c = mustParse(t, "--stop-daemon", "backup", "--syncid", "3")
	if c.Cmd != ipvsadm.CmdStopDaemon || c.Daemon.State != "backup" {
		t.Errorf("--stop-daemon: %+v", c)
	}
	for _, args := range [][]string{{"-C"}, {"--clear"}, {"-Z"}, {"--zero", "-t", "10.0.0.1:80"}, {"-S"}, {"-Sn"}, {"-R"}, {"--restore"},
		{"-D", "-t", "10.0.0.1:80"}, {"--delete-service", "-f", "3"}, {"-L", "--daemon"}, {"-L", "--timeout"},
		{"-L", "-c", "-n", "--persistent-conn"}, {"-L", "--stats", "--rate", "--exact", "--thresholds", "--persistent-conn", "--nosort", "--tun-info", "-n"},
		{"-L", "-n", "--sort"}} {
		if _, err := parse(t, args...); err != nil {
			t.Errorf("%q: %v", args, err)
		}
	}
	if c := mustParse(t, "-h", "--bogus"); c.Cmd != ipvsadm.CmdHelp {
		t.Errorf("-h: %s", c)
	}
	if c := mustParse(t, "--version"); c.Cmd != ipvsadm.CmdVersion {
		t.Errorf("--version: %s", c)
	}
}

// TestParseErrors is argv -> ipvsadm's message and exit code.
func TestParseErrors(t *testing.T) {
	const try = "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n"
	for _, tc := range []struct {
		args []string
		msg  string
		code int
	}{
		{[]string{"foo"}, try, 255},
		{[]string{"-n", "-L"}, try, 255}, // the command must come first
		{[]string{"--bogus"}, try, 255},
		{[]string{"--start-daemon"}, try, 255},
		{[]string{"-L", "--bogus"}, "--bogus: unknown option\n", 255},
		{[]string{"-Lq"}, "-Lq: unknown option\n", 255},
		{[]string{"-L", "--numeric=yes"}, "--numeric=yes: option does not take an argument\n", 255},
		{[]string{"-A", "-t"}, "-t: missing argument\n", 255},
		{[]string{"-L", "-A"}, "invalid option `-A'\n", 2},
		{[]string{"-L", "--start-daemon", "master"}, "invalid option `master'\n", 2},
		{[]string{"-L", "-h"}, "invalid option `-h'\n", 2},
		{[]string{"-L", "foo"}, "unexpected argument foo\n", 2},
		{[]string{"--start-daemon", "primary"}, "illegal start-daemon parameter specified\n", 2},
		{[]string{"--stop-daemon", "primary"}, "illegal start_daemon specified\n", 2},
		{[]string{"-A", "-t", "80"}, "illegal virtual server address[:port] specified\n", 2},
		{[]string{"-A", "-t", "nosuchhost:80"}, "illegal virtual server address[:port] specified\n", 2},
		{[]string{"-A", "-t", "10.0.0.1:nosuchport"}, "illegal virtual server address[:port] specified\n", 2},
		{[]string{"-A", "-t", "10.0.0.1:65536"}, "illegal virtual server address[:port] specified\n", 2},
		{[]string{"-A", "-t", "[2001:db8::1]"}, "illegal virtual server address[:port] specified\n", 2},
		{[]string{"-A", "-t", "10.0.0.1:80", "-u", "10.0.0.1:80"}, "multiple 'service-address' options specified\n", 2},
		{[]string{"-A", "-f", "0"}, "invalid fwmark value `0' specified\n", 2},
		{[]string{"-A", "-f", "4294967296"}, "invalid fwmark value `4294967296' specified\n", 2},
		{[]string{"-A", "-f", "x1"}, "invalid fwmark value `x1' specified\n", 2},
		{[]string{"-A", "-t", "10.0.0.1:80", "-6"}, "-6 used before -f\n\n", 2},
		{[]string{"-A", "-t", "10.0.0.1:80", "-p", "0"}, "invalid timeout value `0' specified\n", 2},
		{[]string{"-A", "-t", "10.0.0.1:80", "-p", "2678401"}, "invalid timeout value `2678401' specified\n", 2},
		{[]string{"-A", "-t", "10.0.0.1:80", "-M", "bad.mask"}, "illegal virtual server persistent mask specified\n", 2},
		{[]string{"-A", "-t", "[::1]:80", "-M", "129"}, "illegal ipv6 netmask specified\n", 2},
		{[]string{"-A", "-t", "[::1]:80", "-M", "ffff::"}, "illegal ipv6 netmask specified\n", 2},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-w", "65536"}, "illegal weight specified\n", 2},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-w", "-1"}, "illegal weight specified\n", 2},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-w", "1x"}, "illegal weight specified\n", 2},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-w", ""}, "illegal weight specified\n", 2},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-x", "2147483648"}, "illegal u_threshold specified\n", 2},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-y", "x"}, "illegal l_threshold specified\n", 2},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "80"}, "illegal real server address[:port] specified\n", 2},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-g", "-m"}, "multiple 'forwarding-method' options specified\n", 2},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-w", "1", "-w", "2"}, "multiple 'weight' options specified\n", 2},
		{[]string{"--start-daemon", "master", "--syncid", "256"}, "illegal syncid specified\n", 2},
		{[]string{"--start-daemon", "master", "--mcast-port", "0"}, "illegal mcast-port specified\n", 2},
		{[]string{"--start-daemon", "master", "--mcast-ttl", "256"}, "illegal mcast-ttl specified\n", 2},
		{[]string{"--start-daemon", "master", "--sync-maxlen", "65508"}, "illegal sync-maxlen specified\n", 2},
		{[]string{"--start-daemon", "master", "--mcast-group", "10.0.0.1"}, "invalid IPv4 mcast-group `10.0.0.1'\n", 2},
		{[]string{"--start-daemon", "master", "--mcast-group", "2001:db8::1"}, "invalid IPv6 mcast-group `2001:db8::1'\n", 2},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "--tun-type", "vxlan"}, "illegal tunnel type specified\n", 2},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "--tun-port", "0"}, "illegal tunnel port specified\n", 2},
		{[]string{"--set", "1", "2"}, "--set option requires 3 timeout values\n", 2},
		{[]string{"--set", "1", "2", "x"}, "invalid timeout value `x' specified\n", 2},
		{[]string{"--set", "1", "2", "3", "4"}, "unexpected argument 4\n", 2},
		{[]string{"-A", "-t", "10.0.0.1:80", "-b", "sh-port"}, "incompatible scheduler flag `sh-port'\n", 2},
		{[]string{"-A", "-t", "10.0.0.1:80", "-s", "sh", "-b", "sh-port,mh-port"}, "incompatible scheduler flag `mh-port'\n", 2},
		{[]string{"-A", "-t", "10.0.0.1:80", "-b", "flag-4"}, "invalid scheduler flag `flag-4'\n", 2},
		// generic_opt_check, in table order.
		{[]string{"-A"}, "You need to supply the 'service-address' option for the 'add-service' command\n", 2},
		{[]string{"-a", "-t", "10.0.0.1:80"}, "You need to supply the 'real-server' option for the 'add-server' command\n", 2},
		{[]string{"-A", "-t", "10.0.0.1:80", "-n"}, "Illegal 'numeric' option with the 'add-service' command\n", 2},
		{[]string{"-A", "-t", "10.0.0.1:80", "-w", "1"}, "Illegal 'weight' option with the 'add-service' command\n", 2},
		{[]string{"-D", "-t", "10.0.0.1:80", "-s", "rr"}, "Illegal 'scheduler' option with the 'delete-service' command\n", 2},
		{[]string{"-C", "-t", "10.0.0.1:80"}, "Illegal 'service-address' option with the 'flush' command\n", 2},
		{[]string{"-L", "-c", "-t", "10.0.0.1:80"}, "The option 'service-address' conflicts with the 'connection' option in the 'list' command\n", 2},
		{[]string{"-L", "--timeout", "--daemon"}, "The option 'daemon' conflicts with the 'timeout' option in the 'list' command\n", 2},
		{[]string{"-L", "-c", "--stats"}, "options conflicts in the list command\n", 2},
		{[]string{"-L", "--daemon", "--persistent-conn"}, "options conflicts in the list command\n", 2},
		{[]string{"-S", "--stats"}, "Illegal 'stats' option with the 'save' command\n", 2},
		{[]string{"-R", "-n"}, "Illegal 'numeric' option with the 'restore' command\n", 2},
		{[]string{"-Z", "-n"}, "Illegal 'numeric' option with the 'zero' command\n", 2},
		{[]string{"--set", "1", "2", "3", "-n"}, "Illegal 'numeric' option with the 'set' command\n", 2},
		{[]string{"-d", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-w", "2"}, "Illegal 'weight' option with the 'delete-server' command\n", 2},
		{[]string{"--stop-daemon", "master", "--mcast-interface", "eth0"}, "Illegal 'mcast-interface' option with the 'stop-daemon' command\n", 2},
		{[]string{"-L", "-s", "rr"}, "Illegal 'scheduler' option with the 'list' command\n", 2},
		// process_options.
		{[]string{"-A", "-t", "10.0.0.1"}, "Zero port specified for non-persistent service\n", 2},
		{[]string{"-A", "-t", "10.0.0.1:80", "-o"}, "One-Packet Scheduling is only for UDP virtual services\n", 2},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "[2001:db8::2]:80"}, "Different address family is allowed only for tunneling servers\n", 2},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-m", "--tun-type", "gre"}, "Tunnel options conflict with forward method\n", 2},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-i", "--tun-type", "gue"}, "You need to supply the 'tun-port' option for the 'gue' tunnel type\n", 2},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-i", "--tun-port", "1"}, "Illegal 'tun-port' option with the 'ipip' tunnel type\n", 2},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-i", "--tun-type", "gre", "--tun-remcsum"}, "Illegal 'tun-remcsum' option with the 'gre' tunnel type\n", 2},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-i", "--tun-type", "gue", "--tun-port", "1", "--tun-csum", "--tun-nocsum"},
			"The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel type\n", 2},
		// Extensions are unknown under the name ipvsadm.
		{[]string{"-L", "--socket", "/tmp/x"}, "--socket: unknown option\n", 255},
	} {
		_, err := parse(t, tc.args...)
		var ee *ipvsadm.ExitError
		if !errors.As(err, &ee) {
			t.Errorf("%q: got %v, want exit %d %q", tc.args, err, tc.code, tc.msg)
			continue
		}
		if ee.Msg != tc.msg || ee.Code != tc.code {
			t.Errorf("%q:\n got %d %q\nwant %d %q", tc.args, ee.Code, ee.Msg, tc.code, tc.msg)
		}
	}
}

func TestMainMessages(t *testing.T) {
	// Parse errors go to stderr with ipvsadm's exit code, naming argv[0].
	res := run(t, apitest.New(), nil, "", "/usr/sbin/ipvsadm", "--bogus")
	if res.code != 255 || res.stderr != "Try `/usr/sbin/ipvsadm -h' or '/usr/sbin/ipvsadm --help' for more information.\n" {
		t.Errorf("%+v", res)
	}
	res = run(t, apitest.New(), nil, "", "ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-w", "x")
	if res.code != 2 || res.stderr != "illegal weight specified\n" || res.stdout != "" {
		t.Errorf("%+v", res)
	}
	res = run(t, apitest.New(), nil, "", "ipvsadm", "-v")
	if res.code != 0 || res.stdout != "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n" {
		t.Errorf("-v: %+v", res)
	}
	res = run(t, apitest.New(), nil, "", "ipvsadm", "-h")
	if res.code != 0 || !strings.HasPrefix(res.stdout, "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\nUsage:\n  ipvsadm -A|E virtual-service") ||
		strings.Contains(res.stdout, "--json") {
		t.Errorf("-h: %+v", res)
	}
	if res := run(t, apitest.New(), nil, "", "govsadm", "--help"); !strings.Contains(res.stdout, "--json") {
		t.Errorf("govsadm --help lacks the extensions")
	}
	f := apitest.New()
	f.Fail("Info", errors.New("dial unix /run/govs/govsd.sock: connect: no such file or directory"))
	res = run(t, f, nil, "", "govsadm", "-L")
	want := "govsadm: cannot reach govsd at /run/govs/govsd.sock: dial unix /run/govs/govsd.sock: connect: no such file or directory\n" +
		"Start it with: govsd (or set GOVS_SOCKET)\n"
	if res.code != 2 || res.stderr != want {
		t.Errorf("unreachable: %+v", res)
	}
}

// TestExecErrors maps the director's sentinels to libipvs's messages,
// which depend on the command, and exits 255 as ipvsadm does.
func TestExecErrors(t *testing.T) {
	f := realDirector(t)
	for _, tc := range []struct {
		args []string
		msg  string
		code int
	}{
		{[]string{"-A", "-t", "10.0.0.1:80"}, "", 0},
		{[]string{"-A", "-t", "10.0.0.1:80"}, "Service already exists\n", 255},
		{[]string{"-A", "-t", "10.0.0.2:80", "-s", "nosuch"}, "Scheduler or persistence engine not found\n", 255},
		{[]string{"-E", "-t", "10.0.0.2:80"}, "No such service\n", 255},
		{[]string{"-E", "-t", "10.0.0.1:80", "-s", "nosuch"}, "Scheduler or persistence engine not found\n", 255},
		{[]string{"-D", "-t", "10.0.0.2:80"}, "No such service\n", 255},
		{[]string{"-Z", "-t", "10.0.0.2:80"}, "No such service\n", 255},
		{[]string{"-a", "-t", "10.0.0.2:80", "-r", "10.0.0.9"}, "Service not defined\n", 255},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.9"}, "", 0},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.9"}, "Destination already exists\n", 255},
		{[]string{"-e", "-t", "10.0.0.2:80", "-r", "10.0.0.9"}, "Service not defined\n", 255},
		{[]string{"-e", "-t", "10.0.0.1:80", "-r", "10.0.0.8"}, "No such destination\n", 255},
		{[]string{"-d", "-t", "10.0.0.1:80", "-r", "10.0.0.8"}, "No such destination\n", 255},
		{[]string{"-d", "-t", "10.0.0.2:80", "-r", "10.0.0.8"}, "Service not defined\n", 255},
		{[]string{"-A", "-t", "10.0.0.3:80", "--pe", "sip"}, "Invalid operation.  Possibly wrong module version, address not unicast, ...\n", 255},
		{[]string{"-d", "-t", "10.0.0.1:80", "-r", "10.0.0.9"}, "", 0},
		{[]string{"-Z"}, "", 0},
		{[]string{"-C"}, "", 0},
		{[]string{"-D", "-t", "10.0.0.1:80"}, "No such service\n", 255},
	} {
		res := run(t, f, nil, "", append([]string{"ipvsadm"}, tc.args...)...)
		if res.stderr != tc.msg || res.code != tc.code {
			t.Errorf("%q:\n got %d %q\nwant %d %q", tc.args, res.code, res.stderr, tc.code, tc.msg)
		}
	}
	// The daemon's sentinels, from a fake (sync is the HA issue's).
	if res := run(t, apitest.New(), nil, "", "ipvsadm", "--stop-daemon", "master"); res.code != 255 || res.stderr != "No daemon is running\n" {
		t.Errorf("--stop-daemon with none running: %+v", res)
	}
	// govsadm explains what ipvsadm's EINVAL message does not.
	res := run(t, f, nil, "", "govsadm", "-A", "-t", "10.0.0.3:80", "--pe", "sip")
	if !strings.HasPrefix(res.stderr, "Invalid operation.  Possibly wrong module version, address not unicast, ...\ngovsadm: ") {
		t.Errorf("govsadm detail: %q", res.stderr)
	}
}

func TestStrerrorGeneric(t *testing.T) {
	// An errno no table entry names prints strerror's words.
	if msg, _ := ipvsadm.Strerror(ipvsadm.CmdAdd, ipvs.ErrNoService); msg != "No such process" {
		t.Errorf("got %q", msg)
	}
	if msg, _ := ipvsadm.Strerror(ipvsadm.CmdDel, ipvs.ErrDestExists); msg != "File exists" {
		t.Errorf("got %q", msg)
	}
}
