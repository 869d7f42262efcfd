package realserver

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Mode is the forwarding method the director uses toward this realserver.
type Mode string

// The modes a realserver is set up for. NAT needs nothing on the
// realserver beyond a route through the director, so it is not one.
const (
	ModeDR  Mode = "dr"  // ipvsadm -g: the VIP arrives unchanged in an Ethernet frame.
	ModeTUN Mode = "tun" // ipvsadm -i: the VIP arrives encapsulated to the RIP.
)

// TunType is the encapsulation the director uses in TUN mode.
type TunType string

// The encapsulations the BPF decapsulator strips.
const (
	TunIPIP TunType = "ipip" // IPIP and IPv6-in-IPv6.
	TunGUE  TunType = "gue"  // GUE over UDP (IPIP stays accepted too).
)

// Defaults.
const (
	DefaultDev       = "lo"
	DefaultStatePath = "/run/govs/realserver.json"
	DefaultBPFDir    = "/sys/fs/bpf/govs-realserver"
)

// Config is what a realserver should look like. The zero values of Dev,
// Mode, TunType and BPFDir mean their defaults (see SetDefaults).
type Config struct {
	VIPs []netip.Addr `json:"vips"`
	Mode Mode         `json:"mode"`
	// Dev holds the VIPs: lo, or a device that does not answer ARP.
	Dev string `json:"dev"`
	// IngressDevs (TUN) are where the encapsulated packets arrive: the
	// decapsulator is attached there, rp_filter relaxed and the MSS of
	// their routes clamped. Empty: the devices of the default routes.
	IngressDevs []string `json:"ingress_devs,omitempty"`
	TunType     TunType  `json:"tun_type,omitempty"`
	GUEPort     uint16   `json:"gue_port,omitempty"`
	// MSS (TUN) is the advmss put on the ingress devices' routes; 0
	// derives it from MTU, or from each route's device MTU, minus the
	// outer headers.
	MSS int `json:"mss,omitempty"`
	// MTU (TUN) is the path MTU between the director and this
	// realserver, when it is not the ingress device's MTU.
	MTU int `json:"mtu,omitempty"`
	// BPFDir (TUN) is the bpffs directory where the decapsulator's links
	// are pinned so they outlive govsadm.
	BPFDir string `json:"bpf_dir,omitempty"`
}

// SetDefaults fills in the defaults for unset fields.
func (c *Config) SetDefaults() {
	if c.Mode == "" {
		c.Mode = ModeDR
	}
	if c.Dev == "" {
		c.Dev = DefaultDev
	}
	if c.Mode == ModeTUN {
		if c.TunType == "" {
			c.TunType = TunIPIP
			if c.GUEPort != 0 {
				c.TunType = TunGUE
			}
		}
		if c.BPFDir == "" {
			c.BPFDir = DefaultBPFDir
		}
	}
}

// Validate reports every problem of c (after SetDefaults), joined.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(c.VIPs) == 0 {
		bad("no VIP: give at least one with --vip")
	}
	for i, v := range c.VIPs {
		switch {
		case !v.IsValid():
			bad("VIP %d is not an address", i+1)
		case v.Zone() != "":
			bad("VIP %s: zones are not allowed", v)
		case v.Is4In6():
			bad("VIP %s: write IPv4 VIPs as IPv4", v)
		case v.IsUnspecified() || v.IsLoopback() || v.IsMulticast() || v.IsLinkLocalUnicast():
			bad("VIP %s is not a unicast service address", v)
		case slices.Contains(c.VIPs[:i], v):
			bad("VIP %s given twice", v)
		}
	}
	switch c.Mode {
	case ModeDR:
		if len(c.IngressDevs) > 0 || c.TunType != "" || c.GUEPort != 0 || c.MSS != 0 || c.MTU != 0 {
			bad("--ingress-dev, --tun-type, --gue-port, --mss and --mtu are for --mode tun only")
		}
	case ModeTUN:
		switch c.TunType {
		case TunIPIP:
			if c.GUEPort != 0 {
				bad("--gue-port %d with --tun-type ipip: use --tun-type gue", c.GUEPort)
			}
		case TunGUE:
			if c.GUEPort == 0 {
				bad("--tun-type gue needs --gue-port (the director's --tun-port)")
			}
		default:
			bad("unknown tunnel type %q: want ipip or gue", c.TunType)
		}
		if c.MSS != 0 && c.MTU != 0 {
			bad("--mss and --mtu both given: --mss sets the clamp, --mtu derives it; give one")
		}
		if c.MSS != 0 && (c.MSS < 536 || c.MSS > 65495) {
			bad("--mss %d out of range 536..65495", c.MSS)
		}
		if c.MTU != 0 && (c.MTU < 1280 || c.MTU > 65535) {
			bad("--mtu %d out of range 1280..65535", c.MTU)
		}
		for _, d := range c.IngressDevs {
			if d == c.Dev || d == "lo" {
				bad("ingress device %s: encapsulated packets arrive on a real interface, not on %s", d, d)
			}
		}
		if c.BPFDir == "" {
			bad("no bpffs directory for the decapsulator's pins")
		}
	default:
		bad("unknown mode %q: want dr or tun", c.Mode)
	}
	if c.Dev == "" {
		bad("no device for the VIPs")
	}
	return errors.Join(errs...)
}

func (c *Config) hasFamily(v4 bool) bool {
	return slices.ContainsFunc(c.VIPs, func(a netip.Addr) bool { return a.Is4() == v4 })
}
