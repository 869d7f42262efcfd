package proxy

import (
	"bufio"
	"bytes"
	"net/netip"
	"testing"

	"github.com/govs/govs/internal/ipvs"
)

func TestProxyHeader(t *testing.T) {
	c4 := netip.MustParseAddrPort("192.0.2.1:56324")
	v4 := netip.MustParseAddrPort("198.51.100.10:443")
	c6 := netip.MustParseAddrPort("[2001:db8::1]:56324")
	v6 := netip.MustParseAddrPort("[2001:db8::10]:443")
	for _, tc := range []struct {
		ver      int
		proto    ipvs.Protocol
		src, dst netip.AddrPort
		want     []byte
		wantErr  bool
	}{
		{1, ipvs.ProtoTCP, c4, v4, []byte("PROXY TCP4 192.0.2.1 198.51.100.10 56324 443\r\n"), false},
		{1, ipvs.ProtoTCP, c6, v6, []byte("PROXY TCP6 2001:db8::1 2001:db8::10 56324 443\r\n"), false},
		{2, ipvs.ProtoTCP, c4, v4, append(proxyV2Sig[:], 0x21, 0x11, 0, 12, 192, 0, 2, 1, 198, 51, 100, 10, 0xdc, 0x04, 0x01, 0xbb), false},
		{2, ipvs.ProtoUDP, c4, v4, append(proxyV2Sig[:], 0x21, 0x12, 0, 12, 192, 0, 2, 1, 198, 51, 100, 10, 0xdc, 0x04, 0x01, 0xbb), false},
		{1, ipvs.ProtoUDP, c4, v4, nil, true},
		{2, ipvs.ProtoSCTP, c4, v4, nil, true},
		{3, ipvs.ProtoTCP, c4, v4, nil, true},
		{2, ipvs.ProtoTCP, c4, v6, nil, true},
	} {
		got, err := proxyHeader(tc.ver, tc.proto, tc.src, tc.dst)
		if (err != nil) != tc.wantErr {
			t.Errorf("v%d %s %s->%s: err = %v", tc.ver, tc.proto, tc.src, tc.dst, err)
			continue
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("v%d %s %s->%s:\n got %q\nwant %q", tc.ver, tc.proto, tc.src, tc.dst, got, tc.want)
		}
	}
}

// FuzzProxyHeader checks that every header written parses back to the
// addresses it was written for.
func FuzzProxyHeader(f *testing.F) {
	f.Add(1, true, []byte{192, 0, 2, 1}, uint16(56324), []byte{198, 51, 100, 10}, uint16(443))
	f.Add(2, false, []byte{32, 1, 13, 184, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint16(0), []byte{32, 1, 13, 184, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16}, uint16(65535))
	f.Fuzz(func(t *testing.T, ver int, tcp bool, sa []byte, sp uint16, da []byte, dp uint16) {
		s, ok1 := netip.AddrFromSlice(sa)
		d, ok2 := netip.AddrFromSlice(da)
		if !ok1 || !ok2 {
			return
		}
		proto := ipvs.ProtoUDP
		if tcp {
			proto = ipvs.ProtoTCP
		}
		src, dst := netip.AddrPortFrom(s, sp), netip.AddrPortFrom(d, dp)
		h, err := proxyHeader(ver, proto, src, dst)
		if err != nil {
			return
		}
		got, err := readProxyHeader(bufio.NewReader(bytes.NewReader(h)))
		if err != nil {
			t.Fatalf("%q: %v", h, err)
		}
		src = netip.AddrPortFrom(s.Unmap(), sp)
		dst = netip.AddrPortFrom(d.Unmap(), dp)
		if got.ver != ver || got.src != src || got.dst != dst {
			t.Fatalf("%q parsed as %+v, want v%d %s -> %s", h, got, ver, src, dst)
		}
	})
}
