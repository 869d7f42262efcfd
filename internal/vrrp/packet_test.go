package vrrp

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

var (
	src4 = netip.MustParseAddr("10.0.0.1")
	src6 = netip.MustParseAddr("fe80::1")
)

// The golden messages are built by hand from RFC 3768 5.1 and RFC 5798
// 5.1; their checksums were computed apart from this package.
var golden = []struct {
	name     string
	src, dst netip.Addr
	advert   Advert
	wire     []byte
}{
	{
		name: "v2 PASS", src: src4, dst: Group4,
		advert: Advert{Version: 2, VRID: 51, Priority: 100, AdvertInt: time.Second,
			Addresses: []netip.Addr{netip.MustParseAddr("192.168.1.100")},
			AuthType:  AuthPass, AuthData: PassData("secret"), Checksum: 0x7b71},
		wire: []byte{
			0x21, 51, 100, 1, // version 2 type 1, VRID, priority, count
			1, 1, 0x7b, 0x71, // auth type PASS, advert int 1s, checksum
			192, 168, 1, 100, // address
			's', 'e', 'c', 'r', 'e', 't', 0, 0, // auth data
		},
	},
	{
		name: "v3 IPv4", src: src4, dst: Group4,
		advert: Advert{Version: 3, VRID: 51, Priority: 100, AdvertInt: time.Second,
			Addresses: []netip.Addr{netip.MustParseAddr("192.168.1.100")}, Checksum: 0xbdca},
		wire: []byte{
			0x31, 51, 100, 1, // version 3 type 1, VRID, priority, count
			0x00, 100, 0xbd, 0xca, // rsvd + max advert int 100cs, checksum
			192, 168, 1, 100,
		},
	},
	{
		name: "v3 IPv6", src: src6, dst: Group6,
		advert: Advert{Version: 3, VRID: 51, Priority: 100, AdvertInt: time.Second,
			Addresses: []netip.Addr{netip.MustParseAddr("2001:db8::100")}, Checksum: 0x3d8f},
		wire: []byte{
			0x31, 51, 100, 1,
			0x00, 100, 0x3d, 0x8f,
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00,
		},
	},
}

func TestMarshalGolden(t *testing.T) {
	for _, g := range golden {
		t.Run(g.name, func(t *testing.T) {
			b, err := g.advert.Marshal(g.src, g.dst)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, g.wire) {
				t.Errorf("Marshal\n got % x\nwant % x", b, g.wire)
			}
			if g.advert.Len() != len(g.wire) {
				t.Errorf("Len %d, want %d", g.advert.Len(), len(g.wire))
			}
		})
	}
}

func TestDecodeGolden(t *testing.T) {
	for _, g := range golden {
		t.Run(g.name, func(t *testing.T) {
			a, err := Decode(g.wire, g.src, g.dst)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*a, g.advert) {
				t.Errorf("Decode\n got %+v\nwant %+v", *a, g.advert)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	v2, v3 := golden[0].wire, golden[1].wire
	mod := func(b []byte, f func([]byte) []byte) []byte { return f(bytes.Clone(b)) }
	for _, tc := range []struct {
		name     string
		b        []byte
		src, dst netip.Addr
		want     error
	}{
		{"empty", nil, src4, Group4, ErrTruncated},
		{"short header", v2[:7], src4, Group4, ErrTruncated},
		{"short addresses", v2[:15], src4, Group4, ErrTruncated},
		{"trailing bytes", append(bytes.Clone(v2), 0), src4, Group4, ErrLength},
		{"version 1", mod(v2, func(b []byte) []byte { b[0] = 0x11; return b }), src4, Group4, ErrVersion},
		{"type 2", mod(v2, func(b []byte) []byte { b[0] = 0x22; return b }), src4, Group4, ErrType},
		{"v2 checksum", mod(v2, func(b []byte) []byte { b[2] = 101; return b }), src4, Group4, ErrChecksum},
		{"v2 over IPv6", v2, src6, Group6, ErrFamily},
		{"v3 wrong pseudo-header", v3, netip.MustParseAddr("10.0.0.2"), Group4, ErrChecksum},
		{"v3 unicast dst", v3, src4, netip.MustParseAddr("10.0.0.2"), ErrChecksum},
		{"v3 no dst", v3, src4, netip.Addr{}, ErrFamily},
		{"v3 as IPv6", v3, src6, Group6, ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.b, tc.src, tc.dst)
			if !errors.Is(err, tc.want) {
				t.Errorf("Decode = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestV2ChecksumIgnoresIPHeader(t *testing.T) {
	g := golden[0]
	b, err := g.advert.Marshal(netip.MustParseAddr("192.0.2.9"), netip.MustParseAddr("192.0.2.10"))
	if err != nil || !bytes.Equal(b, g.wire) {
		t.Fatalf("v2 with other addresses: % x, %v", b, err)
	}
}

func TestMarshalErrors(t *testing.T) {
	a4 := []netip.Addr{netip.MustParseAddr("192.0.2.1")}
	a6 := []netip.Addr{netip.MustParseAddr("2001:db8::1")}
	for _, tc := range []struct {
		name     string
		a        Advert
		src, dst netip.Addr
	}{
		{"v2 IPv6", Advert{Version: 2, AdvertInt: time.Second, Addresses: a6}, src6, Group6},
		{"v2 subsecond", Advert{Version: 2, AdvertInt: 500 * time.Millisecond, Addresses: a4}, src4, Group4},
		{"v2 too long", Advert{Version: 2, AdvertInt: 256 * time.Second, Addresses: a4}, src4, Group4},
		{"v3 too long", Advert{Version: 3, AdvertInt: 41 * time.Second, Addresses: a4}, src4, Group4},
		{"v3 5ms", Advert{Version: 3, AdvertInt: 5 * time.Millisecond, Addresses: a4}, src4, Group4},
		{"v3 family", Advert{Version: 3, AdvertInt: time.Second, Addresses: a6}, src4, Group4},
		{"mixed", Advert{Version: 3, AdvertInt: time.Second, Addresses: append(a4, a6...)}, src6, Group6},
		{"version 4", Advert{Version: 4, AdvertInt: time.Second, Addresses: a4}, src4, Group4},
	} {
		if _, err := tc.a.Marshal(tc.src, tc.dst); err == nil {
			t.Errorf("%s: Marshal succeeded", tc.name)
		}
	}
}

func TestDecodeIPv4(t *testing.T) {
	g := golden[0]
	ip := []byte{
		0x45, 0xc0, 0, byte(20 + len(g.wire)), // version/IHL, TOS, total length
		0, 1, 0, 0, // id, flags
		255, 112, 0, 0, // TTL, protocol, header checksum (not checked)
		10, 0, 0, 1, // src
		224, 0, 0, 18, // dst
	}
	r, err := DecodeIPv4(append(ip, g.wire...))
	if err != nil {
		t.Fatal(err)
	}
	if r.TTL != 255 || r.Src != src4 || r.Dst != Group4 || r.VRID != 51 || r.AuthData != PassData("secret") {
		t.Errorf("DecodeIPv4 = %+v", r)
	}
	bad := append(bytes.Clone(ip), g.wire...)
	bad[9] = 17
	if _, err := DecodeIPv4(bad); !errors.Is(err, ErrProtocol) {
		t.Errorf("UDP packet: %v, want ErrProtocol", err)
	}
	if _, err := DecodeIPv4(append(bytes.Clone(ip), g.wire[:10]...)); !errors.Is(err, ErrTruncated) {
		t.Errorf("cut packet: %v, want ErrTruncated", err)
	}
}

func TestPassDataTruncates(t *testing.T) {
	if got := PassData("0123456789"); string(got[:]) != "01234567" {
		t.Errorf("PassData = %q", got)
	}
}

// FuzzDecode checks that Decode never panics and that whatever it
// accepts encodes back to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, g := range golden {
		f.Add(g.wire, g.src.Is6(), false)
	}
	f.Add([]byte{0x31, 1, 0, 0, 0, 1, 0, 0}, false, true)
	f.Add([]byte{0x21, 1, 255, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false, false)
	f.Fuzz(func(t *testing.T, b []byte, v6, unicast bool) {
		src, dst := src4, Group4
		if v6 {
			src, dst = src6, Group6
		}
		if unicast {
			dst = netip.MustParseAddr("10.0.0.2")
			if v6 {
				dst = netip.MustParseAddr("fe80::2")
			}
		}
		a, err := Decode(b, src, dst)
		if err != nil {
			return
		}
		if a.AdvertInt == 0 {
			return // decodes (interval 0), but we never send it
		}
		out, err := a.Marshal(src, dst)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", a, err)
		}
		// Reserved bits and a non-canonical checksum (0x0000 vs 0xffff)
		// may differ; the re-encoded form must decode to the same advert.
		back, err := Decode(out, src, dst)
		if err != nil {
			t.Fatalf("re-encoded % x does not decode: %v", out, err)
		}
		back.Checksum, a.Checksum = 0, 0
		if !reflect.DeepEqual(a, back) {
			t.Fatalf("round trip\n got %+v\nwant %+v", back, a)
		}
		if len(out) != len(b) {
			t.Fatalf("round trip length %d, want %d", len(out), len(b))
		}
	})
}

func FuzzDecodeIPv4(f *testing.F) {
	ip := []byte{0x45, 0xc0, 0, 40, 0, 1, 0, 0, 255, 112, 0, 0, 10, 0, 0, 1, 224, 0, 0, 18}
	f.Add(append(ip, golden[0].wire...))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeIPv4(b)
	})
}
