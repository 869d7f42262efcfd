/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * parse.h: defensive parsing of Ethernet / IPv4 / IPv6 / TCP / UDP.
 *
 * The parser never trusts a length field: every header is bounds-checked
 * against the packet, the IPv4 header length against the total length,
 * the L4 header against the IP payload length. What it cannot parse is
 * never forwarded; the program hands it to the stack untouched (TC_ACT_OK),
 * which applies its own checks and drops what is broken:
 *
 *   not IPv4/IPv6 (ARP, VLAN-tagged, ...)     PARSE_NOT_IP  -> pass
 *   truncated header, bad IHL/version/length  PARSE_BAD     -> pass
 *   IPv4 fragment (MF or offset), IPv6 fragment header
 *                                             PARSE_FRAG    -> pass
 *   IPv6 extension headers, L4 other than TCP/UDP
 *                                             PARSE_PROTO   -> pass
 *
 * IPv4 options are fine: the L4 header is found by IHL. Trailing bytes
 * after the IP total length (Ethernet padding) are ignored.
 */
#ifndef GOVS_PARSE_H
#define GOVS_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define IP_DF 0x4000

enum parse_result {
	PARSE_OK = 0,
	PARSE_NOT_IP,
	PARSE_BAD,
	PARSE_FRAG,
	PARSE_PROTO,
};

/* TCP flag bits as in the header's 14th byte (conn.TCPFlags). */
#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04
#define TCPF_ACK 0x10

struct pkt {
	__u32 src[4];
	__u32 dst[4];
	__u16 sport;
	__u16 dport;
	__u16 l3_off;
	__u16 l4_off;
	__u16 ip_len; /* IP total length, header included */
	__u8 family;
	__u8 proto;
	__u8 tcp_flags;
	__u8 tos;
	__u16 pad;
};

static __always_inline int parse_l4(void *data, void *data_end, struct pkt *p, __u32 l4_len)
{
	void *l4 = data + p->l4_off;

	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		if ((void *)(th + 1) > data_end || l4_len < sizeof(*th))
			return PARSE_BAD;
		if (th->doff < 5 || (__u32)th->doff * 4 > l4_len)
			return PARSE_BAD;
		p->sport = th->source;
		p->dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		return PARSE_OK;
	}
	if (p->proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;
		if ((void *)(uh + 1) > data_end || l4_len < sizeof(*uh))
			return PARSE_BAD;
		__u16 ulen = bpf_ntohs(uh->len);
		if (ulen < sizeof(*uh) || ulen > l4_len)
			return PARSE_BAD;
		p->sport = uh->source;
		p->dport = uh->dest;
		return PARSE_OK;
	}
	return PARSE_PROTO;
}

/* parse fills p from the frame in [data, data_end), the linear part of a
 * frame of pkt_len bytes: length fields are checked against pkt_len (the
 * payload may sit in fragments beyond data_end), headers against data_end. */
static __always_inline int parse(void *data, void *data_end, __u32 pkt_len, struct pkt *p)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return PARSE_NOT_IP;
	p->l3_off = sizeof(*eth);

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = data + sizeof(*eth);
		if ((void *)(iph + 1) > data_end)
			return PARSE_BAD;
		if (iph->version != 4 || iph->ihl < 5)
			return PARSE_BAD;
		__u32 hlen = iph->ihl * 4;
		__u32 tot = bpf_ntohs(iph->tot_len);
		if (pkt_len < sizeof(*eth))
			return PARSE_BAD;
		__u32 avail = pkt_len - sizeof(*eth);
		if (tot < hlen || tot > avail)
			return PARSE_BAD;
		if (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET))
			return PARSE_FRAG;
		p->family = AF_INET;
		p->proto = iph->protocol;
		p->tos = iph->tos;
		p->src[0] = iph->saddr;
		p->dst[0] = iph->daddr;
		p->ip_len = tot;
		p->l4_off = sizeof(*eth) + hlen;
		return parse_l4(data, data_end, p, tot - hlen);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + sizeof(*eth);
		if ((void *)(ip6 + 1) > data_end)
			return PARSE_BAD;
		if (ip6->version != 6)
			return PARSE_BAD;
		__u32 plen = bpf_ntohs(ip6->payload_len);
		if (pkt_len < sizeof(*eth) + sizeof(*ip6))
			return PARSE_BAD;
		__u32 avail = pkt_len - sizeof(*eth) - sizeof(*ip6);
		if (plen > avail)
			return PARSE_BAD; /* includes jumbograms (payload_len 0 is caught by L4 checks) */
		if (ip6->nexthdr == 44 /* NEXTHDR_FRAGMENT */)
			return PARSE_FRAG;
		p->family = AF_INET6;
		p->proto = ip6->nexthdr;
		p->tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
		__builtin_memcpy(p->src, &ip6->saddr, 16);
		__builtin_memcpy(p->dst, &ip6->daddr, 16);
		p->ip_len = plen + sizeof(*ip6);
		p->l4_off = sizeof(*eth) + sizeof(*ip6);
		return parse_l4(data, data_end, p, plen);
	}
	return PARSE_NOT_IP;
}

#endif
