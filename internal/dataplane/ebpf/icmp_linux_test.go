package ebpf

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

// icmpError returns an IP packet from src to dst carrying an ICMP error
// (v4: fragmentation needed; v6: packet too big, MTU 1400) that quotes
// inner.
func icmpError(t testing.TB, src, dst netip.Addr, inner []byte) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	var err error
	if src.Is4() {
		ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Protocol: layers.IPProtocolICMPv4}
		ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodeFragmentationNeeded), Seq: 1400}
		err = gopacket.SerializeLayers(buf, opts, ip, ic, gopacket.Payload(inner))
	} else {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), NextHeader: layers.IPProtocolICMPv6}
		ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypePacketTooBig, 0)}
		_ = ic.SetNetworkLayerForChecksum(ip)
		err = gopacket.SerializeLayers(buf, opts, ip, ic, gopacket.Payload(append([]byte{0, 0, 0x05, 0x78}, inner...)))
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// quote is what an ICMP error quotes of pkt: the IP header and 8 bytes.
func quote(pkt []byte, v6 bool) []byte {
	n := 20 + 8
	if v6 {
		n = 40 + 8
	}
	return append([]byte(nil), pkt[:n]...)
}

// patchQuote rewrites a quote's source (src true) or destination address
// and port, with the inner IPv4 header checksum recomputed and the TCP
// checksum left alone, as the director does.
func patchQuote(q []byte, v6, src bool, a netip.Addr, port uint16) []byte {
	q = append([]byte(nil), q...)
	l4 := 20
	off := 12
	if v6 {
		l4, off = 40, 8
	}
	if !src {
		off += len(a.AsSlice())
	}
	copy(q[off:], a.AsSlice())
	poff := l4
	if !src {
		poff += 2
	}
	binary.BigEndian.PutUint16(q[poff:], port)
	if !v6 {
		q[10], q[11] = 0, 0
		var sum uint32
		for i := 0; i < 20; i += 2 {
			sum += uint32(binary.BigEndian.Uint16(q[i:]))
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		binary.BigEndian.PutUint16(q[10:], ^uint16(sum))
	}
	return q
}

func TestFixtureICMP(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			f := newFixture(t)
			f.addService(tcpService(fam.vip, 80, "rr"), ipvs.Destination{Addr: fam.rs1, Port: 8080, Fwd: ipvs.Masq, Weight: 1})
			f.addService(tcpService(fam.vip, 443, "rr"), ipvs.Destination{Addr: fam.rs2, Fwd: ipvs.Route, Weight: 1})
			syn := l4{proto: ipvs.ProtoTCP, sport: 40000, dport: 80, flags: conn.SYN}
			synDR := l4{proto: ipvs.ProtoTCP, sport: 40001, dport: 443, flags: conn.SYN}
			// What the director sent the realserver, and a reply.
			sent := ipPacket(t, fam.cip, fam.rs1, l4{proto: ipvs.ProtoTCP, sport: 40000, dport: 8080, flags: conn.SYN, payload: make([]byte, 1400)})
			reply := ipPacket(t, fam.vip, fam.cip, l4{proto: ipvs.ProtoTCP, sport: 80, dport: 40000, flags: conn.SYN | conn.ACK, payload: make([]byte, 1400)})
			replyDR := ipPacket(t, fam.vip, fam.cip, l4{proto: ipvs.ProtoTCP, sport: 443, dport: 40001, flags: conn.ACK, payload: make([]byte, 1400)})
			unknown := ipPacket(t, fam.vip, fam.cip, l4{proto: ipvs.ProtoTCP, sport: 80, dport: 40999, flags: conn.ACK})
			router := netip.MustParseAddr("10.0.0.9")
			if fam.v6 {
				router = netip.MustParseAddr("fd00::9")
			}

			fromRS := icmpError(t, router, fam.cip, quote(sent, fam.v6))
			fromRSWant := icmpError(t, fam.vip, fam.cip, patchQuote(quote(sent, fam.v6), fam.v6, false, fam.vip, 80))
			fromClient := icmpError(t, fam.cip, fam.vip, quote(reply, fam.v6))
			fromClientWant := icmpError(t, fam.cip, fam.rs1, patchQuote(quote(reply, fam.v6), fam.v6, true, fam.rs1, 8080))
			fromClientDR := icmpError(t, fam.cip, fam.vip, quote(replyDR, fam.v6))
			noConn := icmpError(t, fam.cip, fam.vip, quote(unknown, fam.v6))

			f.check([]step{
				{desc: "NAT SYN", in: frame(macClient, macCL0, fam.v6, ipPacket(t, fam.cip, fam.vip, syn)), verdict: actRedirect,
					out: frame(macRS0, macRS1, fam.v6, ipPacket(t, fam.cip, fam.rs1, l4{proto: ipvs.ProtoTCP, sport: 40000, dport: 8080, flags: conn.SYN}))},
				{desc: "DR SYN", in: frame(macClient, macCL0, fam.v6, ipPacket(t, fam.cip, fam.vip, synDR)), verdict: actRedirect,
					out: frame(macRS0, macRS2, fam.v6, ipPacket(t, fam.cip, fam.vip, synDR))},
				{desc: "fragmentation needed from a router on the realserver side goes to the client as from the VIP",
					in: frame(macRS1, macRS0, fam.v6, fromRS), verdict: actRedirect,
					out: frame(macCL0, macClient, fam.v6, fromRSWant)},
				{desc: "fragmentation needed from the client about a reply goes to the realserver, translated",
					in: frame(macClient, macCL0, fam.v6, fromClient), verdict: actRedirect,
					out: frame(macRS0, macRS1, fam.v6, fromClientWant)},
				{desc: "DR: the error about a reply goes to the realserver unchanged",
					in: frame(macClient, macCL0, fam.v6, fromClientDR), verdict: actRedirect,
					out: frame(macRS0, macRS2, fam.v6, fromClientDR)},
				{desc: "an error about no connection passes", in: frame(macClient, macCL0, fam.v6, noConn), verdict: actOK},
			})
		})
	}
}
