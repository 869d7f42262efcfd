/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * icmp.h: ICMP errors that belong to a connection (the kernel's
 * ip_vs_in_icmp / ip_vs_out_icmp and their v6 twins).
 *
 * Handled: ICMPv4 destination unreachable (fragmentation needed among
 * them), source quench and time exceeded; ICMPv6 destination unreachable,
 * packet too big and time exceeded. The error quotes the packet that
 * caused it (the inner packet: an IP header and at least the ports); the
 * connection is found from the quote:
 *
 *   from the realserver side, about a packet the director sent to the
 *   realserver (inner CIP:cport -> RIP:rport) of a NAT connection: the
 *   outer source and the inner destination become the VIP, the inner
 *   destination port the virtual port; routed to the client;
 *
 *   from the client side, about a reply (inner VIP:vport -> CIP:cport):
 *   NAT rewrites the outer destination and the inner source to the
 *   realserver (inner source port: the realserver's); DR and TUN forward
 *   the error unchanged by their method, so the realserver learns, e.g.,
 *   the path MTU towards the client.
 *
 * Checksums, as the kernel leaves them: the inner IPv4 header checksum is
 * updated, the inner TCP/UDP checksum is not (the quote is usually cut
 * short anyway), and the ICMP checksum is updated for every byte changed
 * (ICMPv6 also for its pseudo-header). Anything else (other ICMP, errors
 * quoting fragments or extension headers, no connection) passes to the
 * stack.
 */
#ifndef GOVS_ICMP_H
#define GOVS_ICMP_H

#include "maps.h"
#include "parse.h"
#include "csum.h"

#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif
/* linux/icmp.h and icmpv6.h pull in libc headers: the types we need. */
#define ICMP_DEST_UNREACH 3
#define ICMP_SOURCE_QUENCH 4
#define ICMP_TIME_EXCEEDED 11
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_TIME_EXCEED 3

struct icmp_info {
	__u32 src[4]; /* the inner (quoted) packet */
	__u32 dst[4];
	__u16 sport;
	__u16 dport;
	__u16 icmp_off;
	__u16 l3_off; /* of the inner IP header */
	__u16 l4_off; /* of the inner ports */
	__u8 proto;
	__u8 pad;
};

/* Bytes to have linear for an error: Ethernet, outer IPv4 with options
 * or IPv6, ICMP, the inner header, ports. */
#define ICMP_PULL_LEN (14 + 60 + 8 + 60 + 4)

static __always_inline int icmp_is_error(__u8 family, __u8 type)
{
	if (family == AF_INET)
		return type == ICMP_DEST_UNREACH || type == ICMP_SOURCE_QUENCH || type == ICMP_TIME_EXCEEDED;
	return type == ICMPV6_DEST_UNREACH || type == ICMPV6_PKT_TOOBIG || type == ICMPV6_TIME_EXCEED;
}

/* icmp_parse fills ic from the error in skb (outer headers in p); 0 if it
 * is an error quoting a TCP or UDP packet. */
static __always_inline int icmp_parse(struct __sk_buff *skb, const struct pkt *p, struct icmp_info *ic)
{
	__u8 type;
	__u32 off = p->l4_off;
	if (bpf_skb_load_bytes(skb, off, &type, 1) || !icmp_is_error(p->family, type))
		return -1;
	ic->icmp_off = off;
	off += 8;
	ic->l3_off = off;
	if (p->family == AF_INET) {
		struct iphdr ih;
		if (bpf_skb_load_bytes(skb, off, &ih, sizeof(ih)))
			return -1;
		if (ih.version != 4 || ih.ihl < 5 || (ih.frag_off & bpf_htons(IP_OFFSET)))
			return -1;
		ic->proto = ih.protocol;
		__builtin_memset(ic->src, 0, 32);
		ic->src[0] = ih.saddr;
		ic->dst[0] = ih.daddr;
		off += ih.ihl * 4;
	} else {
		struct ipv6hdr ih;
		if (bpf_skb_load_bytes(skb, off, &ih, sizeof(ih)))
			return -1;
		if (ih.version != 6)
			return -1;
		ic->proto = ih.nexthdr;
		__builtin_memcpy(ic->src, &ih.saddr, 16);
		__builtin_memcpy(ic->dst, &ih.daddr, 16);
		off += sizeof(ih);
	}
	if (ic->proto != IPPROTO_TCP && ic->proto != IPPROTO_UDP)
		return -1;
	__u16 ports[2];
	if (off > 0xffff || bpf_skb_load_bytes(skb, off, ports, 4))
		return -1;
	ic->l4_off = off;
	ic->sport = ports[0];
	ic->dport = ports[1];
	return 0;
}

/* icmp_rewrite replaces one address of the outer header (which: 1 dst,
 * 0 src) and the opposite one of the inner header (inner src if outer dst,
 * inner dst if outer src) by addr, and the inner port on that side by
 * port, keeping every checksum right. */
static __always_inline int icmp_rewrite(struct __sk_buff *skb, const struct pkt *p, const struct icmp_info *ic, int which,
					const __u32 *addr, __u16 port)
{
	__u32 csum = ic->icmp_off + 2;
	__u32 in_addr = ic->l3_off + (p->family == AF_INET ? (which ? 12 : 16) : (which ? 8 : 24));
	__u32 in_port = ic->l4_off + (which ? 0 : 2);
	__u16 old_port = which ? ic->sport : ic->dport;

	if (p->family == AF_INET) {
		__u32 old = which ? p->dst[0] : p->src[0];
		__u32 iold = which ? ic->src[0] : ic->dst[0];
		__u32 new = addr[0];
		/* Outer address: the outer IP checksum only. */
		if (bpf_l3_csum_replace(skb, p->l3_off + 10, old, new, 4) ||
		    bpf_skb_store_bytes(skb, p->l3_off + (which ? 16 : 12), &new, 4, 0))
			return -1;
		/* Inner address: the inner IP checksum moves with it, so the
		 * sum the ICMP checksum covers does not change. */
		if (bpf_l3_csum_replace(skb, ic->l3_off + 10, iold, new, 4) ||
		    bpf_skb_store_bytes(skb, in_addr, &new, 4, 0))
			return -1;
	} else {
		__u32 old[4], iold[4], new[4];
		__builtin_memcpy(old, which ? p->dst : p->src, 16);
		__builtin_memcpy(iold, which ? ic->src : ic->dst, 16);
		__builtin_memcpy(new, addr, 16);
		__s64 d1 = bpf_csum_diff(old, 16, new, 16, 0);
		__s64 d2 = bpf_csum_diff(iold, 16, new, 16, 0);
		if (d1 < 0 || d2 < 0)
			return -1;
		if (bpf_l4_csum_replace(skb, csum, 0, d1, BPF_F_PSEUDO_HDR) ||
		    bpf_skb_store_bytes(skb, p->l3_off + (which ? 24 : 8), new, 16, 0))
			return -1;
		if (bpf_l4_csum_replace(skb, csum, 0, d2, 0) || bpf_skb_store_bytes(skb, in_addr, new, 16, 0))
			return -1;
	}
	if (old_port != port) {
		if (bpf_l4_csum_replace(skb, csum, old_port, port, 2) || bpf_skb_store_bytes(skb, in_port, &port, 2, 0))
			return -1;
	}
	return 0;
}

/*
 * Errors the director makes itself: a TUN packet that no longer fits the
 * route's MTU once encapsulated (tun_toobig in govs.c decides when, as
 * ip_vs_xmit.c's ensure_mtu_is_adequate does). The packet is turned, in
 * place, into the ICMP error a router on the path would send:
 *
 *   IPv4 (DF set): destination unreachable, fragmentation needed (type 3
 *   code 4) with the next-hop MTU, quoting the original IP header (with
 *   its options) and the first 8 bytes of its payload (RFC 792);
 *   IPv6: packet too big (type 2) with the MTU, quoting as much of the
 *   original packet as fits in a 1280-byte packet (RFC 4443).
 *
 * Source: the VIP (the original destination); destination: the client.
 * That is what the kernel's icmp_send/icmpv6_send choose for a packet
 * addressed to a local address, so IPVS's errors come from the VIP too:
 * the client's stack takes the flow (and the PMTU to record) from the
 * quote, but the VIP is the one source address every hop between client
 * and director already routes and filters as the service's (the
 * director's own addresses may be private, or dropped by the client's
 * firewall or anti-spoofing as strangers). IPv4: TOS 0xc0 (internetwork
 * control, as icmp_send), TTL 64, DF with ID 0 (an atomic datagram, RFC
 * 6864); IPv6: traffic class 0, hop limit 64. The frame goes back out of
 * the device it came in on, to the MAC it came from (the client, or the
 * router in front of it), from the MAC it was sent to.
 */
#define ICMP_FRAG_NEEDED 4
#define IPV6_MIN_MTU 1280
#define ICMP6_QUOTE_MAX (IPV6_MIN_MTU - 40 - 8)
/* The quote buffer (scratch): three bpf_csum_diff chunks of 512. */
#define QBUF_WORDS 384

/* csum_buf is the unfolded one's complement sum of the first len bytes
 * of buf (len <= ICMP6_QUOTE_MAX; buf zero-padded to a multiple of 4). */
static __always_inline __u64 csum_buf(__u32 *buf, __u32 len)
{
	__u64 sum = 0;
	__u32 n = (len + 3) & ~3U;
#pragma unroll
	for (int i = 0; i < 3; i++) {
		__u32 off = i * 512;
		if (off >= n)
			break;
		__u32 c = n - off;
		c &= 0x7fc;
		if (c > 512)
			c = 512;
		__s64 s = bpf_csum_diff(NULL, 0, (__be32 *)((__u8 *)buf + off), c, 0);
		if (s < 0)
			return 0;
		sum += (__u32)s;
	}
	return sum;
}

/* csum32 adds a 32-bit word as it lies in memory (network order) to a
 * one's complement sum: its two halves, whatever the host's byte order.
 * Sums are built from values, not by reading structs through __u16
 * pointers, which strict aliasing lets the compiler reorder. */
static __always_inline __u64 csum32(__u32 w)
{
	return (w & 0xffff) + (w >> 16);
}

/* icmp_too_big rewrites the packet p in skb into the ICMP error above,
 * reporting mtu; qbuf is QBUF_WORDS of scratch. The caller redirects it. */
static __always_inline int icmp_too_big(struct __sk_buff *skb, const struct pkt *p, __u32 mtu, __u32 *qbuf)
{
	__u8 mac[12], swapped[12];
	__u32 qlen, hlen;

	if (bpf_skb_load_bytes(skb, 0, mac, 12))
		return -1;
	__builtin_memcpy(swapped, mac + 6, 6);
	__builtin_memcpy(swapped + 6, mac, 6);
	if (p->family == AF_INET) {
		qlen = p->l4_off - p->l3_off + 8; /* header, options, 8 bytes */
		hlen = sizeof(struct iphdr) + 8;
	} else {
		qlen = p->ip_len < ICMP6_QUOTE_MAX ? p->ip_len : ICMP6_QUOTE_MAX;
		hlen = sizeof(struct ipv6hdr) + 8;
	}
	if (qlen < 28 || qlen > ICMP6_QUOTE_MAX || qlen > p->ip_len)
		return -1;
	/* Keep the compiler from using an unchecked copy of qlen. */
	asm volatile("" : "+r"(qlen));
	qlen &= 0x7ff;
	if (qlen < 28 || qlen > ICMP6_QUOTE_MAX)
		return -1;
	/* The quote, zero-padded to a multiple of 4 for bpf_csum_diff. */
	__u32 wi = qlen >> 2;
	if (wi >= QBUF_WORDS)
		return -1;
	qbuf[wi] = 0;
	if (bpf_skb_load_bytes(skb, p->l3_off, qbuf, qlen))
		return -1;
	__u64 sum = csum_buf(qbuf, qlen);

	if (bpf_skb_adjust_room(skb, hlen, BPF_ADJ_ROOM_MAC, 0))
		return -1;
	if (bpf_skb_change_tail(skb, sizeof(struct ethhdr) + hlen + qlen, 0))
		return -1;
	if (bpf_skb_store_bytes(skb, 0, swapped, 12, BPF_F_RECOMPUTE_CSUM))
		return -1;
	if (p->family == AF_INET) {
		struct {
			struct iphdr ip;
			__u8 type, code;
			__u16 csum;
			__u16 unused;
			__u16 mtu;
		} h = {};
		h.ip.version = 4;
		h.ip.ihl = 5;
		h.ip.tos = 0xc0;
		h.ip.tot_len = bpf_htons(hlen + qlen);
		h.ip.frag_off = bpf_htons(IP_DF);
		h.ip.ttl = 64;
		h.ip.protocol = IPPROTO_ICMP;
		h.ip.saddr = p->dst[0];
		h.ip.daddr = p->src[0];
		h.ip.check = ipv4_csum(&h.ip);
		h.type = ICMP_DEST_UNREACH;
		h.code = ICMP_FRAG_NEEDED;
		h.mtu = bpf_htons(mtu);
		sum += csum32(bpf_htonl((ICMP_DEST_UNREACH << 24) | (ICMP_FRAG_NEEDED << 16))) + csum32(bpf_htonl(mtu & 0xffff));
		h.csum = csum_fold(sum);
		if (bpf_skb_store_bytes(skb, sizeof(struct ethhdr), &h, sizeof(h), BPF_F_RECOMPUTE_CSUM))
			return -1;
	} else {
		struct {
			struct ipv6hdr ip6;
			__u8 type, code;
			__u16 csum;
			__u32 mtu;
		} h = {};
		h.ip6.version = 6;
		h.ip6.payload_len = bpf_htons(8 + qlen);
		h.ip6.nexthdr = IPPROTO_ICMPV6;
		h.ip6.hop_limit = 64;
		__builtin_memcpy(&h.ip6.saddr, p->dst, 16);
		__builtin_memcpy(&h.ip6.daddr, p->src, 16);
		h.type = ICMPV6_PKT_TOOBIG;
		h.mtu = bpf_htonl(mtu);
		/* Pseudo-header: addresses, upper-layer length, next header. */
#pragma unroll
		for (int i = 0; i < 4; i++)
			sum += csum32(p->src[i]) + csum32(p->dst[i]);
		sum += csum32(bpf_htonl(8 + qlen)) + csum32(bpf_htonl(IPPROTO_ICMPV6));
		sum += csum32(bpf_htonl(ICMPV6_PKT_TOOBIG << 24)) + csum32(bpf_htonl(mtu));
		h.csum = csum_fold(sum);
		if (bpf_skb_store_bytes(skb, sizeof(struct ethhdr), &h, sizeof(h), BPF_F_RECOMPUTE_CSUM))
			return -1;
	}
	return 0;
}

#endif
