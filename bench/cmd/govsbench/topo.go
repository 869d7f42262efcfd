//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// The topology, the one of the ebpf package's namespace tests: client,
// director and two realservers on one Ethernet segment (a bridge in a
// namespace of its own), the classic LVS picture.
//
//	client   c0 10.1.0.2/24                         --+
//	director d0 10.1.0.1/24 10.2.0.1/24, VIP 10.1.0.100 --+-- br0 (lan)
//	rs1      e0 10.2.0.11/24                        --+
//	rs2      e0 10.2.0.12/24                        --+
//
// Every case gets a fresh topology, so no state (conntrack, neighbours,
// pinned maps, listening sockets) leaks from one case into the next.
const (
	clientIP = "10.1.0.2"
	dirIP    = "10.1.0.1"
	dipRS    = "10.2.0.1"
	vip      = "10.1.0.100"
)

var rsIPs = [2]string{"10.2.0.11", "10.2.0.12"}

// routing is how the realservers send their replies.
type routing int

const (
	// viaDirector: the realservers' default route is the director
	// (NAT, nftables DNAT, the direct path's return leg, proxies).
	viaDirector routing = iota
	// directReply: the realservers have the VIP on lo, ignore ARP for it
	// and reach the client subnet on-link (DR, TUN).
	directReply
)

type topo struct {
	prefix string // namespace name prefix, unique per run
	seq    int
	names  map[string]string // role -> namespace name
	tmp    string
	procs  []*proc
	undo   []func()
}

// proc is a process the harness started (kept by PID, stopped by PID).
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func newTopo(runID string, seq int, tmp string) *topo {
	return &topo{prefix: fmt.Sprintf("gb%s-%d", runID, seq), seq: seq, names: map[string]string{}, tmp: tmp}
}

func (t *topo) ns(role string) string { return t.names[role] }

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ipn runs ip -n ns ....
func (t *topo) ipn(role string, args ...string) error {
	return run("ip", append([]string{"-n", t.ns(role)}, args...)...)
}

// nsCmd returns a command that runs inside role's network namespace
// (nsenter --net: the mount namespace, and so /sys/fs/bpf, stays ours).
func (t *topo) nsCmd(ctx context.Context, role, name string, args ...string) *exec.Cmd {
	full := append([]string{"--net=/run/netns/" + t.ns(role), "--", name}, args...)
	c := exec.CommandContext(ctx, "nsenter", full...)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return c.Process.Signal(syscall.SIGTERM) }
	c.WaitDelay = 3 * time.Second
	return c
}

// nsRun runs a command in role's namespace and waits for it.
func (t *topo) nsRun(ctx context.Context, role, name string, args ...string) (string, error) {
	out, err := t.nsCmd(ctx, role, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), role, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// start starts a long-running process in role's namespace, its output in
// the temp directory; stop ends it by its PID.
func (t *topo) start(role, name string, args ...string) (*proc, error) {
	c := t.nsCmd(context.Background(), role, name, args...)
	logf, err := os.Create(filepath.Join(t.tmp, fmt.Sprintf("%s-%d-%s-%s.log", t.prefix, len(t.procs), role, filepath.Base(name))))
	if err != nil {
		return nil, err
	}
	c.Stdout, c.Stderr = logf, logf
	if err := c.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s in %s: %w", name, role, err)
	}
	p := &proc{name: name, cmd: c, done: make(chan struct{})}
	go func() { p.err = c.Wait(); logf.Close(); close(p.done) }()
	t.procs = append(t.procs, p)
	return p, nil
}

// pid is the PID of the program itself (nsenter execs it, same PID).
func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// build creates the namespaces, the bridge and the veths, and the
// realservers' routing for r.
func (t *topo) build(r routing) error {
	for _, role := range []string{"lan", "client", "dir", "rs1", "rs2"} {
		name := t.prefix + "-" + role
		if err := run("ip", "netns", "add", name); err != nil {
			return err
		}
		t.names[role] = name
		if err := t.ipn(role, "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	if err := t.ipn("lan", "link", "add", "br0", "type", "bridge"); err != nil {
		return err
	}
	if err := t.ipn("lan", "link", "set", "br0", "up"); err != nil {
		return err
	}
	legs := []struct{ role, dev, peer string }{{"client", "c0", "pc"}, {"dir", "d0", "pd"}, {"rs1", "e0", "p1"}, {"rs2", "e0", "p2"}}
	for _, l := range legs {
		steps := [][]string{
			{l.role, "link", "add", l.dev, "type", "veth", "peer", "name", l.peer, "netns", t.ns("lan")},
			{l.role, "link", "set", l.dev, "up"},
			{"lan", "link", "set", l.peer, "master", "br0"},
			{"lan", "link", "set", l.peer, "up"},
		}
		for _, s := range steps {
			if err := t.ipn(s[0], s[1:]...); err != nil {
				return err
			}
		}
	}
	steps := [][]string{
		{"client", "addr", "add", clientIP + "/24", "dev", "c0"},
		{"dir", "addr", "add", dirIP + "/24", "dev", "d0"},
		{"dir", "addr", "add", dipRS + "/24", "dev", "d0"},
		{"dir", "addr", "add", vip + "/32", "dev", "d0"},
		// The direct path: the client reaches the realservers through
		// the director as a router.
		{"client", "route", "add", "10.2.0.0/24", "via", dirIP},
	}
	for i, rip := range rsIPs {
		rs := fmt.Sprintf("rs%d", i+1)
		steps = append(steps, []string{rs, "addr", "add", rip + "/24", "dev", "e0"})
	}
	for _, s := range steps {
		if err := t.ipn(s[0], s[1:]...); err != nil {
			return err
		}
	}
	sysctls := map[string][]string{
		"dir":    {"net.ipv4.ip_forward=1", "net.ipv4.ip_local_port_range=1024 65535", "net.ipv4.tcp_tw_reuse=1", "net.core.somaxconn=65535", "net.ipv4.tcp_max_syn_backlog=65535"},
		"client": {"net.ipv4.ip_local_port_range=1024 65535", "net.ipv4.tcp_tw_reuse=1"},
		"rs1":    {"net.core.somaxconn=65535", "net.ipv4.tcp_max_syn_backlog=65535", "net.ipv4.tcp_tw_reuse=1"},
		"rs2":    {"net.core.somaxconn=65535", "net.ipv4.tcp_max_syn_backlog=65535", "net.ipv4.tcp_tw_reuse=1"},
	}
	for i := range rsIPs {
		rs := fmt.Sprintf("rs%d", i+1)
		switch r {
		case viaDirector:
			if err := t.ipn(rs, "route", "add", "default", "via", dipRS); err != nil {
				return err
			}
		case directReply:
			if err := t.ipn(rs, "addr", "add", vip+"/32", "dev", "lo"); err != nil {
				return err
			}
			// advmss: room for a TUN outer header (harmless for DR).
			if err := t.ipn(rs, "route", "add", "10.1.0.0/24", "dev", "e0", "advmss", "1400"); err != nil {
				return err
			}
			sysctls[rs] = append(sysctls[rs], "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
				"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.e0.rp_filter=0", "net.ipv4.conf.lo.rp_filter=0")
		}
	}
	for role, kvs := range sysctls {
		for _, kv := range kvs {
			if _, err := t.nsRun(context.Background(), role, "sysctl", "-q", "-w", kv); err != nil {
				return err
			}
		}
	}
	return nil
}

// inNS runs f on a thread switched into role's namespace.
func (t *topo) inNS(role string, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	h, err := netns.GetFromName(t.ns(role))
	if err != nil {
		return fmt.Errorf("open netns %s: %w", t.ns(role), err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		return err
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(fmt.Sprintf("cannot return to the original namespace: %v", err))
		}
	}()
	return f()
}

// onClose registers an undo step, run in reverse order by close.
func (t *topo) onClose(f func()) { t.undo = append(t.undo, f) }

// close stops every process the case started (by PID), runs the undo
// steps and deletes the namespaces.
func (t *topo) close() {
	for i := len(t.procs) - 1; i >= 0; i-- {
		t.procs[i].stop()
	}
	t.procs = nil
	for i := len(t.undo) - 1; i >= 0; i-- {
		t.undo[i]()
	}
	t.undo = nil
	for _, role := range []string{"client", "dir", "rs1", "rs2", "lan"} {
		if name, ok := t.names[role]; ok {
			_ = run("ip", "netns", "del", name)
			delete(t.names, role)
		}
	}
}
