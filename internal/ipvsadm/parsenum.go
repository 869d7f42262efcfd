package ipvsadm

import (
	"context"
	"math"
	"net/netip"
	"strings"

	"github.com/govs/govs/internal/ipvs"
)

// This file has the C library's number and address parsing, as ipvsadm
// relies on it: strtol (leading space and sign allowed, the whole string
// must be a number), inet_aton (1 to 4 parts, octal and hex), atoi.

func isSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

// strtol parses s as C's strtol(s, &end, 10) and reports whether the whole
// of s was a number and whether it overflowed a long.
func strtol(s string) (v int64, whole, overflow bool) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	var u uint64
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		d := uint64(s[i] - '0')
		if u > (math.MaxUint64-d)/10 {
			overflow = true
		} else {
			u = u*10 + d
		}
		i++
	}
	if i == start {
		return 0, false, false
	}
	switch {
	case overflow:
	case neg && u > 1<<63:
		overflow = true
	case !neg && u > math.MaxInt64:
		overflow = true
	}
	if neg {
		v = -int64(u)
	} else {
		v = int64(u)
	}
	return v, i == len(s), overflow
}

// stringToNumber is ipvsadm's string_to_number.
func stringToNumber(s string, lo, hi int64) (int64, bool) {
	v, whole, overflow := strtol(s)
	if !whole || overflow || v < lo || v > hi {
		return 0, false
	}
	return v, true
}

// parseTimeout is ipvsadm's parse_timeout for a given value.
func parseTimeout(s string, lo, hi int64) (int64, error) {
	v, ok := stringToNumber(s, lo, hi)
	if !ok {
		return 0, fail("invalid timeout value `%s' specified", s)
	}
	return v, nil
}

// parseFWMark is ipvsadm's parse_fwmark: 1 to 4294967295.
func parseFWMark(s string) (uint32, error) {
	v, whole, overflow := strtol(s)
	if !whole || overflow || v <= 0 || v > math.MaxUint32 {
		return 0, fail("invalid fwmark value `%s' specified", s)
	}
	return uint32(v), nil
}

// atoi is C's atoi, clamped.
func atoi(s string) int64 {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	j := i
	if j < len(s) && (s[j] == '+' || s[j] == '-') {
		j++
	}
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	v, _, overflow := strtol(s[i:j])
	if overflow {
		return 0
	}
	return v
}

// inetAton is glibc's inet_aton: the address in host order.
func inetAton(s string) (uint32, bool) {
	var parts [4]uint64
	n := 0
	i := 0
	for {
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		base := uint64(10)
		if s[i] == '0' {
			i++
			base = 8
			if i < len(s) && (s[i] == 'x' || s[i] == 'X') {
				base = 16
				i++
			}
		}
		var v uint64
		for i < len(s) {
			c := s[i]
			var d uint64
			switch {
			case c >= '0' && c <= '9':
				d = uint64(c - '0')
				if base == 8 && d >= 8 {
					return 0, false
				}
			case base == 16 && c >= 'a' && c <= 'f':
				d = uint64(c-'a') + 10
			case base == 16 && c >= 'A' && c <= 'F':
				d = uint64(c-'A') + 10
			default:
				goto end
			}
			v = v*base + d
			if v > math.MaxUint32 {
				return 0, false
			}
			i++
		}
	end:
		if i < len(s) && s[i] == '.' {
			if n >= 3 || v > 0xff {
				return 0, false
			}
			parts[n] = v
			n++
			i++
			continue
		}
		parts[n] = v
		n++
		break
	}
	if i < len(s) && !isSpace(s[i]) {
		return 0, false
	}
	last := parts[n-1]
	switch n {
	case 1:
		return uint32(last), true
	case 2:
		if last > 0xffffff {
			return 0, false
		}
		return uint32(parts[0]<<24 | last), true
	case 3:
		if last > 0xffff {
			return 0, false
		}
		return uint32(parts[0]<<24 | parts[1]<<16 | last), true
	default:
		if last > 0xff {
			return 0, false
		}
		return uint32(parts[0]<<24 | parts[1]<<16 | parts[2]<<8 | last), true
	}
}

// parse_service's result bits.
const (
	serviceAddr = 1
	servicePort = 2
)

type parsedService struct {
	result int
	af     int
	addr   netip.Addr
	port   uint16
}

func addr4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func protoName(p ipvs.Protocol) string {
	switch p {
	case ipvs.ProtoTCP:
		return "tcp"
	case ipvs.ProtoUDP:
		return "udp"
	case ipvs.ProtoSCTP:
		return "sctp"
	}
	return ""
}

// parseService is ipvsadm's parse_service: host[:port], [ipv6]:port or a
// bare IPv6 address; host is a dotted address (inet_aton's forms) or an
// IPv4 host name; port a number or a service name of proto. An
// all-digit string is no service; so is a bracketed address without a
// port. A bracketed IPv4 address loses its port, as in ipvsadm.
func parseService(ctx context.Context, r Resolver, buf string, proto ipvs.Protocol) parsedService {
	var ps parsedService
	if buf == "" || allDigits(buf) {
		return ps
	}
	host := buf
	port, hasPort := "", false
	if host[0] == '[' {
		host = host[1:]
		i := strings.IndexByte(host, ']')
		if i < 0 {
			return ps
		}
		rest := host[i+1:]
		host = host[:i]
		if !strings.HasPrefix(rest, ":") {
			return ps
		}
		port, hasPort = rest[1:], true
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() && a.Zone() == "" {
		ps.af, ps.addr = afInet6, a
	} else {
		// The bracket's port is forgotten here, as in ipvsadm.
		hasPort = false
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			host, port, hasPort = host[:i], host[i+1:], true
		}
		if v, ok := inetAton(host); ok {
			ps.af, ps.addr = afInet, addr4(v)
		} else if a, ok := r.LookupHost(ctx, host); ok && a.Is4() {
			ps.af, ps.addr = afInet, a
		} else {
			return parsedService{}
		}
	}
	ps.result = serviceAddr
	if hasPort {
		ps.result |= servicePort
		if v, ok := stringToNumber(port, 0, 65535); ok {
			ps.port = uint16(v)
		} else if pn := protoName(proto); pn != "" {
			p, ok := r.LookupPort(ctx, pn, port)
			if !ok {
				return parsedService{}
			}
			ps.port = p
		} else {
			return parsedService{}
		}
	}
	return ps
}

// allDigits is ipvsadm's str_is_digit (true for "").
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
