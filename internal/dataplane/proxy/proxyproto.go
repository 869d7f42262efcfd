package proxy

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/govs/govs/internal/ipvs"
)

// The PROXY protocol header writer (haproxy's doc/proxy-protocol.txt,
// versions 1 and 2). Writing the header is two dozen lines; a library
// (github.com/pires/go-proxyproto) earns its keep on the parsing side,
// which the proxy does not do, and would be the module's only new
// dependency. The tests parse what this writes with their own reader.

// proxyV2Sig is the 12-byte signature that starts a version 2 header.
var proxyV2Sig = [12]byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}

// Fields of the version 2 header.
const (
	proxyV2Proxy  = 0x21 // version 2, command PROXY
	proxyV2Inet   = 0x10 // AF_INET
	proxyV2Inet6  = 0x20 // AF_INET6
	proxyV2Stream = 0x01
	proxyV2Dgram  = 0x02

	// proxyV2MaxLen is the longest header written: IPv6 addresses.
	proxyV2MaxLen = 16 + 36
)

// proxyHeader returns the header of version ver (1 or 2) that tells a
// realserver a proto connection came from src to dst. Version 1 exists
// for TCP only.
func proxyHeader(ver int, proto ipvs.Protocol, src, dst netip.AddrPort) ([]byte, error) {
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	if src.Addr().Is4() != dst.Addr().Is4() {
		return nil, fmt.Errorf("PROXY protocol header for %s -> %s: the addresses' families differ", src, dst)
	}
	switch ver {
	case 1:
		if proto != ipvs.ProtoTCP {
			return nil, fmt.Errorf("PROXY protocol version 1 has no form for %s: use version 2", proto)
		}
		fam := "TCP4"
		if src.Addr().Is6() {
			fam = "TCP6"
		}
		b := make([]byte, 0, 108) // the longest v1 line
		b = append(b, "PROXY "...)
		b = append(b, fam...)
		b = append(b, ' ')
		b = src.Addr().AppendTo(b)
		b = append(b, ' ')
		b = dst.Addr().AppendTo(b)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(src.Port()), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(dst.Port()), 10)
		return append(b, '\r', '\n'), nil
	case 2:
		var famProto byte = proxyV2Stream
		switch proto {
		case ipvs.ProtoTCP:
		case ipvs.ProtoUDP:
			famProto = proxyV2Dgram
		default:
			return nil, fmt.Errorf("PROXY protocol header for %s: only TCP and UDP are carried", proto)
		}
		alen := 12
		if src.Addr().Is4() {
			famProto |= proxyV2Inet
		} else {
			famProto |= proxyV2Inet6
			alen = 36
		}
		b := make([]byte, 0, 16+alen)
		b = append(b, proxyV2Sig[:]...)
		b = append(b, proxyV2Proxy, famProto)
		b = binary.BigEndian.AppendUint16(b, uint16(alen))
		b = append(b, src.Addr().AsSlice()...)
		b = append(b, dst.Addr().AsSlice()...)
		b = binary.BigEndian.AppendUint16(b, src.Port())
		b = binary.BigEndian.AppendUint16(b, dst.Port())
		return b, nil
	}
	return nil, fmt.Errorf("PROXY protocol version %d does not exist: use 1 or 2 (0 for none)", ver)
}
