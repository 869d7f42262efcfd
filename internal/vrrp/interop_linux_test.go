package vrrp_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/testenv"
	"github.com/govs/govs/internal/vrrp"
)

// syncBuffer collects a child's output for the failure message.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// keepalived is a keepalived (Debian package) running in a namespace.
type keepalived struct {
	cmd     *exec.Cmd
	out     *syncBuffer
	vrrpPID string // pid file of its VRRP child
	exited  chan struct{}
}

func startKeepalived(t *testing.T, s *side, conf string) *keepalived {
	t.Helper()
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(cfgFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	k := &keepalived{out: &syncBuffer{}, vrrpPID: filepath.Join(dir, "vrrp.pid"), exited: make(chan struct{})}
	// ip netns exec execs keepalived in place: the PID we start is
	// keepalived's parent process.
	k.cmd = exec.Command("ip", "netns", "exec", s.ns, "keepalived",
		"--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--vrrp",
		"--use-file", cfgFile, "--pid", filepath.Join(dir, "keepalived.pid"), "--vrrp_pid", k.vrrpPID)
	k.cmd.Stdout, k.cmd.Stderr = k.out, k.out
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("start keepalived: %v", err)
	}
	go func() { k.cmd.Wait(); close(k.exited) }()
	t.Cleanup(func() {
		k.stop()
		// The VRRP child must not outlive the test either.
		if b, err := os.ReadFile(k.vrrpPID); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if t.Failed() {
			t.Logf("keepalived output:\n%s", k.out.String())
		}
	})
	return k
}

// stop sends SIGTERM (keepalived then sends priority 0) and waits.
func (k *keepalived) stop() {
	select {
	case <-k.exited:
		return
	default:
	}
	k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.exited:
	case <-time.After(10 * time.Second):
		k.cmd.Process.Kill()
		<-k.exited
	}
}

func needKeepalived(t *testing.T) {
	t.Helper()
	needRoot(t)
	testenv.Command(t, "keepalived", "keepalived")
}

func keepalivedConf(ifname string, version, prio int, vip netip.Prefix, extra string) string {
	return fmt.Sprintf(`global_defs {
    router_id govs_interop
    vrrp_version %d
    enable_script_security
}
vrrp_instance VI_1 {
    state BACKUP
    interface %s
    virtual_router_id 51
    priority %d
    advert_int 1
    %s
    virtual_ipaddress {
        %s
    }
}
`, version, ifname, prio, extra, vip)
}

// TestNetnsVRRPKeepalived runs govs against keepalived with the same
// VRID: one master is elected, and each takes over from the other.
func TestNetnsVRRPKeepalived(t *testing.T) {
	needKeepalived(t)
	for i, tc := range []struct {
		name    string
		version int
		auth    bool
	}{
		{"v2 PASS", 2, true},
		{"v3", 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newPair(t, 10+i)
			vip := netip.MustParsePrefix(fmt.Sprintf("10.99.%d.100/32", 10+i))
			extra := ""
			cfg := vrrp.Config{Name: "VI_1", VirtualRouterID: 51, Priority: 150, Version: tc.version,
				AdvertInt: time.Second, VirtualIPAddresses: []netip.Prefix{vip}}
			if tc.auth {
				extra = "authentication {\n        auth_type PASS\n        auth_pass govs1234\n    }"
				cfg.AuthType, cfg.AuthPass = "PASS", "govs1234"
			}
			mdi := vrrp.MasterDownInterval(tc.version, time.Second, 100)
			slack := 500 * time.Millisecond

			// keepalived (priority 100) starts first and becomes master.
			k := startKeepalived(t, b, keepalivedConf(b.ifname, tc.version, 100, vip, extra))
			waitFor(t, "keepalived master (VIP on B)", 2*mdi+2*time.Second, func() bool { return b.hasAddr(t, vip) })

			// govs (150) joins and preempts keepalived.
			ra := startNode(t, a, cfg)
			waitFor(t, "govs preempts keepalived", 2*mdi+slack, func() bool { return ra.n.State() == vrrp.StateMaster })
			waitFor(t, "keepalived yields the VIP", 2*time.Second, func() bool { return !b.hasAddr(t, vip) })
			time.Sleep(2 * time.Second)
			if ra.n.State() != vrrp.StateMaster || b.hasAddr(t, vip) || !a.hasAddr(t, vip) {
				t.Fatalf("after settling: govs %v, VIP on govs %v, on keepalived %v", ra.n.State(), a.hasAddr(t, vip), b.hasAddr(t, vip))
			}
			if st := ra.n.Stats(); st.Dropped != 0 {
				t.Errorf("govs dropped %d of keepalived's adverts", st.Dropped)
			}

			// govs dies: keepalived takes over within the master down interval.
			ra.kill()
			took := waitFor(t, "keepalived takes over", mdi+slack, func() bool { return b.hasAddr(t, vip) })
			t.Logf("keepalived took over %v after govs died (master down interval %v)", took, mdi)

			// govs comes back, preempts again, then stops cleanly:
			// keepalived takes over after priority 0 in its skew time.
			ra = startNode(t, a, cfg)
			waitFor(t, "govs preempts again", 2*mdi+slack, func() bool { return ra.n.State() == vrrp.StateMaster })
			waitFor(t, "keepalived yields again", 2*time.Second, func() bool { return !b.hasAddr(t, vip) })
			ra.stop()
			took = waitFor(t, "keepalived takes over after priority 0", time.Second+slack, func() bool { return b.hasAddr(t, vip) })
			t.Logf("keepalived took over %v after govs sent priority 0", took)

			// And the other way: govs at priority 50 is backup to
			// keepalived and takes over when keepalived stops.
			low := cfg
			low.Priority = 50
			rl := startNode(t, a, low)
			time.Sleep(3 * time.Second)
			if rl.n.State() != vrrp.StateBackup || rl.n.Stats().Dropped != 0 {
				t.Fatalf("govs(50) is %v, stats %+v; want BACKUP with nothing dropped", rl.n.State(), rl.n.Stats())
			}
			k.stop()
			took = waitFor(t, "govs takes over from stopped keepalived", vrrp.MasterDownInterval(tc.version, time.Second, 50)+slack,
				func() bool { return rl.n.State() == vrrp.StateMaster })
			t.Logf("govs was master %v after keepalived exited (it sent priority 0 on SIGTERM)", took)
			if rl.n.Stats().PriorityZeroReceived == 0 {
				t.Error("keepalived's priority 0 advert was not received")
			}
			waitFor(t, "VIP on govs", time.Second, func() bool { return a.hasAddr(t, vip) })
		})
	}
}

// TestNetnsTsharkDecodesAdverts captures govs's adverts and has tshark
// dissect them: no malformed packet, no bad checksum.
func TestNetnsTsharkDecodesAdverts(t *testing.T) {
	needRoot(t)
	testenv.Command(t, "tshark", "tshark")
	for i, tc := range []struct {
		name string
		vip  netip.Prefix
		mut  func(*vrrp.Config)
	}{
		{"v2 PASS", netip.MustParsePrefix("10.99.20.100/32"), func(c *vrrp.Config) { c.AuthType, c.AuthPass = "PASS", "x" }},
		{"v3 IPv4", netip.MustParsePrefix("10.99.21.100/32"), func(c *vrrp.Config) { c.Version, c.AdvertInt = 3, 50*time.Millisecond }},
		{"v3 IPv6", netip.MustParsePrefix("fd00:99::100/128"), func(c *vrrp.Config) { c.Version, c.AdvertInt = 3, 50*time.Millisecond }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newPair(t, 20+i)
			pcap := filepath.Join(t.TempDir(), "vrrp.pcap")
			capture := exec.Command("ip", "netns", "exec", b.ns, "tshark", "-i", b.ifname, "-f", "ip proto 112 or ip6 proto 112",
				"-c", "3", "-a", "duration:15", "-w", pcap)
			out := &syncBuffer{}
			capture.Stdout, capture.Stderr = out, out
			if err := capture.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "tshark capturing", 10*time.Second, func() bool { return strings.Contains(out.String(), "Capturing on") })
			c := vrrp.Config{Name: "A", VirtualRouterID: 7, Priority: 255, VirtualIPAddresses: []netip.Prefix{tc.vip}}
			tc.mut(&c)
			startNode(t, a, c)
			if err := capture.Wait(); err != nil {
				t.Fatalf("tshark capture: %v\n%s", err, out)
			}
			dissect, err := exec.Command("tshark", "-r", pcap, "-V", "-o", "vrrp.v3_checksum_as_in_v2:FALSE").CombinedOutput()
			if err != nil {
				t.Fatalf("tshark -r: %v\n%s", err, dissect)
			}
			text := string(dissect)
			if n := strings.Count(text, "Virtual Router Redundancy Protocol"); n != 3 {
				t.Fatalf("tshark dissected %d VRRP packets, want 3:\n%s", n, text)
			}
			for _, bad := range []string{"Malformed", "[Checksum Status: Bad]", "Expert Info (Error", "Expert Info (Warning"} {
				if strings.Contains(text, bad) {
					t.Fatalf("tshark reports %q:\n%s", bad, text)
				}
			}
			if !strings.Contains(text, "Virtual Rtr ID: 7") || !strings.Contains(text, "Priority: 255") {
				t.Errorf("tshark output lacks VRID 7 / priority 255:\n%s", text)
			}
			first := text[strings.Index(text, "Virtual Router Redundancy Protocol"):]
			if i := strings.Index(first, "Frame "); i > 0 {
				first = first[:i]
			}
			t.Logf("tshark dissects the first advert as:\n%s", first)
		})
	}
}
