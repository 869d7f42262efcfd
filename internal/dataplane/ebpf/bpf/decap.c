// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * decap.c: the realserver side of TUN mode, for kernels without the ipip
 * and ip6_tunnel modules. Attached at TC ingress of the realserver's
 * interface, it strips the outer header of
 *
 *   IPv4 protocol 4 (IPIP)            -> the inner IPv4 packet
 *   IPv6 next header 41 (IPv6-in-IPv6) -> the inner IPv6 packet
 *   UDP to gue_port carrying GUE (version 0, no options) around IPv4 or
 *   IPv6                              -> the inner packet
 *
 * and hands the inner packet to the stack, which delivers it to the VIP
 * configured on the realserver's loopback. Only packets addressed to the
 * realserver itself should reach this device; the program does not check
 * the outer destination. Outer IPv4 headers with options and IPv6 outer
 * headers with extension headers pass untouched.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "parse.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Not in the 6.1 uapi headers Debian ships; kernel 6.3+. */
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)
#endif

/* The GUE port (host order), 0 for none. Set by the loader. */
volatile const __u16 gue_port = 0;

static __always_inline int strip(struct __sk_buff *skb, __u32 len, __u8 inner_proto)
{
	__u64 flags = inner_proto == IPPROTO_IPV6 ? BPF_F_ADJ_ROOM_DECAP_L3_IPV6 : BPF_F_ADJ_ROOM_DECAP_L3_IPV4;
	if (bpf_skb_adjust_room(skb, -(__s32)len, BPF_ADJ_ROOM_MAC, flags))
		return TC_ACT_SHOT;
	__u16 proto = bpf_htons(inner_proto == IPPROTO_IPV6 ? ETH_P_IPV6 : ETH_P_IP);
	if (bpf_skb_store_bytes(skb, 12, &proto, 2, 0))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

SEC("tc")
int govs_decap(struct __sk_buff *skb)
{
	if (skb->data + 14 + 40 + 12 > skb->data_end && skb->len > skb->data_end - skb->data)
		bpf_skb_pull_data(skb, skb->len < 14 + 40 + 12 ? skb->len : 14 + 40 + 12);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;

	__u32 l3len;
	__u8 next;
	void *l4;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = (void *)(eth + 1);
		if ((void *)(iph + 1) > data_end || iph->ihl != 5 || (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
			return TC_ACT_OK;
		l3len = sizeof(*iph);
		next = iph->protocol;
		l4 = iph + 1;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end)
			return TC_ACT_OK;
		l3len = sizeof(*ip6);
		next = ip6->nexthdr;
		l4 = ip6 + 1;
	} else {
		return TC_ACT_OK;
	}

	if (next == IPPROTO_IPIP || next == IPPROTO_IPV6)
		return strip(skb, l3len, next);
	if (next != IPPROTO_UDP || gue_port == 0)
		return TC_ACT_OK;
	struct udphdr *uh = l4;
	__u8 *gue = (void *)(uh + 1);
	if ((void *)(gue + 4) > data_end || uh->dest != bpf_htons(gue_port))
		return TC_ACT_OK;
	/* GUE version 0 (top two bits), C 0, no extension fields. */
	if ((gue[0] & 0xff) != 0)
		return TC_ACT_OK;
	if (gue[1] != IPPROTO_IPIP && gue[1] != IPPROTO_IPV6)
		return TC_ACT_OK;
	return strip(skb, l3len + sizeof(*uh) + 4, gue[1]);
}
