package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Protocol constants shared by VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798).
const (
	// ProtocolNumber is the IP protocol number of VRRP.
	ProtocolNumber = 112
	// TTL is the IPv4 TTL / IPv6 hop limit every advertisement is sent with
	// and that a receiver must see: anything less crossed a router.
	TTL = 255
	// PriorityOwner is the priority of the address owner; it never changes
	// and wins every election.
	PriorityOwner = 255
	// PriorityStop is the priority a master sends when it stops, so that a
	// backup takes over after its skew time instead of the whole master
	// down interval.
	PriorityStop = 0

	typeAdvertisement = 1
	headerLen         = 8
	authLen           = 8 // VRRPv2 authentication data
	maxAdvertIntV3    = 0x0fff
)

// The default multicast groups of VRRP.
var (
	Group4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})
	Group6 = netip.MustParseAddr("ff02::12")
)

// AuthType is the VRRPv2 authentication type.
type AuthType uint8

// VRRPv2 authentication types. AH is listed so that it is recognised and
// refused by name; govs does not implement it.
const (
	AuthNone AuthType = 0
	AuthPass AuthType = 1
	AuthAH   AuthType = 2
)

func (t AuthType) String() string {
	switch t {
	case AuthNone:
		return "none"
	case AuthPass:
		return "PASS"
	case AuthAH:
		return "AH"
	}
	return fmt.Sprintf("auth(%d)", uint8(t))
}

// Errors returned by the decoders and by the receive checks. Callers use
// errors.Is.
var (
	ErrTruncated   = errors.New("vrrp: packet truncated")
	ErrVersion     = errors.New("vrrp: unsupported version")
	ErrType        = errors.New("vrrp: not an advertisement")
	ErrLength      = errors.New("vrrp: length does not match the address count")
	ErrChecksum    = errors.New("vrrp: bad checksum")
	ErrFamily      = errors.New("vrrp: address family mismatch")
	ErrTTL         = errors.New("vrrp: TTL/hop limit is not 255")
	ErrProtocol    = errors.New("vrrp: IP protocol is not 112")
	ErrAuth        = errors.New("vrrp: authentication mismatch")
	ErrAdvertInt   = errors.New("vrrp: advertisement interval mismatch")
	ErrAddresses   = errors.New("vrrp: virtual addresses do not match")
	ErrUnsupported = errors.New("vrrp: not supported on this OS")
)

// Advert is a VRRP advertisement, version 2 or 3.
type Advert struct {
	// Version is 2 or 3.
	Version int
	// VRID is the virtual router identifier (1-255).
	VRID uint8
	// Priority is the sender's priority: 255 owner, 1-254 backup, 0 stop.
	Priority uint8
	// AdvertInt is the advertisement interval: whole seconds in v2 (1-255),
	// centiseconds in v3 (10ms-40.95s).
	AdvertInt time.Duration
	// Addresses are the virtual addresses, all IPv4 or all IPv6.
	Addresses []netip.Addr
	// AuthType and AuthData are the v2 authentication fields; AuthData
	// is the PASS password, zero padded.
	AuthType AuthType
	AuthData [authLen]byte
	// Checksum is the checksum as decoded; Marshal computes its own.
	Checksum uint16
}

// Received is an advertisement with the IP header fields the receive
// checks need.
type Received struct {
	Advert
	// Src and Dst are the IP source and destination addresses.
	Src, Dst netip.Addr
	// TTL is the IPv4 TTL or IPv6 hop limit; -1 when unknown.
	TTL int
	// IfIndex is the receiving interface, 0 when unknown.
	IfIndex int
}

// is6 reports whether the advertisement carries IPv6 addresses.
func (a *Advert) is6() bool {
	return len(a.Addresses) > 0 && a.Addresses[0].Is6() && !a.Addresses[0].Is4In6()
}

// Len is the length of the encoded advertisement.
func (a *Advert) Len() int {
	n := headerLen
	for _, ip := range a.Addresses {
		n += ip.BitLen() / 8
	}
	if a.Version == 2 {
		n += authLen
	}
	return n
}

// PassData returns the PASS authentication data for a password: at most
// eight bytes, zero padded, as keepalived sends it.
func PassData(pass string) [authLen]byte {
	var d [authLen]byte
	copy(d[:], pass)
	return d
}

// Marshal encodes the advertisement. src and dst are the IP addresses it
// will be sent with: the v3 checksum covers a pseudo-header built from
// them (RFC 5798 5.2.8); the v2 checksum covers only the VRRP message
// (RFC 3768 5.3.8) and ignores them.
func (a *Advert) Marshal(src, dst netip.Addr) ([]byte, error) {
	return a.AppendMarshal(nil, src, dst)
}

// AppendMarshal is Marshal appending to b.
func (a *Advert) AppendMarshal(b []byte, src, dst netip.Addr) ([]byte, error) {
	if len(a.Addresses) > 255 {
		return nil, fmt.Errorf("vrrp: %d addresses, at most 255 fit", len(a.Addresses))
	}
	v6 := a.is6()
	for _, ip := range a.Addresses {
		if ip.Is4() == v6 || ip.Is4In6() {
			return nil, fmt.Errorf("encode addresses: %w: mixed IPv4 and IPv6", ErrFamily)
		}
	}
	start := len(b)
	switch a.Version {
	case 2:
		if v6 {
			return nil, fmt.Errorf("encode v2: %w: VRRPv2 is IPv4 only, use version 3", ErrFamily)
		}
		secs := a.AdvertInt / time.Second
		if secs < 1 || secs > 255 || a.AdvertInt%time.Second != 0 {
			return nil, fmt.Errorf("encode v2: advert_int %v: use whole seconds 1-255", a.AdvertInt)
		}
		b = append(b, 2<<4|typeAdvertisement, a.VRID, a.Priority, byte(len(a.Addresses)),
			byte(a.AuthType), byte(secs), 0, 0)
	case 3:
		cs := a.AdvertInt / (10 * time.Millisecond)
		if cs < 1 || cs > maxAdvertIntV3 || a.AdvertInt%(10*time.Millisecond) != 0 {
			return nil, fmt.Errorf("encode v3: advert_int %v: use centiseconds, 10ms-40.95s", a.AdvertInt)
		}
		b = append(b, 3<<4|typeAdvertisement, a.VRID, a.Priority, byte(len(a.Addresses)),
			byte(cs>>8), byte(cs), 0, 0)
	default:
		return nil, fmt.Errorf("encode: %w %d", ErrVersion, a.Version)
	}
	for _, ip := range a.Addresses {
		b = append(b, ip.AsSlice()...)
	}
	if a.Version == 2 {
		b = append(b, a.AuthData[:]...)
	}
	msg := b[start:]
	var sum uint32
	if a.Version == 3 {
		src, dst = src.Unmap(), dst.Unmap()
		if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() ||
			(len(a.Addresses) > 0 && src.Is4() == v6) {
			return nil, fmt.Errorf("encode v3 checksum: %w: src %v dst %v", ErrFamily, src, dst)
		}
		sum = pseudoHeaderSum(src, dst, len(msg))
	}
	binary.BigEndian.PutUint16(msg[6:], ^fold(checksumAdd(sum, msg)))
	return b, nil
}

// Decode decodes a VRRP message (without the IP header) received from
// src for dst and verifies its checksum. A v3 message's address family
// is that of src; a v2 message must be IPv4.
func Decode(b []byte, src, dst netip.Addr) (*Advert, error) {
	if len(b) < headerLen {
		return nil, ErrTruncated
	}
	a := &Advert{Version: int(b[0] >> 4), VRID: b[1], Priority: b[2]}
	if t := b[0] & 0x0f; t != typeAdvertisement {
		return nil, fmt.Errorf("%w: type %d", ErrType, t)
	}
	count := int(b[3])
	alen := 4
	if src.Is6() && !src.Is4In6() {
		alen = 16
	}
	want := headerLen + count*alen
	switch a.Version {
	case 2:
		if alen != 4 {
			return nil, fmt.Errorf("%w: VRRPv2 over IPv6", ErrFamily)
		}
		a.AuthType = AuthType(b[4])
		a.AdvertInt = time.Duration(b[5]) * time.Second
		want += authLen
	case 3:
		a.AdvertInt = time.Duration(binary.BigEndian.Uint16(b[4:])&maxAdvertIntV3) * 10 * time.Millisecond
	default:
		return nil, fmt.Errorf("%w %d", ErrVersion, a.Version)
	}
	if len(b) < want {
		return nil, fmt.Errorf("%w: %d bytes, %d addresses need %d", ErrTruncated, len(b), count, want)
	}
	if len(b) > want {
		return nil, fmt.Errorf("%w: %d bytes, %d addresses need %d", ErrLength, len(b), count, want)
	}
	a.Checksum = binary.BigEndian.Uint16(b[6:])
	var sum uint32
	if a.Version == 3 {
		if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
			return nil, fmt.Errorf("v3 checksum: %w: src %v dst %v", ErrFamily, src, dst)
		}
		sum = pseudoHeaderSum(src.Unmap(), dst.Unmap(), len(b))
	}
	if fold(checksumAdd(sum, b)) != 0xffff {
		return nil, ErrChecksum
	}
	if count > 0 {
		a.Addresses = make([]netip.Addr, count)
	}
	p := b[headerLen:]
	for i := range count {
		if alen == 4 {
			a.Addresses[i] = netip.AddrFrom4([4]byte(p[:4]))
		} else {
			a.Addresses[i] = netip.AddrFrom16([16]byte(p[:16]))
		}
		p = p[alen:]
	}
	if a.Version == 2 {
		copy(a.AuthData[:], p)
	}
	return a, nil
}

// DecodeIPv4 decodes a whole IPv4 packet carrying VRRP, as an IPv4 raw
// socket or a capture delivers it, and returns it with its header fields.
// It checks the IP header (version, length, protocol) but not the TTL:
// that check belongs to the receiver, which knows whether it runs
// unicast (see Node).
func DecodeIPv4(b []byte) (*Received, error) {
	if len(b) < 20 {
		return nil, ErrTruncated
	}
	if b[0]>>4 != 4 {
		return nil, fmt.Errorf("%w: IP version %d", ErrFamily, b[0]>>4)
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:]))
	if ihl < 20 || total < ihl || len(b) < total {
		return nil, fmt.Errorf("%w: IP header length %d, total %d, have %d", ErrTruncated, ihl, total, len(b))
	}
	if len(b) > total {
		return nil, fmt.Errorf("%w: IP total length %d, have %d", ErrLength, total, len(b))
	}
	if b[9] != ProtocolNumber {
		return nil, fmt.Errorf("%w: %d", ErrProtocol, b[9])
	}
	r := &Received{
		Src: netip.AddrFrom4([4]byte(b[12:16])),
		Dst: netip.AddrFrom4([4]byte(b[16:20])),
		TTL: int(b[8]),
	}
	a, err := Decode(b[ihl:total], r.Src, r.Dst)
	if err != nil {
		return nil, err
	}
	r.Advert = *a
	return r, nil
}

// pseudoHeaderSum is the unfolded one's complement sum of the IPv4 or
// IPv6 pseudo-header of RFC 768 / RFC 8200 8.1 with next header 112.
func pseudoHeaderSum(src, dst netip.Addr, n int) uint32 {
	var sum uint32
	sum = checksumAdd(sum, src.AsSlice())
	sum = checksumAdd(sum, dst.AsSlice())
	if src.Is4() {
		return sum + ProtocolNumber + uint32(n)
	}
	return sum + uint32(n>>16) + uint32(n&0xffff) + ProtocolNumber
}

// checksumAdd adds b to an unfolded one's complement sum.
func checksumAdd(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

func fold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}
