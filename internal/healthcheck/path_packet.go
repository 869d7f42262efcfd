package healthcheck

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"

	"golang.org/x/net/bpf"
)

// Wire formats of the VIP path check (check_via_vip): the SYN and RST it
// sends to the VIP, the ARP requests and neighbour solicitations it sends
// on the director's link, the GUE header of a GUE tunnel, and the parsing
// of what comes back. Pure functions, no sockets.

const (
	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	etherTypeIPv6 = 0x86dd

	protoICMP   = 1
	protoIPIP   = 4
	protoTCP    = 6
	protoUDP    = 17
	protoIPv6   = 41
	protoICMPv6 = 58

	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10

	// probeMSS is the MSS the SYN announces; the realserver's answer does
	// not depend on it, but a SYN without one looks odd to middleboxes.
	probeMSS = 1460
	// probeWindow is the SYN's receive window.
	probeWindow = 64240
)

var (
	broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	zeroMAC      = net.HardwareAddr{0, 0, 0, 0, 0, 0}
)

// probe is one path check's TCP exchange: a SYN from src (the director's
// address and a random port) to dst (VIP:port) with sequence number seq.
type probe struct {
	src, dst netip.AddrPort
	seq      uint32
	ipID     uint16 // IPv4 identification of the SYN
	// tunPort is the GUE port of a GUE tunnel, to recognise ICMP errors
	// quoting the encapsulated SYN.
	tunPort uint16
}

// syn is the probe's SYN as an IP packet.
func (p *probe) syn() []byte {
	return tcpPacket(p.src, p.dst, p.seq, 0, tcpSYN, p.ipID)
}

// rst is the RST that ends the half-open connection after a SYN-ACK
// (RFC 9293: in SYN-SENT, a RST's sequence number is the SYN-ACK's
// acknowledgment number).
func (p *probe) rst() []byte {
	return tcpPacket(p.src, p.dst, p.seq+1, 0, tcpRST, p.ipID+1)
}

// tcpPacket builds an IPv4 or IPv6 packet with a TCP segment without
// payload; a SYN carries an MSS option.
func tcpPacket(src, dst netip.AddrPort, seq, ack uint32, flags uint8, ipID uint16) []byte {
	tcpLen := 20
	if flags&tcpSYN != 0 {
		tcpLen = 24
	}
	ipLen := 20
	if dst.Addr().Is6() {
		ipLen = 40
	}
	b := make([]byte, ipLen+tcpLen)
	t := b[ipLen:]
	binary.BigEndian.PutUint16(t[0:], src.Port())
	binary.BigEndian.PutUint16(t[2:], dst.Port())
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], ack)
	t[12] = byte(tcpLen/4) << 4
	t[13] = flags
	if flags&tcpRST == 0 {
		binary.BigEndian.PutUint16(t[14:], probeWindow)
	}
	if tcpLen == 24 {
		t[20], t[21] = 2, 4 // MSS
		binary.BigEndian.PutUint16(t[22:], probeMSS)
	}
	putIPHeader(b, src.Addr(), dst.Addr(), protoTCP, tcpLen, ipID)
	binary.BigEndian.PutUint16(t[16:], l4Checksum(src.Addr(), dst.Addr(), protoTCP, t))
	return b
}

// putIPHeader writes an IPv4 (20 bytes, DF, TTL 64) or IPv6 (40 bytes,
// hop limit 64) header for a payload of payloadLen bytes at the start of b.
func putIPHeader(b []byte, src, dst netip.Addr, proto uint8, payloadLen int, ipID uint16) {
	if dst.Is6() {
		b[0] = 0x60
		binary.BigEndian.PutUint16(b[4:], uint16(payloadLen))
		b[6] = proto
		b[7] = 64
		s, d := src.As16(), dst.As16()
		copy(b[8:24], s[:])
		copy(b[24:40], d[:])
		return
	}
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(20+payloadLen))
	binary.BigEndian.PutUint16(b[4:], ipID)
	b[6] = 0x40 // DF
	b[8] = 64
	b[9] = proto
	s, d := src.As4(), dst.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	binary.BigEndian.PutUint16(b[10:], fold(sum(0, b[:20])))
}

// sum adds b to the running one's-complement sum s (RFC 1071).
func sum(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// fold folds s to 16 bits and complements it.
func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// l4Checksum is the TCP, UDP or ICMPv6 checksum of seg (its checksum
// field zero) with the IPv4 or IPv6 pseudo-header.
func l4Checksum(src, dst netip.Addr, proto uint8, seg []byte) uint16 {
	var s uint32
	if dst.Is6() {
		a, b := src.As16(), dst.As16()
		s = sum(s, a[:])
		s = sum(s, b[:])
		s += uint32(len(seg)>>16) + uint32(len(seg)&0xffff)
	} else {
		a, b := src.As4(), dst.As4()
		s = sum(s, a[:])
		s = sum(s, b[:])
		s += uint32(len(seg))
	}
	s += uint32(proto)
	return fold(sum(s, seg))
}

// ethernet prepends an Ethernet header.
func ethernet(dst, src net.HardwareAddr, etherType uint16, payload []byte) []byte {
	b := make([]byte, 14+len(payload))
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:], etherType)
	copy(b[14:], payload)
	return b
}

// etherTypeOf is the EtherType of an IP packet to dst.
func etherTypeOf(dst netip.Addr) uint16 {
	if dst.Is6() {
		return etherTypeIPv6
	}
	return etherTypeIPv4
}

// solicit builds the frame that asks who has target on the link: an ARP
// request (IPv4) or a neighbour solicitation to the solicited-node
// multicast address with the source link-layer address option (IPv6).
func solicit(srcMAC net.HardwareAddr, src, target netip.Addr) []byte {
	if !target.Is6() {
		a := make([]byte, 28)
		binary.BigEndian.PutUint16(a[0:], 1) // Ethernet
		binary.BigEndian.PutUint16(a[2:], etherTypeIPv4)
		a[4], a[5] = 6, 4
		binary.BigEndian.PutUint16(a[6:], 1) // request
		copy(a[8:14], srcMAC)
		s, t := src.As4(), target.As4()
		copy(a[14:18], s[:])
		copy(a[18:24], zeroMAC)
		copy(a[24:28], t[:])
		return ethernet(broadcastMAC, srcMAC, etherTypeARP, a)
	}
	t := target.As16()
	group := netip.AddrFrom16([16]byte{0xff, 0x02, 11: 1, 12: 0xff, 13: t[13], 14: t[14], 15: t[15]})
	m := make([]byte, 32)
	m[0] = 135 // neighbour solicitation
	copy(m[8:24], t[:])
	m[24], m[25] = 1, 1 // source link-layer address, 8 bytes
	copy(m[26:32], srcMAC)
	b := make([]byte, 40+len(m))
	putIPHeader(b, src, group, protoICMPv6, len(m), 0)
	b[7] = 255 // RFC 4861: hop limit 255
	copy(b[40:], m)
	binary.BigEndian.PutUint16(b[42:], l4Checksum(src, group, protoICMPv6, m))
	dstMAC := net.HardwareAddr{0x33, 0x33, 0xff, t[13], t[14], t[15]}
	return ethernet(dstMAC, srcMAC, etherTypeIPv6, b)
}

// gue prepends a GUE header (version 0, no flags or extensions, RFC
// draft-ietf-intarea-gue) for inner, as the director's data plane does.
func gue(inner []byte) []byte {
	b := make([]byte, 4+len(inner))
	b[1] = protoIPIP
	if len(inner) > 0 && inner[0]>>4 == 6 {
		b[1] = protoIPv6
	}
	copy(b[4:], inner)
	return b
}

// replyKind is what a received packet means for the probe.
type replyKind int

const (
	replyNone     replyKind = iota
	replySYNACK             // the VIP answered: the service listens there
	replyRST                // the VIP refused
	replyICMP               // an ICMP error quoting the SYN
	replyNeighbor           // an ARP reply or neighbour advertisement
)

// reply is a packet classified against a probe.
type reply struct {
	kind replyKind
	// from is the ICMP error's sender, or the address a neighbour
	// answer is for.
	from netip.Addr
	// mac is the link-layer address in a neighbour answer.
	mac net.HardwareAddr
	// icmpType and icmpCode of an ICMP error.
	icmpType, icmpCode uint8
	v6                 bool
}

// classify parses pkt, a packet from its network header on (an AF_PACKET
// datagram socket's view; ARP has no version nibble), against the probe.
// srcMAC is the link-layer source the socket reports, used for a
// neighbour advertisement without the target link-layer option.
func (p *probe) classify(pkt []byte, srcMAC net.HardwareAddr) reply {
	if len(pkt) < 1 {
		return reply{}
	}
	switch pkt[0] >> 4 {
	case 4:
		return p.classify4(pkt)
	case 6:
		return p.classify6(pkt, srcMAC)
	case 0:
		return classifyARP(pkt)
	}
	return reply{}
}

func classifyARP(a []byte) reply {
	if len(a) < 28 || binary.BigEndian.Uint16(a[0:]) != 1 || binary.BigEndian.Uint16(a[2:]) != etherTypeIPv4 ||
		a[4] != 6 || a[5] != 4 || binary.BigEndian.Uint16(a[6:]) != 2 {
		return reply{}
	}
	return reply{kind: replyNeighbor, mac: bytes.Clone(a[8:14]), from: netip.AddrFrom4([4]byte(a[14:18]))}
}

// parseIPv4 splits an IPv4 packet into source, destination, protocol and
// payload; ok is false for a short, fragmented or malformed one.
func parseIPv4(b []byte) (src, dst netip.Addr, proto uint8, payload []byte, ok bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return src, dst, 0, nil, false
	}
	ihl := int(b[0]&0xf) * 4
	if ihl < 20 || len(b) < ihl || binary.BigEndian.Uint16(b[6:])&0x1fff != 0 {
		return src, dst, 0, nil, false
	}
	end := int(binary.BigEndian.Uint16(b[2:]))
	if end < ihl || end > len(b) {
		end = len(b) // ICMP quotes may be truncated
	}
	return netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20])), b[9], b[ihl:end], true
}

// parseIPv6 does the same for IPv6 (no extension headers).
func parseIPv6(b []byte) (src, dst netip.Addr, proto uint8, payload []byte, ok bool) {
	if len(b) < 40 || b[0]>>4 != 6 {
		return src, dst, 0, nil, false
	}
	end := 40 + int(binary.BigEndian.Uint16(b[4:]))
	if end > len(b) {
		end = len(b)
	}
	return netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40])), b[6], b[40:end], true
}

func (p *probe) classify4(b []byte) reply {
	src, dst, proto, l4, ok := parseIPv4(b)
	if !ok || dst != p.src.Addr() {
		return reply{}
	}
	switch proto {
	case protoTCP:
		return p.classifyTCP(src, l4)
	case protoICMP:
		// Destination unreachable, time exceeded.
		if len(l4) < 8 || (l4[0] != 3 && l4[0] != 11) || !p.quotesSYN(l4[8:]) {
			return reply{}
		}
		return reply{kind: replyICMP, from: src, icmpType: l4[0], icmpCode: l4[1]}
	}
	return reply{}
}

func (p *probe) classify6(b []byte, srcMAC net.HardwareAddr) reply {
	src, dst, proto, l4, ok := parseIPv6(b)
	if !ok {
		return reply{}
	}
	switch proto {
	case protoTCP:
		if dst != p.src.Addr() {
			return reply{}
		}
		return p.classifyTCP(src, l4)
	case protoICMPv6:
		if len(l4) < 8 {
			return reply{}
		}
		switch l4[0] {
		case 136: // neighbour advertisement
			if len(l4) < 24 || b[7] != 255 || l4[1] != 0 {
				return reply{}
			}
			r := reply{kind: replyNeighbor, from: netip.AddrFrom16([16]byte(l4[8:24])), mac: bytes.Clone(srcMAC), v6: true}
			for o := l4[24:]; len(o) >= 8 && o[1] != 0 && len(o) >= int(o[1])*8; o = o[int(o[1])*8:] {
				if o[0] == 2 && o[1] == 1 { // target link-layer address
					r.mac = bytes.Clone(o[2:8])
				}
			}
			if len(r.mac) != 6 {
				return reply{}
			}
			return r
		case 1, 3, 4: // destination unreachable, time exceeded, parameter problem
			if dst != p.src.Addr() || !p.quotesSYN(l4[8:]) {
				return reply{}
			}
			return reply{kind: replyICMP, from: src, icmpType: l4[0], icmpCode: l4[1], v6: true}
		}
	}
	return reply{}
}

func (p *probe) classifyTCP(src netip.Addr, t []byte) reply {
	if len(t) < 20 || src != p.dst.Addr() ||
		binary.BigEndian.Uint16(t[0:]) != p.dst.Port() || binary.BigEndian.Uint16(t[2:]) != p.src.Port() {
		return reply{}
	}
	flags, ack := t[13], binary.BigEndian.Uint32(t[8:])
	if flags&tcpACK != 0 && ack != p.seq+1 {
		return reply{} // not an answer to this SYN
	}
	switch {
	case flags&tcpRST != 0:
		return reply{kind: replyRST, from: src}
	case flags&(tcpSYN|tcpACK) == tcpSYN|tcpACK:
		return reply{kind: replySYNACK, from: src}
	}
	return reply{}
}

// quotesSYN reports whether q, the packet an ICMP error quotes, is the
// probe's SYN, bare or inside an IPIP, IPv6-in-IPv6 or GUE tunnel.
func (p *probe) quotesSYN(q []byte) bool {
	for range 2 { // the SYN, or the tunnel packet around it
		var src, dst netip.Addr
		var proto uint8
		var l4 []byte
		var ok bool
		if len(q) > 0 && q[0]>>4 == 6 {
			src, dst, proto, l4, ok = parseIPv6(q)
		} else {
			src, dst, proto, l4, ok = parseIPv4(q)
		}
		if !ok {
			return false
		}
		switch proto {
		case protoTCP:
			return src == p.src.Addr() && dst == p.dst.Addr() && len(l4) >= 8 &&
				binary.BigEndian.Uint16(l4[0:]) == p.src.Port() && binary.BigEndian.Uint16(l4[2:]) == p.dst.Port() &&
				binary.BigEndian.Uint32(l4[4:]) == p.seq
		case protoIPIP, protoIPv6:
			q = l4
		case protoUDP:
			if p.tunPort == 0 || len(l4) < 12 || binary.BigEndian.Uint16(l4[2:]) != p.tunPort {
				return false
			}
			q = l4[12:]
		default:
			return false
		}
	}
	return false
}

// filter is the classic BPF program of the probe's receiving socket (an
// AF_PACKET datagram socket: offsets from the network header): ARP, ICMP
// and ICMPv6, and TCP from the VIP's port to the probe's port. Everything
// else the director receives meanwhile stays in the kernel.
func (p *probe) filter() ([]bpf.RawInstruction, error) {
	vport, sport := uint32(p.dst.Port()), uint32(p.src.Port())
	const accept, reject = 0x40000, 0
	prog := []bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: 0, Size: 1},
		/* 1 */ bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0},
		/* 2 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x40, SkipTrue: 7}, // -> 10 IPv4
		/* 3 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x60, SkipTrue: 16}, // -> 20 IPv6
		/* 4 */ bpf.LoadAbsolute{Off: 0, Size: 2}, // ARP: hardware type Ethernet, protocol IPv4
		/* 5 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 1, SkipFalse: 3},
		/* 6 */ bpf.LoadAbsolute{Off: 2, Size: 2},
		/* 7 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: etherTypeIPv4, SkipFalse: 1},
		/* 8 */ bpf.RetConstant{Val: accept},
		/* 9 */ bpf.RetConstant{Val: reject},
		/* 10 IPv4 */ bpf.LoadAbsolute{Off: 9, Size: 1},
		/* 11 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: protoICMP, SkipTrue: 15}, // -> 27 accept
		/* 12 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: protoTCP, SkipFalse: 15}, // -> 28 reject
		/* 13 */ bpf.LoadAbsolute{Off: 6, Size: 2},
		/* 14 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 13}, // fragment -> 28
		/* 15 */ bpf.LoadMemShift{Off: 0},
		/* 16 */ bpf.LoadIndirect{Off: 0, Size: 2},
		/* 17 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: vport, SkipFalse: 10}, // -> 28
		/* 18 */ bpf.LoadIndirect{Off: 2, Size: 2},
		/* 19 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: sport, SkipTrue: 7, SkipFalse: 8}, // -> 27 / 28
		/* 20 IPv6 */ bpf.LoadAbsolute{Off: 6, Size: 1},
		/* 21 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: protoICMPv6, SkipTrue: 5}, // -> 27
		/* 22 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: protoTCP, SkipFalse: 5}, // -> 28
		/* 23 */ bpf.LoadAbsolute{Off: 40, Size: 2},
		/* 24 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: vport, SkipFalse: 3}, // -> 28
		/* 25 */ bpf.LoadAbsolute{Off: 42, Size: 2},
		/* 26 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: sport, SkipFalse: 1}, // -> 27 / 28
		/* 27 */ bpf.RetConstant{Val: accept},
		/* 28 */ bpf.RetConstant{Val: reject},
	}
	return bpf.Assemble(prog)
}
