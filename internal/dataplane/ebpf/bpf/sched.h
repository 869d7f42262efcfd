/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sched.h: the schedulers that run in BPF. Each is the kernel's
 * ip_vs_<name>_schedule walking the service's list (svc_dests, newest
 * first) and reading the live counters (dest_live), with the same
 * comparisons (cross-multiplied, ties keep the earlier destination). The
 * position of rr and wrr is svc_state, which the Go loader adjusts when the
 * list changes exactly where the kernel's add_dest/del_dest/upd_dest hooks
 * do. See doc.go for the division of work with Go.
 */
#ifndef GOVS_SCHED_H
#define GOVS_SCHED_H

#include "maps.h"
#include "parse.h"

struct dview {
	__u32 id;
	__s32 weight;
	__s32 active;
	__s32 inact;
	__u32 overloaded;
};

/* dview_get loads the i-th destination of the list at slot list; 0 if
 * none. */
static __always_inline int dview_get(__u32 list, __u32 i, struct dview *v)
{
	if (i >= GOVS_MAX_DESTS)
		return 0;
	__u32 slot = list + i;
	__u32 *id = bpf_map_lookup_elem(&svc_dests, &slot);
	if (!id)
		return 0;
	__u32 did = *id;
	struct dest *d = bpf_map_lookup_elem(&dests, &did);
	struct dest_live *l = bpf_map_lookup_elem(&dest_live, &did);
	if (!d || !l)
		return 0;
	v->id = did;
	v->weight = d->weight;
	v->active = l->active;
	v->inact = l->inact;
	v->overloaded = l->overloaded;
	return 1;
}

static __always_inline int usable(const struct dview *v)
{
	return v->weight > 0 && !v->overloaded;
}

/* The loops below run as bpf_loop callbacks: the verifier checks one
 * iteration instead of unrolling GOVS_MAX_DESTS of them (an open-coded
 * loop with the schedulers' branches exceeded its jump-history limit). */
struct rr_ctx {
	__u32 list;
	int n;
	int last;
	int result;
};

/* The loop contexts live in a per-CPU map, not on the stack: the verifier
 * tracks stack values exactly and would simulate the callback once per
 * distinct position (thousands of times for wrr, then fail with "The
 * sequence of 8193 jumps is too complex"); values it reads from a map are
 * unknown, so one simulation per path suffices. bpf_loop insists on a
 * stack pointer as its context, so the stack holds a pointer to the map
 * value. */
struct wrr_ctx;
struct scan_ctx;
struct sched_scratch_val {
	struct rr_ctx rr;
	__s32 wrr[12];
	__s64 scan[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__uint(value_size, sizeof(struct sched_scratch_val));
} sched_scratch SEC(".maps");

static __always_inline void *sched_ctx(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&sched_scratch, &zero);
}

static long rr_step(__u64 k, void *data)
{
	struct rr_ctx *c = *(struct rr_ctx **)data;
	if ((int)k >= c->n)
		return 1;
	int i = c->last + 1 + (int)k;
	if (i >= c->n)
		i -= c->n;
	struct dview v;
	if (dview_get(c->list, i, &v) && usable(&v)) {
		c->result = i;
		return 1;
	}
	return 0;
}

static __always_inline int sched_rr(const struct svc *s)
{
	__u32 sid = s->id;
	struct svc_state *st = bpf_map_lookup_elem(&svc_state, &sid);
	if (!st)
		return -1;
	struct sched_scratch_val *sc = sched_ctx();
	if (!sc)
		return -1;
	struct rr_ctx *c = &sc->rr;
	c->list = s->list;
	c->n = s->ndests;
	c->last = st->last;
	c->result = -1;
	if (c->n > GOVS_MAX_DESTS)
		c->n = GOVS_MAX_DESTS;
	if (c->last < -1 || c->last >= c->n)
		c->last = -1;
	struct rr_ctx *cp = c;
	bpf_loop(GOVS_MAX_DESTS, rr_step, &cp, 0);
	int r = c->result;
	if (r >= 0)
		st->last = r;
	return r;
}

/* wrr walks the list one destination per bpf_loop step, exactly as
 * ip_vs_wrr_schedule does, including its stop rules. */
struct wrr_ctx {
	__u32 list;
	int n;
	int i;
	int cw;
	int mw;
	int di;
	int last;
	int stop;
	int last_pass;
	int restarted;
	int result;
	int done;
};

static long wrr_step(__u64 index, void *data)
{
	struct wrr_ctx *c = *(struct wrr_ctx **)data;
	int i = c->i + 1;

	if (i < c->n && i >= 0) {
		c->i = i;
		struct dview v;
		if (dview_get(c->list, i, &v) && !v.overloaded && v.weight >= c->cw) {
			c->result = i;
			c->done = 1;
			return 1;
		}
		if (i == c->stop) {
			c->done = 1;
			return 1;
		}
		return 0;
	}
	/* End of the list: the next pass starts at the head. */
	c->i = -1;
	c->cw -= c->di;
	if (c->cw <= 0) {
		c->cw = c->mw;
		if (c->last_pass || c->last == -1) {
			c->done = 1;
			return 1;
		}
		c->restarted = 1;
	}
	c->last_pass = c->cw <= c->di;
	if (c->last_pass && c->restarted && c->last != -1)
		c->stop = c->last;
	return 0;
}

/* Walks longer than this (huge weights with a small gcd) fail as "no
 * destination": the kernel would walk on, we refuse to spend the time. */
#define WRR_MAX_STEPS (1 << 20)

static __always_inline int sched_wrr(const struct svc *s)
{
	__u32 sid = s->id;
	struct svc_state *st = bpf_map_lookup_elem(&svc_state, &sid);
	if (!st)
		return -1;
	int n = s->ndests;
	if (n > GOVS_MAX_DESTS)
		n = GOVS_MAX_DESTS;
	struct sched_scratch_val *sc = sched_ctx();
	if (!sc)
		return -1;
	struct wrr_ctx *c = (struct wrr_ctx *)sc->wrr;
	c->list = s->list;
	c->n = n;
	c->i = st->last;
	c->cw = st->cw;
	c->mw = s->wrr_mw;
	c->di = s->wrr_gcd > 0 ? s->wrr_gcd : 1;
	c->last = st->last;
	c->stop = -2;
	c->last_pass = 0;
	c->restarted = 0;
	c->result = -1;
	c->done = 0;
	if (c->i < -1 || c->i >= n)
		c->i = c->last = -1;
	if (c->mw == 0)
		return -1;
	struct wrr_ctx *cp = c;
	bpf_loop(WRR_MAX_STEPS, wrr_step, &cp, 0);
	st->last = c->i;
	st->cw = c->cw;
	return c->done ? c->result : -1;
}

/* The least-connection family: lc, wlc, sed, nq; and fo, ovf. */
struct scan_ctx {
	__u32 list;
	int n;
	int sched;
	int best;
	__s64 bw;
	__s64 boh;
};

static long scan_step(__u64 k, void *data)
{
	struct scan_ctx *c = *(struct scan_ctx **)data;
	int i = (int)k;
	if (i >= c->n)
		return 1;
	struct dview v;
	if (!dview_get(c->list, i, &v))
		return 0;
	__s64 w = v.weight;
	__s64 oh = 0;
	int take = 0;
	switch (c->sched) {
	case SCHED_LC:
		if (!usable(&v))
			return 0;
		oh = ((__s64)v.active << 8) + v.inact;
		take = c->best < 0 || oh < c->boh;
		break;
	case SCHED_WLC:
	case SCHED_SED:
		/* The kernel takes the first usable destination, then compares
		 * every later non-overloaded one (weight 0 never wins). */
		if (v.overloaded || (c->best < 0 && w <= 0))
			return 0;
		oh = c->sched == SCHED_WLC ? ((__s64)v.active << 8) + v.inact : (__s64)v.active + 1;
		take = c->best < 0 || c->boh * w > oh * c->bw;
		break;
	case SCHED_NQ:
		if (!usable(&v))
			return 0;
		oh = (__s64)v.active + 1;
		if (v.active == 0) {
			/* An idle server is taken at once. */
			c->best = i;
			return 1;
		}
		take = c->best < 0 || c->boh * w > oh * c->bw;
		break;
	case SCHED_FO:
		if (!usable(&v))
			return 0;
		take = c->best < 0 || w > c->bw;
		break;
	case SCHED_OVF:
		if (v.overloaded || v.active > v.weight || w == 0)
			return 0;
		take = c->best < 0 || w > c->bw;
		break;
	default:
		return 1;
	}
	if (take) {
		c->best = i;
		c->bw = w;
		c->boh = oh;
	}
	return 0;
}

static __always_inline int sched_scan(const struct svc *s, int code)
{
	struct sched_scratch_val *sc = sched_ctx();
	if (!sc)
		return -1;
	struct scan_ctx *c = (struct scan_ctx *)sc->scan;
	c->list = s->list;
	c->n = s->ndests;
	c->sched = code;
	c->best = -1;
	c->bw = 0;
	c->boh = 0;
	if (c->n > GOVS_MAX_DESTS)
		c->n = GOVS_MAX_DESTS;
	struct scan_ctx *cp = c;
	bpf_loop(GOVS_MAX_DESTS, scan_step, &cp, 0);
	return c->best;
}

/* sh and dh: the 256-bucket tables are built by Go (package sched's
 * (*SH).Table and (*DH).Table, rebuilt on every list change) and stored in
 * sched_table as list indexes; the hashes are the kernel's (sched.HashSH,
 * sched.HashDH): bucket = (x * 2654435761) mod 256 with x the folded
 * address (plus the source port for sh-port). */
#define HASH_GOLDEN 2654435761U
#define SH_TAB 256
#define TABLE_NONE 0xffff

static __always_inline __u32 fold_addr(const __u32 *a, __u8 family)
{
	if (family == AF_INET)
		return bpf_ntohl(a[0]);
	return bpf_ntohl(a[0]) ^ bpf_ntohl(a[1]) ^ bpf_ntohl(a[2]) ^ bpf_ntohl(a[3]);
}

static __always_inline int table_at(__u32 table, __u32 bucket)
{
	__u32 slot = table * GOVS_SCHED_TABLE + (bucket & (GOVS_SCHED_TABLE - 1));
	__u16 *v = bpf_map_lookup_elem(&sched_table, &slot);
	if (!v || *v == TABLE_NONE)
		return -1;
	return *v;
}

static __always_inline int table_usable(__u32 list, int i)
{
	struct dview v;
	return i >= 0 && dview_get(list, i, &v) && usable(&v);
}

struct sh_ctx {
	__u32 list;
	__u32 table;
	__u32 base; /* 2h: the fallback probes bucket (off + 2h) mod 256 */
	int result;
};

static long sh_step(__u64 off, void *data)
{
	struct sh_ctx *c = *(struct sh_ctx **)data;
	int i = table_at(c->table, ((__u32)off + c->base) & (SH_TAB - 1));
	if (i < 0)
		return 1;
	if (table_usable(c->list, i)) {
		c->result = i;
		return 1;
	}
	return 0;
}

struct sh_scratch_val {
	struct sh_ctx c;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__uint(value_size, sizeof(struct sh_scratch_val));
} sh_scratch SEC(".maps");

static __always_inline int sched_sh(const struct svc *s, const struct pkt *p)
{
	__u32 x = fold_addr(p->src, p->family);
	if (s->flags & SVC_F_SCHED2)
		x += bpf_ntohs(p->sport);
	__u32 h = (x * HASH_GOLDEN) & (SH_TAB - 1);
	int i = table_at(s->table, h);
	if (i < 0)
		return -1;
	if (table_usable(s->list, i))
		return i;
	if (!(s->flags & SVC_F_SCHED1))
		return -1;
	__u32 zero = 0;
	struct sh_ctx *c = bpf_map_lookup_elem(&sh_scratch, &zero);
	if (!c)
		return -1;
	c->list = s->list;
	c->table = s->table;
	c->base = 2 * h;
	c->result = -1;
	bpf_loop(SH_TAB, sh_step, &c, 0);
	return c->result;
}

static __always_inline int sched_dh(const struct svc *s, const struct pkt *p)
{
	__u32 h = (fold_addr(p->dst, p->family) * HASH_GOLDEN) & (SH_TAB - 1);
	int i = table_at(s->table, h);
	return table_usable(s->list, i) ? i : -1;
}

#include "sched_hash.h"

/* schedule returns the index in the service's list of the destination for
 * a new connection, or -1. */
__attribute__((noinline)) int schedule(struct svc *s, struct pkt *p, __u64 now)
{
	if (!s || !p)
		return -1;
	switch (s->sched) {
	case SCHED_TABLE_SH:
		return sched_sh(s, p);
	case SCHED_TABLE_DH:
		return sched_dh(s, p);
	case SCHED_TABLE_MH:
		return sched_mh(s, p);
	case SCHED_LBLC:
	case SCHED_LBLCR:
		return sched_lblc(s, p, now);
	case SCHED_TWOS:
		return sched_twos(s);
	case SCHED_RR:
		return sched_rr(s);
	case SCHED_WRR:
		return sched_wrr(s);
	default:
		return sched_scan(s, s->sched);
	}
}

_Static_assert(sizeof(struct wrr_ctx) <= 12 * 4, "wrr_ctx fits sched_scratch");
_Static_assert(sizeof(struct scan_ctx) <= 4 * 8, "scan_ctx fits sched_scratch");

#endif
