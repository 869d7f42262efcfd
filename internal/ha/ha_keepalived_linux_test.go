package ha_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/netns"
	"github.com/govs/govs/internal/testenv"
	"github.com/govs/govs/internal/vrrp"
	"github.com/vishvananda/netlink"
)

// The keepalived-peer tests run the HA topology of
// TestNetnsHAFailoverDR with keepalived (Debian package, --vrrp only) as
// director B. keepalived's IPVS half cannot run on the test kernel (no
// ip_vs), so keepalived is a VRRP peer that holds the VIP but forwards
// nothing: while it is master, the clients' connections to the VIP are
// refused by its stack. What is proved is the VRRP interplay on the real
// topology and that connections flow through govsd whenever govsd holds
// the VIP:
//
//   - keepalived master, govsd backup: one master; keepalived crashes;
//     govsd takes over within its master down interval and new
//     connections go through its ebpf data plane.
//   - govsd master, keepalived backup: one master (VIP on one side, one
//     source of adverts on the wire, decoded by tshark); govsd crashes,
//     keepalived takes the VIP; govsd returns and, behind its readiness
//     gate (keepalived runs no sync master: one silent sweep period),
//     preempts.
//   - the same with nopreempt on govsd: a clean stop (priority 0) hands
//     the VIP to keepalived at once, the returning govsd stays backup,
//     and takes over only when keepalived dies.

// kaGovsdConf is govsd's keepalived.conf against a keepalived peer:
// haConf's services and lvs_sync_daemon, with state, priority and extra
// vrrp_instance lines.
const kaGovsdConf = `global_defs {
    router_id A
    lvs_sync_daemon eth0 VI_1 id 51
}
vrrp_instance VI_1 {
    state %[1]s
    interface eth0
    virtual_router_id 51
    priority %[2]d
    advert_int 1
    garp_master_delay 1
    %[3]s
    virtual_ipaddress {
        10.9.0.100/32
    }
}
virtual_server 10.9.0.100 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.9.0.11 80 { weight 1 }
    real_server 10.9.0.12 80 { weight 1 }
}
virtual_server 10.9.0.100 7 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.9.0.11 7 { weight 1 }
    real_server 10.9.0.12 7 { weight 1 }
}
`

// kaPeerConf is keepalived's: the same vrrp_instance, no lvs_sync_daemon
// and no virtual_server (its IPVS half cannot run here).
const kaPeerConf = `global_defs {
    router_id K
    enable_script_security
    vrrp_garp_master_delay 1
}
vrrp_instance VI_1 {
    state %[1]s
    interface eth0
    virtual_router_id 51
    priority %[2]d
    advert_int 1
    virtual_ipaddress {
        10.9.0.100/32
    }
}
`

// startGovsdConf runs govsd for director i with conf, as start does.
func (h *haTopo) startGovsdConf(i int, conf string) *govsdProc {
	h.t.Helper()
	name, _, _ := role(i)
	return h.startWith(i, conf, "eth0", "/sys/fs/bpf/govs-ha-"+name)
}

// stop ends govsd cleanly (SIGTERM: a master sends priority 0 and
// removes the VIP).
func (p *govsdProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("govsd did not stop within 10 s of SIGTERM")
		p.kill(t)
	}
}

// kaPeer is keepalived running as director i. Its output goes to the
// embedded govsdProc's log, so waitLog works on it.
type kaPeer struct {
	*govsdProc
	vrrpPID string
}

func (h *haTopo) startKeepalived(i int, state string, prio int) *kaPeer {
	h.t.Helper()
	dir := h.t.TempDir()
	file := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(file, fmt.Appendf(nil, kaPeerConf, state, prio), 0o644); err != nil {
		h.t.Fatal(err)
	}
	k := &kaPeer{govsdProc: &govsdProc{done: make(chan struct{})}, vrrpPID: filepath.Join(dir, "vrrp.pid")}
	// ip netns exec execs keepalived: the PID is keepalived's parent;
	// its VRRP child writes vrrpPID.
	k.cmd = exec.Command("ip", "netns", "exec", h.dirs[i].Name, "keepalived",
		"--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--vrrp",
		"--use-file", file, "--pid", filepath.Join(dir, "keepalived.pid"), "--vrrp_pid", k.vrrpPID)
	k.cmd.Stdout, k.cmd.Stderr = k.govsdProc, k.govsdProc
	if err := k.cmd.Start(); err != nil {
		h.t.Fatalf("start keepalived: %v", err)
	}
	go func() { k.cmd.Wait(); close(k.done) }()
	h.t.Cleanup(func() {
		k.crash()
		if h.t.Failed() {
			h.t.Logf("keepalived output:\n%s", k.logText())
		}
	})
	return k
}

// crash kills keepalived without a word: the parent is stopped first so
// that it neither respawns its VRRP child nor has it send priority 0,
// then both are killed.
func (k *kaPeer) crash() {
	select {
	case <-k.done:
	default:
		k.cmd.Process.Signal(syscall.SIGSTOP)
	}
	if b, err := os.ReadFile(k.vrrpPID); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	select {
	case <-k.done:
	default:
		k.cmd.Process.Signal(syscall.SIGKILL)
		<-k.done
	}
}

// crashKeepalived makes keepalived's director a dead machine on a live
// switch port, as crash does for govsd.
func (h *haTopo) crashKeepalived(i int, k *kaPeer) {
	h.nft(i, "add table netdev crash",
		"add chain netdev crash in { type filter hook ingress device eth0 priority -500; policy drop; }",
		"add chain netdev crash out { type filter hook egress device eth0 priority -500; policy drop; }")
	k.crash()
}

// hasVIP reports whether director i has the VIP on eth0.
func (h *haTopo) hasVIP(i int) bool {
	h.t.Helper()
	nl := h.dirs[i].Netlink()
	l, err := nl.LinkByName("eth0")
	if err != nil {
		h.t.Fatalf("%s: eth0: %v", h.dirs[i].Name, err)
	}
	addrs, err := nl.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		h.t.Fatalf("%s: addresses of eth0: %v", h.dirs[i].Name, err)
	}
	return slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IP.String() == h.vip })
}

// vipOn returns "A", "B", "A+B" or "none".
func (h *haTopo) vipOn() string {
	var on []string
	for i := range h.dirs {
		if h.hasVIP(i) {
			on = append(on, string(rune('A'+i)))
		}
	}
	if len(on) == 0 {
		return "none"
	}
	return strings.Join(on, "+")
}

// waitUntil polls cond every 10 ms and returns when it became true.
func waitUntil(t *testing.T, what string, within time.Duration, cond func() bool) time.Time {
	t.Helper()
	end := time.Now().Add(within)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Now()
}

// echoOnce opens a new connection to the VIP's echo service from the
// client and checks one line comes back.
func (h *haTopo) echoOnce() error { return h.echoWithin(time.Second) }

func (h *haTopo) echoWithin(dial time.Duration) error {
	return h.client.Do(func() error {
		c, err := net.DialTimeout("tcp4", h.vip+":7", dial)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("hello\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "hello\n" {
			return fmt.Errorf("echo: %q, %v", line, err)
		}
		return nil
	})
}

// download fetches mb MiB through the VIP from the client.
func (h *haTopo) download(mb int) error {
	var sock net.Conn
	if err := h.client.Do(func() error {
		var err error
		sock, err = net.DialTimeout("tcp4", h.vip+":80", 2*time.Second)
		return err
	}); err != nil {
		return err
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(context.Context, string, string) (net.Conn, error) { return sock, nil }}}
	resp, err := c.Get(fmt.Sprintf("http://%s/stream?mb=%d&rate=65536", h.vip, mb))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && n != int64(mb)<<20 {
		err = fmt.Errorf("got %d bytes, want %d", n, mb<<20)
	}
	return err
}

// probe opens a new connection to the VIP every 100 ms (giving up on
// each after 300 ms) until one is served, and sends when: the client's
// view of the outage for new connections.
func (h *haTopo) probe(ctx context.Context) <-chan time.Time {
	served := make(chan time.Time, 1)
	go func() {
		for ctx.Err() == nil {
			if h.echoWithin(300*time.Millisecond) == nil {
				served <- time.Now()
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return served
}

func probed(t *testing.T, served <-chan time.Time) time.Time {
	t.Helper()
	select {
	case at := <-served:
		return at
	case <-time.After(5 * time.Second):
		t.Fatal("no new connection was served")
		return time.Time{}
	}
}

// newFlowsThroughGovsd checks that new connections to the VIP work and
// that govsd (director i) forwarded them: its connection table has the
// client's connections to the VIP.
func (h *haTopo) newFlowsThroughGovsd(i int) {
	h.t.Helper()
	waitUntil(h.t, "a new connection through the VIP", 6*time.Second, func() bool { return h.echoOnce() == nil })
	if err := h.download(2); err != nil {
		h.t.Fatalf("download through govsd: %v", err)
	}
	c := api.NewClient(h.procs[i].socket)
	defer c.CloseIdleConnections()
	cs, err := c.Conns(context.Background())
	if err != nil {
		h.t.Fatalf("govsd's connections: %v", err)
	}
	ports := map[uint16]bool{}
	for _, x := range cs {
		if x.Client.Addr().String() == "10.9.0.1" && x.Virtual.Addr().String() == h.vip {
			ports[x.Virtual.Port()] = true
		}
	}
	if !ports[7] || !ports[80] {
		h.t.Fatalf("govsd's table lacks the client's connections to :7 and :80: %+v", cs)
	}
	h.t.Logf("new connections (echo, 2 MiB download) flow through govsd: %d entries in its table", len(cs))
}

// vrrpCapture is tshark capturing VRRP on the client's interface: it sees
// every advert on the segment (multicast is flooded to every port).
type vrrpCapture struct {
	cmd  *exec.Cmd
	pcap string
	out  *govsdProc
}

type advert struct {
	at   time.Time
	src  string
	prio int
}

func (h *haTopo) captureVRRP() *vrrpCapture {
	h.t.Helper()
	testenv.Command(h.t, "tshark", "tshark")
	c := &vrrpCapture{pcap: filepath.Join(h.dir, "vrrp.pcap"), out: &govsdProc{done: make(chan struct{})}}
	c.cmd = exec.Command("ip", "netns", "exec", h.client.Name, "tshark", "-i", "eth0", "-f", "ip proto 112", "-w", c.pcap)
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	go func() { c.cmd.Wait(); close(c.out.done) }()
	h.t.Cleanup(func() { c.stop() })
	waitLog(h.t, c.out, 15*time.Second, "Capturing on")
	return c
}

func (c *vrrpCapture) stop() {
	select {
	case <-c.out.done:
		return
	default:
	}
	c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.out.done:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-c.out.done
	}
}

// adverts stops the capture, checks that tshark decodes every packet as
// VRRP without errors, and returns the adverts.
func (c *vrrpCapture) adverts(t *testing.T) []advert {
	t.Helper()
	// libpcap hands packets to dumpcap a block at a time (with a 1 s
	// timeout); what is still in the block at SIGINT is lost.
	time.Sleep(1200 * time.Millisecond)
	c.stop()
	text, err := exec.Command("tshark", "-r", c.pcap, "-V").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark -r: %v\n%s", err, text)
	}
	for _, bad := range []string{"Malformed", "[Checksum Status: Bad]", "Expert Info (Error", "Expert Info (Warning"} {
		if strings.Contains(string(text), bad) {
			t.Fatalf("tshark reports %q:\n%s", bad, text)
		}
	}
	fields, err := exec.Command("tshark", "-r", c.pcap, "-T", "fields", "-E", "separator=,",
		"-e", "frame.time_epoch", "-e", "ip.src", "-e", "vrrp.prio", "-e", "vrrp.virt_rtr_id").Output()
	if err != nil {
		t.Fatalf("tshark -T fields: %v", err)
	}
	var as []advert
	for _, line := range strings.Split(strings.TrimSpace(string(fields)), "\n") {
		f := strings.Split(line, ",")
		if len(f) != 4 || f[3] != "51" {
			t.Fatalf("tshark: not a VRRP advert for VRID 51: %q", line)
		}
		sec, err := strconv.ParseFloat(f[0], 64)
		prio, err2 := strconv.Atoi(f[2])
		if err != nil || err2 != nil {
			t.Fatalf("tshark: bad line %q", line)
		}
		as = append(as, advert{at: time.Unix(0, int64(sec*1e9)), src: f[1], prio: prio})
	}
	if n := strings.Count(string(text), "Virtual Router Redundancy Protocol"); n != len(as) {
		t.Fatalf("tshark dissected %d VRRP packets of %d", n, len(as))
	}
	return as
}

// sources returns the adverts' sources (with priority) in [from, to).
func sources(as []advert, from, to time.Time) map[string]int {
	m := map[string]int{}
	for _, a := range as {
		if !a.at.Before(from) && a.at.Before(to) {
			m[fmt.Sprintf("%s prio %d", a.src, a.prio)]++
		}
	}
	return m
}

// lastFrom and firstFrom are the times of src's last advert before t and
// its first after t.
func lastFrom(as []advert, src string, t time.Time) time.Time {
	var last time.Time
	for _, a := range as {
		if a.src == src && a.at.Before(t) {
			last = a.at
		}
	}
	return last
}

func firstFrom(as []advert, src string, t time.Time) time.Time {
	for _, a := range as {
		if a.src == src && a.at.After(t) {
			return a.at
		}
	}
	return time.Time{}
}

// gap is the time from a to b on the wire, failing if either advert was
// not captured.
func gap(t *testing.T, what string, a, b time.Time) time.Duration {
	t.Helper()
	if a.IsZero() || b.IsZero() {
		t.Fatalf("%s: advert not captured (from %v, to %v)", what, a, b)
	}
	return b.Sub(a)
}

// oneMaster checks, every 50 ms for d, that the VIP is on director want
// only.
func (h *haTopo) oneMaster(want string, d time.Duration) {
	h.t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if on := h.vipOn(); on != want {
			h.t.Fatalf("VIP on %s, want on %s only", on, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func needKeepalivedPeer(t *testing.T) {
	t.Helper()
	netns.RequireRoot(t)
	testenv.Command(t, "keepalived", "keepalived")
	testenv.Command(t, "nft", "nftables")
	testenv.Command(t, "tshark", "tshark")
}

const (
	govsdIP = "10.9.0.2"
	kaIP    = "10.9.0.3"
)

var (
	mdi100 = vrrp.MasterDownInterval(2, time.Second, 100)
	mdi150 = vrrp.MasterDownInterval(2, time.Second, 150)
)

// TestNetnsHAKeepalivedPeer: govsd (director A, ebpf data plane, DR,
// BACKUP, priority 100) and keepalived (director B, VRRP only, MASTER,
// 150) share VRID 51. keepalived is the one master; it crashes; govsd
// takes over within its master down interval and serves new connections.
// (-run TestNetnsHAKeepalivedPeer also runs the Backup and NoPreempt
// variants below.)
func TestNetnsHAKeepalivedPeer(t *testing.T) {
	needKeepalivedPeer(t)
	h := newHATopo(t)
	wire := h.captureVRRP()
	t0 := time.Now()
	k := h.startKeepalived(1, "MASTER", 150)
	a := h.startGovsdConf(0, fmt.Sprintf(kaGovsdConf, "BACKUP", 100, ""))
	tK := waitUntil(t, "keepalived master (VIP on B)", 10*time.Second, func() bool { return h.hasVIP(1) })
	waitLog(t, a, 10*time.Second, "entering state", "to=BACKUP")
	t.Logf("keepalived (state MASTER, priority 150) master %v after start", tK.Sub(t0).Round(10*time.Millisecond))
	tSteady := time.Now()
	h.oneMaster("B", 3*time.Second)
	// keepalived's director cannot forward (no IPVS here): the VIP
	// is a local address of its stack, which refuses.
	if err := h.echoOnce(); err == nil {
		t.Fatalf("a connection to the VIP held by keepalived succeeded; keepalived's director forwards nothing here, so govsd (backup) must have answered")
	} else {
		t.Logf("while keepalived holds the VIP, connections are refused by its director (no IPVS on this kernel): %v", err)
	}

	tCrash := time.Now()
	h.crashKeepalived(1, k)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := h.probe(ctx)
	tA := waitLog(t, a, mdi100+2*time.Second, "entering state", "to=MASTER")
	waitUntil(t, "VIP on govsd", time.Second, func() bool { return h.hasVIP(0) })
	waitLog(t, a, 5*time.Second, "sync role follows VRRP", "sync=master")
	tServed := probed(t, served)
	h.newFlowsThroughGovsd(0)
	as := wire.adverts(t)

	if s := sources(as, tSteady, tCrash); len(s) != 1 || s[kaIP+" prio 150"] < 2 {
		t.Errorf("adverts while keepalived was master: %v; want keepalived's only", s)
	}
	lastK := lastFrom(as, kaIP, tCrash)
	firstA := firstFrom(as, govsdIP, tCrash)
	onWire := gap(t, "keepalived's last advert to govsd's first", lastK, firstA)
	t.Logf("govsd master %v after keepalived crashed; on the wire its first advert %v after keepalived's last (master down interval %v)",
		tA.Sub(tCrash).Round(10*time.Millisecond), onWire.Round(10*time.Millisecond), mdi100)
	t.Logf("the client's first new connection after the crash was served %v after it, %v after govsd's first advert",
		tServed.Sub(tCrash).Round(10*time.Millisecond), tServed.Sub(firstA).Round(10*time.Millisecond))
	if d := onWire; d > mdi100+300*time.Millisecond || d < mdi100-300*time.Millisecond {
		t.Errorf("on the wire, govsd's first advert came %v after keepalived's last; want the master down interval %v", d, mdi100)
	}
}

// TestNetnsHAKeepalivedPeerBackup: govsd (MASTER, 150) and keepalived
// (BACKUP, 100): one master; govsd crashes and keepalived takes the VIP;
// govsd returns and, once its readiness gate is open, preempts.
func TestNetnsHAKeepalivedPeerBackup(t *testing.T) {
	needKeepalivedPeer(t)
	h := newHATopo(t)
	wire := h.captureVRRP()
	t0 := time.Now()
	a := h.startGovsdConf(0, fmt.Sprintf(kaGovsdConf, "MASTER", 150, ""))
	k := h.startKeepalived(1, "BACKUP", 100)
	tA := waitLog(t, a, 10*time.Second, "entering state", "to=MASTER")
	t.Logf("govsd (state MASTER, priority 150) master %v after start", tA.Sub(t0).Round(10*time.Millisecond))
	tSteady := time.Now()
	h.oneMaster("A", 3*time.Second)
	h.newFlowsThroughGovsd(0)

	tCrash := time.Now()
	h.crash(0)
	tK := waitUntil(t, "keepalived takes the VIP", mdi100+2*time.Second, func() bool { return h.hasVIP(1) })
	waitLog(t, k.govsdProc, 2*time.Second, "Entering MASTER STATE")
	// The dead A still has its VIP, on a port that drops everything;
	// the reboot clears it.
	time.Sleep(time.Second)
	h.reboot(0)
	h.oneMaster("B", 500*time.Millisecond)
	tBack := time.Now()
	a = h.startGovsdConf(0, fmt.Sprintf(kaGovsdConf, "MASTER", 150, ""))
	tGate := waitLog(t, a, 10*time.Second, "readiness gate open")
	// keepalived runs no sync master: govsd's sync backup hears nothing
	// and its gate opens after one silent sweep period (checked when an
	// advert of the lower priority keepalived asks whether to preempt).
	waitLog(t, a, time.Second, "readiness gate open", "no sync master heard")
	tA2 := waitLog(t, a, 10*time.Second, "entering state", "to=MASTER")
	tKBackup := waitUntil(t, "keepalived yields the VIP", 3*time.Second, func() bool { return !h.hasVIP(1) })
	if n := strings.Count(k.logText(), "Entering BACKUP STATE"); n != 2 {
		t.Errorf("keepalived entered BACKUP %d times, want 2 (at start, when govsd preempted):\n%s", n, k.logText())
	}
	h.oneMaster("A", 2*time.Second)
	h.newFlowsThroughGovsd(0)
	as := wire.adverts(t)

	if s := sources(as, tSteady, tCrash); len(s) != 1 || s[govsdIP+" prio 150"] < 2 {
		t.Errorf("adverts while govsd was master: %v; want govsd's only", s)
	}
	if s := sources(as, tKBackup.Add(1500*time.Millisecond), time.Now().Add(-time.Second)); len(s) != 1 || s[govsdIP+" prio 150"] == 0 {
		t.Errorf("adverts after govsd preempted: %v; want govsd's only", s)
	}
	lastA := lastFrom(as, govsdIP, tCrash)
	firstK := firstFrom(as, kaIP, tCrash)
	onWire := gap(t, "govsd's last advert to keepalived's first", lastA, firstK)
	t.Logf("keepalived took the VIP %v after govsd crashed; on the wire its first advert %v after govsd's last (master down interval %v)",
		tK.Sub(tCrash).Round(10*time.Millisecond), onWire.Round(10*time.Millisecond), mdi100)
	if d := onWire; d > mdi100+300*time.Millisecond || d < mdi100-300*time.Millisecond {
		t.Errorf("keepalived's first advert came %v after govsd's last; want the master down interval %v", d, mdi100)
	}
	t.Logf("govsd back: readiness gate open %v after restart (no sync master: one silent sweep of 2 s, seen at keepalived's next advert), master %v after restart, keepalived gave up the VIP %v after that",
		tGate.Sub(tBack).Round(10*time.Millisecond), tA2.Sub(tBack).Round(10*time.Millisecond), tKBackup.Sub(tA2).Round(10*time.Millisecond))
	lastK := lastFrom(as, kaIP, time.Now())
	firstA := firstFrom(as, govsdIP, tBack)
	// A backup that may preempt ignores the lower priority adverts and
	// its master down timer runs out (RFC 3768 6.4.2): keepalived's
	// last advert comes the skew time before govsd's first.
	t.Logf("on the wire: govsd's first advert %v after its restart, %v after keepalived's last",
		gap(t, "govsd's restart to its first advert", tBack, firstA).Round(10*time.Millisecond), gap(t, "keepalived's last advert to govsd's first", lastK, firstA).Round(10*time.Millisecond))
	if lastK.After(firstA.Add(100 * time.Millisecond)) {
		t.Errorf("keepalived kept advertising %v after govsd preempted", lastK.Sub(firstA))
	}
	if tA2.Before(tGate) {
		t.Errorf("govsd preempted before its readiness gate opened")
	}
}

// TestNetnsHAKeepalivedPeerNoPreempt: govsd (BACKUP, 150, nopreempt)
// stops cleanly and keepalived (100) takes over on its priority 0;
// govsd returns and stays backup to the lower priority keepalived; it
// takes over only when keepalived dies.
func TestNetnsHAKeepalivedPeerNoPreempt(t *testing.T) {
	needKeepalivedPeer(t)
	h := newHATopo(t)
	wire := h.captureVRRP()
	conf := fmt.Sprintf(kaGovsdConf, "BACKUP", 150, "nopreempt")
	t0 := time.Now()
	a := h.startGovsdConf(0, conf)
	// govsd starts alone: as the only router it becomes master after
	// its master down interval, whatever nopreempt says.
	tA := waitLog(t, a, mdi150+3*time.Second, "entering state", "to=MASTER")
	k := h.startKeepalived(1, "BACKUP", 100)
	waitLog(t, k.govsdProc, 10*time.Second, "Entering BACKUP STATE")
	h.oneMaster("A", 2*time.Second)

	// A clean stop: priority 0, keepalived takes over in its skew time.
	tStop := time.Now()
	a.stop(t)
	tK := waitUntil(t, "keepalived takes the VIP after priority 0", 2*time.Second, func() bool { return h.hasVIP(1) })
	t.Logf("govsd master %v after start (alone); keepalived took the VIP %v after govsd's SIGTERM (priority 0: skew time %v)",
		tA.Sub(t0).Round(10*time.Millisecond), tK.Sub(tStop).Round(10*time.Millisecond), time.Duration(256-100)*time.Second/256)

	// govsd returns with nopreempt: it stays backup to the lower
	// priority keepalived.
	tBack := time.Now()
	a = h.startGovsdConf(0, conf)
	waitLog(t, a, 10*time.Second, "entering state", "to=BACKUP")
	tHold := time.Now()
	h.oneMaster("B", 2*time.Second+mdi150+time.Second)
	if strings.Contains(a.logText(), "to=MASTER") {
		t.Fatalf("govsd with nopreempt took the VIP from keepalived:\n%s", a.logText())
	}
	tEndHold := time.Now()

	// keepalived dies: govsd takes over within its master down interval.
	tCrash := time.Now()
	h.crashKeepalived(1, k)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := h.probe(ctx)
	tA2 := waitLog(t, a, mdi150+2*time.Second, "entering state", "to=MASTER")
	waitUntil(t, "VIP on govsd", time.Second, func() bool { return h.hasVIP(0) })
	tServed := probed(t, served)
	h.newFlowsThroughGovsd(0)
	as := wire.adverts(t)

	if s := sources(as, tHold, tEndHold); len(s) != 1 || s[kaIP+" prio 100"] < 3 {
		t.Errorf("adverts while govsd (nopreempt, priority 150) was backup: %v; want keepalived's only", s)
	}
	prio0 := false
	for _, x := range as {
		prio0 = prio0 || (x.src == govsdIP && x.prio == 0 && x.at.After(tStop))
	}
	if !prio0 {
		t.Errorf("no priority 0 advert from govsd after SIGTERM")
	}
	lastK := lastFrom(as, kaIP, tCrash)
	firstA := firstFrom(as, govsdIP, tCrash)
	onWire := gap(t, "keepalived's last advert to govsd's first", lastK, firstA)
	t.Logf("govsd (nopreempt) stayed backup for %v after restart; master %v after keepalived crashed; on the wire its first advert %v after keepalived's last (master down interval %v)",
		tEndHold.Sub(tBack).Round(10*time.Millisecond), tA2.Sub(tCrash).Round(10*time.Millisecond), onWire.Round(10*time.Millisecond), mdi150)
	if onWire > mdi150+300*time.Millisecond || onWire < mdi150-300*time.Millisecond {
		t.Errorf("govsd's first advert came %v after keepalived's last; want the master down interval %v", onWire, mdi150)
	}
	t.Logf("the client's first new connection after keepalived crashed was served %v after the crash, %v after govsd's first advert",
		tServed.Sub(tCrash).Round(10*time.Millisecond), tServed.Sub(firstA).Round(10*time.Millisecond))
}
