/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * conn.h: connection states, destination counters and expiry.
 *
 * The TCP table is the kernel's (net/netfilter/ipvs/ip_vs_proto_tcp.c,
 * tcp_states): INPUT and OUTPUT for NAT, INPUT-ONLY for connections whose
 * flag CONN_F_NOOUTPUT is set (DR, TUN, Local), cleared by the first
 * packet seen in the output direction, as in set_tcp_state.
 *
 * Concurrency: a connection's state and flags live in one 32-bit word
 * (conn.sf) changed with compare-and-swap, so the move between ActiveConn
 * and InActConn that goes with a state change is counted exactly once even
 * when two CPUs see packets of the same connection. The counters
 * themselves are atomic adds. Removal (expiry) goes through
 * bpf_map_delete_elem, and only the caller whose delete succeeded unbinds
 * the destination: the Go sweeper follows the same rule.
 */
#ifndef GOVS_CONN_H
#define GOVS_CONN_H

#include "maps.h"
#include "parse.h"

#define NSEC_PER_SEC 1000000000ULL

#define sNO TCP_S_NONE
#define sES TCP_S_ESTABLISHED
#define sSS TCP_S_SYN_SENT
#define sSR TCP_S_SYN_RECV
#define sFW TCP_S_FIN_WAIT
#define sTW TCP_S_TIME_WAIT
#define sCL TCP_S_CLOSE
#define sCW TCP_S_CLOSE_WAIT
#define sLA TCP_S_LAST_ACK
#define sLI TCP_S_LISTEN
#define sSA TCP_S_SYNACK

#define DIR_IN 0
#define DIR_OUT 4
#define DIR_INPUT_ONLY 8

/* Rows: INPUT syn fin ack rst, OUTPUT ..., INPUT-ONLY ...; columns: state. */
static const __u8 tcp_states[12][TCP_S_LAST] = {
	/*        sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA */
	/*syn*/ { sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR },
	/*fin*/ { sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW },
	/*ack*/ { sCL, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES },
	/*rst*/ { sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR },

	/*syn*/ { sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR },
	/*fin*/ { sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW },
	/*ack*/ { sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES },
	/*rst*/ { sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL },

	/*syn*/ { sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR },
	/*fin*/ { sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW },
	/*ack*/ { sCL, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES },
	/*rst*/ { sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL },
};

static __always_inline int tcp_state_idx(__u8 f)
{
	if (f & TCPF_RST)
		return 3;
	if (f & TCPF_SYN)
		return 0;
	if (f & TCPF_FIN)
		return 1;
	if (f & TCPF_ACK)
		return 2;
	return -1;
}

/* next_sf is set_tcp_state: the state|flags word after a packet. */
static __always_inline __u32 next_sf(__u32 sf, int dir, __u8 tcp_flags)
{
	__u32 flags = sf & ~CONN_STATE_MASK;
	__u32 state = sf & CONN_STATE_MASK;
	__u32 ns = TCP_S_CLOSE;
	int off = dir;

	if (flags & CONN_F_NOOUTPUT) {
		if (off == DIR_OUT)
			flags &= ~CONN_F_NOOUTPUT;
		else
			off = DIR_INPUT_ONLY;
	}
	int idx = tcp_state_idx(tcp_flags);
	if (idx >= 0 && state < TCP_S_LAST) {
		__u32 row = off + idx;
		if (row < 12)
			ns = tcp_states[row][state];
	}
	if (ns != state) {
		if (!(flags & CONN_F_INACTIVE) && ns != TCP_S_ESTABLISHED)
			flags |= CONN_F_INACTIVE;
		else if ((flags & CONN_F_INACTIVE) && ns == TCP_S_ESTABLISHED)
			flags &= ~CONN_F_INACTIVE;
	}
	return flags | ns;
}

static __always_inline __u64 timeout_ns(__u32 slot)
{
	__u32 *t = bpf_map_lookup_elem(&timeouts, &slot);
	if (!t)
		return 0;
	return (__u64)*t * NSEC_PER_SEC;
}

/* dest_overload_check applies the kernel's rules after a counter change
 * (ip_vs_bind_dest / ip_vs_unbind_dest). */
static __always_inline void dest_overload_check(__u32 id, struct dest_live *l, int bound)
{
	struct dest *d = bpf_map_lookup_elem(&dests, &id);
	if (!d)
		return;
	__u64 conns = (__u64)(__s64)(l->active + l->inact);
	if (bound) {
		if (d->upper && conns >= d->upper)
			l->overloaded = 1;
		return;
	}
	if (!l->overloaded)
		return;
	if (d->lower) {
		if (conns < d->lower)
			l->overloaded = 0;
	} else if (d->upper) {
		if (conns * 4 < (__u64)d->upper * 3)
			l->overloaded = 0;
	} else {
		l->overloaded = 0;
	}
}

/* bind_dest counts a new connection (or template) on its destination. */
static __always_inline void bind_dest(__u32 id, int template, int inactive)
{
	struct dest_live *l = bpf_map_lookup_elem(&dest_live, &id);
	if (!l)
		return;
	if (template)
		__sync_fetch_and_add(&l->persist, 1);
	else if (inactive)
		__sync_fetch_and_add(&l->inact, 1);
	else
		__sync_fetch_and_add(&l->active, 1);
	if (!template)
		dest_overload_check(id, l, 1);
}

static __always_inline void unbind_dest(__u32 id, int template, int inactive)
{
	struct dest_live *l = bpf_map_lookup_elem(&dest_live, &id);
	if (!l)
		return;
	if (template)
		__sync_fetch_and_add(&l->persist, -1);
	else if (inactive)
		__sync_fetch_and_add(&l->inact, -1);
	else
		__sync_fetch_and_add(&l->active, -1);
	dest_overload_check(id, l, 0);
}

/* conn_update moves c to its next state for a packet in direction dir and
 * restarts its timer. UDP has one state. A global function: verified once,
 * not once per call site. */
__attribute__((noinline)) int conn_update(struct conn *c, __u32 proto, __u32 dir, __u32 tcp_flags, __u64 now)
{
	if (!c)
		return 0;
	__u32 sf = c->sf;

	if (proto == IPPROTO_TCP) {
#pragma unroll
		for (int i = 0; i < 4; i++) {
			__u32 old = c->sf;
			__u32 nsf = next_sf(old, dir, tcp_flags);
			sf = nsf;
			if (nsf == old)
				break;
			if (__sync_val_compare_and_swap(&c->sf, old, nsf) == old) {
				__u32 was = old & CONN_F_INACTIVE, is = nsf & CONN_F_INACTIVE;
				if (was != is) {
					struct dest_live *l = bpf_map_lookup_elem(&dest_live, &c->dest_id);
					if (l) {
						if (is) {
							__sync_fetch_and_add(&l->active, -1);
							__sync_fetch_and_add(&l->inact, 1);
						} else {
							__sync_fetch_and_add(&l->inact, -1);
							__sync_fetch_and_add(&l->active, 1);
						}
					}
				}
				break;
			}
		}
		c->expires = now + timeout_ns(sf & CONN_STATE_MASK);
	} else {
		c->expires = now + timeout_ns(TIMEOUT_UDP);
	}
	return 0;
}

/* cview is what forwarding needs of a connection: its entry joined with
 * its destination (cview_of). */
struct cview {
	__u32 daddr[4];
	__u32 dest_id;
	__u32 svc_id;
	__u16 dport;
	__u16 tun_port;
	__u8 fwd;
	__u8 dfamily;
	__u8 tun_type;
	__u8 pad;
};

static __always_inline int cview_of(struct cview *v, const struct conn *c)
{
	__u32 did = c->dest_id;
	struct dest *d = bpf_map_lookup_elem(&dests, &did);
	if (!d)
		return -1;
	__builtin_memcpy(v->daddr, d->addr, 16);
	v->dest_id = did;
	v->svc_id = d->svc_id;
	v->dport = c->dport;
	v->tun_port = d->tun_port;
	v->fwd = c->fwd;
	v->dfamily = d->family;
	v->tun_type = d->tun_type;
	v->pad = 0;
	return 0;
}

/* nat_key_of is the NAT reply key of connection k, c; -1 if its
 * destination is gone. */
static __always_inline int nat_key_of(struct nat_key *nk, const struct conn_key *k, const struct conn *c)
{
	__u32 did = c->dest_id;
	struct dest *d = bpf_map_lookup_elem(&dests, &did);
	if (!d)
		return -1;
	__builtin_memcpy(nk->src, d->addr, 16);
	__builtin_memcpy(nk->dst, k->src, 16);
	nk->sport = c->dport;
	nk->dport = k->sport;
	nk->proto = k->proto;
	nk->family = k->family;
	nk->pad = 0;
	return 0;
}

static __always_inline void nat_val_of(struct nat_val *nv, const struct conn_key *k)
{
	__builtin_memcpy(nv->vaddr, k->dst, 16);
	nv->vport = k->dport;
	nv->pad = 0;
}

/* conn_key_of_nat rebuilds the connection's key from a NAT reply's. */
static __always_inline void conn_key_of_nat(struct conn_key *k, const struct nat_key *nk, const struct nat_val *nv)
{
	__builtin_memcpy(k->src, nk->dst, 16);
	__builtin_memcpy(k->dst, nv->vaddr, 16);
	k->sport = nk->dport;
	k->dport = nv->vport;
	k->proto = nk->proto;
	k->family = nk->family;
	k->kind = CONN_KIND_CONN;
	k->pad = 0;
}

/* conn_fwmark is the firewall mark of c's service (0 if none). */
static __always_inline __u32 conn_fwmark(const struct conn *c)
{
	__u32 did = c->dest_id;
	struct dest *d = bpf_map_lookup_elem(&dests, &did);
	return d ? d->fwmark : 0;
}

static __always_inline void mask_addr(__u32 *a, __u8 family, __u8 bits)
{
	int max = family == AF_INET ? 32 : 128;
	if (bits >= max)
		return;
#pragma unroll
	for (int w = 0; w < 4; w++) {
		int lo = w * 32;
		if (bits <= lo) {
			a[w] = 0;
		} else if (bits < lo + 32) {
			__u32 m = ~0U << (32 - (bits - lo));
			a[w] &= bpf_htonl(m);
		}
	}
}

/* template_key_of rebuilds the key of the template that controls
 * connection k, c (see CONN_F_CONTROLLED); pick builds it the same way. */
static __always_inline void template_key_of(struct conn_key *tk, const struct conn_key *k, const struct conn *c)
{
	__builtin_memset(tk, 0, sizeof(*tk));
	tk->kind = CONN_KIND_TEMPLATE;
	tk->family = k->family;
	__builtin_memcpy(tk->src, k->src, 16);
	mask_addr(tk->src, k->family, c->ctl_mask);
	__u32 fwmark = conn_fwmark(c);
	if (fwmark) {
		tk->dst[0] = bpf_htonl(fwmark);
		return;
	}
	tk->proto = k->proto;
	__builtin_memcpy(tk->dst, k->dst, 16);
	if (c->sf & CONN_F_TPORT)
		tk->dport = k->dport;
}

/* conn_remove deletes the entry at k whatever it controls; the caller
 * whose delete succeeded unbinds its destination and releases its
 * template. The entry is copied first: a deleted element of a
 * preallocated hash map can be reused by another CPU at once. Returns 1
 * if this call removed it. */
__attribute__((noinline)) int conn_remove(struct conn_key *k)
{
	if (!k)
		return 0;
	struct conn_key kk = *k;
	struct conn *c = bpf_map_lookup_elem(&conns, &kk);
	if (!c)
		return 0;
	struct conn cc = *c;

	if (bpf_map_delete_elem(&conns, &kk) != 0)
		return 0;
	count(CTR_CONN_EXPIRED);
	if (kk.kind == CONN_KIND_TEMPLATE) {
		unbind_dest(cc.dest_id, 1, 0);
		return 1;
	}
	unbind_dest(cc.dest_id, 0, cc.sf & CONN_F_INACTIVE);
	if (cc.sf & CONN_F_CONTROLLED) {
		/* The template may have been replaced (its destination left):
		 * release only the one that still points where we do. */
		struct conn_key tk;
		template_key_of(&tk, &kk, &cc);
		struct conn *t = bpf_map_lookup_elem(&conns, &tk);
		if (t && t->dest_id == cc.dest_id)
			__sync_fetch_and_add(&t->n_control, -1);
	}
	if (cc.fwd == FWD_MASQ) {
		struct nat_key nk;
		if (nat_key_of(&nk, &kk, &cc) == 0)
			bpf_map_delete_elem(&nat, &nk);
	}
	return 1;
}

/* conn_expire is the kernel's ip_vs_conn_expire at time now for the entry
 * at k, whose deadline has passed: a template that still controls
 * connections is re-armed every DEFERRED_EXPIRY_S from its deadline (as
 * package conn's table replays it); anything else is removed. Returns 1
 * if this call removed it. */
__attribute__((noinline)) int conn_expire(struct conn_key *k, __u64 now)
{
	if (!k)
		return 0;
	if (k->kind == CONN_KIND_TEMPLATE) {
		struct conn_key kk = *k;
		struct conn *c = bpf_map_lookup_elem(&conns, &kk);
		if (!c)
			return 0;
		if ((__s32)c->n_control > 0) {
			__u64 tick = DEFERRED_EXPIRY_S * NSEC_PER_SEC;
			__u64 e = c->expires;
			if (e <= now)
				e += ((now - e) / tick + 1) * tick;
			c->expires = e;
			__sync_fetch_and_or(&c->sf, CONN_F_DEFERRED);
			return 0;
		}
	}
	return conn_remove(k);
}

#endif
