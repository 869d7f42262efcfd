package ipvsadm_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/govs/govs/internal/api/apitest"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/ipvsadm"
)

// parseGovsadm parses as govsadm does: with the extensions.
func parseGovsadm(args ...string) (*ipvsadm.Command, error) {
	p := &ipvsadm.Parser{Prog: "govsadm", Resolver: newFakeResolver()}
	return p.Parse(context.Background(), args)
}

func TestParseProxyProtocol(t *testing.T) {
	rs := netip.MustParseAddr("10.0.0.2")
	for _, tc := range []struct {
		args []string
		cmd  ipvsadm.Cmd
		want ipvs.Destination
	}{
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2:8080", "-m", "--proxy-protocol", "1"}, ipvsadm.CmdAddDest,
			ipvs.Destination{Addr: rs, Port: 8080, Fwd: ipvs.Masq, Weight: 1, ProxyProtocol: 1}},
		{[]string{"-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2:8080", "-m", "--proxy-protocol=2", "-w", "3"}, ipvsadm.CmdAddDest,
			ipvs.Destination{Addr: rs, Port: 8080, Fwd: ipvs.Masq, Weight: 3, ProxyProtocol: 2}},
		{[]string{"-e", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-m", "--proxy-protocol", "v1"}, ipvsadm.CmdEditDest,
			ipvs.Destination{Addr: rs, Port: 80, Fwd: ipvs.Masq, Weight: 1, ProxyProtocol: 1}},
		{[]string{"--edit-server", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-m", "--proxy-protocol", "V2"}, ipvsadm.CmdEditDest,
			ipvs.Destination{Addr: rs, Port: 80, Fwd: ipvs.Masq, Weight: 1, ProxyProtocol: 2}},
		// Version 2 has a datagram form.
		{[]string{"-a", "-u", "10.0.0.1:53", "-r", "10.0.0.2", "-m", "--proxy-protocol", "2"}, ipvsadm.CmdAddDest,
			ipvs.Destination{Addr: rs, Port: 53, Fwd: ipvs.Masq, Weight: 1, ProxyProtocol: 2}},
		{[]string{"-a", "-f", "7", "-r", "10.0.0.2", "--proxy-protocol", "2"}, ipvsadm.CmdAddDest,
			ipvs.Destination{Addr: rs, Fwd: ipvs.Route, Weight: 1, ProxyProtocol: 2}},
		// Without the option: none, as ipvsadm's -e resets every attribute.
		{[]string{"-e", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-m"}, ipvsadm.CmdEditDest,
			ipvs.Destination{Addr: rs, Port: 80, Fwd: ipvs.Masq, Weight: 1}},
	} {
		c, err := parseGovsadm(tc.args...)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if c.Cmd != tc.cmd || c.Dest != tc.want || !c.Opts.Has(ipvsadm.OptProxyProtocol) != (tc.want.ProxyProtocol == 0) {
			t.Errorf("%q:\n got %s %+v\nwant %s %+v", tc.args, c.Cmd, c.Dest, tc.cmd, tc.want)
		}
		if tc.want.ProxyProtocol != 0 && !strings.Contains(c.String(), " proxy-protocol=") {
			t.Errorf("%q: String() = %q lacks the version", tc.args, c.String())
		}
	}
}

func TestParseProxyProtocolErrors(t *testing.T) {
	const dst = "-a -t 10.0.0.1:80 -r 10.0.0.2 -m "
	for _, tc := range []struct {
		line string
		msg  string
		code int
	}{
		{dst + "--proxy-protocol 0", "illegal proxy-protocol `0' specified: use 1 or 2 (v1 or v2)\n", 2},
		{dst + "--proxy-protocol 3", "illegal proxy-protocol `3' specified: use 1 or 2 (v1 or v2)\n", 2},
		{dst + "--proxy-protocol v3", "illegal proxy-protocol `v3' specified: use 1 or 2 (v1 or v2)\n", 2},
		{dst + "--proxy-protocol=", "illegal proxy-protocol `' specified: use 1 or 2 (v1 or v2)\n", 2},
		{dst + "--proxy-protocol", "--proxy-protocol: missing argument\n", 255},
		{dst + "--proxy-protocol 1 --proxy-protocol 2", "multiple 'proxy-protocol' options specified\n", 2},
		{"-a -u 10.0.0.1:53 -r 10.0.0.2 -m --proxy-protocol 1", "PROXY protocol version 1 is only for TCP virtual services: use --proxy-protocol 2\n", 2},
		{"-a --sctp-service 10.0.0.1:9 -r 10.0.0.2 -m --proxy-protocol v1", "PROXY protocol version 1 is only for TCP virtual services: use --proxy-protocol 2\n", 2},
		{"-a -f 7 -r 10.0.0.2 -m --proxy-protocol 1", "PROXY protocol version 1 is only for TCP virtual services: use --proxy-protocol 2\n", 2},
		// A destination's option, and only for -a and -e.
		{"-A -t 10.0.0.1:80 --proxy-protocol 2", "Illegal 'proxy-protocol' option with the 'add-service' command\n", 2},
		{"-E -t 10.0.0.1:80 --proxy-protocol 2", "Illegal 'proxy-protocol' option with the 'edit-service' command\n", 2},
		{"-d -t 10.0.0.1:80 -r 10.0.0.2 --proxy-protocol 2", "Illegal 'proxy-protocol' option with the 'delete-server' command\n", 2},
		{"-L -n --proxy-protocol 2", "Illegal 'proxy-protocol' option with the 'list' command\n", 2},
		{"-S --proxy-protocol 2", "Illegal 'proxy-protocol' option with the 'save' command\n", 2},
	} {
		_, err := parseGovsadm(strings.Fields(tc.line)...)
		var ee *ipvsadm.ExitError
		if !errors.As(err, &ee) || ee.Msg != tc.msg || ee.Code != tc.code {
			t.Errorf("%s:\n got %v\nwant %d %q", tc.line, err, tc.code, tc.msg)
		}
	}
}

// TestParseProxyProtocolIpvsadm: under the name ipvsadm the option does
// not exist, as in ipvsadm 1.31, wherever it is written.
func TestParseProxyProtocolIpvsadm(t *testing.T) {
	for _, line := range []string{
		"-a -t 10.0.0.1:80 -r 10.0.0.2 -m --proxy-protocol 2",
		"-e -t 10.0.0.1:80 -r 10.0.0.2 -m --proxy-protocol=1",
		"-A -t 10.0.0.1:80 --proxy-protocol 2",
	} {
		_, err := parse(t, strings.Fields(line)...)
		var ee *ipvsadm.ExitError
		if !errors.As(err, &ee) || ee.Code != 255 || !strings.HasPrefix(ee.Msg, "--proxy-protocol") || !strings.HasSuffix(ee.Msg, ": unknown option\n") {
			t.Errorf("ipvsadm %s: got %v, want popt's unknown option", line, err)
		}
	}
	res := run(t, apitest.New(), nil, "", "ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-m", "--proxy-protocol", "2")
	if res.code != 255 || res.stderr != "--proxy-protocol: unknown option\n" {
		t.Errorf("ipvsadm --proxy-protocol: %+v", res)
	}
	if res := run(t, apitest.New(), nil, "", "ipvsadm", "-h"); strings.Contains(res.stdout, "proxy-protocol") {
		t.Errorf("ipvsadm -h mentions --proxy-protocol")
	}
	if res := run(t, apitest.New(), nil, "", "govsadm", "-h"); !strings.Contains(res.stdout, "--proxy-protocol 1|2") {
		t.Errorf("govsadm -h lacks --proxy-protocol")
	}
}

// ppFixture is a table with PROXY protocol destinations; pp false gives
// the same table without them.
func ppFixture(pp bool) *apitest.Director {
	f := fixture()
	v := func(x uint8) uint8 {
		if pp {
			return x
		}
		return 0
	}
	f.Put(ipvs.ServiceState{
		Service: ipvs.Service{ServiceKey: ipvs.TCPService(ap("10.0.0.5:443")), Scheduler: "rr", Netmask: 32},
		Dests: []ipvs.DestState{
			{Destination: ipvs.Destination{Addr: netip.MustParseAddr("10.5.0.1"), Port: 8443, Fwd: ipvs.Masq, Weight: 2, ProxyProtocol: v(2)}},
			{Destination: ipvs.Destination{Addr: netip.MustParseAddr("10.5.0.2"), Port: 8443, Fwd: ipvs.Masq, Weight: 1, Upper: 10, ProxyProtocol: v(1)}},
			{Destination: ipvs.Destination{Addr: netip.MustParseAddr("10.5.0.3"), Port: 443, Fwd: ipvs.Masq, Weight: 1}},
		},
	})
	f.Put(ipvs.ServiceState{
		Service: ipvs.Service{ServiceKey: ipvs.UDPService(ap("10.0.0.5:53")), Scheduler: "rr", Netmask: 32},
		Dests: []ipvs.DestState{
			{Destination: ipvs.Destination{Addr: netip.MustParseAddr("10.5.0.1"), Port: 5353, Fwd: ipvs.Masq, Weight: 1, ProxyProtocol: v(2)}},
		},
	})
	return f
}

// TestSaveProxyProtocol: -S writes --proxy-protocol on the destinations
// that have it and nowhere else, govsadm -R reads it back, and the
// listings (ipvsadm's formats) do not change.
func TestSaveProxyProtocol(t *testing.T) {
	want := golden(`
		-A -t 10.0.0.5:443 -s rr$
		-a -t 10.0.0.5:443 -r 10.5.0.1:8443 -m -w 2 --proxy-protocol 2$
		-a -t 10.0.0.5:443 -r 10.5.0.2:8443 -m -w 1 --proxy-protocol 1$
		-a -t 10.0.0.5:443 -r 10.5.0.3:443 -m -w 1$
		-A -u 10.0.0.5:53 -s rr$
		-a -u 10.0.0.5:53 -r 10.5.0.1:5353 -m -w 1 --proxy-protocol 2$
	`)
	saved := run(t, ppFixture(true), nil, "", "govsadm", "-S", "-n")
	if saved.code != 0 || saved.stderr != "" {
		t.Fatalf("save: %+v", saved)
	}
	var pp, rest strings.Builder
	for _, line := range strings.SplitAfter(saved.stdout, "\n") {
		if strings.Contains(line, " 10.0.0.5:") {
			pp.WriteString(line)
		} else {
			rest.WriteString(line)
		}
	}
	diff(t, "-S -n", pp.String(), want)
	// The rest of the table saves exactly as ipvsadm saves it.
	diff(t, "-S -n, the rest", rest.String(), wantSave)

	// The save is the same under either name: the setting is never lost.
	diff(t, "ipvsadm -S -n", run(t, ppFixture(true), nil, "", "ipvsadm", "-S", "-n").stdout, saved.stdout)

	// Round trip through govsadm -R.
	f := apitest.New()
	if res := run(t, f, nil, saved.stdout, "govsadm", "-R"); res.code != 0 || res.stderr != "" {
		t.Fatalf("govsadm -R: %+v", res)
	}
	diff(t, "save after restore", run(t, f, nil, "", "govsadm", "-S", "-n").stdout, saved.stdout)
	svcs, err := f.Services(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint8{}
	for _, s := range svcs {
		for _, d := range s.Dests {
			got[s.ServiceKey.String()+" "+d.AddrPort().String()] = d.ProxyProtocol
		}
	}
	for k, v := range map[string]uint8{
		"tcp 10.0.0.5:443 10.5.0.1:8443": 2, "tcp 10.0.0.5:443 10.5.0.2:8443": 1, "tcp 10.0.0.5:443 10.5.0.3:443": 0,
		"udp 10.0.0.5:53 10.5.0.1:5353": 2, "tcp 192.168.1.110:80 192.168.1.11:80": 0,
	} {
		if got[k] != v {
			t.Errorf("restored %s: proxy_protocol %d, want %d", k, got[k], v)
		}
	}

	// ipvsadm -R does not know the option: it stops there, loudly,
	// rather than restoring the destination without its header.
	res := run(t, apitest.New(), nil, saved.stdout, "ipvsadm", "-R")
	if res.code != 255 || res.stderr != "--proxy-protocol: unknown option\n" {
		t.Errorf("ipvsadm -R of a --proxy-protocol line: %+v", res)
	}
}

// TestListProxyProtocol: every text listing is ipvsadm's and ignores the
// setting; --json carries it, only where it is set.
func TestListProxyProtocol(t *testing.T) {
	for _, args := range [][]string{
		{"-L", "-n"}, {"-L", "-n", "--stats"}, {"-L", "-n", "--rate"}, {"-L", "-n", "--thresholds"},
		{"-L", "-n", "--persistent-conn"}, {"-L", "-n", "--tun-info"}, {"-L", "-n", "-t", "10.0.0.5:443"},
	} {
		argv := append([]string{"govsadm"}, args...)
		with, without := run(t, ppFixture(true), nil, "", argv...), run(t, ppFixture(false), nil, "", argv...)
		if with.code != 0 || with.stderr != "" {
			t.Fatalf("%v: %+v", args, with)
		}
		diff(t, strings.Join(args, " "), with.stdout, without.stdout)
	}

	res := run(t, ppFixture(true), nil, "", "govsadm", "-L", "--json", "-t", "10.0.0.5:443")
	if res.code != 0 {
		t.Fatalf("--json: %+v", res)
	}
	var l struct {
		Dests []map[string]any `json:"dests"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &l); err != nil {
		t.Fatalf("decode: %v\n%s", err, res.stdout)
	}
	got := map[string]any{}
	for _, d := range l.Dests {
		got[d["addr"].(string)] = d["proxy_protocol"]
	}
	if got["10.5.0.1"] != 2.0 || got["10.5.0.2"] != 1.0 || got["10.5.0.3"] != nil || len(got) != 3 {
		t.Errorf("--json proxy_protocol by destination = %v, want 10.5.0.1: 2, 10.5.0.2: 1, 10.5.0.3 absent", got)
	}
}

// TestProxyProtocolDirector: the real director (the engine's rules)
// stores the setting govsadm sends, -e changes it, and a version the
// model refuses is reported with ipvsadm's EINVAL message and govsadm's
// detail.
func TestProxyProtocolDirector(t *testing.T) {
	d := realDirector(t)
	for _, line := range []string{
		"-A -t 10.0.0.1:80 -s rr",
		"-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m --proxy-protocol 1",
		"-a -t 10.0.0.1:80 -r 10.0.0.3:8080 -m",
		"-e -t 10.0.0.1:80 -r 10.0.0.3:8080 -m -w 4 --proxy-protocol v2",
		"-A -u 10.0.0.1:53 -s rr",
		"-a -u 10.0.0.1:53 -r 10.0.0.2 -m --proxy-protocol 2",
	} {
		if res := run(t, d, nil, "", append([]string{"govsadm"}, strings.Fields(line)...)...); res.code != 0 || res.stderr != "" {
			t.Fatalf("govsadm %s: %+v", line, res)
		}
	}
	want := golden(`
		-A -t 10.0.0.1:80 -s rr$
		-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m -w 1 --proxy-protocol 1$
		-a -t 10.0.0.1:80 -r 10.0.0.3:8080 -m -w 4 --proxy-protocol 2$
		-A -u 10.0.0.1:53 -s rr$
		-a -u 10.0.0.1:53 -r 10.0.0.2:53 -m -w 1 --proxy-protocol 2$
	`)
	diff(t, "-S -n", run(t, d, nil, "", "govsadm", "-S", "-n").stdout, want)

	// -e without the option turns it off, as -e resets every attribute.
	run(t, d, nil, "", "govsadm", "-e", "-t", "10.0.0.1:80", "-r", "10.0.0.2:8080", "-m")
	if out := run(t, d, nil, "", "govsadm", "-S", "-n").stdout; !strings.Contains(out, "-r 10.0.0.2:8080 -m -w 1\n") {
		t.Errorf("-e without --proxy-protocol kept it:\n%s", out)
	}
}
