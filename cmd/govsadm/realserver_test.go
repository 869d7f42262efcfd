package main

import (
	"bytes"
	"io"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/govs/govs/internal/realserver"
	"github.com/govs/govs/internal/realserver/realservertest"
)

func TestIsRealserver(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want bool
	}{
		{[]string{"govsadm", "realserver", "setup"}, true},
		{[]string{"/usr/local/bin/govsadm", "rs"}, true},
		{[]string{"ipvsadm", "realserver"}, false}, // ipvsadm stays ipvsadm
		{[]string{"/usr/sbin/ipvsadm", "rs", "setup"}, false},
		{[]string{"govsadm", "-Ln"}, false},
		{[]string{"govsadm"}, false},
		{[]string{"govsadm", "-L", "rs"}, false},
	} {
		if got := isRealserver(tc.argv); got != tc.want {
			t.Errorf("isRealserver(%q) = %v, want %v", tc.argv, got, tc.want)
		}
	}
}

func TestParseRealserver(t *testing.T) {
	v := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, x := range s {
			out = append(out, netip.MustParseAddr(x))
		}
		return out
	}
	for _, tc := range []struct {
		args    string
		want    *realserver.Config // nil: none (teardown, status from state)
		dryRun  bool
		state   string
		wantErr string
	}{
		{args: "setup --vip 10.1.0.100", want: &realserver.Config{VIPs: v("10.1.0.100"), Mode: "dr", Dev: "lo"}},
		{args: "setup --vip 10.1.0.100,fd00::1 --vip 10.1.0.101 --dry-run --state /tmp/x.json", want: &realserver.Config{VIPs: v("10.1.0.100", "fd00::1", "10.1.0.101"), Mode: "dr", Dev: "lo"}, dryRun: true, state: "/tmp/x.json"},
		{args: "setup --vip 10.1.0.100 --mode tun --ingress-dev e0,e1 --gue-port 6080 --mss 1400", want: &realserver.Config{VIPs: v("10.1.0.100"), Mode: "tun", Dev: "lo", IngressDevs: []string{"e0", "e1"}, GUEPort: 6080, MSS: 1400, BPFDir: realserver.DefaultBPFDir}},
		{args: "setup -vip=10.1.0.100 -mode=tun -tun-type=ipip -mtu=9000 -bpf-dir=/sys/fs/bpf/x", want: &realserver.Config{VIPs: v("10.1.0.100"), Mode: "tun", Dev: "lo", TunType: "ipip", MTU: 9000, BPFDir: "/sys/fs/bpf/x"}},
		{args: "teardown", state: realserver.DefaultStatePath},
		{args: "teardown --dry-run --state s.json", dryRun: true, state: "s.json"},
		{args: "status"},
		{args: "status --state s.json", state: "s.json"},
		{args: "status --vip 10.1.0.100 --mode tun", want: &realserver.Config{VIPs: v("10.1.0.100"), Mode: "tun", Dev: "lo", BPFDir: realserver.DefaultBPFDir}},
		{args: "", wantErr: "missing command"},
		{args: "start", wantErr: `unknown command "start"`},
		{args: "setup --vip nope", wantErr: `--vip "nope" is not an IP address`},
		{args: "setup --vip 10.1.0.100 extra", wantErr: `unexpected argument "extra"`},
		{args: "setup --vip 10.1.0.100 --gue-port 70000", wantErr: "out of range"},
		{args: "setup --vip 10.1.0.100 --bpf-dir /x", wantErr: "--mode tun only"},
		{args: "setup --vip 10.1.0.100 --bogus", wantErr: "flag provided but not defined"},
		{args: "setup --vip ,", wantErr: "empty item"},
		{args: "teardown --vip 10.1.0.100", wantErr: "teardown takes only --state and --dry-run"},
		{args: "status --dry-run", wantErr: "status changes nothing"},
		{args: "status --mode tun", wantErr: "give --vip"},
	} {
		t.Run(tc.args, func(t *testing.T) {
			c, err := parseRealserver("govsadm", strings.Fields(tc.args), io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (c.cfg == nil) != (tc.want == nil) {
				t.Fatalf("config %+v, want %+v", c.cfg, tc.want)
			}
			if tc.want != nil {
				g, w := *c.cfg, *tc.want
				if !slices.Equal(g.VIPs, w.VIPs) || !slices.Equal(g.IngressDevs, w.IngressDevs) {
					t.Errorf("config %+v, want %+v", g, w)
				}
				g.VIPs, w.VIPs, g.IngressDevs, w.IngressDevs = nil, nil, nil, nil
				if !reflect.DeepEqual(g, w) {
					t.Errorf("config %+v, want %+v", g, w)
				}
			}
			if c.opts.DryRun != tc.dryRun {
				t.Errorf("dry run %v, want %v", c.opts.DryRun, tc.dryRun)
			}
			if tc.state != "" && c.opts.StatePath != tc.state {
				t.Errorf("state %q, want %q", c.opts.StatePath, tc.state)
			}
		})
	}
}

func FuzzParseRealserver(f *testing.F) {
	for _, s := range []string{
		"setup --vip 10.1.0.100",
		"setup --vip 10.1.0.100,fd00::1 --mode tun --gue-port 6080 --mss 1400 --dry-run",
		"status", "teardown --state x", "rs", "setup --vip , --mtu -1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseRealserver("govsadm", strings.Fields(s), io.Discard)
		if err == nil && c.cfg != nil && c.sub != "setup" && c.sub != "status" {
			t.Errorf("%q: a configuration for %s", s, c.sub)
		}
	})
}

func TestRunRealserver(t *testing.T) {
	f := realservertest.New()
	state := filepath.Join(t.TempDir(), "rs.json")
	newSys := func() (realserver.System, error) { return f, nil }
	run := func(args string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runRealserver("/usr/bin/govsadm", strings.Fields(args+" --state "+state), &out, &errb, newSys)
		return code, out.String(), errb.String()
	}
	if code, out, _ := run("status --vip 10.1.0.100"); code != rsExitFailed || !strings.Contains(out, "MISSING") {
		t.Errorf("status before setup: exit %d\n%s", code, out)
	}
	if code, out, _ := run("setup --vip 10.1.0.100 --dry-run"); code != 0 || !strings.Contains(out, "would change") || len(f.Calls) != 0 {
		t.Errorf("dry run: exit %d, calls %v\n%s", code, f.Calls, out)
	}
	f.IsRoot = false
	if code, _, errs := run("setup --vip 10.1.0.100"); code != rsExitFailed || !strings.Contains(errs, "must run as root") {
		t.Errorf("setup as non-root: exit %d, %s", code, errs)
	}
	f.IsRoot = true
	if code, out, errs := run("setup --vip 10.1.0.100"); code != 0 || !strings.Contains(out, "5 changed") {
		t.Errorf("setup: exit %d\n%s%s", code, out, errs)
	}
	if code, out, _ := run("setup --vip 10.1.0.100"); code != 0 || !strings.Contains(out, "nothing changed") {
		t.Errorf("second setup: exit %d\n%s", code, out)
	}
	if code, out, _ := run("status"); code != 0 || !strings.Contains(out, "all 5 items in place") {
		t.Errorf("status after setup: exit %d\n%s", code, out)
	}
	if code, out, _ := run("teardown"); code != 0 || !strings.Contains(out, "5 restored") {
		t.Errorf("teardown: exit %d\n%s", code, out)
	}
	if code, _, errs := run("teardown"); code != rsExitFailed || !strings.Contains(errs, "nothing to undo") {
		t.Errorf("second teardown: exit %d, %s", code, errs)
	}
	if code, _, errs := run("frobnicate"); code != rsExitUsage || !strings.Contains(errs, "unknown command") {
		t.Errorf("unknown command: exit %d, %s", code, errs)
	}
	var out bytes.Buffer
	if code := runRealserver("govsadm", []string{"help"}, io.Discard, &out, newSys); code != 0 || !strings.Contains(out.String(), "realserver setup --vip") {
		t.Errorf("help: exit %d\n%s", code, out.String())
	}
}
