package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"

	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/dataplane/ebpf"
	"github.com/govs/govs/internal/dataplane/proxy"
	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/ipvs"
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
	markRules  []ebpf.MarkRule
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
	fs.Func("fwmark-rule", `ebpf: give packets without a mark this firewall mark, as "proto prefix ports mark" (proto tcp, udp or any; ports 80, 80-81 or any), e.g. "tcp 10.0.0.100/32 80-81 7"; repeat for several, the first match wins. Marks set by nftables or iptables come too late for the ebpf data plane: use this for firewall-mark services`, func(s string) error {
		r, err := parseMarkRule(s)
		if err != nil {
			return err
		}
		o.markRules = append(o.markRules, r)
		return nil
	})
	fs.BoolVar(&o.remove, "ebpf-remove", false, "ebpf: detach the data plane and remove everything pinned under --bpf-pin-path, then exit")
}

// newDataplane is the one place a data plane is chosen and built.
func newDataplane(o dataplaneOptions, eng *engine.Engine, log *slog.Logger) (dataplane.Dataplane, error) {
	switch o.name {
	case "proxy":
		if len(o.markRules) > 0 {
			return nil, fmt.Errorf("--fwmark-rule is for the ebpf data plane only")
		}
		p, err := proxy.New(eng, log.With("dataplane", "proxy"))
		if err != nil {
			return nil, err
		}
		return p, nil
	case "ebpf":
		if len(o.interfaces) == 0 {
			return nil, fmt.Errorf("the ebpf data plane needs the interfaces to attach to: pass --interface eth0 (the one clients' traffic for the VIPs arrives on; for NAT also the realservers' side)")
		}
		d, err := ebpf.New(ebpf.Options{Interfaces: o.interfaces, XDP: o.xdp, PinPath: o.pinPath, MaxConns: uint32(o.maxConns), MarkRules: o.markRules}, log.With("dataplane", "ebpf"))
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	return nil, fmt.Errorf("unknown data plane %q: use --dataplane proxy or --dataplane ebpf", o.name)
}

// parseMarkRule parses a --fwmark-rule: "proto prefix ports mark", with
// proto tcp, udp or any, prefix an address prefix (a bare address is a
// host prefix), ports a port, a range lo-hi or any, and mark a non-zero
// number (decimal or 0x hex).
func parseMarkRule(s string) (ebpf.MarkRule, error) {
	var r ebpf.MarkRule
	f := strings.Fields(s)
	if len(f) != 4 {
		return r, fmt.Errorf("firewall-mark rule %q: want 4 fields, \"proto prefix ports mark\" (e.g. \"tcp 10.0.0.100/32 80-81 7\")", s)
	}
	switch strings.ToLower(f[0]) {
	case "tcp":
		r.Proto = ipvs.ProtoTCP
	case "udp":
		r.Proto = ipvs.ProtoUDP
	case "any":
		r.Proto = ipvs.ProtoNone
	default:
		return r, fmt.Errorf("firewall-mark rule %q: protocol %q: want tcp, udp or any", s, f[0])
	}
	if strings.Contains(f[1], "/") {
		p, err := netip.ParsePrefix(f[1])
		if err != nil {
			return r, fmt.Errorf("firewall-mark rule %q: %w", s, err)
		}
		r.Dst = p
	} else {
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			return r, fmt.Errorf("firewall-mark rule %q: %w", s, err)
		}
		r.Dst = netip.PrefixFrom(a, a.BitLen())
	}
	port := func(p string) (uint16, error) {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("firewall-mark rule %q: port %q: want a number 0-65535", s, p)
		}
		return uint16(n), nil
	}
	switch lo, hi, isRange := strings.Cut(f[2], "-"); {
	case strings.EqualFold(f[2], "any"):
		r.PortMin, r.PortMax = 0, 65535
	case isRange:
		var err error
		if r.PortMin, err = port(lo); err != nil {
			return r, err
		}
		if r.PortMax, err = port(hi); err != nil {
			return r, err
		}
	default:
		n, err := port(f[2])
		if err != nil {
			return r, err
		}
		r.PortMin, r.PortMax = n, n
	}
	m, err := strconv.ParseUint(f[3], 0, 32)
	if err != nil {
		return r, fmt.Errorf("firewall-mark rule %q: mark %q: want a number 1-4294967295", s, f[3])
	}
	r.Mark = uint32(m)
	if err := r.Validate(); err != nil {
		return r, fmt.Errorf("firewall-mark rule %q: %w", s, err)
	}
	return r, nil
}
