// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * govs.c: the director's forwarding program, attached at TC ingress (TCX)
 * of the interfaces that receive client traffic and, for NAT, realserver
 * replies.
 *
 * For every packet, in order:
 *   0. a frame XDP already handled does what XDP's note says; a frame
 *      not addressed to this host passes (below);
 *   1. parse (parse.h); what is not plain IPv4/IPv6 TCP/UDP passes;
 *   2. a NAT reply (nat map): rewrite the source back to VIP:vport, route;
 *   3. a known connection (conns map): state transition, forward;
 *   4. a virtual service (services map: fwmark, then proto+VIP+port, then
 *      proto+VIP+port 0): schedule, create the connection, forward; the
 *      mark is skb->mark or, if 0, the first matching mark_rules entry
 *      (mark_match, evaluated after parsing);
 *   5. anything else passes to the stack.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_packet.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "structs.h"
#include "maps.h"
#include "parse.h"
#include "csum.h"
#include "conn.h"
#include "sched.h"
#include "fwd.h"
#include "icmp.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* mark_match's bpf_loop context (in the scratch map, see sched.h). */
struct mark_ctx {
	__u32 dst[4];
	__u32 n;
	__u32 mark;
	__u16 dport; /* host order */
	__u8 family;
	__u8 proto;
};

/* Per-CPU scratch space: the program's working structures do not fit in
 * the 512-byte BPF stack once everything is inlined. */
struct scratch {
	struct pkt p;
	struct conn_key k;
	struct conn_key tk;
	struct nat_key nk;
	struct conn nc;
	struct cview cc;
	struct nat_val nv;
	struct dest d;
	struct svc sv;
	struct bpf_fib_lookup fib;
	struct icmp_info ic;
	struct nexthop nh;
	__u64 now; /* bpf_ktime_get_ns() of this packet */
	__u32 did;
	__u32 ctl; /* pick: the connection goes under template tk */
	__u32 qbuf[QBUF_WORDS]; /* icmp_too_big's copy of the quote */
	struct mark_ctx mc;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__uint(value_size, sizeof(struct scratch)); /* no BTF type: bpf2go cannot render bpf_fib_lookup */
} scratch SEC(".maps");

/* Headers we may need in the linear part of the skb: Ethernet, IPv6 or
 * IPv4 with options, TCP without options. */
#define PULL_LEN (14 + 60 + 20)

static __always_inline void add_stats(__u32 svc_id, __u32 dest_id, int out, __u32 bytes, int newconn)
{
	struct stats *s = bpf_map_lookup_elem(&svc_stats, &svc_id);
	if (s) {
		s->conns += newconn;
		if (out) {
			s->outpkts++;
			s->outbytes += bytes;
		} else {
			s->inpkts++;
			s->inbytes += bytes;
		}
	}
	s = bpf_map_lookup_elem(&dest_stats, &dest_id);
	if (s) {
		s->conns += newconn;
		if (out) {
			s->outpkts++;
			s->outbytes += bytes;
		} else {
			s->inpkts++;
			s->inbytes += bytes;
		}
	}
}

static __always_inline struct svc *svc_find(__u32 mark, const struct pkt *p)
{
	struct svc_key k = {};
	struct svc *s;

	k.family = p->family;
	if (mark) {
		k.fwmark = mark;
		s = bpf_map_lookup_elem(&services, &k);
		if (s)
			return s;
		k.fwmark = 0;
	}
	k.proto = p->proto;
	__builtin_memcpy(k.addr, p->dst, 16);
	k.port = p->dport;
	s = bpf_map_lookup_elem(&services, &k);
	if (s)
		return s;
	k.port = 0; /* a persistent "all ports" service */
	return bpf_map_lookup_elem(&services, &k);
}

static __always_inline __u32 prefix_mask(__u32 plen, __u32 word)
{
	__u32 bits = plen > word * 32 ? plen - word * 32 : 0;
	if (bits >= 32)
		return 0xffffffff;
	if (bits == 0)
		return 0;
	return bpf_htonl(0xffffffff << (32 - bits));
}

static long mark_step(__u64 i, void *data)
{
	struct mark_ctx *c = *(struct mark_ctx **)data;
	__u32 k = (__u32)i;
	if (k >= c->n)
		return 1;
	struct mark_rule *r = bpf_map_lookup_elem(&mark_rules, &k);
	if (!r)
		return 1;
	if (r->family != c->family || (r->proto && r->proto != c->proto) ||
	    c->dport < r->dport_min || c->dport > r->dport_max)
		return 0;
	__u32 plen = r->plen;
	for (__u32 w = 0; w < 4; w++)
		if ((c->dst[w] & prefix_mask(plen, w)) != r->daddr[w])
			return 0;
	c->mark = r->mark;
	return 1;
}

/* mark_match is the firewall mark of the first rule in mark_rules that
 * matches the parsed packet x->p, 0 if none: govs classifies marks
 * itself, as TC ingress and XDP run before netfilter could set one. */
static __always_inline __u32 mark_match(struct scratch *x)
{
	__u32 zero = 0;
	__u32 *n = bpf_map_lookup_elem(&mark_nrules, &zero);
	if (!n || !*n)
		return 0;
	struct mark_ctx *c = &x->mc;
	__builtin_memcpy(c->dst, x->p.dst, 16);
	c->n = *n;
	c->mark = 0;
	c->dport = bpf_ntohs(x->p.dport);
	c->family = x->p.family;
	c->proto = x->p.proto;
	struct mark_ctx *cp = c;
	bpf_loop(GOVS_MAX_MARK_RULES, mark_step, &cp, 0);
	return c->mark;
}

/* tun_toobig answers a TUN packet (x->p) that does not fit the route's
 * MTU once encapsulated; mtu is what is left for the inner packet. The
 * decisions are ip_vs_xmit.c's (ensure_mtu_is_adequate, and
 * __ip_vs_get_out_rt's minimum MTU):
 *
 *   IPv4 with DF: fragmentation needed with mtu, to the client; below 68
 *   (route MTU minus the outer headers) IPVS drops without an answer.
 *   IPv4 without DF: IPVS encapsulates with the outer DF copied from the
 *   inner (clear) and lets ip_local_out fragment the outer packet. A
 *   redirected skb is never fragmented (the device drops what exceeds
 *   its MTU), and BPF cannot make fragments, so the packet is dropped
 *   and counted: the one case still lost (clients that clear DF have
 *   switched path MTU discovery off).
 *   IPv6: packet too big with mtu (at least 1280: a lower value would
 *   make the client fragment to 1280 anyway; IPVS drops such packets).
 *   An ICMP error (forwarded through the tunnel by icmp_error) is never
 *   answered with one: dropped and counted, as IPVS does.
 *
 * GSO packets never get here (see tun_tot_len). */
__attribute__((noinline)) int tun_toobig(struct __sk_buff *skb, struct scratch *x, __u32 mtu)
{
	if (!x)
		return TC_ACT_SHOT;
	struct pkt *p = &x->p;
	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP)
		goto drop;
	if (p->family == AF_INET) {
		__u16 frag;
		if (bpf_skb_load_bytes(skb, p->l3_off + 6, &frag, 2) || !(frag & bpf_htons(IP_DF)) || mtu < 68)
			goto drop;
	} else if (mtu < IPV6_MIN_MTU) {
		mtu = IPV6_MIN_MTU;
	}
	if (icmp_too_big(skb, p, mtu, x->qbuf))
		goto drop;
	count(p->family == AF_INET ? CTR_ICMP_FRAG_NEEDED : CTR_ICMP6_TOO_BIG);
	return bpf_redirect(skb->ifindex, 0);
drop:
	count(CTR_DROP_TOO_BIG);
	return TC_ACT_SHOT;
}

/* forward_in sends a client->server packet of connection x->cc. */
__attribute__((noinline)) int forward_in(struct __sk_buff *skb, struct scratch *x)
{
	if (!x)
		return TC_ACT_SHOT;
	struct pkt *p = &x->p;
	const struct cview *c = &x->cc;
	struct bpf_fib_lookup *fib = &x->fib;
	long rc;

	struct nexthop *nh = &x->nh;
	__u32 in = skb->ifindex;
	int hit;

	count(CTR_FWD_IN);
	if (c->fwd == FWD_LOCAL) {
		count(CTR_LOCAL);
		return TC_ACT_OK;
	}
	hit = nh_get(c->dest_id, c->fwd, in, x->now, nh) == 0;
	switch (c->fwd) {
	case FWD_MASQ:
		if (nat_rewrite(skb, p, 1, c->daddr, c->dport))
			return TC_ACT_SHOT;
		if (hit && nh_fits(skb, nh))
			return nh_send(skb, nh);
		rc = route_lookup(skb, fib, p->family, p->src, c->daddr, p->proto, 0, 0);
		if (rc == BPF_FIB_LKUP_RET_SUCCESS)
			nh_fill(c->dest_id, c->fwd, in, x->now, fib);
		return send(skb, fib, rc, 1);
	case FWD_ROUTE:
		if (hit && nh_fits(skb, nh))
			return nh_send(skb, nh);
		rc = route_lookup(skb, fib, p->family, p->src, c->daddr, p->proto, 0, 0);
		if (rc == BPF_FIB_LKUP_RET_SUCCESS)
			nh_fill(c->dest_id, c->fwd, in, x->now, fib);
		return send(skb, fib, rc, 0);
	case FWD_TUNNEL: {
		__u32 src[4] = {};
		__u32 ovh = tun_overhead(p->family, c->tun_type);
		__u32 tot = tun_tot_len(skb->gso_size, p->ip_len, ovh);
		if (hit && tot <= nh->mtu) {
			__builtin_memcpy(src, nh->src, 16);
			if (encap(skb, p, c, src)) {
				count(CTR_DROP_ENCAP);
				return TC_ACT_SHOT;
			}
			return nh_send(skb, nh);
		}
		__u32 zero[4] = {};
		rc = route_lookup(skb, fib, p->family, zero, c->daddr, p->family == AF_INET ? IPPROTO_IPIP : IPPROTO_IPV6,
				  BPF_FIB_LOOKUP_SRC, tot);
		if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
			return tun_toobig(skb, x, tun_inner_mtu(fib->mtu_result, ovh));
		if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) {
			count(CTR_DROP_FIB);
			return TC_ACT_SHOT;
		}
		if (rc == BPF_FIB_LKUP_RET_SUCCESS)
			nh_fill(c->dest_id, c->fwd, in, x->now, fib);
		if (p->family == AF_INET)
			src[0] = fib->ipv4_src;
		else
			__builtin_memcpy(src, fib->ipv6_src, 16);
		if (encap(skb, p, c, src)) {
			count(CTR_DROP_ENCAP);
			return TC_ACT_SHOT;
		}
		return send(skb, fib, rc, 0);
	}
	}
	return TC_ACT_SHOT;
}

/* nat_out sends a realserver's reply of the NAT connection x->k, x->cc
 * with its source rewritten back to the virtual address. */
__attribute__((noinline)) int nat_out(struct __sk_buff *skb, struct scratch *x)
{
	if (!x)
		return TC_ACT_SHOT;
	struct pkt *p = &x->p;
	struct bpf_fib_lookup *fib = &x->fib;
	const struct conn_key *k = &x->k;

	count(CTR_FWD_OUT);
	if (nat_rewrite(skb, p, 0, k->dst, k->dport))
		return TC_ACT_SHOT;
	__u32 vip[4];
	__builtin_memcpy(vip, k->dst, 16);
	long rc = route_lookup(skb, fib, p->family, vip, p->dst, p->proto, 0, 0);
	return send(skb, fib, rc, 1);
}

/* icmp_error handles an ICMP error that may belong to a connection (see
 * icmp.h). */
__attribute__((noinline)) int icmp_error(struct __sk_buff *skb, struct scratch *x, __u64 now)
{
	if (!x)
		return TC_ACT_OK;
	x->now = now;
	struct pkt *p = &x->p;
	struct icmp_info *ic = &x->ic;
	struct bpf_fib_lookup *fib = &x->fib;
	if (icmp_parse(skb, p, ic)) {
		count(CTR_PASS_PROTO);
		return TC_ACT_OK;
	}
	/* From the realserver side: the quote is CIP:cport -> RIP:rport,
	 * the reverse of a NAT reply. */
	struct nat_key *nk = &x->nk;
	__builtin_memcpy(nk->src, ic->dst, 16);
	__builtin_memcpy(nk->dst, ic->src, 16);
	nk->sport = ic->dport;
	nk->dport = ic->sport;
	nk->proto = ic->proto;
	nk->family = p->family;
	nk->pad = 0;
	struct conn_key *k = &x->k;
	struct nat_val *nv = bpf_map_lookup_elem(&nat, nk);
	if (nv) {
		conn_key_of_nat(k, nk, nv);
		struct conn *c = bpf_map_lookup_elem(&conns, k);
		if (c && c->expires > now && cview_of(&x->cc, c) == 0) {
			add_stats(x->cc.svc_id, c->dest_id, 1, p->ip_len, 0);
			count(CTR_ICMP_OUT);
			if (icmp_rewrite(skb, p, ic, 0, k->dst, k->dport))
				return TC_ACT_SHOT;
			__u32 vip[4];
			__builtin_memcpy(vip, k->dst, 16);
			long rc = route_lookup(skb, fib, p->family, vip, p->dst, p->proto, 0, 0);
			return send(skb, fib, rc, 1);
		}
	}
	/* From the client side: the quote is a reply, VIP:vport -> CIP:cport. */
	__builtin_memcpy(k->src, ic->dst, 16);
	__builtin_memcpy(k->dst, ic->src, 16);
	k->sport = ic->dport;
	k->dport = ic->sport;
	k->proto = ic->proto;
	k->family = p->family;
	k->kind = CONN_KIND_CONN;
	k->pad = 0;
	struct conn *c = bpf_map_lookup_elem(&conns, k);
	if (!c || c->expires <= now || cview_of(&x->cc, c)) {
		count(CTR_PASS_PROTO);
		return TC_ACT_OK;
	}
	add_stats(x->cc.svc_id, c->dest_id, 0, p->ip_len, 0);
	count(CTR_ICMP_IN);
	if (x->cc.fwd != FWD_MASQ)
		return forward_in(skb, x);
	if (icmp_rewrite(skb, p, ic, 1, x->cc.daddr, x->cc.dport))
		return TC_ACT_SHOT;
	long rc = route_lookup(skb, fib, p->family, p->src, x->cc.daddr, p->proto, 0, 0);
	return send(skb, fib, rc, 1);
}

/* dest_of loads the i-th destination of s into *id and *d. */
static __always_inline int dest_of(const struct svc *s, int i, __u32 *id, struct dest *d)
{
	if (i < 0 || i >= GOVS_MAX_DESTS)
		return -1;
	__u32 slot = s->list + i;
	__u32 *pid = bpf_map_lookup_elem(&svc_dests, &slot);
	if (!pid)
		return -1;
	__u32 did = *pid;
	struct dest *pd = bpf_map_lookup_elem(&dests, &did);
	if (!pd)
		return -1;
	*id = did;
	*d = *pd;
	return 0;
}

/* pick chooses the destination of a new connection, through a persistence
 * template if the service is persistent (ip_vs_sched_persist): a template
 * per client (masked by the service's netmask) and virtual service; a
 * template whose destination left the service is dropped and the client
 * rescheduled. */
__attribute__((noinline)) int pick(struct scratch *x, __u64 now)
{
	if (!x)
		return -1;
	__u32 *id = &x->did;
	struct svc *s = &x->sv;
	const struct pkt *p = &x->p;
	struct dest *d = &x->d;
	x->ctl = 0;
	if (!(s->flags & SVC_F_PERSISTENT)) {
		int i = schedule(s, &x->p, now);
		if (i < 0)
			return -1;
		return dest_of(s, i, id, d);
	}

	struct conn_key *tk = &x->tk;
	__builtin_memset(tk, 0, sizeof(*tk));
	tk->kind = CONN_KIND_TEMPLATE;
	tk->family = p->family;
	__builtin_memcpy(tk->src, p->src, 16);
	mask_addr(tk->src, p->family, s->netmask);
	if (s->fwmark) {
		/* <IPPROTO_IP, caddr, 0, fwmark, 0> */
		tk->dst[0] = bpf_htonl(s->fwmark);
	} else {
		/* <proto, caddr, 0, vaddr, vport>; vport 0 for a port-zero
		 * service and for FTP (21). */
		tk->proto = p->proto;
		__builtin_memcpy(tk->dst, p->dst, 16);
		if (p->dport == s->port && s->port != bpf_htons(21))
			tk->dport = p->dport;
	}

	struct conn *t = bpf_map_lookup_elem(&conns, tk);
	if (t) {
		__u32 tid = t->dest_id;
		struct dest *td = bpf_map_lookup_elem(&dests, &tid);
		if (!td || !(td->flags & DEST_F_AVAILABLE)) {
			/* ip_vs_check_template: the engine unhashes it and lets
			 * it live for the connections it controls; a hash map
			 * has room for one entry per key, so it goes now (its
			 * connections release it only if it is still theirs,
			 * see conn_remove). */
			conn_remove(tk);
		} else if (t->expires <= now && (__s32)t->n_control <= 0) {
			conn_expire(tk, now);
		} else {
			/* Refreshed by every connection it places; a deferred
			 * template (its deadline came while it controlled
			 * connections) by DEFERRED_EXPIRY_S, its new timeout in
			 * the kernel. */
			__u64 to = (__u64)s->timeout;
			if (t->expires <= now)
				__sync_fetch_and_or(&t->sf, CONN_F_DEFERRED);
			if (t->sf & CONN_F_DEFERRED)
				to = DEFERRED_EXPIRY_S;
			t->expires = now + to * NSEC_PER_SEC;
			*id = tid;
			*d = *td;
			x->ctl = 1;
			return 0;
		}
	}

	int i = schedule(s, &x->p, now);
	if (i < 0 || dest_of(s, i, id, d))
		return -1;
	struct conn *nt = &x->nc;
	__builtin_memset(nt, 0, sizeof(*nt));
	nt->dport = d->port;
	nt->fwd = d->fwd;
	nt->dest_id = *id;
	nt->expires = now + (__u64)s->timeout * NSEC_PER_SEC;
	if (bpf_map_update_elem(&conns, tk, nt, BPF_NOEXIST) == 0) {
		bind_dest(*id, 1, 0);
		x->ctl = 1;
		return 0;
	}
	/* Lost a race with another CPU: follow its template. */
	t = bpf_map_lookup_elem(&conns, tk);
	if (!t)
		return 0;
	__u32 tid = t->dest_id;
	struct dest *td = bpf_map_lookup_elem(&dests, &tid);
	if (!td)
		return -1;
	*id = tid;
	*d = *td;
	x->ctl = 1;
	return 0;
}

/* What classify decided for a parsed packet (x->p). */
#define CL_PASS 0 /* not ours: to the stack untouched */
#define CL_DROP 1
#define CL_OUT 2 /* a NAT reply of connection x->k, x->cc: rewrite, route */
#define CL_IN 3  /* a packet of connection x->cc: forward by its method */

/* classify runs steps 2-4 for the parsed packet x->p with firewall mark
 * mark: the connection table, scheduling, states, counters. The caller
 * (TC or XDP) then moves the packet. */
__attribute__((noinline)) int classify(struct scratch *x, __u32 mark, __u64 now)
{
	if (!x)
		return CL_PASS;
	struct pkt *p = &x->p;
	/* 2. NAT reply? */
	struct nat_key *nk = &x->nk;
	__builtin_memcpy(nk->src, p->src, 16);
	__builtin_memcpy(nk->dst, p->dst, 16);
	nk->sport = p->sport;
	nk->dport = p->dport;
	nk->proto = p->proto;
	nk->family = p->family;
	nk->pad = 0;
	struct conn_key *k = &x->k;
	struct nat_val *nv = bpf_map_lookup_elem(&nat, nk);
	if (nv) {
		conn_key_of_nat(k, nk, nv);
		struct conn *c = bpf_map_lookup_elem(&conns, k);
		if (c && c->expires > now && cview_of(&x->cc, c) == 0) {
			conn_update(c, p->proto, DIR_OUT, p->tcp_flags, now);
			__sync_fetch_and_add(&c->outpkts, 1);
			add_stats(x->cc.svc_id, c->dest_id, 1, p->ip_len, 0);
			return CL_OUT;
		}
		if (c)
			conn_expire(k, now);
		else
			bpf_map_delete_elem(&nat, nk);
	}

	/* 3. Known connection? */
	__builtin_memcpy(k->src, p->src, 16);
	__builtin_memcpy(k->dst, p->dst, 16);
	k->sport = p->sport;
	k->dport = p->dport;
	k->proto = p->proto;
	k->family = p->family;
	k->kind = CONN_KIND_CONN;
	k->pad = 0;
	struct conn *c = bpf_map_lookup_elem(&conns, k);
	if (c) {
		__u32 st = c->sf & CONN_STATE_MASK;
		int syn = p->proto == IPPROTO_TCP && (p->tcp_flags & TCPF_SYN);
		if (c->expires <= now) {
			conn_expire(k, now);
			c = NULL;
		} else if (syn && st == TCP_S_TIME_WAIT && !(c->sf & CONN_F_CONTROLLED)) {
			/* conn_reuse_mode 1: a SYN on an uncontrolled
			 * connection in TIME_WAIT is a new connection,
			 * rescheduled (the engine's rule). */
			conn_expire(k, now);
			c = NULL;
		}
	}
	if (c) {
		if (cview_of(&x->cc, c))
			return CL_DROP;
		conn_update(c, p->proto, DIR_IN, p->tcp_flags, now);
		__sync_fetch_and_add(&c->inpkts, 1);
		add_stats(x->cc.svc_id, c->dest_id, 0, p->ip_len, 0);
		return CL_IN;
	}

	/* 4. A virtual service? */
	struct svc *s = svc_find(mark, p);
	if (!s) {
		count(CTR_PASS_NO_SVC);
		return CL_PASS;
	}
	if (p->proto == IPPROTO_TCP && (p->tcp_flags & (TCPF_SYN | TCPF_RST)) != TCPF_SYN) {
		/* Only a SYN starts a TCP connection (tcp_conn_schedule). */
		count(CTR_DROP_NO_CONN);
		return CL_DROP;
	}
	x->sv = *s;
	if (pick(x, now)) {
		count(CTR_DROP_NO_DEST);
		return CL_DROP;
	}

	__u32 did = x->did;
	struct dest *d = &x->d;
	struct conn *nc = &x->nc;
	__builtin_memset(nc, 0, sizeof(*nc));
	nc->dport = d->fwd == FWD_MASQ ? d->port : p->dport;
	nc->fwd = d->fwd;
	nc->dest_id = did;
	nc->sf = CONN_F_INACTIVE | (d->fwd != FWD_MASQ ? CONN_F_NOOUTPUT : 0) | TCP_S_NONE;
	nc->expires = now;
	if (x->ctl) {
		nc->sf |= CONN_F_CONTROLLED | (x->tk.dport ? CONN_F_TPORT : 0);
		nc->ctl_mask = x->sv.netmask;
	}
	count(CTR_NEW_CONN);

	if ((x->sv.flags & SVC_F_ONEPACKET) && p->proto == IPPROTO_UDP) {
		/* One-packet scheduling: no entry outlives the datagram. */
		nc->inpkts = 1;
		add_stats(x->sv.id, did, 0, p->ip_len, 1);
		if (cview_of(&x->cc, nc))
			return CL_DROP;
		return CL_IN;
	}
	long ur = bpf_map_update_elem(&conns, k, nc, BPF_NOEXIST);
	if (ur) {
		/* Another CPU created it first: use that one. Or the table
		 * is full: drop the new connection. */
		c = bpf_map_lookup_elem(&conns, k);
		if (!c) {
			count(CTR_DROP_TABLE_FULL);
			return CL_DROP;
		}
	} else {
		c = bpf_map_lookup_elem(&conns, k);
		if (!c)
			return CL_DROP;
		if (x->ctl) {
			struct conn *t = bpf_map_lookup_elem(&conns, &x->tk);
			if (t && t->dest_id == did)
				__sync_fetch_and_add(&t->n_control, 1);
			else
				__sync_fetch_and_and(&c->sf, ~CONN_F_CONTROLLED);
		}
		bind_dest(did, 0, 1);
		add_stats(x->sv.id, did, 0, 0, 1);
		if (d->fwd == FWD_MASQ && nat_key_of(nk, k, c) == 0) {
			nat_val_of(&x->nv, k);
			bpf_map_update_elem(&nat, nk, &x->nv, BPF_ANY);
		}
	}
	if (cview_of(&x->cc, c))
		return CL_DROP;
	conn_update(c, p->proto, DIR_IN, p->tcp_flags, now);
	__sync_fetch_and_add(&c->inpkts, 1);
	add_stats(x->cc.svc_id, c->dest_id, 0, p->ip_len, 0);
	return CL_IN;
}

/* Metadata the XDP program leaves in front of a packet it passes on
 * after acting on it, so that TC does not process it again. */
#define XMETA_MAGIC 0x676f7673 /* "govs" */
#define XMETA_PASS 1	       /* hand to the stack untouched */
#define XMETA_NEIGH 2	       /* bpf_redirect_neigh to ifindex, nh */
#define XMETA_TOOBIG 3	       /* TUN, too big: answer with ICMP, MTU nh[0] */
struct xmeta {
	__u32 magic;
	__u32 action;
	__u32 ifindex;
	__u32 family;
	__u32 nh[4];
};

SEC("tc")
int govs_tc(struct __sk_buff *skb)
{
	/* A packet the XDP program already handled. */
	void *meta = (void *)(long)skb->data_meta;
	struct xmeta *xm = meta;
	int toobig = 0;
	__u32 toobig_mtu = 0;
	if ((void *)(xm + 1) <= (void *)(long)skb->data && xm->magic == XMETA_MAGIC) {
		if (xm->action == XMETA_NEIGH) {
			struct bpf_redir_neigh nh = {};
			nh.nh_family = xm->family;
			__builtin_memcpy(nh.ipv6_nh, xm->nh, 16);
			count(CTR_REDIRECT_NEIGH);
			return bpf_redirect_neigh(xm->ifindex, &nh, sizeof(nh), 0);
		}
		if (xm->action != XMETA_TOOBIG)
			return TC_ACT_OK;
		toobig = 1;
		toobig_mtu = xm->nh[0];
	}

	/* Only frames addressed to this host's MAC are ours. A switch or
	 * bridge floods frames for a MAC it has not learnt (or has aged out)
	 * to every port, so a backup director sees the master's traffic
	 * (PACKET_OTHERHOST) and must not forward it as well. Multicast and
	 * broadcast frames never carry a unicast TCP/UDP service's traffic
	 * (the stack's own ARP, VRRP and sync messages among them): they go
	 * to the stack too. As in IPVS, which only sees what ip_rcv
	 * accepted. Not counted: the ctr map's size is a pinned format.
	 * After the XDP note: XDP checked the MAC itself, and a frame it
	 * encapsulated but could not send has no MACs written yet. */
	if (!toobig && skb->pkt_type != PACKET_HOST)
		return TC_ACT_OK;

	__u32 zero = 0;
	struct scratch *x = bpf_map_lookup_elem(&scratch, &zero);
	if (!x)
		return TC_ACT_OK;
	struct pkt *p = &x->p;
	__builtin_memset(p, 0, sizeof(*p));

	if (skb->data + PULL_LEN > skb->data_end && skb->len > skb->data_end - skb->data)
		bpf_skb_pull_data(skb, skb->len < PULL_LEN ? skb->len : PULL_LEN);

	int r = parse((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, p);
	if (toobig) {
		/* XDP found a TUN packet too big for the tunnel and left the
		 * answer to TC: one implementation of the ICMP error (skb
		 * helpers grow and trim the frame, the quote's checksum is
		 * summed from a copy). */
		if (r != PARSE_OK) {
			count(CTR_DROP_TOO_BIG);
			return TC_ACT_SHOT;
		}
		return tun_toobig(skb, x, toobig_mtu);
	}
	if (r == PARSE_PROTO && ((p->family == AF_INET && p->proto == IPPROTO_ICMP) ||
				 (p->family == AF_INET6 && p->proto == IPPROTO_ICMPV6)))
		return icmp_error(skb, x, bpf_ktime_get_ns());
	if (r != PARSE_OK) {
		count(r == PARSE_NOT_IP ? CTR_PASS_NOT_IP : r == PARSE_FRAG ? CTR_PASS_FRAG
							   : r == PARSE_PROTO ? CTR_PASS_PROTO
									      : CTR_PASS_BAD_HDR);
		return TC_ACT_OK;
	}
	x->now = bpf_ktime_get_ns();
	/* Firewall-mark rules: netfilter has not run yet (TC ingress comes
	 * first), so a mark rule of ours stands in for its MARK target. The
	 * stack sees the mark too if the packet is passed. */
	__u32 mark = skb->mark;
	if (!mark) {
		mark = mark_match(x);
		if (mark)
			skb->mark = mark;
	}
	switch (classify(x, mark, x->now)) {
	case CL_OUT:
		return nat_out(skb, x);
	case CL_IN:
		return forward_in(skb, x);
	case CL_DROP:
		return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}

#include "xdp.h"
#include "sync.h"

/* Arguments of govs_expire, run by the Go sweeper through BPF_PROG_TEST_RUN
 * for each entry it found expired: the removal and the counter update run
 * here, with the same atomics as the data path, so Go never writes
 * dest_live. */
struct expire_args {
	struct conn_key key;
	__u64 now;   /* bpf_ktime_get_ns() of the sweep; 0: remove regardless */
	__u32 removed;
	__u32 pad;
};

SEC("syscall")
int govs_expire(struct expire_args *a)
{
	struct conn_key k = a->key;
	struct conn *c = bpf_map_lookup_elem(&conns, &k);

	a->removed = 0;
	if (!c)
		return 0;
	if (a->now && c->expires > a->now)
		return 0;
	a->removed = a->now ? conn_expire(&k, a->now) : conn_remove(&k);
	return 0;
}
