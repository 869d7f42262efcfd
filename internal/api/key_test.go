package api

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/govs/govs/internal/ipvs"
)

func TestServiceKeyFormat(t *testing.T) {
	tests := []struct {
		key  ipvs.ServiceKey
		want string
	}{
		{ipvs.TCPService(netip.MustParseAddrPort("10.0.0.1:80")), "tcp/10.0.0.1:80"},
		{ipvs.UDPService(netip.MustParseAddrPort("[2001:db8::1]:53")), "udp/[2001:db8::1]:53"},
		{ipvs.ServiceKey{Family: ipvs.IPv4, Protocol: ipvs.ProtoSCTP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 9000}, "sctp/10.0.0.1:9000"},
		{ipvs.TCPService(netip.MustParseAddrPort("10.0.0.1:0")), "tcp/10.0.0.1:0"},
		{ipvs.FWMarkService(7, ipvs.IPv4), "fwmark/7/ipv4"},
		{ipvs.FWMarkService(4294967295, ipvs.IPv6), "fwmark/4294967295/ipv6"},
	}
	for _, tt := range tests {
		got, err := FormatServiceKey(tt.key)
		if err != nil || got != tt.want {
			t.Errorf("FormatServiceKey(%+v) = %q, %v; want %q", tt.key, got, err, tt.want)
			continue
		}
		back, err := ParseServiceKey(got)
		if err != nil || back != tt.key {
			t.Errorf("ParseServiceKey(%q) = %+v, %v; want %+v", got, back, err, tt.key)
		}
	}
}

func TestServiceKeyParseErrors(t *testing.T) {
	bad := []string{
		"", "tcp", "tcp/", "tcp/10.0.0.1", "tcp/10.0.0.1:80/x", "TCP/10.0.0.1:80",
		"icmp/10.0.0.1:80", "tcp/10.0.0.1:080", "tcp/[fe80::1%eth0]:80", "tcp/2001:db8::1:80",
		"fwmark", "fwmark/", "fwmark/0/ipv4", "fwmark/07/ipv4", "fwmark/-1", "fwmark/4294967296",
		"fwmark/7/inet6", "fwmark/7/ipv4/", "fwmark/+7",
	}
	for _, s := range bad {
		if k, err := ParseServiceKey(s); !errors.Is(err, ipvs.ErrInvalid) {
			t.Errorf("ParseServiceKey(%q) = %+v, %v; want an error wrapping ErrInvalid", s, k, err)
		}
	}
	// fwmark without a family is IPv4, like ipvsadm -f without -6.
	if k, err := ParseServiceKey("fwmark/7"); err != nil || k != ipvs.FWMarkService(7, ipvs.IPv4) {
		t.Errorf(`ParseServiceKey("fwmark/7") = %+v, %v`, k, err)
	}
}

func TestServiceKeyFormatErrors(t *testing.T) {
	bad := []ipvs.ServiceKey{
		{},
		{Family: ipvs.IPv4, Protocol: ipvs.ProtoTCP},
		{Family: ipvs.IPv6, Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80},
		{Family: ipvs.IPv6, Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr("fe80::1%eth0"), Port: 80},
		{Family: ipvs.IPv4, Protocol: 99, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80},
		{FWMark: 1},
		{FWMark: 1, Family: ipvs.IPv4, Protocol: ipvs.ProtoTCP},
		{FWMark: 1, Family: ipvs.IPv4, Addr: netip.MustParseAddr("10.0.0.1")},
	}
	for _, k := range bad {
		if s, err := FormatServiceKey(k); !errors.Is(err, ipvs.ErrInvalid) {
			t.Errorf("FormatServiceKey(%+v) = %q, %v; want an error wrapping ErrInvalid", k, s, err)
		}
	}
}

func TestSplitServicePath(t *testing.T) {
	k, tail, err := splitServicePath("udp/%5B2001:db8::1%5D:53/dests/%5B2001:db8::2%5D:53")
	if err != nil {
		t.Fatal(err)
	}
	if want := ipvs.UDPService(netip.MustParseAddrPort("[2001:db8::1]:53")); k != want {
		t.Errorf("key = %+v, want %+v", k, want)
	}
	if len(tail) != 2 || tail[0] != "dests" || tail[1] != "[2001:db8::2]:53" {
		t.Errorf("tail = %q", tail)
	}
	// In paths the fwmark family is required, so that "fwmark/7/dests"
	// cannot be read two ways.
	if _, _, err := splitServicePath("fwmark/7"); !errors.Is(err, ipvs.ErrInvalid) {
		t.Errorf("fwmark/7: err = %v, want ErrInvalid", err)
	}
	if _, _, err := splitServicePath("fwmark/7/dests"); !errors.Is(err, ipvs.ErrInvalid) {
		t.Errorf("fwmark/7/dests: err = %v, want ErrInvalid", err)
	}
	if _, _, err := splitServicePath("tcp/%zz"); !errors.Is(err, ipvs.ErrInvalid) {
		t.Errorf("bad escape: err = %v, want ErrInvalid", err)
	}
}

// checkKeyRoundTrip checks that a key that formats comes back the same
// from its text and from its escaped path.
func checkKeyRoundTrip(t *testing.T, k ipvs.ServiceKey) {
	t.Helper()
	s, err := FormatServiceKey(k)
	if err != nil {
		if !errors.Is(err, ipvs.ErrInvalid) {
			t.Fatalf("FormatServiceKey(%+v): error %v does not wrap ErrInvalid", k, err)
		}
		return
	}
	back, err := ParseServiceKey(s)
	if err != nil || back != k {
		t.Fatalf("ParseServiceKey(FormatServiceKey(%+v) = %q) = %+v, %v", k, s, back, err)
	}
	p, err := servicePath(k)
	if err != nil {
		t.Fatalf("servicePath(%+v): %v", k, err)
	}
	const prefix = "/v1/services/"
	pk, tail, err := splitServicePath(p[len(prefix):] + "/dests/10.0.0.2:80")
	if err != nil || pk != k || len(tail) != 2 || tail[0] != "dests" || tail[1] != "10.0.0.2:80" {
		t.Fatalf("splitServicePath(%q) = %+v, %q, %v; want %+v", p, pk, tail, err, k)
	}
}

func FuzzParseServiceKey(f *testing.F) {
	for _, s := range []string{
		"tcp/10.0.0.1:80", "udp/[2001:db8::1]:53", "sctp/10.0.0.1:9000", "fwmark/7/ipv4",
		"fwmark/7/ipv6", "fwmark/7", "tcp/[::ffff:10.0.0.1]:80", "tcp/[fe80::1%eth0]:80",
		"tcp/10.0.0.1:65535", "fwmark/4294967295/ipv6", "udp/0.0.0.0:0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseServiceKey(s)
		if err != nil {
			if !errors.Is(err, ipvs.ErrInvalid) {
				t.Fatalf("ParseServiceKey(%q): error %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		if _, err := FormatServiceKey(k); err != nil {
			t.Fatalf("ParseServiceKey(%q) = %+v, which does not format: %v", s, k, err)
		}
		checkKeyRoundTrip(t, k)
	})
}

func FuzzServiceKeyFields(f *testing.F) {
	f.Add(uint32(0), uint8(ipvs.IPv4), uint8(ipvs.ProtoTCP), []byte{10, 0, 0, 1}, uint16(80))
	f.Add(uint32(0), uint8(ipvs.IPv6), uint8(ipvs.ProtoUDP), netip.MustParseAddr("2001:db8::1").AsSlice(), uint16(53))
	f.Add(uint32(7), uint8(ipvs.IPv6), uint8(0), []byte(nil), uint16(0))
	f.Add(uint32(0), uint8(ipvs.IPv4), uint8(ipvs.ProtoSCTP), netip.MustParseAddr("::ffff:10.0.0.1").AsSlice(), uint16(1))
	f.Fuzz(func(t *testing.T, mark uint32, fam, proto uint8, addr []byte, port uint16) {
		a, _ := netip.AddrFromSlice(addr)
		checkKeyRoundTrip(t, ipvs.ServiceKey{FWMark: mark, Family: ipvs.Family(fam), Protocol: ipvs.Protocol(proto), Addr: a, Port: port})
	})
}

func FuzzParseDestKey(f *testing.F) {
	for _, s := range []string{"10.0.0.2:80", "[2001:db8::2]:0", "[fe80::1%lo]:1", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDestKey(s)
		if err != nil {
			return
		}
		out, err := FormatDestKey(d)
		if err != nil || out != s {
			t.Fatalf("FormatDestKey(ParseDestKey(%q)) = %q, %v", s, out, err)
		}
	})
}
