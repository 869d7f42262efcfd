package ebpf

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket/layers"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/netns"
)

// step is one packet of a fixture: what goes in, what must come out.
type step struct {
	desc    string
	in      []byte
	mark    uint32
	verdict uint32
	out     []byte // nil: the output must equal the input (untouched)
}

func (f *fixture) check(steps []step) {
	f.t.Helper()
	for _, s := range steps {
		ret, out := f.run(s.in, s.mark)
		if ret != s.verdict {
			f.t.Errorf("%s: verdict %d, want %d", s.desc, ret, s.verdict)
		}
		want := s.out
		if want == nil {
			want = s.in
		}
		diffPackets(f.t, s.desc, out, want)
	}
}

type ipFamily struct {
	name             string
	v6               bool
	cip, vip, dip    netip.Addr
	rs1, rs2         netip.Addr
	encapProto       layers.IPProtocol
	encapEthNextType layers.EthernetType
}

var families = []ipFamily{
	{name: "v4", cip: cipv4, vip: vipv4, dip: dip4, rs1: rs1v4, rs2: rs2v4, encapProto: layers.IPProtocolIPv4},
	{name: "v6", v6: true, cip: cipv6, vip: vipv6, dip: dip6, rs1: rs1v6, rs2: rs2v6, encapProto: layers.IPProtocolIPv6},
}

func tcpService(vip netip.Addr, port uint16, sched string) ipvs.Service {
	return ipvs.Service{ServiceKey: ipvs.TCPService(netip.AddrPortFrom(vip, port)), Scheduler: sched}
}

func udpService(vip netip.Addr, port uint16, sched string) ipvs.Service {
	return ipvs.Service{ServiceKey: ipvs.UDPService(netip.AddrPortFrom(vip, port)), Scheduler: sched}
}

func TestFixtureNAT(t *testing.T) { testFixtureNAT(t, false) }

func testFixtureNAT(t *testing.T, xdp bool) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			f := newFixtureMode(t, xdp)
			f.addService(tcpService(fam.vip, 80, "rr"),
				ipvs.Destination{Addr: fam.rs1, Port: 8080, Fwd: ipvs.Masq, Weight: 1})
			f.addService(udpService(fam.vip, 53, "rr"),
				ipvs.Destination{Addr: fam.rs1, Port: 5353, Fwd: ipvs.Masq, Weight: 1})

			syn := l4{proto: ipvs.ProtoTCP, sport: 40000, dport: 80, flags: conn.SYN, tos: 0x10}
			synRS := syn
			synRS.dport = 8080
			synack := l4{proto: ipvs.ProtoTCP, sport: 8080, dport: 40000, flags: conn.SYN | conn.ACK}
			synackVIP := synack
			synackVIP.sport = 80
			ack := l4{proto: ipvs.ProtoTCP, sport: 40000, dport: 80, flags: conn.ACK, payload: []byte("GET / HTTP/1.0\r\n\r\n")}
			ackRS := ack
			ackRS.dport = 8080
			udp := l4{proto: ipvs.ProtoUDP, sport: 40001, dport: 53, payload: []byte("query")}
			udpRS := udp
			udpRS.dport = 5353
			udpReply := l4{proto: ipvs.ProtoUDP, sport: 5353, dport: 40001, payload: []byte("answer!")}
			udpReplyVIP := udpReply
			udpReplyVIP.sport = 53

			steps := []step{
				{desc: "SYN to VIP is rewritten to RIP:8080 and redirected to RS1",
					in:      frame(macClient, macCL0, fam.v6, ipPacket(t, fam.cip, fam.vip, syn)),
					verdict: actRedirect,
					out:     frame(macRS0, macRS1, fam.v6, ipPacket(t, fam.cip, fam.rs1, synRS))},
				{desc: "SYN-ACK from RS gets the VIP back and goes to the client",
					in:      frame(macRS1, macRS0, fam.v6, ipPacket(t, fam.rs1, fam.cip, synack)),
					verdict: actRedirect,
					out:     frame(macCL0, macClient, fam.v6, ipPacket(t, fam.vip, fam.cip, synackVIP))},
				{desc: "ACK with data follows the connection",
					in:      frame(macClient, macCL0, fam.v6, ipPacket(t, fam.cip, fam.vip, ack)),
					verdict: actRedirect,
					out:     frame(macRS0, macRS1, fam.v6, ipPacket(t, fam.cip, fam.rs1, ackRS))},
				{desc: "UDP datagram is rewritten",
					in:      frame(macClient, macCL0, fam.v6, ipPacket(t, fam.cip, fam.vip, udp)),
					verdict: actRedirect,
					out:     frame(macRS0, macRS1, fam.v6, ipPacket(t, fam.cip, fam.rs1, udpRS))},
				{desc: "UDP reply gets the VIP back",
					in:      frame(macRS1, macRS0, fam.v6, ipPacket(t, fam.rs1, fam.cip, udpReply)),
					verdict: actRedirect,
					out:     frame(macCL0, macClient, fam.v6, ipPacket(t, fam.vip, fam.cip, udpReplyVIP))},
			}
			if !fam.v6 {
				nocsum := udp
				nocsum.sport = 40002
				nocsum.udpNoCsum = true
				nocsumRS := nocsum
				nocsumRS.dport = 5353
				opts := syn
				opts.sport = 40003
				opts.ipOptions = true
				optsRS := opts
				optsRS.dport = 8080
				steps = append(steps,
					step{desc: "UDP without checksum keeps checksum 0",
						in:      frame(macClient, macCL0, false, ipPacket(t, fam.cip, fam.vip, nocsum)),
						verdict: actRedirect,
						out:     frame(macRS0, macRS1, false, ipPacket(t, fam.cip, fam.rs1, nocsumRS))},
					step{desc: "IPv4 options: L4 found by IHL, options kept",
						in:      frame(macClient, macCL0, false, ipPacket(t, fam.cip, fam.vip, opts)),
						verdict: actRedirect,
						out:     frame(macRS0, macRS1, false, ipPacket(t, fam.cip, fam.rs1, optsRS))},
				)
			}
			f.check(steps)

			// TCP 40000: SYN, SYN-ACK out, ACK -> ESTABLISHED (active);
			// the IPv4 options SYN stays in SYN_RECV (inactive).
			if st := f.destLive(t, fam.rs1, 8080); st.Active != 1 || st.Inact != boolI32(!fam.v6) {
				t.Errorf("RS1:8080 counters %+v, want 1 active, %d inactive", st, boolI32(!fam.v6))
			}
			// UDP connections are always inactive.
			if st := f.destLive(t, fam.rs1, 5353); st.Active != 0 || st.Inact != 1+boolI32(!fam.v6) {
				t.Errorf("RS1:5353 counters %+v, want %d inactive", st, 1+boolI32(!fam.v6))
			}
		})
	}
}

func boolI32(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

// destLive returns the live counters of the destination addr:port of any
// service.
func (f *fixture) destLive(t *testing.T, addr netip.Addr, port uint16) govsDestLive {
	t.Helper()
	for _, e := range f.tab.svcs {
		for _, d := range e.dests {
			if d.d.Addr == addr && d.d.Port == port {
				var l govsDestLive
				if err := f.objs.DestLive.Lookup(d.id, &l); err != nil {
					t.Fatal(err)
				}
				return l
			}
		}
	}
	t.Fatalf("no destination %s:%d", addr, port)
	return govsDestLive{}
}

func TestFixtureDR(t *testing.T) { testFixtureDR(t, false) }

func testFixtureDR(t *testing.T, xdp bool) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			f := newFixtureMode(t, xdp)
			f.addService(tcpService(fam.vip, 80, "rr"),
				ipvs.Destination{Addr: fam.rs1, Fwd: ipvs.Route, Weight: 1},
				ipvs.Destination{Addr: fam.rs2, Fwd: ipvs.Route, Weight: 1})
			syn := l4{proto: ipvs.ProtoTCP, sport: 40000, dport: 80, flags: conn.SYN}
			syn2 := syn
			syn2.sport = 40001
			ack := l4{proto: ipvs.ProtoTCP, sport: 40000, dport: 80, flags: conn.ACK}
			ip1 := ipPacket(t, fam.cip, fam.vip, syn)
			ip2 := ipPacket(t, fam.cip, fam.vip, syn2)
			ip3 := ipPacket(t, fam.cip, fam.vip, ack)
			f.check([]step{
				// rr over the list newest first: RS2 was added last.
				{desc: "first SYN: only the MACs change, to RS2 (newest first)",
					in: frame(macClient, macCL0, fam.v6, ip1), verdict: actRedirect,
					out: frame(macRS0, macRS2, fam.v6, ip1)},
				{desc: "second connection goes to RS1",
					in: frame(macClient, macCL0, fam.v6, ip2), verdict: actRedirect,
					out: frame(macRS0, macRS1, fam.v6, ip2)},
				{desc: "ACK of the first connection follows it to RS2",
					in: frame(macClient, macCL0, fam.v6, ip3), verdict: actRedirect,
					out: frame(macRS0, macRS2, fam.v6, ip3)},
			})
			// Input-only table: SYN -> SYN_RECV, ACK -> ESTABLISHED.
			if l := f.destLive(t, fam.rs2, 80); l.Active != 1 || l.Inact != 0 {
				t.Errorf("RS2 counters %+v, want 1 active", l)
			}
			if l := f.destLive(t, fam.rs1, 80); l.Active != 0 || l.Inact != 1 {
				t.Errorf("RS1 counters %+v, want 1 inactive", l)
			}
		})
	}
}

func TestFixtureTunnel(t *testing.T) { testFixtureTunnel(t, false) }

func testFixtureTunnel(t *testing.T, xdp bool) {
	for _, fam := range families {
		for _, gue := range []bool{false, true} {
			name := fam.name + "/ipip"
			if gue {
				name = fam.name + "/gue"
			}
			t.Run(name, func(t *testing.T) {
				f := newFixtureMode(t, xdp)
				d := ipvs.Destination{Addr: fam.rs1, Fwd: ipvs.Tunnel, Weight: 1}
				if gue {
					d.TunType, d.TunPort = ipvs.TunGUE, 6080
				}
				f.addService(tcpService(fam.vip, 80, "wlc"), d)
				syn := l4{proto: ipvs.ProtoTCP, sport: 40000, dport: 80, flags: conn.SYN, tos: 0x28}
				inner := ipPacket(t, fam.cip, fam.vip, syn)
				in := frame(macClient, macCL0, fam.v6, inner)

				payload, proto := inner, fam.encapProto
				if gue {
					ret, got := f.run(in, 0)
					if ret != actRedirect {
						t.Fatalf("verdict %d, want redirect", ret)
					}
					// The source port is a flow hash in 32768..60999.
					off := 14 + 20
					if fam.v6 {
						off = 14 + 40
					}
					sport := uint16(got[off])<<8 | uint16(got[off+1])
					if sport < 32768 || sport > 60999 {
						t.Errorf("GUE source port %d outside 32768..60999", sport)
					}
					payload = append(gueHeader(sport, 6080, len(inner), fam.v6), inner...)
					proto = layers.IPProtocolUDP
					// The next (identical) SYN of the same flow gets the same port.
				}
				var outer []byte
				if fam.v6 {
					outer = encapIPv6(t, fam.dip, fam.rs1, 0x28, proto, payload)
				} else {
					outer = encapIPv4(t, fam.dip, fam.rs1, 0x28, proto, payload)
				}
				f.check([]step{{desc: "SYN is encapsulated to RS1", in: in, verdict: actRedirect,
					out: frame(macRS0, macRS1, fam.v6, outer)}})
			})
		}
	}
}

func TestFixtureLocal(t *testing.T) { testFixtureLocal(t, false) }

func testFixtureLocal(t *testing.T, xdp bool) {
	f := newFixtureMode(t, xdp)
	f.addService(tcpService(vipv4, 80, "rr"), ipvs.Destination{Addr: vipv4, Fwd: ipvs.Local, Weight: 1})
	in := frame(macClient, macCL0, false, ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoTCP, sport: 1, dport: 80, flags: conn.SYN}))
	f.check([]step{{desc: "local destination: passed to the stack untouched", in: in, verdict: actOK}})
}

func TestFixtureBadPackets(t *testing.T) { testFixtureBadPackets(t, false) }

func testFixtureBadPackets(t *testing.T, xdp bool) {
	f := newFixtureMode(t, xdp)
	f.addService(tcpService(vipv4, 80, "rr"), ipvs.Destination{Addr: rs1v4, Fwd: ipvs.Route, Weight: 1})
	f.addService(tcpService(vipv6, 80, "rr"), ipvs.Destination{Addr: rs1v6, Fwd: ipvs.Route, Weight: 1})
	syn := l4{proto: ipvs.ProtoTCP, sport: 40000, dport: 80, flags: conn.SYN}
	good := frame(macClient, macCL0, false, ipPacket(t, cipv4, vipv4, syn))
	good6 := frame(macClient, macCL0, true, ipPacket(t, cipv6, vipv6, syn))

	mutate := func(b []byte, fn func([]byte) []byte) []byte {
		c := append([]byte(nil), b...)
		return fn(c)
	}
	steps := []step{
		{desc: "ARP passes", verdict: actOK, in: mutate(good, func(b []byte) []byte { b[12], b[13] = 0x08, 0x06; return b })},
		{desc: "VLAN-tagged passes", verdict: actOK, in: mutate(good, func(b []byte) []byte { b[12], b[13] = 0x81, 0x00; return b })},
		// BPF_PROG_TEST_RUN refuses frames whose IP header is cut short
		// (EINVAL for an IPv4 ethertype with fewer than 20 bytes after
		// the Ethernet header), so truncated IP headers cannot be
		// fixtures; parse.h bounds-checks them (the verifier insists).
		{desc: "truncated TCP header passes", verdict: actOK, in: good[:14+20+10]},
		{desc: "IPv4 IHL < 5 passes", verdict: actOK, in: mutate(good, func(b []byte) []byte { b[14] = 0x44; return b })},
		{desc: "IPv4 version 6 in an IPv4 frame passes", verdict: actOK, in: mutate(good, func(b []byte) []byte { b[14] = 0x65; return b })},
		{desc: "IPv4 total length beyond the frame passes", verdict: actOK, in: mutate(good, func(b []byte) []byte { b[16], b[17] = 0x05, 0xdc; return b })},
		{desc: "IPv4 total length shorter than the TCP header passes", verdict: actOK, in: mutate(good, func(b []byte) []byte { b[16], b[17] = 0, 30; return b })},
		{desc: "TCP data offset < 5 passes", verdict: actOK, in: mutate(good, func(b []byte) []byte { b[14+20+12] = 0x40; return b })},
		{desc: "TCP data offset beyond the packet passes", verdict: actOK, in: mutate(good, func(b []byte) []byte { b[14+20+12] = 0xf0; return b })},
		{desc: "IPv4 first fragment (MF) passes", verdict: actOK, in: mutate(good, func(b []byte) []byte { b[20] = 0x20; return b })},
		{desc: "IPv4 later fragment passes", verdict: actOK, in: mutate(good, func(b []byte) []byte { b[20], b[21] = 0, 0x10; return b })},
		{desc: "unknown L4 protocol (GRE) to the VIP passes", verdict: actOK, in: mutate(good, func(b []byte) []byte { b[23] = 47; return b })},
		{desc: "IPv6 payload length beyond the frame passes", verdict: actOK, in: mutate(good6, func(b []byte) []byte { b[18], b[19] = 0x05, 0xdc; return b })},
		{desc: "IPv6 fragment header passes", verdict: actOK, in: mutate(good6, func(b []byte) []byte { b[20] = 44; return b })},
		{desc: "IPv6 hop-by-hop header passes", verdict: actOK, in: mutate(good6, func(b []byte) []byte { b[20] = 0; return b })},
		{desc: "TCP to the VIP on a port with no service passes", verdict: actOK,
			in: frame(macClient, macCL0, false, ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoTCP, sport: 40000, dport: 81, flags: conn.SYN}))},
		{desc: "non-SYN for an unknown connection of a service is dropped", verdict: actShot,
			in: frame(macClient, macCL0, false, ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoTCP, sport: 40000, dport: 80, flags: conn.ACK}))},
		{desc: "SYN+RST does not create a connection", verdict: actShot,
			in: frame(macClient, macCL0, false, ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoTCP, sport: 40000, dport: 80, flags: conn.SYN | conn.RST}))},
		{desc: "Ethernet padding after the IP packet is ignored (forwarded)", verdict: actRedirect,
			in:  append(append([]byte(nil), good...), make([]byte, 6)...),
			out: append(frame(macRS0, macRS1, false, good[14:]), make([]byte, 6)...)},
	}
	f.check(steps)
}

func TestFixtureNoDestination(t *testing.T) { testFixtureNoDestination(t, false) }

func testFixtureNoDestination(t *testing.T, xdp bool) {
	f := newFixtureMode(t, xdp)
	f.addService(tcpService(vipv4, 80, "wlc"), ipvs.Destination{Addr: rs1v4, Fwd: ipvs.Route, Weight: 0})
	in := frame(macClient, macCL0, false, ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoTCP, sport: 1, dport: 80, flags: conn.SYN}))
	f.check([]step{{desc: "all destinations quiescent: dropped", in: in, verdict: actShot}})
}

func TestFixtureFWMark(t *testing.T) {
	f := newFixture(t)
	svc := ipvs.Service{ServiceKey: ipvs.FWMarkService(7, ipvs.IPv4), Scheduler: "rr"}
	f.addService(svc, ipvs.Destination{Addr: rs1v4, Fwd: ipvs.Route, Weight: 1})
	ip := ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoTCP, sport: 1, dport: 443, flags: conn.SYN})
	in := frame(macClient, macCL0, false, ip)
	f.check([]step{
		{desc: "without the mark: no service, passes", in: in, verdict: actOK},
		{desc: "with mark 7: forwarded by DR", in: in, mark: 7, verdict: actRedirect, out: frame(macRS0, macRS1, false, ip)},
	})
}

// TestFixtureDecap checks the realserver's decapsulator. Expected frames
// are cut to the inner packet: the frames built here are padded to the
// Ethernet minimum, and stripping the outer header leaves no padding.
func TestFixtureDecap(t *testing.T) {
	netns.RequireRoot(t)
	objs, err := newDecapObjects(6080)
	if err != nil {
		t.Fatal(err)
	}
	defer objs.Close()
	inner4 := ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoTCP, sport: 1, dport: 80, flags: conn.SYN})
	inner6 := ipPacket(t, cipv6, vipv6, l4{proto: ipvs.ProtoTCP, sport: 1, dport: 80, flags: conn.SYN})
	udpOther := ipPacket(t, dip4, rs1v4, l4{proto: ipvs.ProtoUDP, sport: 1, dport: 53, payload: []byte("0000")})
	steps := []step{
		{desc: "IPIP is stripped", verdict: actOK,
			in:  frame(macRS0, macRS1, false, encapIPv4(t, dip4, rs1v4, 0, layers.IPProtocolIPv4, inner4)),
			out: frame(macRS0, macRS1, false, inner4)[:14+len(inner4)]},
		{desc: "IPv6-in-IPv6 is stripped", verdict: actOK,
			in:  frame(macRS0, macRS1, true, encapIPv6(t, dip6, rs1v6, 0, layers.IPProtocolIPv6, inner6)),
			out: frame(macRS0, macRS1, true, inner6)[:14+len(inner6)]},
		{desc: "GUE around IPv4 is stripped", verdict: actOK,
			in:  frame(macRS0, macRS1, false, encapIPv4(t, dip4, rs1v4, 0, layers.IPProtocolUDP, append(gueHeader(40000, 6080, len(inner4), false), inner4...))),
			out: frame(macRS0, macRS1, false, inner4)[:14+len(inner4)]},
		{desc: "GUE around IPv6 is stripped", verdict: actOK,
			in:  frame(macRS0, macRS1, true, encapIPv6(t, dip6, rs1v6, 0, layers.IPProtocolUDP, append(gueHeader(40000, 6080, len(inner6), true), inner6...))),
			out: frame(macRS0, macRS1, true, inner6)[:14+len(inner6)]},
		{desc: "other UDP passes untouched", verdict: actOK, in: frame(macRS0, macRS1, false, udpOther)},
		{desc: "plain TCP passes untouched", verdict: actOK, in: frame(macClient, macRS1, false, inner4)},
	}
	for _, s := range steps {
		out := make([]byte, len(s.in)+64)
		opts := &ebpf.RunOptions{Data: s.in, DataOut: out}
		ret, err := objs.GovsDecap.Run(opts)
		if err != nil {
			t.Fatalf("%s: %v", s.desc, err)
		}
		if ret != s.verdict {
			t.Errorf("%s: verdict %d, want %d", s.desc, ret, s.verdict)
		}
		want := s.out
		if want == nil {
			want = s.in
		}
		diffPackets(t, s.desc, opts.DataOut, want)
	}
}

// TestFixtureSweep checks that the sweeper removes expired connections
// and gives their counts back, exactly once.
func TestFixtureSweep(t *testing.T) {
	f := newFixture(t)
	if err := f.tab.setTimeouts(conn.Timeouts{UDP: time.Second}); err != nil {
		t.Fatal(err)
	}
	f.addService(udpService(vipv4, 53, "rr"), ipvs.Destination{Addr: rs1v4, Port: 53, Fwd: ipvs.Masq, Weight: 1})
	for port := uint16(1000); port < 1005; port++ {
		in := frame(macClient, macCL0, false, ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoUDP, sport: port, dport: 53, payload: []byte("q")}))
		if ret, _ := f.run(in, 0); ret != actRedirect {
			t.Fatalf("verdict %d, want redirect", ret)
		}
	}
	if l := f.destLive(t, rs1v4, 53); l.Inact != 5 {
		t.Fatalf("before expiry: %+v, want 5 inactive", l)
	}
	if n, err := f.tab.sweep(monotonicNow()); err != nil || n != 0 {
		t.Fatalf("early sweep removed %d (%v), want 0", n, err)
	}
	time.Sleep(1100 * time.Millisecond)
	n, err := f.tab.sweep(monotonicNow())
	if err != nil || n != 5 {
		t.Fatalf("sweep removed %d (%v), want 5", n, err)
	}
	if l := f.destLive(t, rs1v4, 53); l.Inact != 0 || l.Active != 0 {
		t.Errorf("after expiry: %+v, want zero", l)
	}
	if cs, err := f.tab.conns(monotonicNow()); err != nil || len(cs) != 0 {
		t.Errorf("connections left: %v (%v)", cs, err)
	}
	var nk govsNatKey
	var ck govsNatVal
	if f.objs.Nat.Iterate().Next(&nk, &ck) {
		t.Errorf("NAT reply entry left: %+v", nk)
	}
	if n, _ := f.tab.sweep(monotonicNow()); n != 0 {
		t.Errorf("second sweep removed %d", n)
	}
}

// TestFixtureXDP runs the forwarding fixtures through govs_xdp: the same
// packets in, the same packets out, XDP_REDIRECT for TC's redirect,
// XDP_PASS for TC_ACT_OK, XDP_DROP for TC_ACT_SHOT.
func TestFixtureXDP(t *testing.T) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, bool)
	}{
		{"NAT", testFixtureNAT}, {"DR", testFixtureDR}, {"Tunnel", testFixtureTunnel},
		{"Local", testFixtureLocal}, {"BadPackets", testFixtureBadPackets}, {"NoDestination", testFixtureNoDestination},
		{"TunnelMTU", testFixtureTunnelMTU},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, true) })
	}
	t.Run("NoNeighbour", func(t *testing.T) {
		// XDP cannot resolve a neighbour: it passes the packet with a
		// note that makes govs_tc bpf_redirect_neigh it.
		f := newFixtureMode(t, true)
		f.addService(tcpService(vipv4, 80, "rr"), ipvs.Destination{Addr: rsNoNb4, Fwd: ipvs.Route, Weight: 1})
		in := frame(macClient, macCL0, false, ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoTCP, sport: 1, dport: 80, flags: conn.SYN}))
		f.check([]step{{desc: "DR to a realserver without a neighbour entry: passed on", in: in, verdict: actOK}})
		if len(f.xmeta) != xmetaLen {
			t.Fatalf("no metadata for TC")
		}
		action := binary.NativeEndian.Uint32(f.xmeta[4:])
		nh := netip.AddrFrom4([4]byte(f.xmeta[16:20]))
		if action != 2 || nh != rsNoNb4 {
			t.Errorf("metadata action %d next hop %s, want 2 (redirect_neigh) to %s", action, nh, rsNoNb4)
		}
	})
	t.Run("LocalMeta", func(t *testing.T) {
		f := newFixtureMode(t, true)
		f.addService(tcpService(vipv4, 80, "rr"), ipvs.Destination{Addr: vipv4, Fwd: ipvs.Local, Weight: 1})
		in := frame(macClient, macCL0, false, ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoTCP, sport: 1, dport: 80, flags: conn.SYN}))
		f.check([]step{{desc: "local destination: passed with a note", in: in, verdict: actOK}})
		if len(f.xmeta) != xmetaLen || binary.NativeEndian.Uint32(f.xmeta[4:]) != 1 {
			t.Errorf("metadata %x, want action 1 (pass, handled)", f.xmeta)
		}
	})
}
