/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdp.h: govs_xdp, the XDP fast path (Options.XDP), included by govs.c
 * after govs_tc so that both programs share every map and classify().
 *
 * XDP runs before TC on the same device, and the loader attaches both.
 * XDP forwards what it can do alone: parsed TCP/UDP of known or new
 * connections by NAT (both directions), DR and TUN, with direct packet
 * writes and checksums updated by hand (RFC 1624). Everything else it
 * passes untouched and TC does it: ARP, ICMP errors, fragments,
 * anything not for a service, and new connections of firewall-mark
 * services: XDP has no mark and does not evaluate mark_rules (TC does,
 * mark_match); their later packets are found in the connection table.
 * When XDP has acted on a packet but needs the stack or TC to send it
 * (Local destinations, a NAT packet whose route lookup failed, a
 * neighbour not resolved yet: XDP has no bpf_redirect_neigh) it leaves
 * a struct xmeta in the packet's metadata and passes it; govs_tc reads
 * it and only does what it says. A driver
 * without XDP metadata gets the packet without it: TC then handles it
 * again (a NAT or TUN packet, already rewritten, is then forwarded by the
 * stack; a DR packet is counted twice).
 *
 * Frames not addressed to the interface's own MAC (the ifmac map, which
 * the loader fills when it attaches) are passed untouched: XDP has no
 * pkt_type, and a backup director on a switch that floods the master's
 * MAC must not forward the master's traffic (see govs_tc). An interface
 * missing from the map (attached by something else than the loader) has
 * all its frames passed, and TC decides on them.
 *
 * Checksums: XDP sees the bytes only. A packet whose L4 checksum is still
 * partial (CHECKSUM_PARTIAL: sent by a local process on a veth with
 * checksum offload) leaves XDP with a wrong checksum: on veth, turn tx
 * checksum offload off on the senders (ethtool -K dev tx off).
 */
#ifndef GOVS_XDP_H
#define GOVS_XDP_H

static __always_inline __u16 csum_fold64(__u64 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* The one's complement change of replacing 32-bit word from by to. */
static __always_inline __u64 cdiff4(__u32 from, __u32 to)
{
	return (__u64)(~from & 0xffff) + (~from >> 16) + (to & 0xffff) + (to >> 16);
}

static __always_inline __u64 cdiff2(__u16 from, __u16 to)
{
	return (__u64)(__u16)~from + to;
}

/* csum_apply is HC' = ~(~HC + diff) (RFC 1624, eqn. 3). */
static __always_inline void csum_apply(__u16 *sum, __u64 diff)
{
	*sum = ~csum_fold64((__u64)(__u16)~*sum + diff);
}

static __always_inline int mac_eq(const __u8 *a, const __u8 *b)
{
	return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) | (a[5] ^ b[5])) == 0;
}

/* xdp_nat_rewrite is nat_rewrite on an XDP frame. */
static __always_inline int xdp_nat_rewrite(struct xdp_md *ctx, const struct pkt *p, int which, const __u32 *addr,
					   __u16 port)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l4_off = p->l4_off;
	if (l4_off > 14 + 60)
		return -1;
	void *l4 = data + l4_off;
	if (l4 + sizeof(struct tcphdr) > data_end && p->proto == IPPROTO_TCP)
		return -1;
	if (l4 + sizeof(struct udphdr) > data_end)
		return -1;
	__u16 *csum = p->proto == IPPROTO_TCP ? &((struct tcphdr *)l4)->check : &((struct udphdr *)l4)->check;
	if ((void *)(csum + 1) > data_end)
		return -1;
	__u16 *pp = which ? &((struct udphdr *)l4)->dest : &((struct udphdr *)l4)->source;
	int udp0 = p->proto == IPPROTO_UDP && *csum == 0;
	__u64 d = 0;

	if (p->family == AF_INET) {
		struct iphdr *iph = data + sizeof(struct ethhdr);
		if ((void *)(iph + 1) > data_end)
			return -1;
		__u32 old = which ? iph->daddr : iph->saddr;
		__u32 new = addr[0];
		csum_apply(&iph->check, cdiff4(old, new));
		if (which)
			iph->daddr = new;
		else
			iph->saddr = new;
		d = cdiff4(old, new);
	} else {
		struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
		if ((void *)(ip6 + 1) > data_end)
			return -1;
		__u32 *a = which ? (__u32 *)&ip6->daddr : (__u32 *)&ip6->saddr;
#pragma unroll
		for (int w = 0; w < 4; w++) {
			d += cdiff4(a[w], addr[w]);
			a[w] = addr[w];
		}
	}
	if (*pp != port) {
		d += cdiff2(*pp, port);
		*pp = port;
	}
	if (!udp0) {
		csum_apply(csum, d);
		if (p->proto == IPPROTO_UDP && *csum == 0)
			*csum = 0xffff;
	}
	return 0;
}

/* xdp_route_lookup is route_lookup for XDP: with tot_len 0 no MTU check
 * at all (and mtu_result 0). */
static __always_inline long xdp_route_lookup(struct xdp_md *ctx, struct bpf_fib_lookup *fib, __u8 family,
					     const __u32 *src, const __u32 *dst, __u8 proto, __u32 flags,
					     __u32 tot_len)
{
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = family;
	fib->l4_protocol = proto;
	fib->ifindex = ctx->ingress_ifindex;
	fib->tot_len = tot_len;
	if (family == AF_INET) {
		fib->ipv4_src = src[0];
		fib->ipv4_dst = dst[0];
	} else {
		__builtin_memcpy(fib->ipv6_src, src, 16);
		__builtin_memcpy(fib->ipv6_dst, dst, 16);
	}
	return bpf_fib_lookup(ctx, fib, sizeof(*fib), flags);
}

/* xdp_pass_meta passes the frame on with a note for govs_tc (mtu: for
 * XMETA_TOOBIG). */
static __always_inline int xdp_pass_meta(struct xdp_md *ctx, __u32 action, const struct bpf_fib_lookup *fib,
					 __u32 mtu)
{
	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct xmeta)))
		return XDP_PASS;
	void *data = (void *)(long)ctx->data;
	struct xmeta *m = (void *)(long)ctx->data_meta;
	if ((void *)(m + 1) > data)
		return XDP_PASS;
	__builtin_memset(m, 0, sizeof(*m));
	m->magic = XMETA_MAGIC;
	m->action = action;
	if (fib) {
		m->ifindex = fib->ifindex;
		m->family = fib->family;
		if (fib->family == AF_INET)
			m->nh[0] = fib->ipv4_dst;
		else
			__builtin_memcpy(m->nh, fib->ipv6_dst, 16);
	}
	if (action == XMETA_TOOBIG)
		m->nh[0] = mtu;
	return XDP_PASS;
}

static __always_inline int xdp_send(struct xdp_md *ctx, struct bpf_fib_lookup *fib, long rc, int pass_on_fail)
{
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		void *data = (void *)(long)ctx->data;
		void *data_end = (void *)(long)ctx->data_end;
		struct ethhdr *eth = data;
		if ((void *)(eth + 1) > data_end)
			return XDP_DROP;
		__builtin_memcpy(eth->h_dest, fib->dmac, 6);
		__builtin_memcpy(eth->h_source, fib->smac, 6);
		count(CTR_XDP_REDIRECT);
		return bpf_redirect(fib->ifindex, 0);
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return xdp_pass_meta(ctx, XMETA_NEIGH, fib, 0);
	if (pass_on_fail) {
		count(CTR_PASS_TO_STACK);
		return xdp_pass_meta(ctx, XMETA_PASS, 0, 0);
	}
	count(CTR_DROP_FIB);
	return XDP_DROP;
}

/* xdp_encap is encap on an XDP frame. */
static __always_inline int xdp_encap(struct xdp_md *ctx, const struct pkt *p, const struct cview *c, const __u32 *src)
{
	int gue = c->tun_type == TUN_GUE;
	__u32 inner_len = p->ip_len;
	__u8 inner_proto = p->family == AF_INET ? IPPROTO_IPIP : IPPROTO_IPV6;
	__u32 l3 = p->family == AF_INET ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	__u32 room = l3 + (gue ? sizeof(struct udphdr) + sizeof(struct gue_hdr) : 0);
	__u32 flen = ctx->data_end - ctx->data;

	if (flen > sizeof(struct ethhdr) + inner_len &&
	    bpf_xdp_adjust_tail(ctx, (int)(sizeof(struct ethhdr) + inner_len) - (int)flen))
		return -1;
	if (bpf_xdp_adjust_head(ctx, -(int)room))
		return -1;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if (data + sizeof(struct ethhdr) + sizeof(struct ipv6hdr) + sizeof(struct udphdr) + sizeof(struct gue_hdr) >
	    data_end)
		return -1;
	/* MACs are written by xdp_send; the ethertype is the outer one. */
	eth->h_proto = p->family == AF_INET ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6);
	void *o = data + sizeof(struct ethhdr);
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
		__builtin_memcpy(o, &ip, sizeof(ip));
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
		__builtin_memcpy(o, &ip6, sizeof(ip6));
	}
	if (gue) {
		struct {
			struct udphdr uh;
			struct gue_hdr g;
		} h = {};
		h.uh.source = gue_sport(p);
		h.uh.dest = c->tun_port;
		h.uh.len = bpf_htons(inner_len + sizeof(h));
		h.g.proto_ctype = inner_proto;
		if (p->family == AF_INET)
			__builtin_memcpy(o + sizeof(struct iphdr), &h, sizeof(h));
		else
			__builtin_memcpy(o + sizeof(struct ipv6hdr), &h, sizeof(h));
	}
	return 0;
}

/* xdp_nh_send sends the frame by a cached next hop (fwd.h). XDP's own
 * route lookup makes no MTU check for NAT and DR (tot_len 0: their
 * packets do not grow), so neither does this; TUN checks before. */
static __always_inline int xdp_nh_send(struct xdp_md *ctx, const struct nexthop *nh)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, nh->dmac, 6);
	__builtin_memcpy(eth->h_source, nh->smac, 6);
	count(CTR_XDP_REDIRECT);
	return bpf_redirect(nh->ifindex, 0);
}

/* xdp_forward_in is forward_in for XDP. */
__attribute__((noinline)) int xdp_forward_in(struct xdp_md *ctx, struct scratch *x)
{
	if (!x)
		return XDP_DROP;
	struct pkt *p = &x->p;
	const struct cview *c = &x->cc;
	struct bpf_fib_lookup *fib = &x->fib;
	long rc;

	struct nexthop *nh = &x->nh;
	__u32 in = ctx->ingress_ifindex;
	int hit;

	count(CTR_FWD_IN);
	if (c->fwd == FWD_LOCAL) {
		count(CTR_LOCAL);
		return xdp_pass_meta(ctx, XMETA_PASS, 0, 0);
	}
	hit = nh_get(c->dest_id, c->fwd, in, x->now, nh) == 0;
	switch (c->fwd) {
	case FWD_MASQ:
		if (xdp_nat_rewrite(ctx, p, 1, c->daddr, c->dport))
			return XDP_DROP;
		if (hit)
			return xdp_nh_send(ctx, nh);
		rc = xdp_route_lookup(ctx, fib, p->family, p->src, c->daddr, p->proto, 0, 0);
		if (rc == BPF_FIB_LKUP_RET_SUCCESS)
			nh_fill(c->dest_id, c->fwd, in, x->now, fib); /* mtu 0: TC looks up again */
		return xdp_send(ctx, fib, rc, 1);
	case FWD_ROUTE:
		if (hit)
			return xdp_nh_send(ctx, nh);
		rc = xdp_route_lookup(ctx, fib, p->family, p->src, c->daddr, p->proto, 0, 0);
		if (rc == BPF_FIB_LKUP_RET_SUCCESS)
			nh_fill(c->dest_id, c->fwd, in, x->now, fib);
		return xdp_send(ctx, fib, rc, 0);
	case FWD_TUNNEL: {
		__u32 src[4] = {};
		__u32 ovh = tun_overhead(p->family, c->tun_type);
		__u32 tot = tun_tot_len(0, p->ip_len, ovh);
		if (hit && tot <= nh->mtu) {
			__builtin_memcpy(src, nh->src, 16);
			if (xdp_encap(ctx, p, c, src)) {
				count(CTR_DROP_ENCAP);
				return XDP_DROP;
			}
			return xdp_nh_send(ctx, nh);
		}
		__u32 zero[4] = {};
		rc = xdp_route_lookup(ctx, fib, p->family, zero, c->daddr,
				      p->family == AF_INET ? IPPROTO_IPIP : IPPROTO_IPV6, BPF_FIB_LOOKUP_SRC, tot);
		if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) /* govs_tc answers it (tun_toobig) */
			return xdp_pass_meta(ctx, XMETA_TOOBIG, 0, tun_inner_mtu(fib->mtu_result, ovh));
		if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) {
			count(CTR_DROP_FIB);
			return XDP_DROP;
		}
		if (rc == BPF_FIB_LKUP_RET_SUCCESS)
			nh_fill(c->dest_id, c->fwd, in, x->now, fib);
		if (p->family == AF_INET)
			src[0] = fib->ipv4_src;
		else
			__builtin_memcpy(src, fib->ipv6_src, 16);
		if (xdp_encap(ctx, p, c, src)) {
			count(CTR_DROP_ENCAP);
			return XDP_DROP;
		}
		return xdp_send(ctx, fib, rc, 0);
	}
	}
	return XDP_DROP;
}

/* xdp_nat_out is nat_out for XDP. */
__attribute__((noinline)) int xdp_nat_out(struct xdp_md *ctx, struct scratch *x)
{
	if (!x)
		return XDP_DROP;
	struct pkt *p = &x->p;
	const struct conn_key *k = &x->k;

	count(CTR_FWD_OUT);
	if (xdp_nat_rewrite(ctx, p, 0, k->dst, k->dport))
		return XDP_DROP;
	__u32 vip[4];
	__builtin_memcpy(vip, k->dst, 16);
	long rc = xdp_route_lookup(ctx, &x->fib, p->family, vip, p->dst, p->proto, 0, 0);
	return xdp_send(ctx, &x->fib, rc, 1);
}

SEC("xdp")
int govs_xdp(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct scratch *x = bpf_map_lookup_elem(&scratch, &zero);
	if (!x)
		return XDP_PASS;
	struct pkt *p = &x->p;
	__builtin_memset(p, 0, sizeof(*p));
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	__u32 ifi = ctx->ingress_ifindex;
	struct ifmac *own = bpf_map_lookup_elem(&ifmac, &ifi);
	if (!own || !mac_eq(eth->h_dest, own->addr))
		return XDP_PASS;
	if (parse(data, data_end, data_end - data, p) != PARSE_OK)
		return XDP_PASS; /* TC counts and handles it */
	x->now = bpf_ktime_get_ns();
	switch (classify(x, 0, x->now)) {
	case CL_OUT:
		return xdp_nat_out(ctx, x);
	case CL_IN:
		return xdp_forward_in(ctx, x);
	case CL_DROP:
		return XDP_DROP;
	}
	return XDP_PASS;
}

#endif
