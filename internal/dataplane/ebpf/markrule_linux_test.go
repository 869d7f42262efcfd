package ebpf

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

// TestFixtureMarkRules: firewall-mark services found through mark_rules,
// the packets carrying no mark of their own (skb->mark 0, as netfilter
// has not run yet at TC ingress), through govs_tc; govs_xdp passes them
// to TC.
func TestFixtureMarkRules(t *testing.T) {
	for _, xdp := range []bool{false, true} {
		name := "tc"
		if xdp {
			name = "xdp"
		}
		t.Run(name, func(t *testing.T) { testFixtureMarkRules(t, xdp) })
	}
}

func testFixtureMarkRules(t *testing.T, xdp bool) {
	f := newFixtureMode(t, xdp)
	f.addService(ipvs.Service{ServiceKey: ipvs.FWMarkService(7, ipvs.IPv4), Scheduler: "rr"},
		ipvs.Destination{Addr: rs1v4, Fwd: ipvs.Route, Weight: 1})
	f.addService(ipvs.Service{ServiceKey: ipvs.FWMarkService(8, ipvs.IPv4), Scheduler: "rr"},
		ipvs.Destination{Addr: rs2v4, Fwd: ipvs.Route, Weight: 1})
	f.addService(ipvs.Service{ServiceKey: ipvs.FWMarkService(9, ipvs.IPv6), Scheduler: "rr"},
		ipvs.Destination{Addr: rs1v6, Fwd: ipvs.Route, Weight: 1})
	rules := []MarkRule{
		{Proto: ipvs.ProtoTCP, Dst: netip.MustParsePrefix("192.168.1.10/32"), PortMin: 80, PortMax: 81, Mark: 7},
		{Proto: ipvs.ProtoNone, Dst: netip.MustParsePrefix("192.168.1.0/24"), PortMin: 0, PortMax: 65535, Mark: 8},
		{Proto: ipvs.ProtoTCP, Dst: netip.MustParsePrefix("fd01::/64"), PortMin: 443, PortMax: 443, Mark: 9},
	}
	if err := writeMarkRules(f.objs, rules); err != nil {
		t.Fatal(err)
	}
	syn := func(dst netip.Addr, sport, dport uint16) []byte {
		return ipPacket(t, cipv4, dst, l4{proto: ipvs.ProtoTCP, sport: sport, dport: dport, flags: conn.SYN})
	}
	ip80, ip81, ip82 := syn(vipv4, 1, 80), syn(vipv4, 2, 81), syn(vipv4, 3, 82)
	other := syn(netip.MustParseAddr("192.168.2.10"), 4, 80)
	udp80 := ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoUDP, sport: 5, dport: 80, payload: []byte("0000")})
	ip6 := ipPacket(t, cipv6, vipv6, l4{proto: ipvs.ProtoTCP, sport: 6, dport: 443, flags: conn.SYN})
	ip6other := ipPacket(t, cipv6, vipv6, l4{proto: ipvs.ProtoTCP, sport: 7, dport: 444, flags: conn.SYN})
	steps := []step{
		{desc: "port 80 matches rules 1 and 2: the first wins, mark 7", in: frame(macClient, macCL0, false, ip80),
			verdict: actRedirect, out: frame(macRS0, macRS1, false, ip80)},
		{desc: "port 81: the end of rule 1's range, mark 7", in: frame(macClient, macCL0, false, ip81),
			verdict: actRedirect, out: frame(macRS0, macRS1, false, ip81)},
		{desc: "port 82: past rule 1's range, rule 2, mark 8", in: frame(macClient, macCL0, false, ip82),
			verdict: actRedirect, out: frame(macRS0, macRS2, false, ip82)},
		{desc: "UDP: rule 1 is TCP only, rule 2, mark 8", in: frame(macClient, macCL0, false, udp80),
			verdict: actRedirect, out: frame(macRS0, macRS2, false, udp80)},
		{desc: "IPv6 port 443: rule 3, mark 9", in: frame(macClient, macCL0, true, ip6),
			verdict: actRedirect, out: frame(macRS0, macRS1, true, ip6)},
		{desc: "no rule matches (other network): passed", in: frame(macClient, macCL0, false, other), verdict: actOK},
		{desc: "no rule matches (IPv6 port 444): passed", in: frame(macClient, macCL0, true, ip6other), verdict: actOK},
	}
	if xdp {
		// govs_xdp does not evaluate the rules: a new connection of a
		// firewall-mark service is left to govs_tc, untouched.
		for i := range steps {
			steps[i].verdict, steps[i].out = actOK, nil
		}
		f.check(steps)
		return
	}
	ip83 := syn(vipv4, 8, 80)
	steps = append(steps, step{desc: "a mark already on the packet wins over the rules", mark: 8,
		in: frame(macClient, macCL0, false, ip83), verdict: actRedirect, out: frame(macRS0, macRS2, false, ip83)})
	f.check(steps)

	// Rules replaced: the order decides.
	rules[0], rules[1] = rules[1], rules[0]
	if err := writeMarkRules(f.objs, rules); err != nil {
		t.Fatal(err)
	}
	ip80b := syn(vipv4, 9, 80)
	f.check([]step{{desc: "rule order swapped: port 80 gets mark 8", in: frame(macClient, macCL0, false, ip80b),
		verdict: actRedirect, out: frame(macRS0, macRS2, false, ip80b)}})

	if err := writeMarkRules(f.objs, nil); err != nil {
		t.Fatal(err)
	}
	ip80c := syn(vipv4, 10, 80)
	f.check([]step{{desc: "no rules: passed", in: frame(macClient, macCL0, false, ip80c), verdict: actOK}})
}

// TestFixtureMarkRuleSetsSkbMark: a packet a rule marks but no service
// takes is passed with the mark, so the stack (netfilter, routing rules)
// sees it.
func TestFixtureMarkRuleSetsSkbMark(t *testing.T) {
	f := newFixture(t)
	if err := writeMarkRules(f.objs, []MarkRule{{Dst: netip.MustParsePrefix("192.168.1.0/24"), PortMax: 65535, Mark: 42}}); err != nil {
		t.Fatal(err)
	}
	in := frame(macClient, macCL0, false, ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoTCP, sport: 1, dport: 80, flags: conn.SYN}))
	ctxOut := make([]byte, 256) // all of struct __sk_buff
	var ret uint32
	f.ns.MustDo(func() error {
		ifi := uint32(f.cl0)
		opts := &ebpf.RunOptions{Data: in, DataOut: make([]byte, len(in)+256),
			Context: skbCtx{IngressIfindex: ifi, Ifindex: ifi}, ContextOut: ctxOut}
		var err error
		ret, err = f.objs.GovsTc.Run(opts)
		if err != nil {
			return fmt.Errorf("run govs_tc: %w", err)
		}
		return nil
	})
	if ret != actOK {
		t.Errorf("verdict %d, want %d (passed)", ret, actOK)
	}
	if mark := binary.NativeEndian.Uint32(ctxOut[8:]); mark != 42 { // __sk_buff.mark
		t.Errorf("skb->mark %d, want 42", mark)
	}
}

func TestMarkRuleValidate(t *testing.T) {
	p := netip.MustParsePrefix("10.0.0.100/32")
	for _, c := range []struct {
		r   MarkRule
		err string
	}{
		{MarkRule{Proto: ipvs.ProtoTCP, Dst: p, PortMin: 80, PortMax: 81, Mark: 7}, ""},
		{MarkRule{Dst: netip.MustParsePrefix("fd00::/64"), PortMax: 65535, Mark: 1}, ""},
		{MarkRule{Proto: ipvs.ProtoSCTP, Dst: p, Mark: 7}, "TCP and UDP only"},
		{MarkRule{Proto: ipvs.ProtoTCP, PortMax: 1, Mark: 7}, "not valid"},
		{MarkRule{Dst: netip.MustParsePrefix("::ffff:10.0.0.1/128"), Mark: 7}, "IPv4-mapped"},
		{MarkRule{Dst: p, PortMin: 81, PortMax: 80, Mark: 7}, "empty"},
		{MarkRule{Dst: p, PortMax: 80}, "mark 0"},
	} {
		err := validateMarkRules([]MarkRule{c.r})
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: error %v, want %q", c.r, err, c.err)
		}
	}
	if err := validateMarkRules(make([]MarkRule, MaxMarkRules+1)); err == nil || !strings.Contains(err.Error(), "at most 256") {
		t.Errorf("too many rules: error %v", err)
	}
}
