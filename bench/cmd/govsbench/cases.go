//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	osexec "os/exec"

	"github.com/govs/govs/internal/dataplane/ebpf"
)

// A benchCase is one way of getting the client's traffic to the
// realservers.
type benchCase struct {
	name string
	desc string
	// routing of the realservers' replies.
	routing routing
	// setup starts the director's part; it returns the PID whose CPU is
	// the director's process CPU (0: none, the kernel does all the work).
	setup func(ctx context.Context, h *harness, t *topo) (pid int, err error)
	// direct: the client talks to the realservers' addresses, not the VIP.
	direct bool
	// optIn: a diagnostic case, run only when --cases names it exactly.
	optIn bool
}

// errNotAvailable marks a case the build cannot run yet (XDP before the
// ebpf package has it); it is reported as such, not as a number.
var errNotAvailable = errors.New("not yet available")

func allCases() []benchCase {
	cs := []benchCase{
		{name: "direct", desc: "client -> realservers, the director a plain IP router (the ceiling)", routing: viaDirector, direct: true,
			setup: func(context.Context, *harness, *topo) (int, error) { return 0, nil }},
	}
	for _, xdp := range []bool{false, true} {
		for _, m := range []struct{ name, flag string }{{"dr", "-g"}, {"nat", "-m"}, {"tun", "-i"}} {
			at := "tc"
			if xdp {
				at = "xdp"
			}
			r := directReply
			if m.flag == "-m" {
				r = viaDirector
			}
			cs = append(cs, benchCase{
				name: "govs-" + at + "-" + m.name, routing: r,
				desc: fmt.Sprintf("govsd --dataplane ebpf at %s, %s (ipvsadm %s)", strings.ToUpper(at), strings.ToUpper(m.name), m.flag),
				setup: func(ctx context.Context, h *harness, t *topo) (int, error) {
					return h.setupGovsEBPF(ctx, t, xdp, m.flag, len(rsIPs))
				},
			})
		}
	}
	// The same as govs-tc-dr with VIP:80 on rs1 alone, as `direct` sends
	// every connection to rs1: tells the director's cost from the cost of
	// spreading the load over both realservers.
	cs = append(cs, benchCase{
		name: "govs-tc-dr-rs1", routing: directReply, optIn: true,
		desc: "govs-tc-dr with VIP:80 on rs1 alone, like direct (diagnostic; run only when named)",
		setup: func(ctx context.Context, h *harness, t *topo) (int, error) {
			return h.setupGovsEBPF(ctx, t, false, "-g", 1)
		},
	})
	cs = append(cs,
		benchCase{name: "nftables", desc: "nftables DNAT, numgen random mod 2 vmap (kube-proxy's nftables mode)", routing: viaDirector,
			setup: func(ctx context.Context, h *harness, t *topo) (int, error) { return 0, h.setupNft(ctx, t) }},
		benchCase{name: "haproxy", desc: "HAProxy, mode tcp, roundrobin, nbthread 2", routing: viaDirector,
			setup: func(ctx context.Context, h *harness, t *topo) (int, error) { return h.setupHAProxy(ctx, t) }},
		benchCase{name: "govs-proxy", desc: "govsd --dataplane proxy (userspace, splice), NAT", routing: viaDirector,
			setup: func(ctx context.Context, h *harness, t *topo) (int, error) { return h.setupGovsProxy(ctx, t) }},
	)
	return cs
}

// startServers starts nginx (HTTP on :80, a small body at / and a 0-byte
// keep-alive friendly response) and iperf3 -s on :5201 on both
// realservers.
func (h *harness) startServers(t *topo) error {
	for i := range rsIPs {
		rs := fmt.Sprintf("rs%d", i+1)
		dir := filepath.Join(t.tmp, t.prefix+"-"+rs+"-nginx")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 2;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 32768; multi_accept on; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	keepalive_requests 10000000;
	keepalive_timeout 60s;
	server {
		listen 80 backlog=65535;
		location / { default_type text/plain; return 200 "%[2]s\n"; }
	}
}
`, dir, rs)
		cf := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
			return err
		}
		if _, err := t.start(rs, "nginx", "-p", dir, "-c", cf, "-e", filepath.Join(dir, "error.log")); err != nil {
			return err
		}
		if _, err := t.start(rs, "iperf3", "-s", "-p", "5201"); err != nil {
			return err
		}
	}
	return nil
}

// govsadm runs bin/govsadm against the case's govsd.
func (h *harness) govsadm(ctx context.Context, sock string, args ...string) error {
	c := osexec.CommandContext(ctx, h.govsadmBin, args...)
	c.Env = append(os.Environ(), "GOVS_SOCKET="+sock)
	out, err := c.CombinedOutput()
	if err != nil {
		return fmt.Errorf("govsadm %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// startGovsd starts govsd in the director's namespace and waits for its
// API socket; an early exit returns govsd's own message.
func (h *harness) startGovsd(ctx context.Context, t *topo, args ...string) (*proc, string, error) {
	sock := filepath.Join(t.tmp, t.prefix+"-govsd.sock")
	args = append([]string{"--socket", sock, "--metrics-address", "", "--log-level", "warn"}, args...)
	p, err := t.start("dir", h.govsdBin, args...)
	if err != nil {
		return nil, "", err
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			log := lastLog(t, p)
			return nil, "", fmt.Errorf("govsd exited at start: %s", log)
		}
		if _, err := os.Stat(sock); err == nil {
			if err := h.govsadm(ctx, sock, "-Ln"); err == nil {
				return p, sock, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, "", fmt.Errorf("govsd did not answer on %s within 15s", sock)
}

// lastLog is the captured output of p (its log file).
func lastLog(t *topo, p *proc) string {
	for i, q := range t.procs {
		if q == p {
			b, _ := os.ReadFile(filepath.Join(t.tmp, fmt.Sprintf("%s-%d-%s-%s.log", t.prefix, i, "dir", filepath.Base(p.name))))
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}

// services configures VIP:80 over the first web realservers (rr; both
// but for a diagnostic case), VIP:5201 on rs1 alone (iperf3's control and
// data connections must meet) and UDP VIP:9000 over both (the flood).
func (h *harness) services(ctx context.Context, sock, fwd string, web int) error {
	cmds := [][]string{
		{"-A", "-t", vip + ":80", "-s", "rr"},
	}
	for _, ip := range rsIPs[:web] {
		cmds = append(cmds, []string{"-a", "-t", vip + ":80", "-r", ip + ":80", fwd, "-w", "1"})
	}
	cmds = append(cmds, [][]string{
		{"-A", "-t", vip + ":5201", "-s", "rr"},
		{"-a", "-t", vip + ":5201", "-r", rsIPs[0] + ":5201", fwd, "-w", "1"},
		{"-A", "-u", fmt.Sprintf("%s:%d", vip, floodPort), "-s", "rr"},
		{"-a", "-u", fmt.Sprintf("%s:%d", vip, floodPort), "-r", fmt.Sprintf("%s:%d", rsIPs[0], floodPort), fwd, "-w", "1"},
		{"-a", "-u", fmt.Sprintf("%s:%d", vip, floodPort), "-r", fmt.Sprintf("%s:%d", rsIPs[1], floodPort), fwd, "-w", "1"},
	}...)
	for _, c := range cmds {
		if err := h.govsadm(ctx, sock, c...); err != nil {
			return err
		}
	}
	return nil
}

func (h *harness) setupGovsEBPF(ctx context.Context, t *topo, xdp bool, fwd string, web int) (int, error) {
	pin := fmt.Sprintf("/sys/fs/bpf/govsbench-%d-%d", os.Getpid(), t.seq)
	t.onClose(func() { _ = ebpf.Remove(pin) })
	args := []string{"--dataplane", "ebpf", "--interface", "d0", "--bpf-pin-path", pin, "--max-conns", "1048576"}
	if xdp {
		args = append(args, "--xdp")
		// Native XDP on veth: the peer of the egress device (d0: the
		// director is one-armed) needs GRO (or an XDP program), and
		// partial checksums do not survive. Only pd: GRO on the other
		// bridge ports would hand d0 aggregated frames larger than a
		// page, which XDP without frags drops.
		for _, dev := range []string{"pd"} {
			if _, err := t.nsRun(ctx, "lan", "ethtool", "-K", dev, "gro", "on"); err != nil {
				return 0, err
			}
		}
		for _, s := range [][2]string{{"client", "c0"}, {"rs1", "e0"}, {"rs2", "e0"}, {"dir", "d0"}} {
			if _, err := t.nsRun(ctx, s[0], "ethtool", "-K", s[1], "tx", "off"); err != nil {
				return 0, err
			}
		}
	}
	if fwd == "-i" {
		for _, rs := range []string{"rs1", "rs2"} {
			var d *ebpf.Decap
			if err := t.inNS(rs, func() error {
				var err error
				d, err = ebpf.AttachDecap("e0", 0, "")
				return err
			}); err != nil {
				return 0, fmt.Errorf("attach decap on %s: %w", rs, err)
			}
			t.onClose(func() { d.Close() })
		}
	}
	p, sock, err := h.startGovsd(ctx, t, args...)
	if err != nil {
		if xdp && (strings.Contains(err.Error(), "XDP") || strings.Contains(err.Error(), "not supported")) {
			return 0, fmt.Errorf("%w: %v", errNotAvailable, err)
		}
		return 0, err
	}
	if err := h.services(ctx, sock, fwd, web); err != nil {
		return 0, err
	}
	return p.pid(), nil
}

func (h *harness) setupGovsProxy(ctx context.Context, t *topo) (int, error) {
	p, sock, err := h.startGovsd(ctx, t, "--dataplane", "proxy")
	if err != nil {
		return 0, err
	}
	if err := h.services(ctx, sock, "-m", len(rsIPs)); err != nil {
		return 0, err
	}
	return p.pid(), nil
}

// setupNft loads what kube-proxy's nftables mode generates for a
// ClusterIP service, reduced to its core: a verdict map on the service
// address, numgen random over the endpoints, one DNAT chain per
// endpoint.
func (h *harness) setupNft(ctx context.Context, t *topo) error {
	rules := fmt.Sprintf(`table ip govsbench {
	chain ep0 {
		dnat to %[2]s
	}
	chain ep1 {
		dnat to %[3]s
	}
	chain svc80 {
		numgen random mod 2 vmap { 0 : goto ep0, 1 : goto ep1 }
	}
	chain svc5201 {
		dnat to %[2]s
	}
	map services {
		type ipv4_addr . inet_proto . inet_service : verdict
		elements = { %[1]s . tcp . 80 : goto svc80, %[1]s . tcp . 5201 : goto svc5201, %[1]s . udp . 9000 : goto svc80 }
	}
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr . meta l4proto . th dport vmap @services
	}
}
`, vip, rsIPs[0], rsIPs[1])
	f := filepath.Join(t.tmp, t.prefix+"-nft.conf")
	if err := os.WriteFile(f, []byte(rules), 0o644); err != nil {
		return err
	}
	_, err := t.nsRun(ctx, "dir", "nft", "-f", f)
	return err
}

func (h *harness) setupHAProxy(ctx context.Context, t *topo) (int, error) {
	conf := fmt.Sprintf(`global
	maxconn 8000
	nbthread 2
	log stderr format raw local0 err
defaults
	mode tcp
	timeout connect 5s
	timeout client 60s
	timeout server 60s
	maxconn 8000
frontend web
	bind %[1]s:80
	default_backend web
backend web
	balance roundrobin
	server rs1 %[2]s:80
	server rs2 %[3]s:80
frontend iperf
	bind %[1]s:5201
	default_backend iperf
backend iperf
	server rs1 %[2]s:5201
`, vip, rsIPs[0], rsIPs[1])
	f := filepath.Join(t.tmp, t.prefix+"-haproxy.cfg")
	if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
		return 0, err
	}
	p, err := t.start("dir", "haproxy", "-db", "-f", f)
	if err != nil {
		return 0, err
	}
	time.Sleep(300 * time.Millisecond)
	if p.exited() {
		return 0, fmt.Errorf("haproxy exited at start: %s", lastLog(t, p))
	}
	return p.pid(), nil
}
