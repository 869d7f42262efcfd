package main

import (
	"flag"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/govs/govs/internal/dataplane/ebpf"
	"github.com/govs/govs/internal/ipvs"
)

func TestParseMarkRule(t *testing.T) {
	for _, c := range []struct {
		in   string
		want ebpf.MarkRule
		err  string
	}{
		{in: "tcp 10.0.0.100/32 80-81 7", want: ebpf.MarkRule{Proto: ipvs.ProtoTCP, Dst: netip.MustParsePrefix("10.0.0.100/32"), PortMin: 80, PortMax: 81, Mark: 7}},
		{in: "  UDP   10.0.0.0/24 53 0x10 ", want: ebpf.MarkRule{Proto: ipvs.ProtoUDP, Dst: netip.MustParsePrefix("10.0.0.0/24"), PortMin: 53, PortMax: 53, Mark: 16}},
		{in: "any fd00::/64 any 9", want: ebpf.MarkRule{Dst: netip.MustParsePrefix("fd00::/64"), PortMax: 65535, Mark: 9}},
		{in: "tcp 10.0.0.1 443 1", want: ebpf.MarkRule{Proto: ipvs.ProtoTCP, Dst: netip.MustParsePrefix("10.0.0.1/32"), PortMin: 443, PortMax: 443, Mark: 1}},
		{in: "tcp fd00::1 0-65535 4294967295", want: ebpf.MarkRule{Proto: ipvs.ProtoTCP, Dst: netip.MustParsePrefix("fd00::1/128"), PortMax: 65535, Mark: 4294967295}},
		{in: "tcp 10.0.0.1/32 80", err: "want 4 fields"},
		{in: "tcp 10.0.0.1/32 80 7 extra", err: "want 4 fields"},
		{in: "sctp 10.0.0.1/32 80 7", err: "want tcp, udp or any"},
		{in: "tcp 10.0.0.1/33 80 7", err: "10.0.0.1/33"},
		{in: "tcp nothost 80 7", err: "nothost"},
		{in: "tcp 10.0.0.1/32 http 7", err: `port "http"`},
		{in: "tcp 10.0.0.1/32 65536 7", err: `port "65536"`},
		{in: "tcp 10.0.0.1/32 81-80 7", err: "empty"},
		{in: "tcp 10.0.0.1/32 80- 7", err: `port ""`},
		{in: "tcp 10.0.0.1/32 80 0", err: "mark 0"},
		{in: "tcp 10.0.0.1/32 80 -1", err: `mark "-1"`},
		{in: "tcp 10.0.0.1/32 80 4294967296", err: `mark "4294967296"`},
		{in: "tcp ::ffff:10.0.0.1/128 80 7", err: "IPv4-mapped"},
	} {
		got, err := parseMarkRule(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want one containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("%q: got %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestFWMarkRuleFlag(t *testing.T) {
	var o dataplaneOptions
	fs := newTestFlagSet()
	o.flags(fs)
	if err := fs.Parse([]string{"--fwmark-rule", "tcp 10.0.0.100/32 80-81 7", "--fwmark-rule", "any 10.0.0.0/24 any 8"}); err != nil {
		t.Fatal(err)
	}
	if len(o.markRules) != 2 || o.markRules[0].Mark != 7 || o.markRules[1].Mark != 8 {
		t.Fatalf("rules %v", o.markRules)
	}
	fs = newTestFlagSet()
	o.flags(fs)
	if err := fs.Parse([]string{"--fwmark-rule", "tcp 10.0.0.100/32 80"}); err == nil {
		t.Fatal("a bad rule was accepted")
	}
}

func newTestFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("govsd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}
