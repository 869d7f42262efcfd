package ha_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/director"
	"github.com/govs/govs/internal/netns"
)

// govsadmBinary builds govsadm once per test binary.
func govsadmBinary(t *testing.T) string { return buildBinary(t, "github.com/govs/govs/cmd/govsadm") }

// startPlain runs govsd for director i without a configuration file:
// an empty table that only govsadm fills, as `govsd` alone starts.
func (h *haTopo) startPlain(i int) *govsdProc {
	h.t.Helper()
	name := string(rune('A' + i))
	p := &govsdProc{socket: filepath.Join(h.dir, name+".sock"), done: make(chan struct{})}
	p.cmd = exec.Command("ip", "netns", "exec", h.dirs[i].Name, h.govsd,
		"--dataplane", "ebpf", "--interface", "eth0", "--bpf-pin-path", "/sys/fs/bpf/govs-cli-"+name,
		"--socket", p.socket, "--metrics-address", "", "--log-level", "debug")
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	h.procs[i] = p
	h.t.Cleanup(func() { p.kill(h.t) })
	return p
}

// adm runs the govsadm binary against p's socket (GOVS_SOCKET, so the
// command lines are ipvsadm's) and returns stdout, stderr and the exit
// code.
func adm(t *testing.T, p *govsdProc, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(govsadmBinary(t), args...)
	cmd.Env = append(os.Environ(), "GOVS_SOCKET="+p.socket)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("govsadm %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

// mustAdm is adm that fails the test unless govsadm exits 0.
func mustAdm(t *testing.T, p *govsdProc, args ...string) string {
	t.Helper()
	out, errOut, code := adm(t, p, args...)
	if code != 0 {
		t.Fatalf("govsadm %s: exit %d: %s%s\ngovsd log:\n%s", strings.Join(args, " "), code, out, errOut, p.logText())
	}
	return out
}

// connLine is one line of ipvsadm -Lnc.
type connLine struct {
	proto, expire, state, source, virtual, dest string
}

func parseConns(t *testing.T, out string) []connLine {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) < 2 || lines[0] != "IPVS connection entries" ||
		strings.Join(strings.Fields(lines[1]), " ") != "pro expire state source virtual destination" {
		t.Fatalf("govsadm -Lnc: not ipvsadm's listing:\n%s", out)
	}
	var cs []connLine
	for _, l := range lines[2:] {
		f := strings.Fields(l)
		if len(f) != 6 {
			t.Fatalf("govsadm -Lnc: bad line %q", l)
		}
		cs = append(cs, connLine{f[0], f[1], f[2], f[3], f[4], f[5]})
	}
	return cs
}

func findConn(cs []connLine, source, virtual string) (connLine, bool) {
	for _, c := range cs {
		if c.source == source && c.virtual == virtual {
			return c, true
		}
	}
	return connLine{}, false
}

// heldConn is a connection from the client to the VIP's echo service
// that sends a line every 100 ms until ctx ends.
type heldConn struct {
	local string
	mu    sync.Mutex
	n     int
	err   error
}

func (h *haTopo) holdEcho(ctx context.Context) *heldConn {
	h.t.Helper()
	var c net.Conn
	h.client.MustDo(func() error {
		var err error
		c, err = net.DialTimeout("tcp4", h.vip+":7", 2*time.Second)
		return err
	})
	hc := &heldConn{local: c.LocalAddr().String()}
	go func() {
		defer c.Close()
		r := bufio.NewReader(c)
		for i := 0; ctx.Err() == nil; i++ {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			msg := fmt.Sprintf("ping %d\n", i)
			_, err := c.Write([]byte(msg))
			var line string
			if err == nil {
				line, err = r.ReadString('\n')
			}
			hc.mu.Lock()
			if err != nil || line != msg {
				hc.err = fmt.Errorf("echo %d: %q, %v", i, line, err)
				hc.mu.Unlock()
				return
			}
			hc.n++
			hc.mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return hc
}

func (hc *heldConn) result() (int, error) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	return hc.n, hc.err
}

// syncLatency is the longest an established connection waits before the
// backup has it: the ebpf data plane's poll (director.DefaultPollInterval),
// then, as in the kernel's master thread, a partly filled message is sent
// once it is connsync.FlushTime old, which is checked every
// connsync.CheckPeriod.
const syncLatency = director.DefaultPollInterval + connsync.FlushTime + connsync.CheckPeriod

// TestNetnsSyncDaemonCLI: two govsd processes (ebpf data plane, DR) with
// no configuration file, set up only with the govsadm binary as an
// ipvsadm user would: the same services on both, the VIP on A (an
// address the administrator adds; no VRRP), `--start-daemon master` on A
// and `--start-daemon backup` on B. `-L --daemon` prints ipvsadm's
// lines; the connections made through A appear in B's `-Lnc` within a
// poll and a sync message; `--stop-daemon` stops both, after which new
// connections are no longer synced.
func TestNetnsSyncDaemonCLI(t *testing.T) {
	netns.RequireRoot(t)
	h := newHATopo(t)
	govsadmBinary(t)
	a, b := h.startPlain(0), h.startPlain(1)
	for _, p := range []*govsdProc{a, b} {
		waitUntil(t, "govsd answers govsadm", 10*time.Second, func() bool {
			_, _, code := adm(t, p, "-L", "-n")
			return code == 0
		})
	}

	vip := h.vip
	for _, p := range []*govsdProc{a, b} {
		for _, port := range []string{"7", "80"} {
			mustAdm(t, p, "-A", "-t", vip+":"+port, "-s", "rr")
			mustAdm(t, p, "-a", "-t", vip+":"+port, "-r", "10.9.0.11:"+port, "-g")
			mustAdm(t, p, "-a", "-t", vip+":"+port, "-r", "10.9.0.12:"+port, "-g")
		}
	}
	h.run(h.dirs[0], "ip", "addr", "add", vip+"/32", "dev", "eth0")

	// No daemon yet: -L --daemon prints nothing; stopping one is
	// ipvsadm's error.
	if out := mustAdm(t, a, "-L", "--daemon"); out != "" {
		t.Fatalf("govsadm -L --daemon before --start-daemon: %q, want nothing", out)
	}
	if _, errOut, code := adm(t, a, "--stop-daemon", "master"); code == 0 || errOut != "No daemon is running\n" {
		t.Errorf("govsadm --stop-daemon master with none running: exit %d, stderr %q; want ipvsadm's \"No daemon is running\"", code, errOut)
	}

	mustAdm(t, a, "--start-daemon", "master", "--mcast-interface", "eth0", "--syncid", "5")
	mustAdm(t, b, "--start-daemon", "backup", "--mcast-interface", "eth0", "--syncid", "5")
	// The kernel reports its defaults, and ipvsadm prints them: maxlen
	// is the interface's MTU less the IP and UDP headers.
	const tail = " sync daemon (mcast=eth0, syncid=5, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
	if out := mustAdm(t, a, "-L", "--daemon"); out != "master"+tail {
		t.Errorf("A: govsadm -L --daemon = %q, want %q", out, "master"+tail)
	}
	if out := mustAdm(t, b, "-L", "--daemon"); out != "backup"+tail {
		t.Errorf("B: govsadm -L --daemon = %q, want %q", out, "backup"+tail)
	}
	if _, errOut, code := adm(t, a, "--start-daemon", "master", "--mcast-interface", "eth0", "--syncid", "5"); code == 0 || errOut != "Daemon has already run\n" {
		t.Errorf("a second --start-daemon master: exit %d, stderr %q; want ipvsadm's \"Daemon has already run\"", code, errOut)
	}

	// A held-open connection and a download through A.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tOpen := time.Now()
	hc := h.holdEcho(ctx)
	dl := make(chan error, 1)
	go func() { dl <- h.download(4) }()
	var onA, onB connLine
	tSynced := waitUntil(t, "B's govsadm -Lnc lists the held-open connection", 5*time.Second, func() bool {
		var ok bool
		onB, ok = findConn(parseConns(t, mustAdm(t, b, "-Lnc")), hc.local, vip+":7")
		return ok && onB.state == "ESTABLISHED"
	})
	onA, ok := findConn(parseConns(t, mustAdm(t, a, "-Lnc")), hc.local, vip+":7")
	if !ok {
		t.Fatalf("A's govsadm -Lnc lacks the held-open connection %s:\n%s", hc.local, mustAdm(t, a, "-Lnc"))
	}
	if onA.proto != onB.proto || onA.state != onB.state || onA.dest != onB.dest {
		t.Errorf("the held-open connection on A: %+v, on B: %+v; want the same protocol, state and destination", onA, onB)
	}
	t.Logf("the held-open connection was in B's -Lnc %v after it opened: %+v", tSynced.Sub(tOpen).Round(10*time.Millisecond), onB)
	if d := tSynced.Sub(tOpen); d > syncLatency+500*time.Millisecond {
		t.Errorf("syncing took %v; want at most %v (poll, flush time, check period)", d, syncLatency)
	}
	if err := <-dl; err != nil {
		t.Fatalf("download through A: %v", err)
	}
	waitUntil(t, "B lists the download's connection", 3*time.Second, func() bool {
		for _, c := range parseConns(t, mustAdm(t, b, "-Lnc")) {
			if c.virtual == vip+":80" && strings.HasPrefix(c.source, "10.9.0.1:") {
				return true
			}
		}
		return false
	})
	outB := mustAdm(t, b, "-Lnc")
	t.Logf("B's govsadm -Lnc:\n%s", outB)

	// Stop both daemons.
	mustAdm(t, a, "--stop-daemon", "master")
	mustAdm(t, b, "--stop-daemon", "backup")
	for _, p := range []*govsdProc{a, b} {
		if out := mustAdm(t, p, "-L", "--daemon"); out != "" {
			t.Errorf("govsadm -L --daemon after --stop-daemon: %q, want nothing", out)
		}
	}
	// A connection opened now is not synced.
	hc2 := h.holdEcho(ctx)
	time.Sleep(syncLatency + 500*time.Millisecond)
	if _, ok := findConn(parseConns(t, mustAdm(t, a, "-Lnc")), hc2.local, vip+":7"); !ok {
		t.Fatalf("A lacks the connection opened after --stop-daemon")
	}
	if c, ok := findConn(parseConns(t, mustAdm(t, b, "-Lnc")), hc2.local, vip+":7"); ok {
		t.Errorf("B learnt a connection opened after --stop-daemon: %+v", c)
	}
	for _, c := range []*heldConn{hc, hc2} {
		if n, err := c.result(); err != nil || n == 0 {
			t.Errorf("held-open connection %s: %d echoes, %v", c.local, n, err)
		}
	}
}
