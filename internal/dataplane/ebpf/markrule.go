package ebpf

import (
	"fmt"
	"net/netip"

	"github.com/govs/govs/internal/ipvs"
)

// MaxMarkRules is the most firewall-mark rules (Options.MarkRules).
const MaxMarkRules = 256

// A MarkRule gives a firewall mark to the packets it matches, so that a
// firewall-mark service sees them: govs_tc and govs_xdp run before
// netfilter, so a mark set by nftables or iptables on the director comes
// too late (see the package documentation, "Firewall marks"). The rules
// are evaluated in order on every parsed TCP/UDP packet whose skb->mark
// is 0; the first match sets the mark.
type MarkRule struct {
	// Proto is ipvs.ProtoTCP, ipvs.ProtoUDP or ipvs.ProtoNone (any).
	Proto ipvs.Protocol
	// Dst is the destination prefix, IPv4 or IPv6 (not IPv4-mapped);
	// its host bits are ignored.
	Dst netip.Prefix
	// PortMin and PortMax bound the destination port (inclusive): 0 and
	// 65535 for any port.
	PortMin, PortMax uint16
	// Mark is the firewall mark given, not 0.
	Mark uint32
}

// String is the rule as govsd's --fwmark-rule takes it.
func (r MarkRule) String() string {
	proto := "any"
	switch r.Proto {
	case ipvs.ProtoTCP:
		proto = "tcp"
	case ipvs.ProtoUDP:
		proto = "udp"
	case ipvs.ProtoNone:
	default:
		proto = fmt.Sprintf("proto-%d", uint8(r.Proto))
	}
	ports := "any"
	switch {
	case r.PortMin == r.PortMax:
		ports = fmt.Sprint(r.PortMin)
	case r.PortMin != 0 || r.PortMax != 65535:
		ports = fmt.Sprintf("%d-%d", r.PortMin, r.PortMax)
	}
	return fmt.Sprintf("%s %s %s %d", proto, r.Dst, ports, r.Mark)
}

// Validate reports what is wrong with r (New checks every rule).
func (r MarkRule) Validate() error {
	switch r.Proto {
	case ipvs.ProtoNone, ipvs.ProtoTCP, ipvs.ProtoUDP:
	default:
		return fmt.Errorf("protocol %d: the data plane classifies TCP and UDP only (or any)", uint8(r.Proto))
	}
	if !r.Dst.IsValid() {
		return fmt.Errorf("destination prefix %v is not valid", r.Dst)
	}
	if r.Dst.Addr().Is4In6() {
		return fmt.Errorf("destination prefix %v is IPv4-mapped IPv6: use the IPv4 prefix", r.Dst)
	}
	if r.Dst.Addr().Zone() != "" {
		return fmt.Errorf("destination prefix %v has a zone", r.Dst)
	}
	if r.PortMin > r.PortMax {
		return fmt.Errorf("port range %d-%d is empty", r.PortMin, r.PortMax)
	}
	if r.Mark == 0 {
		return fmt.Errorf("mark 0 means no mark")
	}
	return nil
}

// validateMarkRules checks Options.MarkRules.
func validateMarkRules(rules []MarkRule) error {
	if len(rules) > MaxMarkRules {
		return fmt.Errorf("%d firewall-mark rules: at most %d", len(rules), MaxMarkRules)
	}
	for i, r := range rules {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("firewall-mark rule %d (%s): %w", i+1, r, err)
		}
	}
	return nil
}
