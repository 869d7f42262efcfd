package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/demo"
)

var defaultDemoVIP = netip.MustParseAddrPort("127.0.0.1:8080")

// demoOptions are govsd --demo's settings.
type demoOptions struct {
	on       bool
	vip      netip.AddrPort
	requests int
	// mode is the eBPF demo's forwarding method: dr, nat or tun.
	mode string
}

// apply sets the defaults that make the demo run as any user on a fresh
// machine: a socket in the temporary directory, metrics on a free port,
// quieter logs. Flags the user gave win.
func (d demoOptions) apply(o *options, set map[string]bool, e env) {
	if !set["socket"] && e.getenv(api.SocketEnv) == "" {
		o.socket = filepath.Join(os.TempDir(), fmt.Sprintf("govsd-demo-%d.sock", os.Getuid()))
	}
	if !set["metrics-address"] {
		o.metricsAddress = "127.0.0.1:0"
	}
	if !set["log-level"] {
		o.logLevel = slog.LevelWarn
	}
}

// runDemo runs the demo against the director; it returns nil when the
// demo ends (after --demo-requests) or ctx is done.
func runDemo(ctx context.Context, d api.Director, o options, metricsAddr string, out io.Writer) error {
	if metricsAddr != "" {
		fmt.Fprintf(out, "govsd: API on %s, metrics on http://%s/metrics\n", o.socket, metricsAddr)
	}
	return demo.Run(ctx, d, demo.Config{VIP: o.demo.vip, Socket: o.socket, Requests: o.demo.requests}, out)
}

// runEBPFDemo is govsd --demo --dataplane ebpf (root): a client, this
// director and two realservers in network namespaces, forwarding by
// --demo-mode, removed again when the demo ends.
func runEBPFDemo(ctx context.Context, o options, out io.Writer) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the eBPF demo needs root (it builds network namespaces and loads BPF): run it with sudo, or drop --dataplane ebpf for the userspace demo")
	}
	return demo.RunEBPF(ctx, out, o.demo.mode, o.demo.requests)
}
