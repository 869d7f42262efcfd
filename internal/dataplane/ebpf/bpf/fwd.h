/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * fwd.h: NAT rewriting, tunnel encapsulation and the route+redirect step.
 *
 * Route: bpf_fib_lookup in the director's tables. On success the MACs are
 * rewritten and the packet redirected out of the egress device. When the
 * neighbour is not resolved yet (BPF_FIB_LKUP_RET_NO_NEIGH) the packet goes
 * to bpf_redirect_neigh, which resolves it like the stack would: for DR and
 * TUN, handing the packet to the stack is no option, since its destination
 * (the VIP) is local to the director. Other lookup failures (no route,
 * forwarding disabled, blackhole) drop the packet for DR and TUN and hand a
 * NAT packet, already rewritten, to the stack.
 *
 * No TTL/hop-limit decrement: like IPVS, the director delivers the packet
 * to itself and sends it on.
 *
 * TUN and the MTU: the route lookup for the outer packet gets its length
 * (inner + tun_overhead) as tot_len, so the kernel checks it against the
 * route's MTU; the cached next hop keeps that MTU and repeats the check.
 * A packet that does not fit is not encapsulated: the caller answers it
 * as ip_vs_xmit.c's ensure_mtu_is_adequate does (tun_toobig in govs.c,
 * icmp_too_big in icmp.h).
 */
#ifndef GOVS_FWD_H
#define GOVS_FWD_H

#include <linux/pkt_cls.h>
#include "maps.h"
#include "parse.h"
#include "csum.h"
#include "conn.h"

#define BPF_F_PSEUDO_HDR_ (1ULL << 4)

/* nat_rewrite replaces one endpoint (dst if which==1, src if which==0) of
 * the packet by addr:port and fixes the IP and L4 checksums. */
static __always_inline int nat_rewrite(struct __sk_buff *skb, const struct pkt *p, int which,
				       const __u32 *addr, __u16 port)
{
	__u32 csum_off = p->l4_off + (p->proto == IPPROTO_TCP ? 16 : 6);
	__u32 port_off = p->l4_off + (which ? 2 : 0);
	__u64 l4f = p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__u16 old_port = which ? p->dport : p->sport;

	if (p->family == AF_INET) {
		__u32 old = which ? p->dst[0] : p->src[0];
		__u32 new = addr[0];
		__u32 addr_off = p->l3_off + (which ? 16 : 12);
		if (bpf_l4_csum_replace(skb, csum_off, old, new, l4f | BPF_F_PSEUDO_HDR | 4))
			return -1;
		if (bpf_l3_csum_replace(skb, p->l3_off + 10, old, new, 4))
			return -1;
		if (bpf_skb_store_bytes(skb, addr_off, &new, 4, 0))
			return -1;
	} else {
		__u32 old[4], new[4];
		__builtin_memcpy(old, which ? p->dst : p->src, 16);
		__builtin_memcpy(new, addr, 16);
		__s64 diff = bpf_csum_diff(old, 16, new, 16, 0);
		if (diff < 0)
			return -1;
		if (bpf_l4_csum_replace(skb, csum_off, 0, diff, l4f | BPF_F_PSEUDO_HDR))
			return -1;
		if (bpf_skb_store_bytes(skb, p->l3_off + (which ? 24 : 8), new, 16, 0))
			return -1;
	}
	if (old_port != port) {
		if (bpf_l4_csum_replace(skb, csum_off, old_port, port, l4f | 2))
			return -1;
		if (bpf_skb_store_bytes(skb, port_off, &port, 2, 0))
			return -1;
	}
	return 0;
}

/* route_lookup fills fib for a packet to dst (the realserver, or the
 * client for NAT replies) arriving on skb's device. tot_len 0: the MTU
 * check uses the skb itself (GSO aware) and mtu_result is the egress
 * device's MTU; otherwise tot_len (the packet's L3 length as it will
 * leave) is checked against the route's MTU (route metric, PMTU
 * exception, device), which mtu_result then holds, also with
 * BPF_FIB_LKUP_RET_FRAG_NEEDED. */
static __always_inline long route_lookup(struct __sk_buff *skb, struct bpf_fib_lookup *fib, __u8 family,
					 const __u32 *src, const __u32 *dst, __u8 proto, __u32 flags,
					 __u32 tot_len)
{
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = family;
	fib->l4_protocol = proto;
	fib->ifindex = skb->ifindex;
	fib->tot_len = tot_len;
	if (family == AF_INET) {
		fib->ipv4_src = src[0];
		fib->ipv4_dst = dst[0];
	} else {
		__builtin_memcpy(fib->ipv6_src, src, 16);
		__builtin_memcpy(fib->ipv6_dst, dst, 16);
	}
	return bpf_fib_lookup(skb, fib, sizeof(*fib), flags);
}

/* send redirects the packet by a finished route lookup. */
static __always_inline int send(struct __sk_buff *skb, struct bpf_fib_lookup *fib, long rc, int pass_on_fail)
{
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		if (bpf_skb_store_bytes(skb, 0, fib->dmac, 6, 0) ||
		    bpf_skb_store_bytes(skb, 6, fib->smac, 6, 0))
			return TC_ACT_SHOT;
		return bpf_redirect(fib->ifindex, 0);
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		struct bpf_redir_neigh nh = {};
		nh.nh_family = fib->family;
		if (fib->family == AF_INET)
			nh.ipv4_nh = fib->ipv4_dst;
		else
			__builtin_memcpy(nh.ipv6_nh, fib->ipv6_dst, 16);
		count(CTR_REDIRECT_NEIGH);
		return bpf_redirect_neigh(fib->ifindex, &nh, sizeof(nh), 0);
	}
	if (pass_on_fail) {
		count(CTR_PASS_TO_STACK);
		return TC_ACT_OK;
	}
	count(CTR_DROP_FIB);
	return TC_ACT_SHOT;
}

/*
 * The next-hop cache. A route lookup's answer for a destination depends on
 * the routing tables, the neighbour table, the devices and their
 * addresses, the rules and the forwarding sysctls, and (through rules
 * only) on the packet's source, mark and ingress device. The entry keeps
 * the answer for (destination, ingress device); Go bumps nh_gen on every
 * netlink notification about neighbours, routes, addresses, links, rules
 * and netconf, and switches the cache off while any rule other than the
 * three default ones exists, so the source and mark cannot matter. NH_TTL
 * bounds an entry's life should a notification be lost. A neighbour that
 * changes its MAC: the kernel updates its table and notifies, Go bumps
 * nh_gen, and the next packet looks the route up again; packets in
 * between (the notification's latency, well under a millisecond) go to
 * the old MAC, as packets already queued on the stack's path would. An
 * entry is filled only from a lookup that succeeded (resolved neighbour),
 * so an unresolved one keeps going through bpf_redirect_neigh.
 *
 * The MTU check the lookup makes for the skb (is_skb_forwardable) is
 * repeated on a hit with the cached MTU; a packet that fails it takes the
 * full lookup, whose answer decides as before.
 */
#define NH_TTL_NS (1000000000ULL)

/* nh_get copies the valid entry of destination did for a packet that
 * arrived on in_ifindex into *out; 0 on success. Writers make seq odd
 * while they write, so a copy taken across a write is refused. */
static __always_inline int nh_get(__u32 did, __u32 fwd, __u32 in_ifindex, __u64 now, struct nexthop *out)
{
	__u32 zero = 0;
	__u32 *gen = bpf_map_lookup_elem(&nh_gen, &zero);
	struct nexthop *nh = bpf_map_lookup_elem(&nexthop, &did);
	if (!gen || !nh)
		return -1;
	__u32 g = *gen;
	__u32 seq = *(volatile __u32 *)&nh->seq;
	if (g == NH_GEN_OFF || seq == 0 || (seq & 1))
		return -1;
	asm volatile("" ::: "memory");
	*out = *nh;
	asm volatile("" ::: "memory");
	if (*(volatile __u32 *)&nh->seq != seq)
		return -1;
	if (out->gen != g || out->in_ifindex != in_ifindex || out->fwd != fwd || now - out->filled > NH_TTL_NS)
		return -1;
	return 0;
}

/* nh_fill records a successful lookup for destination did. */
static __always_inline void nh_fill(__u32 did, __u32 fwd, __u32 in_ifindex, __u64 now,
				    const struct bpf_fib_lookup *fib)
{
	__u32 zero = 0;
	__u32 *gen = bpf_map_lookup_elem(&nh_gen, &zero);
	struct nexthop *nh = bpf_map_lookup_elem(&nexthop, &did);
	if (!gen || !nh || *gen == NH_GEN_OFF)
		return;
	__u32 seq = nh->seq;
	if (seq & 1)
		return; /* another CPU is writing it */
	if (__sync_val_compare_and_swap(&nh->seq, seq, seq + 1) != seq)
		return;
	nh->gen = *gen;
	nh->fwd = fwd;
	nh->filled = now;
	nh->in_ifindex = in_ifindex;
	nh->ifindex = fib->ifindex;
	nh->mtu = fib->mtu_result;
	if (fib->family == AF_INET) {
		nh->src[0] = fib->ipv4_src;
		nh->src[1] = nh->src[2] = nh->src[3] = 0;
	} else {
		__builtin_memcpy(nh->src, fib->ipv6_src, 16);
	}
	__builtin_memcpy(nh->dmac, fib->dmac, 6);
	__builtin_memcpy(nh->smac, fib->smac, 6);
	__sync_fetch_and_add(&nh->seq, 1);
}

/* nh_fits is the lookup's MTU check (is_skb_forwardable) against the
 * cached MTU: a GSO packet is segmented later, anything else must fit
 * the MTU plus the link and a VLAN header. */
static __always_inline int nh_fits(const struct __sk_buff *skb, const struct nexthop *nh)
{
	return skb->len <= nh->mtu + 14 + 4 || skb->gso_size;
}

/* nh_send sends the packet by a cached next hop. */
static __always_inline int nh_send(struct __sk_buff *skb, const struct nexthop *nh)
{
	if (bpf_skb_store_bytes(skb, 0, nh->dmac, 12, 0))
		return TC_ACT_SHOT;
	return bpf_redirect(nh->ifindex, 0);
}

/* GUE source port: a hash of the inner flow in the ephemeral range, like
 * udp_flow_src_port, but deterministic (no per-boot seed) so fixtures can
 * state it. */
static __always_inline __u16 gue_sport(const struct pkt *p)
{
	__u32 h = p->src[0] ^ p->src[1] ^ p->src[2] ^ p->src[3] ^ p->dst[0] ^ p->dst[1] ^ p->dst[2] ^ p->dst[3];
	h ^= ((__u32)p->sport << 16) | p->dport;
	h ^= p->proto;
	h *= 0x9e3779b1;
	h ^= h >> 15;
	return bpf_htons(32768 + (__u16)(((__u64)h * (61000 - 32768)) >> 32));
}

struct gue_hdr {
	__u8 hlen_ver; /* version 0, C 0, hlen 0 */
	__u8 proto_ctype;
	__u16 flags;
};

/* The bytes encap adds in front of the inner packet. */
static __always_inline __u32 tun_overhead(__u8 family, __u8 tun_type)
{
	__u32 l3 = family == AF_INET ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	return l3 + (tun_type == TUN_GUE ? sizeof(struct udphdr) + sizeof(struct gue_hdr) : 0);
}

/* tun_tot_len is the L3 length of the packet once encapsulated, for the
 * route lookup's MTU check: 0 (check the skb, which passes) for a GSO
 * packet, whose segments bpf_skb_adjust_room shrinks by the overhead
 * (ip_vs_xmit.c skips GSO packets too). */
static __always_inline __u32 tun_tot_len(__u32 gso_size, __u32 ip_len, __u32 overhead)
{
	__u32 t = ip_len + overhead;
	if (gso_size)
		return 0;
	return t > 0xffff ? 0xffff : t;
}

/* tun_inner_mtu is the MTU left for the inner packet by a route MTU. */
static __always_inline __u32 tun_inner_mtu(__u32 route_mtu, __u32 overhead)
{
	return route_mtu > overhead ? route_mtu - overhead : 0;
}

/* encap prepends an outer IPv4 or IPv6 header (and UDP+GUE for GUE) from
 * src to the realserver dst. The outer family is the inner family. */
static __always_inline int encap(struct __sk_buff *skb, const struct pkt *p, const struct cview *c,
				 const __u32 *src)
{
	int gue = c->tun_type == TUN_GUE;
	__u32 inner_len = p->ip_len;
	__u8 inner_proto = p->family == AF_INET ? IPPROTO_IPIP : IPPROTO_IPV6;
	__u32 l3 = p->family == AF_INET ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	__u32 room = l3 + (gue ? sizeof(struct udphdr) + sizeof(struct gue_hdr) : 0);
	__u64 flags = p->family == AF_INET ? BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 : BPF_F_ADJ_ROOM_ENCAP_L3_IPV6;

	if (gue)
		flags |= BPF_F_ADJ_ROOM_ENCAP_L4_UDP | BPF_F_ADJ_ROOM_ENCAP_L2(sizeof(struct gue_hdr));
	/* Trailing padding after the inner packet would end up inside the
	 * outer packet's payload length: trim it first. */
	if (skb->len > sizeof(struct ethhdr) + inner_len &&
	    bpf_skb_change_tail(skb, sizeof(struct ethhdr) + inner_len, 0))
		return -1;
	if (bpf_skb_adjust_room(skb, room, BPF_ADJ_ROOM_MAC, flags))
		return -1;

	__u32 off = sizeof(struct ethhdr);
	if (p->family == AF_INET) {
		struct iphdr ip = {};
		ip.version = 4;
		ip.ihl = 5;
		ip.tos = p->tos;
		ip.tot_len = bpf_htons(inner_len + room);
		ip.frag_off = bpf_htons(IP_DF);
		ip.ttl = 64;
		ip.protocol = gue ? IPPROTO_UDP : IPPROTO_IPIP;
		ip.saddr = src[0];
		ip.daddr = c->daddr[0];
		ip.check = ipv4_csum(&ip);
		if (bpf_skb_store_bytes(skb, off, &ip, sizeof(ip), 0))
			return -1;
	} else {
		struct ipv6hdr ip6 = {};
		ip6.version = 6;
		ip6.priority = p->tos >> 4;
		ip6.flow_lbl[0] = (p->tos & 0xf) << 4;
		ip6.payload_len = bpf_htons(inner_len + room - sizeof(ip6));
		ip6.nexthdr = gue ? IPPROTO_UDP : IPPROTO_IPV6;
		ip6.hop_limit = 64;
		__builtin_memcpy(&ip6.saddr, src, 16);
		__builtin_memcpy(&ip6.daddr, c->daddr, 16);
		if (bpf_skb_store_bytes(skb, off, &ip6, sizeof(ip6), 0))
			return -1;
	}
	off += l3;
	if (gue) {
		/* No UDP checksum (--tun-nocsum, the kernel's default); a zero
		 * checksum over IPv6 is what RFC 6935 allows for tunnels. */
		struct {
			struct udphdr uh;
			struct gue_hdr g;
		} h = {};
		h.uh.source = gue_sport(p);
		h.uh.dest = c->tun_port;
		h.uh.len = bpf_htons(inner_len + sizeof(h));
		h.g.proto_ctype = inner_proto;
		if (bpf_skb_store_bytes(skb, off, &h, sizeof(h), 0))
			return -1;
	}
	if (p->family == AF_INET6) {
		__u16 proto = bpf_htons(ETH_P_IPV6);
		bpf_skb_store_bytes(skb, 12, &proto, 2, 0);
	}
	return 0;
}

#endif
