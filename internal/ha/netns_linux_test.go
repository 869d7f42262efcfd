package ha_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/netns"
	"github.com/govs/govs/internal/testenv"
)

// The HA topology: one Ethernet segment (a bridge in namespace "lan")
// with a client, two directors and two realservers, DR mode:
//
//	client 10.9.0.1 --+
//	dirA   10.9.0.2 --+  VIP 10.9.0.100 on the VRRP master's eth0
//	dirB   10.9.0.3 --+-- br0
//	rs1    10.9.0.11 -+  VIP on lo, arp_ignore=1, arp_announce=2
//	rs2    10.9.0.12 -+
//
// Each director is a govsd process (ip netns exec, so it gets its own
// mount namespace and bpffs: when the process dies, its pinned programs
// go with it, as on a crashed machine) running keepalived.conf with a
// vrrp_instance, lvs_sync_daemon and the ebpf data plane.
type haTopo struct {
	t       *testing.T
	lan     *netns.NS
	client  *netns.NS
	dirs    [2]*netns.NS
	rs      [2]*netns.NS
	govsd   string
	dir     string
	vip     string
	procs   [2]*govsdProc
	dirLink [2]*netns.Link
}

type govsdProc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	log    bytes.Buffer
	socket string
	done   chan struct{}
}

func (p *govsdProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.Write(b)
}

func (p *govsdProc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// builds holds one sync.OnceValues per command the tests build, so each
// is built once per test binary.
var builds sync.Map // import path -> func() (string, error)

// buildBinary builds the command at import path pkg once per test binary
// and returns the binary's path.
func buildBinary(t *testing.T, pkg string) string {
	t.Helper()
	f, _ := builds.LoadOrStore(pkg, sync.OnceValues(func() (string, error) {
		dir, err := os.MkdirTemp("", "govs-ha-test")
		if err != nil {
			return "", err
		}
		bin := filepath.Join(dir, path.Base(pkg))
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %v: %s", pkg, err, out)
		}
		return bin, nil
	}))
	bin, err := f.(func() (string, error))()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// govsdBinary builds govsd once per test binary.
func govsdBinary(t *testing.T) string { return buildBinary(t, "github.com/govs/govs/cmd/govsd") }

func newHATopo(t *testing.T) *haTopo {
	t.Helper()
	netns.RequireRoot(t)
	testenv.Command(t, "ip", "iproute2")
	h := &haTopo{t: t, govsd: govsdBinary(t), dir: t.TempDir(), vip: "10.9.0.100"}
	h.lan = netns.New(t, "lan")
	br := h.lan.Bridge("br0")
	attach := func(ns *netns.NS, i int, addr string) *netns.Link {
		peer := fmt.Sprintf("p%d", i)
		l, p := netns.Veth(t, ns, "eth0", nil, h.lan, peer, nil)
		p.SetMaster(br)
		l.AddAddr(addr + "/24")
		return l
	}
	h.client = netns.New(t, "client")
	attach(h.client, 0, "10.9.0.1")
	for i := range h.dirs {
		h.dirs[i] = netns.New(t, fmt.Sprintf("dir%c", 'A'+i))
		h.dirLink[i] = attach(h.dirs[i], 1+i, fmt.Sprintf("10.9.0.%d", 2+i))
		// bpf_fib_lookup refuses to route without forwarding, as every
		// LVS director has it on.
		h.dirs[i].EnableForwarding()
	}
	for i := range h.rs {
		h.rs[i] = netns.New(t, fmt.Sprintf("rs%d", i+1))
		attach(h.rs[i], 3+i, fmt.Sprintf("10.9.0.%d", 11+i))
		h.rs[i].AddLoopbackAddr(h.vip)
		h.rs[i].Sysctl("net.ipv4.conf.all.arp_ignore", "1")
		h.rs[i].Sysctl("net.ipv4.conf.all.arp_announce", "2")
		h.serve(h.rs[i])
	}
	return h
}

// serve runs, in the realserver's namespace, an HTTP server whose
// /stream?mb=N&rate=R sends N MiB at R KiB/s, and an echo server on 7.
func (h *haTopo) serve(ns *netns.NS) {
	var hl, el net.Listener
	ns.MustDo(func() error {
		var err error
		if hl, err = net.Listen("tcp4", h.vip+":80"); err != nil {
			return err
		}
		el, err = net.Listen("tcp4", h.vip+":7")
		return err
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		rate, _ := strconv.Atoi(r.URL.Query().Get("rate"))
		total := mb << 20
		w.Header().Set("Content-Length", strconv.Itoa(total))
		chunk := make([]byte, 16<<10)
		tick := time.Duration(float64(time.Second) * float64(len(chunk)) / float64(rate<<10))
		next := time.Now()
		for sent := 0; sent < total; sent += len(chunk) {
			if _, err := w.Write(chunk[:min(len(chunk), total-sent)]); err != nil {
				return
			}
			next = next.Add(tick)
			time.Sleep(time.Until(next))
		}
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(hl)
	go func() {
		for {
			c, err := el.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	h.t.Cleanup(func() { srv.Close(); el.Close() })
}

const haConf = `global_defs {
    router_id %[1]s
    lvs_sync_daemon eth0 VI_1 id 51
}
vrrp_instance VI_1 {
    state %[2]s
    interface eth0
    virtual_router_id 51
    priority %[3]d
    advert_int 1
    garp_master_delay 1
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

// role is director i's VRRP state and priority in the tests' configs
// (0: A, MASTER 150; 1: B, BACKUP 100), and its name.
func role(i int) (name, state string, prio int) {
	if i == 1 {
		return "B", "BACKUP", 100
	}
	return "A", "MASTER", 150
}

// start runs govsd for director i on haConf.
func (h *haTopo) start(i int) *govsdProc {
	h.t.Helper()
	name, state, prio := role(i)
	return h.startWith(i, fmt.Sprintf(haConf, name, state, prio), "eth0", "/sys/fs/bpf/govs-ha-"+name)
}

// startWith runs govsd for director i in its namespace with the
// keepalived.conf text conf, the ebpf data plane on ifaces and its BPF
// pinned under pin; it is killed at cleanup.
func (h *haTopo) startWith(i int, conf, ifaces, pin string) *govsdProc {
	h.t.Helper()
	name, _, _ := role(i)
	file := filepath.Join(h.dir, name+".conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		h.t.Fatal(err)
	}
	p := &govsdProc{socket: filepath.Join(h.dir, name+".sock"), done: make(chan struct{})}
	p.cmd = exec.Command("ip", "netns", "exec", h.dirs[i].Name, h.govsd, "-f", file,
		"--dataplane", "ebpf", "--interface", ifaces, "--bpf-pin-path", pin,
		"--socket", p.socket, "--metrics-address", "", "--sync-sweep-period", "2s", "--log-level", "debug")
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	h.procs[i] = p
	h.t.Cleanup(func() { p.kill(h.t) })
	return p
}

func (p *govsdProc) kill(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	// ip netns exec execs govsd: the PID is govsd's.
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	if t.Failed() {
		t.Logf("govsd log:\n%s", p.logText())
	}
}

// crash makes director i a dead machine on a live switch port: its
// interface drops every frame in and out (nftables netdev hooks, ARP
// included), then its govsd is killed. The switch keeps delivering the
// clients' frames to it, so only VRRP's takeover and the new master's
// gratuitous ARP move the traffic. (Taking the link down instead makes
// the bridge flood the dead MAC's frames to every port, and the backup's
// TC program forwards them even before it is master.) reboot clears the
// filter and the addresses, as a restarted machine has neither.
func (h *haTopo) crash(i int) {
	h.nft(i, "add table netdev crash",
		"add chain netdev crash in { type filter hook ingress device eth0 priority -500; policy drop; }",
		"add chain netdev crash out { type filter hook egress device eth0 priority -500; policy drop; }")
	h.procs[i].kill(h.t)
}

func (h *haTopo) reboot(i int) {
	h.run(h.dirs[i], "ip", "addr", "del", h.vip+"/32", "dev", "eth0")
	h.nft(i, "delete table netdev crash")
}

func (h *haTopo) nft(i int, cmds ...string) {
	h.t.Helper()
	for _, c := range cmds {
		h.run(h.dirs[i], "nft", strings.Fields(c)...)
	}
}

func (h *haTopo) run(ns *netns.NS, name string, args ...string) {
	h.t.Helper()
	ns.MustDo(func() error {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "Cannot assign requested address") && !strings.Contains(string(out), "Address not found") {
			return fmt.Errorf("%s %v: %v: %s", name, args, err, out)
		}
		return nil
	})
}

// waitLog waits for a line of p's log containing all of words.
func waitLog(t *testing.T, p *govsdProc, d time.Duration, words ...string) time.Time {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		sc := bufio.NewScanner(strings.NewReader(p.logText()))
		for sc.Scan() {
			ok := true
			for _, w := range words {
				ok = ok && strings.Contains(sc.Text(), w)
			}
			if ok {
				return time.Now()
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no log line with %q within %v:\n%s", words, d, p.logText())
	return time.Time{}
}

// echoConn is a held-open connection through the VIP that sends a line
// every 100 ms and records the longest wait for its echo.
type echoConn struct {
	mu     sync.Mutex
	maxGap time.Duration
	stalls []string
	n      int
	err    error
}

func (h *haTopo) echo(ctx context.Context) *echoConn {
	e := &echoConn{}
	var c net.Conn
	h.client.MustDo(func() error {
		var err error
		c, err = net.DialTimeout("tcp4", h.vip+":7", 5*time.Second)
		return err
	})
	go func() {
		defer c.Close()
		r := bufio.NewReader(c)
		for i := 0; ctx.Err() == nil; i++ {
			start := time.Now()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			msg := fmt.Sprintf("ping %d\n", i)
			if _, err := c.Write([]byte(msg)); err != nil {
				e.set(err)
				return
			}
			line, err := r.ReadString('\n')
			if err != nil || line != msg {
				e.set(fmt.Errorf("echo %d: %q, %v", i, line, err))
				return
			}
			e.mu.Lock()
			if g := time.Since(start); g > 500*time.Millisecond {
				e.stalls = append(e.stalls, fmt.Sprintf("%v at %s", g.Round(10*time.Millisecond), start.Format("15:04:05.000")))
			}
			e.maxGap = max(e.maxGap, time.Since(start))
			e.n++
			e.mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return e
}

func (e *echoConn) set(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.err = err
}

func (e *echoConn) result() (int, time.Duration, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n, e.maxGap, e.err
}

// TestNetnsHAFailoverDR: A is master, B backup, both with the ebpf data
// plane in DR mode and connection sync. A long download and a held-open
// connection run through the VIP; A crashes mid-transfer; B takes over
// within the master down interval and both continue; A comes back with
// an empty table, learns B's connections as sync backup while its
// readiness gate holds preemption, then takes the VIP back; both
// connections still continue.
func TestNetnsHAFailoverDR(t *testing.T) {
	h := newHATopo(t)
	a := h.start(0)
	b := h.start(1)
	t0 := time.Now()
	waitLog(t, a, 10*time.Second, "entering state", "to=MASTER")
	waitLog(t, b, 10*time.Second, "sync daemon started", "state=backup")
	t.Logf("A master after %v", time.Since(t0).Round(10*time.Millisecond))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The download: 18 MiB at 768 KiB/s, about 24 s.
	type result struct {
		n   int64
		err error
	}
	dl := make(chan result, 1)
	// The socket is made in the client's namespace; the transport only
	// uses it.
	var sock net.Conn
	if err := h.client.Do(func() error {
		var err error
		sock, err = net.DialTimeout("tcp4", h.vip+":80", 5*time.Second)
		return err
	}); err != nil {
		pid := strconv.Itoa(a.cmd.Process.Pid)
		out, _ := exec.Command("nsenter", "-t", pid, "-m", "bpftool", "map", "dump", "pinned", "/sys/fs/bpf/govs-ha-A/ctr").CombinedOutput()
		t.Logf("ctr: %s", out)
		h.client.Do(func() error {
			out, _ := exec.Command("ip", "neigh").CombinedOutput()
			t.Logf("client neigh: %s", out)
			return nil
		})
		h.dirs[0].Do(func() error {
			out, _ := exec.Command("ip", "neigh").CombinedOutput()
			t.Logf("A neigh: %s", out)
			out, _ = exec.Command("tc", "filter", "show", "dev", "eth0", "ingress").CombinedOutput()
			t.Logf("A tc: %s", out)
			out, _ = exec.Command("bpftool", "net").CombinedOutput()
			t.Logf("A bpftool net: %s", out)
			return nil
		})
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(context.Context, string, string) (net.Conn, error) { return sock, nil }}}
	resp, err := c.Get("http://" + h.vip + "/stream?mb=18&rate=768")
	if err != nil {
		t.Fatal(err)
	}
	body := resp.Body
	go func() {
		n, err := io.Copy(io.Discard, body)
		body.Close()
		dl <- result{n, err}
	}()
	time.Sleep(500 * time.Millisecond)
	ac := api.NewClient(a.socket)
	defer ac.CloseIdleConnections()
	if cs, err := ac.Conns(ctx); err != nil || len(cs) == 0 {
		svcs, _ := ac.Services(ctx)
		t.Logf("A's connections during the download: %+v, %v; services %+v", cs, err, svcs)
		for _, x := range []struct {
			ns   *netns.NS
			args []string
		}{{h.client, []string{"neigh"}}, {h.dirs[0], []string{"addr"}}, {h.dirs[1], []string{"addr"}}, {h.rs[0], []string{"addr"}}} {
			x.ns.Do(func() error {
				out, _ := exec.Command("ip", x.args...).CombinedOutput()
				t.Logf("%s: ip %v:\n%s", x.ns.Name, x.args, out)
				return nil
			})
		}
	}
	ec := h.echo(ctx)

	time.Sleep(3 * time.Second)
	// Both connections were synced to B.
	bc := api.NewClient(b.socket)
	defer bc.CloseIdleConnections()
	conns, err := bc.Conns(ctx)
	if err != nil || len(conns) < 2 {
		t.Fatalf("B's connection table before the failover: %v, %v\n%s", conns, err, b.logText())
	}

	tKill := time.Now()
	t.Logf("crash A at %s", tKill.Format("15:04:05.000"))
	h.crash(0)
	tB := waitLog(t, b, 10*time.Second, "entering state", "to=MASTER")
	t.Logf("B took over %v after A crashed (master down interval 3.61 s)", tB.Sub(tKill).Round(10*time.Millisecond))
	if d := tB.Sub(tKill); d > 4500*time.Millisecond {
		t.Errorf("takeover took %v, more than the master down interval", d)
	}
	waitLog(t, b, 5*time.Second, "sync role follows VRRP", "sync=master")

	time.Sleep(2 * time.Second)
	h.reboot(0)
	tBack := time.Now()
	a = h.start(0)
	waitLog(t, a, 10*time.Second, "readiness gate open")
	tReady := time.Now()
	tA := waitLog(t, a, 15*time.Second, "entering state", "to=MASTER")
	t.Logf("A back: gate open %v after restart, master %v after restart",
		tReady.Sub(tBack).Round(10*time.Millisecond), tA.Sub(tBack).Round(10*time.Millisecond))
	if !strings.Contains(a.logText(), "lower priority master") && !strings.Contains(a.logText(), "ignoring lower priority advert") {
		t.Logf("note: A did not log hearing B before preempting")
	}
	waitLog(t, b, 5*time.Second, "entering state", "to=BACKUP")

	// Both connections continue through A.
	time.Sleep(2 * time.Second)
	n0, _, _ := ec.result()
	time.Sleep(time.Second)
	n1, gap, eerr := ec.result()
	if eerr != nil || n1 <= n0 {
		t.Fatalf("held-open connection after A's return: %d -> %d echoes, err %v", n0, n1, eerr)
	}
	t.Logf("held-open connection: %d echoes, longest wait %v, stalls %v", n1, gap.Round(10*time.Millisecond), ec.stalls)
	select {
	case r := <-dl:
		if r.err != nil || r.n != 18<<20 {
			t.Fatalf("download: %d bytes, %v", r.n, r.err)
		}
		t.Logf("download complete: %d bytes in %v", r.n, time.Since(t0).Round(100*time.Millisecond))
	case <-time.After(30 * time.Second):
		t.Fatal("download did not finish")
	}
}
