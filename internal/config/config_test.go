package config

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/govs/govs/internal/ipvs"
)

func parseString(t *testing.T, in string) (*Config, []Warning, error) {
	t.Helper()
	return Parse("keepalived.conf", strings.NewReader(in))
}

// TestParseErrors: snippets and the error (file:line) or warning they give.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		input    string
		wantErr  string // substring of the joined error, "" for none
		wantWarn string // substring of some warning, "" for none checked
	}{
		{"unknown keyword warns", "global_defs {\n foo bar\n}\n", "", "keepalived.conf:2: Unknown keyword 'foo'"},
		{"unknown top block warns", "frobnicate {\n x\n}\n", "", "keepalived.conf:1: Unknown keyword 'frobnicate'"},
		{"unsupported keyword warns", "global_defs {\n enable_snmp_vrrp\n}\n", "", "keepalived.conf:2: 'enable_snmp_vrrp' is not supported by govs"},
		{"missing close brace", "global_defs {\n router_id x\n", "keepalived.conf:1: missing '}'", ""},
		{"extra close brace", "global_defs {\n}\n}\n", "keepalived.conf:3: extra '}'", ""},
		{"unterminated quote", "global_defs {\n router_id \"x\n}\n", "keepalived.conf:2: unterminated quote", ""},
		{"bad vs address", "virtual_server 1.2.3 80 {\n}\n", "keepalived.conf:1: virtual_server: invalid IP address '1.2.3'", ""},
		{"bad lb_kind", "virtual_server 10.0.0.1 80 {\n lb_kind FOO\n real_server 10.0.0.2 80 {\n }\n}\n", "keepalived.conf:2: lb_kind: unknown forwarding method 'FOO'", ""},
		{"bad weight", "virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 {\n  weight -1\n }\n}\n", "keepalived.conf:4: weight: invalid number '-1'", ""},
		{"gue needs port", "virtual_server 10.0.0.1 80 {\n lvs_method TUN type gue\n}\n", "keepalived.conf:2: lvs_method: a GUE tunnel needs 'port N'", ""},
		{"no protocol warns UDP", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n }\n}\n", "", "no protocol set - defaulting to UDP"},
		{"no vrid", "vrrp_instance VI_1 {\n interface eth0\n}\n", "keepalived.conf:1: vrrp_instance VI_1 needs virtual_router_id", ""},
		{"bad state", "vrrp_instance VI_1 {\n state LEADER\n virtual_router_id 1\n interface eth0\n}\n", "keepalived.conf:2: state: unknown state 'LEADER'", ""},
		{"long auth_pass", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n authentication {\n  auth_type PASS\n  auth_pass 123456789\n }\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n", "", "keepalived.conf:6: auth_pass is longer than 8 characters"},
		{"duplicate vrid", "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n}\nvrrp_instance B {\n interface eth0\n virtual_router_id 1\n}\n", "keepalived.conf:5: vrrp_instance B: virtual_router_id 1 is already used by A", ""},
		{"unknown group", "virtual_server group nope {\n protocol TCP\n real_server 10.0.0.2 80 {\n }\n}\n", "keepalived.conf:1: virtual_server group nope: no virtual_server_group nope", ""},
		{"extra args on one line", "virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 {\n  TCP_CHECK { connect_timeout 10 nb_get_retry 3 }\n }\n}\n", "", "keepalived.conf:4: 'connect_timeout': extra arguments \"nb_get_retry 3\" ignored"},
		{"seq unsupported", "~SEQ(i, 1, 3) x\n", "keepalived.conf:1: ~SEQ blocks are not supported", ""},
		{"http needs url", "virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 {\n  HTTP_GET {\n  }\n }\n}\n", "keepalived.conf:4: HTTP_GET needs at least one url", ""},
		{"bad digest", "virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 {\n  HTTP_GET {\n   url {\n    path /\n    digest xyz\n   }\n  }\n }\n}\n", "keepalived.conf:7: digest: 'xyz' is not an MD5 digest", ""},
		{"all errors reported", "virtual_server 1.2.3 80 {\n}\nvrrp_instance X {\n}\n", "keepalived.conf:3: vrrp_instance X needs virtual_router_id", ""},
		{"nested virtual_server hoisted", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress { 10.0.0.1 }\n virtual_server 10.0.0.1 80 {\n  protocol TCP\n  real_server 10.0.0.2 80 {\n  }\n }\n}\n", "", "keepalived.conf:5: virtual_server inside vrrp_instance VI_1"},
		{"port mismatch DR resets", "virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_kind DR\n real_server 10.0.0.2 8080 {\n }\n}\n", "", "keepalived.conf:4: virtual_server 10.0.0.1 80 and real server 10.0.0.2 ports don't match"},
		{"quorum reduced", "virtual_server 10.0.0.1 80 {\n protocol TCP\n quorum 5\n real_server 10.0.0.2 80 {\n }\n}\n", "", "quorum 5 exceeds total weight of real servers 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, warns, err := parseString(t, tc.input)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("want error %q, got none", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("error %q does not contain %q", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			if tc.wantWarn != "" {
				var all []string
				for _, w := range warns {
					all = append(all, w.String())
				}
				if !strings.Contains(strings.Join(all, "\n"), tc.wantWarn) {
					t.Fatalf("no warning contains %q; got:\n%s", tc.wantWarn, strings.Join(all, "\n"))
				}
			}
		})
	}
}

// TestDefaults: the typed result of small snippets.
func TestDefaults(t *testing.T) {
	cfg, _, err := parseString(t, `
virtual_server 10.0.0.1 80 {
    protocol TCP
    real_server 10.0.0.2 80 {
        TCP_CHECK {
        }
        HTTP_GET {
            url {
                path /
            }
        }
        DNS_CHECK {
        }
        MISC_CHECK {
            misc_path "/bin/true arg"
        }
    }
}
vrrp_script s {
    script /bin/true
}
vrrp_instance VI {
    interface eth0
    virtual_router_id 9
    virtual_ipaddress {
        10.0.0.1/24 dev eth1 label eth1:0
    }
}
`)
	if err != nil {
		t.Fatal(err)
	}
	vs := cfg.VirtualServers[0]
	if vs.Scheduler != "wlc" || vs.Forwarding.Method != ipvs.Masq || vs.Quorum != 1 || vs.Timing.DelayLoop != 60*time.Second {
		t.Errorf("vs defaults: sched %q fwd %v quorum %d delay_loop %v", vs.Scheduler, vs.Forwarding.Method, vs.Quorum, vs.Timing.DelayLoop)
	}
	rs := vs.RealServers[0]
	if rs.Weight != 1 || !rs.SMTPAlert {
		t.Errorf("rs defaults: weight %d smtp %v", rs.Weight, rs.SMTPAlert)
	}
	want := []struct {
		kind  CheckerKind
		retry int
		dbr   time.Duration
	}{{TCPCheck, 1, time.Second}, {HTTPGet, 1, 3 * time.Second}, {DNSCheck, 3, 60 * time.Second}, {MiscCheck, 0, time.Second}}
	for i, w := range want {
		c := rs.Checkers[i]
		if c.Kind != w.kind || c.Timing.Retry != w.retry || c.Timing.DelayBeforeRetry != w.dbr ||
			c.Timing.ConnectTimeout != 5*time.Second || c.Timing.Warmup != 60*time.Second {
			t.Errorf("checker %d: got %s %+v, want retry %d delay_before_retry %v", i, c.Kind, c.Timing, w.retry, w.dbr)
		}
	}
	if u := rs.Checkers[1].HTTP.URLs[0]; len(u.StatusCodes) != 1 || u.StatusCodes[0] != (StatusRange{200, 299}) {
		t.Errorf("status codes default: %+v", u.StatusCodes)
	}
	if d := rs.Checkers[2].DNS; d.Type != "SOA" || d.Name != "." {
		t.Errorf("dns defaults: %+v", d)
	}
	if m := rs.Checkers[3].Misc; m.Path != "/bin/true arg" || m.Timeout != 60*time.Second {
		t.Errorf("misc: %+v", m)
	}
	s := cfg.VRRPScripts[0]
	if s.Interval != time.Second || s.Timeout != time.Second || s.Rise != 1 || s.Fall != 1 || s.Weight != 0 {
		t.Errorf("vrrp_script defaults: %+v", s)
	}
	in := cfg.VRRPInstances[0]
	if in.State != "BACKUP" || in.Priority != 100 || in.AdvertInt != time.Second || !in.Preempt || in.Version != 2 ||
		in.Garp.MasterDelay != 5*time.Second || in.Garp.MasterRepeat != 5 {
		t.Errorf("vrrp_instance defaults: %+v", in)
	}
	a := in.VirtualIPAddresses[0]
	if a.Prefix != netip.MustParsePrefix("10.0.0.1/24") || a.Dev != "eth1" || a.Label != "eth1:0" {
		t.Errorf("vip: %+v", a)
	}
}

// TestGrammar: comments, quotes, conditionals, parameters, braces.
func TestGrammar(t *testing.T) {
	in := `
$PRIO=150   # a parameter
@main $ID=7
@^main $ID=8
$VIPS= \
  10.0.0.1 \
  10.0.0.2
vrrp_instance "VI 1" { ! comment
    interface eth0 # comment
    virtual_router_id ${ID}
    priority $PRIO
    virtual_ipaddress {
        $VIPS
    }
    notify_master "/bin/echo # not a comment"
}
`
	for _, tc := range []struct {
		id   string
		vrid uint8
	}{{"main", 7}, {"", 8}} {
		cfg, _, err := Parse("k.conf", strings.NewReader(in), WithConfigID(tc.id))
		if err != nil {
			t.Fatal(err)
		}
		v := cfg.VRRPInstances[0]
		if v.Name != "VI 1" || v.VirtualRouterID != tc.vrid || v.Priority != 150 || len(v.VirtualIPAddresses) != 2 ||
			v.Notify.Master.Command != "/bin/echo # not a comment" {
			t.Errorf("id %q: %+v", tc.id, v)
		}
	}
}

func TestIncludeGlob(t *testing.T) {
	fsys := fstest.MapFS{
		"etc/keepalived/keepalived.conf":   {Data: []byte("global_defs {\n router_id A\n}\ninclude conf.d/*.conf\ninclude /etc/keepalived/none/*.conf\n")},
		"etc/keepalived/conf.d/10-vs.conf": {Data: []byte("virtual_server 10.0.0.1 80 {\n protocol TCP\n include rs/*.conf\n}\n")},
		"etc/keepalived/conf.d/rs/a.conf":  {Data: []byte("real_server 10.0.0.2 80 {\n}\n")},
		"etc/keepalived/conf.d/rs/b.conf":  {Data: []byte("real_server 10.0.0.3 80 {\n weight x\n}\n")},
	}
	_, warns, err := Load("/etc/keepalived/keepalived.conf", WithFS(fsys))
	if err == nil || !strings.Contains(err.Error(), "/etc/keepalived/conf.d/rs/b.conf:2: weight: invalid number 'x'") {
		t.Fatalf("want error in included file, got %v", err)
	}
	found := false
	for _, w := range warns {
		found = found || strings.Contains(w.String(), "/etc/keepalived/keepalived.conf:5: include /etc/keepalived/none/*.conf: no config files matched")
	}
	if !found {
		t.Errorf("no warning for the unmatched include: %v", warns)
	}
	fsys["etc/keepalived/conf.d/rs/b.conf"] = &fstest.MapFile{Data: []byte("real_server 10.0.0.3 80 {\n weight 2\n}\n")}
	cfg, _, err := Load("/etc/keepalived/keepalived.conf", WithFS(fsys))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cfg.VirtualServers[0].RealServers); n != 2 || cfg.Global.RouterID != "A" {
		t.Fatalf("got %d real servers, router_id %q", n, cfg.Global.RouterID)
	}
	// An include loop is an error, not a hang.
	fsys["etc/keepalived/conf.d/loop.conf"] = &fstest.MapFile{Data: []byte("include loop.conf\n")}
	if _, _, err := Load("/etc/keepalived/keepalived.conf", WithFS(fsys)); err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Fatalf("want include loop error, got %v", err)
	}
}

func TestFullConfig(t *testing.T) {
	cfg, warns, err := Load("testdata/keepalived.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warns {
		t.Errorf("unexpected warning: %s", w)
	}
	svcs, err := cfg.IPVS()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range svcs {
		keys = append(keys, s.Service.ServiceKey.String())
	}
	want := "tcp 192.168.0.38:80,tcp 192.168.0.40:443,tcp 192.168.0.41:443,tcp 192.168.0.42:443,fwmark 7"
	if got := strings.Join(keys, ","); got != want {
		t.Fatalf("services %s, want %s", got, want)
	}
	if s := svcs[0].Service; s.Scheduler != "rr" || !s.Persistent || s.Timeout != 50 {
		t.Errorf("service: %+v", s)
	}
	if d := svcs[0].Dests[0]; d.Fwd != ipvs.Route || d.Weight != 1 {
		t.Errorf("dest: %+v", d)
	}
	tcp := cfg.VirtualServers[0].RealServers[0].Checkers[0]
	if tcp.Timing.ConnectTimeout != 10*time.Second || tcp.Timing.Retry != 3 || tcp.ConnectPort != 80 {
		t.Errorf("TCP_CHECK: %+v", tcp)
	}
	if sd := cfg.Global.LVSSyncDaemon; sd == nil || sd.Instance != "VI_1" || sd.SyncID != 51 || sd.Port != 8848 {
		t.Errorf("lvs_sync_daemon: %+v", sd)
	}
	if ws, err := Check("testdata/keepalived.conf"); err != nil || len(ws) != 0 {
		t.Errorf("Check: %v %v", ws, err)
	}
}

// TestSeedExcerpt is the seeds' tutorial excerpt verbatim: virtual_server
// nested in vrrp_instance and TCP_CHECK on one line.
func TestSeedExcerpt(t *testing.T) {
	in := `vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    virtual_ipaddress { 192.168.0.38 }
    virtual_server 192.168.0.38 80 {
        lb_algo rr
        lb_kind DR
        protocol TCP
        real_server 192.168.0.18 80 {
            weight 1
            TCP_CHECK { connect_timeout 10 nb_get_retry 3 }
        }
        real_server 192.168.0.28 80 {
            weight 1
            TCP_CHECK { connect_timeout 10 nb_get_retry 3 }
        }
    }
}
`
	cfg, warns, err := parseString(t, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 3 {
		t.Errorf("want 3 warnings (nesting, 2x one-line TCP_CHECK), got %v", warns)
	}
	svcs, err := cfg.IPVS()
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 1 || len(svcs[0].Dests) != 2 || svcs[0].Service.Scheduler != "rr" {
		t.Fatalf("services: %+v", svcs)
	}
}

func TestIPVSErrors(t *testing.T) {
	cfg, _, err := parseString(t, `virtual_server 10.0.0.1 80 {
    protocol TCP
    lb_kind DR
    real_server 2001:db8::1 80 {
    }
}
virtual_server 10.0.0.1 80 {
    protocol TCP
    real_server 10.0.0.3 80 {
    }
}
`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.IPVS()
	for _, want := range []string{"keepalived.conf:4: real_server 2001:db8::1: destination.addr", "keepalived.conf:7: virtual_server 10.0.0.1 80: service tcp 10.0.0.1:80 is already defined at keepalived.conf:1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %q", err, want)
		}
	}
}

// TestProxyProtocol: govs's proxy_protocol in a real_server becomes the
// destination's ProxyProtocol; a bad version is an error at its line, and
// version 1 for a service that is not TCP is the destination's
// validation error at the real_server's line.
func TestProxyProtocol(t *testing.T) {
	vs := func(proto, body string) string {
		return "virtual_server 10.0.0.1 80 {\n protocol " + proto + "\n lb_kind NAT\n real_server 10.0.0.2 8080 {\n" + body + " }\n}\n"
	}
	tests := []struct {
		name    string
		input   string
		want    uint8
		wantErr string // substring of the error, of Parse or of IPVS
	}{
		{"absent", vs("TCP", ""), 0, ""},
		{"v1", vs("TCP", "  proxy_protocol 1\n"), 1, ""},
		{"v2", vs("TCP", "  proxy_protocol 2\n"), 2, ""},
		{"v-names", vs("TCP", "  proxy_protocol V2\n"), 2, ""},
		{"v2 udp", vs("UDP", "  proxy_protocol v2\n"), 2, ""},
		{"with a checker", vs("TCP", "  proxy_protocol 1\n  TCP_CHECK {\n   connect_timeout 3\n  }\n"), 1, ""},
		{"v1 udp", vs("UDP", "  proxy_protocol 1\n"), 0, "keepalived.conf:4: real_server 10.0.0.2: destination.proxy_protocol 1: PROXY protocol version 1 is for TCP services only and has no UDP form: use version 2"},
		{"zero", vs("TCP", "  proxy_protocol 0\n"), 0, "keepalived.conf:5: proxy_protocol: invalid version '0': use 1 or 2 (v1 or v2)"},
		{"three", vs("TCP", "  proxy_protocol 3\n"), 0, "keepalived.conf:5: proxy_protocol: invalid version '3'"},
		{"no value", vs("TCP", "  proxy_protocol\n"), 0, "keepalived.conf:5: 'proxy_protocol' needs a value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, warns, err := parseString(t, tc.input)
			if len(warns) != 0 {
				t.Errorf("warnings: %v", warns)
			}
			var svcs []ServiceConfig
			if err == nil {
				svcs, err = cfg.IPVS()
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("error %v, want an ErrInvalid containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.VirtualServers[0].RealServers[0].ProxyProtocol; got != tc.want {
				t.Errorf("RealServer.ProxyProtocol = %d, want %d", got, tc.want)
			}
			if len(svcs) != 1 || len(svcs[0].Dests) != 1 || svcs[0].Dests[0].ProxyProtocol != tc.want {
				t.Fatalf("destinations %+v, want ProxyProtocol %d", svcs, tc.want)
			}
		})
	}
}
