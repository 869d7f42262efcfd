package main

import (
	"flag"
	"fmt"
	"log/slog"
	"strings"

	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/dataplane/ebpf"
	"github.com/govs/govs/internal/dataplane/proxy"
	"github.com/govs/govs/internal/engine"
)

// dataplaneNames are the values --dataplane takes.
var dataplaneNames = []string{"proxy", "ebpf"}

// dataplaneOptions choose and configure the data plane.
type dataplaneOptions struct {
	name string
	// ebpf only.
	interfaces []string
	xdp        bool
	pinPath    string
	maxConns   uint
	remove     bool
}

func (o *dataplaneOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.name, "dataplane", "proxy", "data plane: "+strings.Join(dataplaneNames, " or "))
	fs.Func("interface", "ebpf: attach to this interface (repeat, or comma-separate, for several): where client traffic for the VIPs and NAT replies arrive", func(s string) error {
		for _, i := range strings.Split(s, ",") {
			if i = strings.TrimSpace(i); i != "" {
				o.interfaces = append(o.interfaces, i)
			}
		}
		return nil
	})
	fs.BoolVar(&o.xdp, "xdp", false, "ebpf: also attach in native XDP mode, in front of TC (for NICs whose drivers support it)")
	fs.StringVar(&o.pinPath, "bpf-pin-path", ebpf.DefaultPinPath, "ebpf: bpffs directory for the pinned maps and links")
	fs.UintVar(&o.maxConns, "max-conns", 0, "ebpf: connection table size (0: the data plane's default)")
	fs.BoolVar(&o.remove, "ebpf-remove", false, "ebpf: detach the data plane and remove everything pinned under --bpf-pin-path, then exit")
}

// newDataplane is the one place a data plane is chosen and built.
func newDataplane(o dataplaneOptions, eng *engine.Engine, log *slog.Logger) (dataplane.Dataplane, error) {
	switch o.name {
	case "proxy":
		p, err := proxy.New(eng, log.With("dataplane", "proxy"))
		if err != nil {
			return nil, err
		}
		return p, nil
	case "ebpf":
		if len(o.interfaces) == 0 {
			return nil, fmt.Errorf("the ebpf data plane needs the interfaces to attach to: pass --interface eth0 (the one clients' traffic for the VIPs arrives on; for NAT also the realservers' side)")
		}
		d, err := ebpf.New(ebpf.Options{Interfaces: o.interfaces, XDP: o.xdp, PinPath: o.pinPath, MaxConns: uint32(o.maxConns)}, log.With("dataplane", "ebpf"))
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	return nil, fmt.Errorf("unknown data plane %q: use --dataplane proxy or --dataplane ebpf", o.name)
}
