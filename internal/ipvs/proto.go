package ipvs

import (
	"fmt"
	"strings"
)

// Protocol is an IP protocol number of a virtual service.
type Protocol uint8

// The protocols a virtual service can carry. A firewall-mark service has
// no protocol of its own (ProtoNone); its connections carry the packet's.
const (
	ProtoNone Protocol = 0
	ProtoTCP  Protocol = 6
	ProtoUDP  Protocol = 17
	ProtoSCTP Protocol = 132
)

// String returns the name ipvsadm prints in listings ("TCP", "UDP", "SCTP").
func (p Protocol) String() string {
	switch p {
	case ProtoTCP:
		return "TCP"
	case ProtoUDP:
		return "UDP"
	case ProtoSCTP:
		return "SCTP"
	case ProtoNone:
		return "none"
	}
	return fmt.Sprintf("proto%d", uint8(p))
}

// ParseProtocol accepts "tcp", "udp", "sctp" in any case.
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return ProtoTCP, nil
	case "udp":
		return ProtoUDP, nil
	case "sctp":
		return ProtoSCTP, nil
	}
	return 0, fmt.Errorf("unknown protocol %q: use tcp, udp or sctp", s)
}

// MarshalText implements encoding.TextMarshaler (JSON uses the lower-case name).
func (p Protocol) MarshalText() ([]byte, error) {
	if p == ProtoNone {
		return []byte(""), nil
	}
	return []byte(strings.ToLower(p.String())), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Protocol) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*p = ProtoNone
		return nil
	}
	v, err := ParseProtocol(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Family is an address family of a service or destination.
type Family uint8

// Address families, with the values of AF_INET and AF_INET6.
const (
	FamilyNone Family = 0
	IPv4       Family = 2
	IPv6       Family = 10
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	}
	return "none"
}

// MarshalText implements encoding.TextMarshaler.
func (f Family) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *Family) UnmarshalText(b []byte) error {
	switch strings.ToLower(string(b)) {
	case "ipv4", "inet", "4":
		*f = IPv4
	case "ipv6", "inet6", "6":
		*f = IPv6
	case "", "none":
		*f = FamilyNone
	default:
		return fmt.Errorf("unknown address family %q: use ipv4 or ipv6", b)
	}
	return nil
}
