package api

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/govs/govs/internal/ipvs"
)

// FormatServiceKey renders k in the form the API uses in paths:
//
//	tcp/10.0.0.1:80
//	udp/[2001:db8::1]:53
//	sctp/10.0.0.1:9000
//	fwmark/7/ipv4
//	fwmark/7/ipv6
//
// The family of an address service is not written: it is the address's.
// It returns an error wrapping [ipvs.ErrInvalid] for a key that has no such
// form (no protocol, no address, a zone, a firewall mark together with an
// address, a family that contradicts the address); no such service can
// exist, because the table validates every service it accepts.
func FormatServiceKey(k ipvs.ServiceKey) (string, error) {
	if k.IsFWMark() {
		if k.Protocol != ipvs.ProtoNone || k.Addr.IsValid() || k.Port != 0 {
			return "", keyErr(k, "a firewall-mark service has no protocol, address or port")
		}
		if k.Family != ipvs.IPv4 && k.Family != ipvs.IPv6 {
			return "", keyErr(k, "a firewall-mark service needs family ipv4 or ipv6")
		}
		return "fwmark/" + strconv.FormatUint(uint64(k.FWMark), 10) + "/" + k.Family.String(), nil
	}
	switch k.Protocol {
	case ipvs.ProtoTCP, ipvs.ProtoUDP, ipvs.ProtoSCTP:
	default:
		return "", keyErr(k, "needs protocol tcp, udp or sctp, or a firewall mark")
	}
	switch {
	case !k.Addr.IsValid():
		return "", keyErr(k, "needs an address")
	case k.Addr.Zone() != "":
		return "", keyErr(k, "a virtual address cannot have a zone")
	case ipvs.FamilyOf(k.Addr) != k.Family:
		return "", keyErr(k, "family "+k.Family.String()+" does not match the address")
	}
	return strings.ToLower(k.Protocol.String()) + "/" + netip.AddrPortFrom(k.Addr, k.Port).String(), nil
}

// ParseServiceKey parses the form [FormatServiceKey] writes. For a firewall
// mark the family may be left out ("fwmark/7"): it is ipv4, as for
// ipvsadm -f without -6. Errors wrap [ipvs.ErrInvalid].
func ParseServiceKey(s string) (ipvs.ServiceKey, error) {
	proto, rest, ok := strings.Cut(s, "/")
	if !ok {
		return ipvs.ServiceKey{}, parseErr(s, `want "tcp/ADDR:PORT", "udp/...", "sctp/..." or "fwmark/MARK/ipv4|ipv6"`)
	}
	if proto == "fwmark" {
		markStr, famStr, hasFam := strings.Cut(rest, "/")
		mark, err := strconv.ParseUint(markStr, 10, 32)
		if err != nil || mark == 0 || markStr != strconv.FormatUint(mark, 10) {
			return ipvs.ServiceKey{}, parseErr(s, "the firewall mark must be a decimal number 1..4294967295")
		}
		fam := ipvs.IPv4
		if hasFam {
			switch famStr {
			case "ipv4":
			case "ipv6":
				fam = ipvs.IPv6
			default:
				return ipvs.ServiceKey{}, parseErr(s, "the family must be ipv4 or ipv6")
			}
		}
		return ipvs.FWMarkService(uint32(mark), fam), nil
	}
	var p ipvs.Protocol
	switch proto {
	case "tcp":
		p = ipvs.ProtoTCP
	case "udp":
		p = ipvs.ProtoUDP
	case "sctp":
		p = ipvs.ProtoSCTP
	default:
		return ipvs.ServiceKey{}, parseErr(s, "the protocol must be tcp, udp, sctp or fwmark")
	}
	ap, err := parseAddrPort(rest)
	if err != nil {
		return ipvs.ServiceKey{}, parseErr(s, err.Error())
	}
	// Not ipvs.TCPService: that unmaps IPv4-mapped addresses, and the key
	// must come back exactly as it was written.
	return ipvs.ServiceKey{Family: ipvs.FamilyOf(ap.Addr()), Protocol: p, Addr: ap.Addr(), Port: ap.Port()}, nil
}

// FormatDestKey renders a destination key as "10.0.0.2:80" or
// "[2001:db8::2]:80".
func FormatDestKey(d ipvs.DestKey) (string, error) {
	if !d.Addr.IsValid() {
		return "", fmt.Errorf("destination key %v: needs an address: %w", d, ipvs.ErrInvalid)
	}
	if d.Addr.Zone() != "" {
		return "", fmt.Errorf("destination key %s: a realserver address cannot have a zone: %w", d.Addr, ipvs.ErrInvalid)
	}
	return netip.AddrPortFrom(d.Addr, d.Port).String(), nil
}

// ParseDestKey parses what [FormatDestKey] writes.
func ParseDestKey(s string) (ipvs.DestKey, error) {
	ap, err := parseAddrPort(s)
	if err != nil {
		return ipvs.DestKey{}, fmt.Errorf("destination %q: %s: %w", s, err, ipvs.ErrInvalid)
	}
	return ipvs.DestKey{Addr: ap.Addr(), Port: ap.Port()}, nil
}

// parseAddrPort is netip.ParseAddrPort without zones and with only the
// canonical spelling of the port, so that parsing and formatting are
// inverse.
func parseAddrPort(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf(`want ADDR:PORT or [ADDR6]:PORT: %v`, err)
	}
	if ap.Addr().Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("an address cannot have a zone")
	}
	if ap.String() != s {
		return netip.AddrPort{}, fmt.Errorf("write it as %s", ap)
	}
	return ap, nil
}

func keyErr(k ipvs.ServiceKey, msg string) error {
	return fmt.Errorf("service key %+v: %s: %w", k, msg, ipvs.ErrInvalid)
}

func parseErr(s, msg string) error {
	return fmt.Errorf("service %q: %s: %w", s, msg, ipvs.ErrInvalid)
}

// servicePath returns the escaped URL path of service k plus suffix
// ("", "/dests", "/zero", ...).
func servicePath(k ipvs.ServiceKey) (string, error) {
	s, err := FormatServiceKey(k)
	if err != nil {
		return "", err
	}
	return "/v1/services/" + escapeSegments(s), nil
}

// escapeSegments escapes each "/"-separated segment of s for a URL path.
// Segments never hold a "/" of their own: addresses with zones are refused.
func escapeSegments(s string) string {
	parts := strings.Split(s, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// splitServicePath splits the escaped path below /v1/services/ into the
// service key and what follows it, unescaped segment by segment:
// "tcp/10.0.0.1:80/dests/10.0.0.2:80" -> key, ["dests", "10.0.0.2:80"].
func splitServicePath(escaped string) (ipvs.ServiceKey, []string, error) {
	raw := strings.Split(escaped, "/")
	segs := make([]string, len(raw))
	for i, r := range raw {
		u, err := url.PathUnescape(r)
		if err != nil {
			return ipvs.ServiceKey{}, nil, fmt.Errorf("path segment %q: %v: %w", r, err, ipvs.ErrInvalid)
		}
		segs[i] = u
	}
	n := 2 // proto, addr:port
	if segs[0] == "fwmark" {
		n = 3 // fwmark, mark, family: the family is required in paths
	}
	if len(segs) < n {
		return ipvs.ServiceKey{}, nil, parseErr(strings.Join(segs, "/"), `want "tcp/ADDR:PORT", "udp/...", "sctp/..." or "fwmark/MARK/ipv4|ipv6"`)
	}
	k, err := ParseServiceKey(strings.Join(segs[:n], "/"))
	if err != nil {
		return ipvs.ServiceKey{}, nil, err
	}
	return k, segs[n:], nil
}
