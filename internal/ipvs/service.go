package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Sentinel errors. Validation errors wrap ErrInvalid inside a *FieldError.
var (
	ErrInvalid = errors.New("invalid")
)

// FieldError is one validation problem: which field, which value, what is
// wrong. Validate joins several with errors.Join.
type FieldError struct {
	Field string // e.g. "service.timeout", "destination.weight"
	Value any
	Msg   string // what is wrong and what would be right
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s %v: %s", e.Field, e.Value, e.Msg)
}

// Unwrap makes errors.Is(err, ErrInvalid) hold for every validation error.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func fieldErr(field string, value any, format string, args ...any) error {
	return &FieldError{Field: field, Value: value, Msg: fmt.Sprintf(format, args...)}
}

// SchedFlags are the scheduler flags of a service (ipvsadm -b). The kernel
// has three generic bits whose meaning depends on the scheduler: for sh and
// mh, flag-1 is "fallback" and flag-2 is "port".
type SchedFlags uint32

// Scheduler flag bits, with the kernel's values (IP_VS_SVC_F_SCHED1..3).
const (
	SchedFlag1 SchedFlags = 0x0008
	SchedFlag2 SchedFlags = 0x0010
	SchedFlag3 SchedFlags = 0x0020

	SchedFallback = SchedFlag1 // sh-fallback, mh-fallback
	SchedPort     = SchedFlag2 // sh-port, mh-port

	schedFlagsAll = SchedFlag1 | SchedFlag2 | SchedFlag3
)

// Kernel service flag bits that are not scheduler flags.
const (
	SvcFlagPersistent uint32 = 0x0001
	SvcFlagOnePacket  uint32 = 0x0004
)

// DefaultPersistTimeout is ipvsadm's default for -p without a value, seconds.
const DefaultPersistTimeout = 300

// MaxPersistTimeout is ipvsadm's upper bound for -p, seconds (31 days).
const MaxPersistTimeout = 86400 * 31

// MaxSchedNameLen is IP_VS_SCHEDNAME_MAXLEN minus the terminating NUL.
const MaxSchedNameLen = 15

// DefaultScheduler is what ipvsadm uses when -s is not given.
const DefaultScheduler = "wlc"

// ServiceKey identifies a virtual service: either protocol+address+port, or
// a firewall mark (FWMark != 0, then Protocol, Addr and Port are zero and
// Family says which address family the mark applies to).
//
// ServiceKey is comparable and used as a map key.
type ServiceKey struct {
	FWMark   uint32     `json:"fwmark,omitempty"`
	Family   Family     `json:"family"`
	Protocol Protocol   `json:"protocol,omitempty"`
	Addr     netip.Addr `json:"addr,omitzero"`
	Port     uint16     `json:"port,omitempty"`
}

// TCPService returns the key of a TCP service at addr.
func TCPService(addr netip.AddrPort) ServiceKey {
	return addrKey(ProtoTCP, addr)
}

// UDPService returns the key of a UDP service at addr.
func UDPService(addr netip.AddrPort) ServiceKey {
	return addrKey(ProtoUDP, addr)
}

// FWMarkService returns the key of a firewall-mark service.
func FWMarkService(mark uint32, fam Family) ServiceKey {
	return ServiceKey{FWMark: mark, Family: fam}
}

func addrKey(p Protocol, ap netip.AddrPort) ServiceKey {
	a := ap.Addr().Unmap()
	return ServiceKey{Family: FamilyOf(a), Protocol: p, Addr: a, Port: ap.Port()}
}

// FamilyOf returns the family of a (IPv4-mapped IPv6 counts as IPv4).
func FamilyOf(a netip.Addr) Family {
	switch {
	case !a.IsValid():
		return FamilyNone
	case a.Unmap().Is4():
		return IPv4
	}
	return IPv6
}

// IsFWMark reports whether k names a firewall-mark service.
func (k ServiceKey) IsFWMark() bool { return k.FWMark != 0 }

// String renders k the way ipvsadm names a service on its command line:
// "tcp 10.0.0.1:80", "udp [2001:db8::1]:53", "fwmark 7".
func (k ServiceKey) String() string {
	if k.IsFWMark() {
		if k.Family == IPv6 {
			return fmt.Sprintf("fwmark %d (ipv6)", k.FWMark)
		}
		return fmt.Sprintf("fwmark %d", k.FWMark)
	}
	return strings.ToLower(k.Protocol.String()) + " " + netip.AddrPortFrom(k.Addr, k.Port).String()
}

// Service is a virtual service's configuration: every attribute ipvsadm -A
// can set.
type Service struct {
	ServiceKey

	// Scheduler is the scheduler's name ("wlc", "rr", ...).
	Scheduler string `json:"scheduler"`
	// SchedFlags are ipvsadm -b flags.
	SchedFlags SchedFlags `json:"sched_flags,omitempty"`
	// Persistent turns on persistence (-p); Timeout is its timeout in
	// seconds and Netmask the client-address prefix length templates are
	// keyed by (-M: 32 or 128 means per client address).
	Persistent bool   `json:"persistent,omitempty"`
	Timeout    uint32 `json:"timeout,omitempty"`
	Netmask    uint8  `json:"netmask,omitempty"`
	// OnePacket is one-packet scheduling (-o): each UDP datagram is
	// scheduled on its own and no connection entry outlives it.
	OnePacket bool `json:"one_packet,omitempty"`
	// PE is a persistence engine name (--pe), "" for none.
	PE string `json:"pe,omitempty"`
}

// FullNetmask returns the prefix length that means "one template per client
// address" for fam: 32 or 128.
func FullNetmask(fam Family) uint8 {
	if fam == IPv6 {
		return 128
	}
	return 32
}

// SetDefaults fills what ipvsadm fills when the user leaves it out.
func (s *Service) SetDefaults() {
	if s.Scheduler == "" {
		s.Scheduler = DefaultScheduler
	}
	if s.Persistent && s.Timeout == 0 {
		s.Timeout = DefaultPersistTimeout
	}
	if s.Netmask == 0 {
		s.Netmask = FullNetmask(s.Family)
	}
}

// Flags returns the kernel's service flag word (IP_VS_SVC_F_*).
func (s *Service) Flags() uint32 {
	f := uint32(s.SchedFlags)
	if s.Persistent {
		f |= SvcFlagPersistent
	}
	if s.OnePacket {
		f |= SvcFlagOnePacket
	}
	return f
}

// Validate checks s by the kernel's and ipvsadm's rules and returns every
// problem found, joined. It does not check that the scheduler exists: the
// scheduler registry lives in package sched (see engine).
func (s *Service) Validate() error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	k := s.ServiceKey
	if k.IsFWMark() {
		if k.Addr.IsValid() || k.Port != 0 || k.Protocol != ProtoNone {
			addr := strings.ToLower(k.Protocol.String()) + " " + netip.AddrPortFrom(k.Addr, k.Port).String()
			add(fieldErr("service", k.String(), "a firewall-mark service has no protocol, address or port (got %s)", addr))
		}
		if k.Family != IPv4 && k.Family != IPv6 {
			add(fieldErr("service.family", k.Family, "a firewall-mark service needs family ipv4 or ipv6"))
		}
	} else {
		switch k.Protocol {
		case ProtoTCP, ProtoUDP, ProtoSCTP:
		default:
			add(fieldErr("service.protocol", k.Protocol, "must be tcp, udp or sctp (or give a firewall mark)"))
		}
		switch {
		case !k.Addr.IsValid():
			add(fieldErr("service.addr", k.Addr, "a virtual service needs an address (or a firewall mark)"))
		case k.Addr.Is4In6():
			add(fieldErr("service.addr", k.Addr, "write IPv4-mapped addresses as plain IPv4"))
		case k.Addr.Zone() != "":
			add(fieldErr("service.addr", k.Addr, "a virtual address cannot have a zone"))
		case FamilyOf(k.Addr) != k.Family:
			add(fieldErr("service.family", k.Family, "does not match address %s", k.Addr))
		}
		if k.Port == 0 && !s.Persistent {
			// ipvsadm: "Zero port specified for non-persistent service".
			add(fieldErr("service.port", 0, "port 0 (all ports) is only allowed for a persistent service (-p)"))
		}
	}
	if s.Scheduler == "" {
		add(fieldErr("service.scheduler", `""`, "a scheduler is required (e.g. wlc, rr)"))
	} else if len(s.Scheduler) > MaxSchedNameLen {
		add(fieldErr("service.scheduler", s.Scheduler, "longer than %d characters", MaxSchedNameLen))
	}
	if s.SchedFlags&^schedFlagsAll != 0 {
		add(fieldErr("service.sched_flags", fmt.Sprintf("%#x", uint32(s.SchedFlags)), "only flag-1, flag-2 and flag-3 exist"))
	}
	if s.Persistent {
		if s.Timeout < 1 || s.Timeout > MaxPersistTimeout {
			add(fieldErr("service.timeout", s.Timeout, "persistence timeout must be 1..%d seconds", MaxPersistTimeout))
		}
	} else if s.Timeout != 0 {
		add(fieldErr("service.timeout", s.Timeout, "a timeout is only meaningful with persistence (-p)"))
	}
	fam := k.Family
	if fam == FamilyNone {
		fam = IPv4
	}
	if max := FullNetmask(fam); s.Netmask < 1 || s.Netmask > max {
		add(fieldErr("service.netmask", s.Netmask, "persistence netmask prefix length must be 1..%d for %s", max, fam))
	}
	if s.PE != "" && s.PE != "sip" {
		add(fieldErr("service.pe", s.PE, `unknown persistence engine; the only one is "sip"`))
	}
	if s.PE != "" && !s.Persistent {
		add(fieldErr("service.pe", s.PE, "a persistence engine needs a persistent service (-p)"))
	}
	return errors.Join(errs...)
}

// NetmaskString renders the netmask as ipvsadm does: a dotted mask for IPv4
// ("255.255.255.0"), a prefix length for IPv6 ("64").
func (s *Service) NetmaskString() string {
	if s.Family == IPv6 {
		return fmt.Sprintf("%d", s.Netmask)
	}
	return PrefixToMask4(s.Netmask).String()
}

// PrefixToMask4 returns the IPv4 netmask with n leading one bits.
func PrefixToMask4(n uint8) netip.Addr {
	if n > 32 {
		n = 32
	}
	v := uint32(0)
	if n > 0 {
		v = ^uint32(0) << (32 - n)
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Mask4ToPrefix converts a dotted IPv4 netmask to a prefix length. It fails
// for a mask whose one bits are not contiguous.
func Mask4ToPrefix(m netip.Addr) (uint8, error) {
	if !m.Is4() {
		return 0, fmt.Errorf("netmask %s is not an IPv4 mask", m)
	}
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := uint8(0)
	for v&0x80000000 != 0 {
		n++
		v <<= 1
	}
	if v != 0 {
		return 0, fmt.Errorf("netmask %s has non-contiguous bits: use a mask like 255.255.255.0", m)
	}
	return n, nil
}

// MaskAddr returns a masked to its first bits bits: the address a
// persistence template is keyed by.
func MaskAddr(a netip.Addr, bits uint8) netip.Addr {
	p, err := a.Prefix(int(bits))
	if err != nil {
		return a
	}
	return p.Addr()
}
