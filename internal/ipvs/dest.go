package ipvs

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
)

// FwdMethod is a destination's forwarding method, with the kernel's
// IP_VS_CONN_F_* values.
type FwdMethod uint8

// Forwarding methods.
const (
	Masq   FwdMethod = 0 // NAT, ipvsadm -m
	Local  FwdMethod = 1 // the director itself serves (localnode)
	Tunnel FwdMethod = 2 // IP tunnelling, ipvsadm -i
	Route  FwdMethod = 3 // direct routing, ipvsadm -g (the default)
)

// String returns the name ipvsadm prints in the Forward column.
func (m FwdMethod) String() string {
	switch m {
	case Masq:
		return "Masq"
	case Local:
		return "Local"
	case Tunnel:
		return "Tunnel"
	case Route:
		return "Route"
	}
	return fmt.Sprintf("fwd%d", uint8(m))
}

// ParseFwdMethod accepts the listing names and the common aliases
// (nat, dr, tun, gatewaying, ipip, masquerading) in any case.
func ParseFwdMethod(s string) (FwdMethod, error) {
	switch strings.ToLower(s) {
	case "masq", "nat", "masquerading":
		return Masq, nil
	case "route", "dr", "droute", "gatewaying":
		return Route, nil
	case "tunnel", "tun", "ipip", "tunneling":
		return Tunnel, nil
	case "local", "localnode":
		return Local, nil
	}
	return 0, fmt.Errorf("unknown forwarding method %q: use masq (nat), route (dr), tunnel (tun) or local", s)
}

// MarshalText implements encoding.TextMarshaler.
func (m FwdMethod) MarshalText() ([]byte, error) { return []byte(strings.ToLower(m.String())), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *FwdMethod) UnmarshalText(b []byte) error {
	v, err := ParseFwdMethod(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// TunnelType is the encapsulation of a Tunnel destination.
type TunnelType uint8

// Tunnel types, with the kernel's IP_VS_CONN_F_TUNNEL_TYPE_* values.
const (
	TunIPIP TunnelType = 0
	TunGUE  TunnelType = 1
	TunGRE  TunnelType = 2
)

func (t TunnelType) String() string {
	switch t {
	case TunIPIP:
		return "ipip"
	case TunGUE:
		return "gue"
	case TunGRE:
		return "gre"
	}
	return fmt.Sprintf("tun%d", uint8(t))
}

// ParseTunnelType accepts "ipip", "gue", "gre".
func ParseTunnelType(s string) (TunnelType, error) {
	switch strings.ToLower(s) {
	case "ipip":
		return TunIPIP, nil
	case "gue":
		return TunGUE, nil
	case "gre":
		return TunGRE, nil
	}
	return 0, fmt.Errorf("unknown tunnel type %q: use ipip, gue or gre", s)
}

// MarshalText implements encoding.TextMarshaler.
func (t TunnelType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *TunnelType) UnmarshalText(b []byte) error {
	v, err := ParseTunnelType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// TunFlags are tunnel encapsulation flags (ipvsadm --tun-nocsum,
// --tun-csum, --tun-remcsum), with the kernel's values.
type TunFlags uint16

// Tunnel flag bits. NoCsum is the absence of the others.
const (
	TunNoCsum  TunFlags = 0
	TunCsum    TunFlags = 1 << 0
	TunRemCsum TunFlags = 1 << 1
)

// Destination is a realserver's configuration within one service: every
// attribute ipvsadm -a can set, and govs's ProxyProtocol.
type Destination struct {
	Addr netip.Addr `json:"addr"`
	Port uint16     `json:"port"`
	Fwd  FwdMethod  `json:"fwd"`
	// Weight is the relative capacity; 0 quiesces the destination: it
	// takes no new connections, existing ones continue.
	Weight int32 `json:"weight"`
	// Upper and Lower are the connection thresholds (-x, -y); 0 is none.
	Upper uint32 `json:"upper_threshold,omitempty"`
	Lower uint32 `json:"lower_threshold,omitempty"`
	// Tunnel options, for Fwd == Tunnel.
	TunType  TunnelType `json:"tun_type,omitempty"`
	TunPort  uint16     `json:"tun_port,omitempty"`
	TunFlags TunFlags   `json:"tun_flags,omitempty"`
	// ProxyProtocol is a govs extension; ipvsadm and the kernel have no
	// such option. It is the PROXY protocol version (haproxy's
	// proxy-protocol.txt) the director speaks to this realserver before
	// the client's bytes, so that the realserver learns the client's
	// address: 0 none, [ProxyProtocolV1] (text, TCP services only) or
	// [ProxyProtocolV2] (binary; TCP, and UDP where it is prepended to
	// every datagram). Only a data plane that terminates connections (the
	// userspace proxy) can write the header; one that forwards packets
	// cannot, and its CheckDest should refuse a destination asking for it.
	ProxyProtocol uint8 `json:"proxy_protocol,omitempty"`
}

// PROXY protocol versions of Destination.ProxyProtocol; 0 is none.
const (
	ProxyProtocolV1 uint8 = 1
	ProxyProtocolV2 uint8 = 2
)

// ParseProxyProtocol accepts a PROXY protocol version as govsadm
// --proxy-protocol and keepalived.conf's proxy_protocol take it: "1" or
// "2", or "v1" or "v2" in any case. None (0) is written by leaving the
// option out.
func ParseProxyProtocol(s string) (uint8, error) {
	switch strings.ToLower(s) {
	case "1", "v1":
		return ProxyProtocolV1, nil
	case "2", "v2":
		return ProxyProtocolV2, nil
	}
	return 0, fmt.Errorf("unknown PROXY protocol version %q: use 1 or 2 (v1 or v2)", s)
}

// DefaultWeight is ipvsadm's weight when -w is not given.
const DefaultWeight = 1

// DestKey identifies a destination within a service.
type DestKey struct {
	Addr netip.Addr
	Port uint16
}

// Key returns d's key.
func (d *Destination) Key() DestKey { return DestKey{Addr: d.Addr, Port: d.Port} }

// AddrPort returns d's address and port.
func (d *Destination) AddrPort() netip.AddrPort { return netip.AddrPortFrom(d.Addr, d.Port) }

// Normalize applies what ipvsadm applies before sending a destination to
// the kernel: a destination that is not NAT cannot map ports, so its port
// is the service's.
func (d *Destination) Normalize(svc *Service) {
	d.Addr = d.Addr.Unmap()
	if d.Fwd != Masq && !svc.IsFWMark() {
		d.Port = svc.Port
	}
}

// Validate checks d by the kernel's rules (ip_vs_add_dest, ip_vs_edit_dest)
// for use in svc, and returns every problem found, joined.
func (d *Destination) Validate(svc *Service) error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	switch {
	case !d.Addr.IsValid():
		add(fieldErr("destination.addr", d.Addr, "a realserver address is required"))
	case d.Addr.IsUnspecified():
		add(fieldErr("destination.addr", d.Addr, "the unspecified address cannot be a realserver"))
	case d.Addr.Zone() != "":
		add(fieldErr("destination.addr", d.Addr, "a realserver address cannot have a zone"))
	case d.Addr.Is4In6():
		add(fieldErr("destination.addr", d.Addr, "write IPv4-mapped addresses as plain IPv4"))
	}
	if svc != nil && d.Addr.IsValid() {
		df, sf := FamilyOf(d.Addr), svc.Family
		// The kernel allows a mixed family only for tunnel destinations.
		if sf != FamilyNone && df != sf && d.Fwd != Tunnel {
			add(fieldErr("destination.addr", d.Addr, "is %s but the service is %s; only tunnel (-i) destinations may differ", df, sf))
		}
	}
	switch d.Fwd {
	case Masq, Local, Tunnel, Route:
	default:
		add(fieldErr("destination.fwd", d.Fwd, "must be masq, route, tunnel or local"))
	}
	if d.Weight < 0 {
		add(fieldErr("destination.weight", d.Weight, "server weight less than zero"))
	}
	if d.Upper > math.MaxInt32 {
		add(fieldErr("destination.upper_threshold", d.Upper, "must be at most %d", math.MaxInt32))
	}
	if d.Lower > d.Upper {
		add(fieldErr("destination.lower_threshold", d.Lower, "lower threshold is higher than upper threshold %d", d.Upper))
	}
	if svc != nil && d.Fwd != Masq && !svc.IsFWMark() && d.Port != svc.Port {
		add(fieldErr("destination.port", d.Port, "only NAT (masq) destinations can map ports; %s needs the service port %d", d.Fwd, svc.Port))
	}
	if d.Fwd == Tunnel {
		switch d.TunType {
		case TunIPIP, TunGUE, TunGRE:
		default:
			add(fieldErr("destination.tun_type", d.TunType, "must be ipip, gue or gre"))
		}
		if d.TunType == TunGUE && d.TunPort == 0 {
			add(fieldErr("destination.tun_port", 0, "tunnel port is zero: GUE needs --tun-port"))
		}
		if d.TunType != TunGUE && d.TunPort != 0 {
			add(fieldErr("destination.tun_port", d.TunPort, "only GUE tunnels use a port"))
		}
		if d.TunFlags&^(TunCsum|TunRemCsum) != 0 {
			add(fieldErr("destination.tun_flags", d.TunFlags, "unknown tunnel flag bits"))
		}
		if d.TunFlags == TunCsum|TunRemCsum {
			add(fieldErr("destination.tun_flags", "csum,remcsum", "choose one of --tun-csum and --tun-remcsum"))
		}
		if d.TunFlags&TunRemCsum != 0 && d.TunType != TunGUE {
			add(fieldErr("destination.tun_flags", "remcsum", "remote checksum offload needs a GUE tunnel"))
		}
		if d.TunFlags != 0 && d.TunType == TunIPIP {
			add(fieldErr("destination.tun_flags", d.TunFlags, "ipip tunnels carry no checksum options"))
		}
	} else if d.TunType != TunIPIP || d.TunPort != 0 || d.TunFlags != 0 {
		add(fieldErr("destination.tun_type", d.TunType, "tunnel options need the tunnel forwarding method (-i)"))
	}
	switch d.ProxyProtocol {
	case 0, ProxyProtocolV2:
	case ProxyProtocolV1:
		// Version 1 is a text line naming TCP4 or TCP6: it has no form
		// for a datagram, nor for a mark that may match UDP.
		switch {
		case svc == nil, svc.Protocol == ProtoTCP && !svc.IsFWMark():
		case svc.IsFWMark():
			add(fieldErr("destination.proxy_protocol", d.ProxyProtocol, "PROXY protocol version 1 is for TCP services only, and firewall-mark service %s may carry other protocols: use version 2", svc.ServiceKey))
		default:
			add(fieldErr("destination.proxy_protocol", d.ProxyProtocol, "PROXY protocol version 1 is for TCP services only and has no %s form: use version 2", svc.Protocol))
		}
	default:
		add(fieldErr("destination.proxy_protocol", d.ProxyProtocol, "PROXY protocol version must be 1 or 2 (0 for none)"))
	}
	return errors.Join(errs...)
}
