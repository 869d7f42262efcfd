/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sched_hash.h: the schedulers that need more than the destination list:
 *
 *   mh     Maglev lookup table (built by Go with package sched) and the
 *          kernel's hsiphash (SipHash-1-3) of the source, as sched.HashMH;
 *   twos   two weighted random draws from Go's math/rand/v2 PCG, whose
 *          state lives in twos_rng, so an engine whose twos has the same
 *          PCG seed draws the same numbers (sched/twos.go);
 *   lblc,  per-address state in the lblc map, with the decisions of
 *   lblcr  sched/lblc.go and sched/lblcr.go. Expiry (the kernel's garbage
 *          collection) is run by the Go sweeper.
 *
 * Loops run as bpf_loop callbacks with their context in lb_scratch (see
 * sched.h for why not on the stack).
 */
#ifndef GOVS_SCHED_HASH_H
#define GOVS_SCHED_HASH_H

#include "maps.h"
#include "parse.h"

/* ---- mh ---------------------------------------------------------------- */

#define MH_TAB 4093
/* ip_vs_mh.c's fixed hash secret of the lookup: {2654435761, 2654435761}. */
#define MH_KEY 2654435761ULL

#define SIP_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIP_ROUND                                                                                                      \
	do {                                                                                                           \
		v0 += v1;                                                                                              \
		v1 = SIP_ROTL(v1, 13);                                                                                 \
		v1 ^= v0;                                                                                              \
		v0 = SIP_ROTL(v0, 32);                                                                                 \
		v2 += v3;                                                                                              \
		v3 = SIP_ROTL(v3, 16);                                                                                 \
		v3 ^= v2;                                                                                              \
		v0 += v3;                                                                                              \
		v3 = SIP_ROTL(v3, 21);                                                                                 \
		v3 ^= v0;                                                                                              \
		v2 += v1;                                                                                              \
		v1 = SIP_ROTL(v1, 17);                                                                                 \
		v1 ^= v2;                                                                                              \
		v2 = SIP_ROTL(v2, 32);                                                                                 \
	} while (0)

/* sip13 is the 64-bit kernel's hsiphash of the 4-byte value v with key
 * {k, k}: SipHash-1-3 truncated to 32 bits (sched.hashSip13). */
static __always_inline __u32 sip13(__u32 v, __u64 k)
{
	__u64 v0 = 0x736f6d6570736575ULL ^ k;
	__u64 v1 = 0x646f72616e646f6dULL ^ k;
	__u64 v2 = 0x6c7967656e657261ULL ^ k;
	__u64 v3 = 0x7465646279746573ULL ^ k;
	__u64 b = (4ULL << 56) | v;

	v3 ^= b;
	SIP_ROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIP_ROUND;
	SIP_ROUND;
	SIP_ROUND;
	return (__u32)(v0 ^ v1 ^ v2 ^ v3);
}

static __always_inline __u32 mh_slot(__u32 v)
{
	return sip13(v, MH_KEY) % MH_TAB;
}

struct mh_ctx {
	__u32 list;
	__u32 table;
	__u32 x; /* port + folded source address */
	__u32 h; /* the first slot */
	int result;
	int pad;
};

static long mh_step(__u64 off, void *data);

/* ---- twos -------------------------------------------------------------- */

struct twos_ctx {
	__u32 list;
	int n;
	int pass;
	int c1;
	int c2;
	int pad;
	__s64 total;
	__s64 r1;
	__s64 r2;
	__s64 w1;
	__s64 w2;
	__s64 oh1;
	__s64 oh2;
};

/* ---- lblc, lblcr ------------------------------------------------------- */

/* lblc_expiration and lblcr_expiration, the kernel's default: 24 hours. */
#define LBLC_EXPIRATION_NS (24ULL * 3600 * NSEC_PER_SEC_)
#define NSEC_PER_SEC_ 1000000000ULL

#define LB_MIN 0
#define LB_MAX 1

struct lb_ctx {
	__u32 list;
	int n;
	/* list scan: index of target in the list; some destination has
	 * fewer than half its weight in active connections. */
	__u32 target;
	int tidx;
	int under;
	/* set scans (lblcr): mode, the best member so far. */
	int mode;
	int best;
	__u32 bid;
	__s64 bw;
	__s64 boh;
	/* set edits */
	__u32 find;
	int fidx;
	int m;
	int pad;
	struct lblc_key key;
	struct lblc_val v;
};

struct lb_scratch_val {
	struct mh_ctx mh;
	struct twos_ctx twos;
	struct lb_ctx lb;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__uint(value_size, sizeof(struct lb_scratch_val));
} lb_scratch SEC(".maps");

static __always_inline struct lb_scratch_val *lb_scratch_get(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&lb_scratch, &zero);
}

static long mh_step(__u64 off, void *data)
{
	struct mh_ctx *c = *(struct mh_ctx **)data;
	__u32 o = ((__u32)off + c->h) % MH_TAB;
	int i = table_at(c->table, mh_slot(o + c->x));
	if (i < 0)
		return 1;
	if (table_usable(c->list, i)) {
		c->result = i;
		return 1;
	}
	return 0;
}

/* sched_mh is sched.(*MH).Schedule over the table Go built. */
static __always_inline int sched_mh(const struct svc *s, const struct pkt *p)
{
	__u32 x = fold_addr(p->src, p->family);
	if (s->flags & SVC_F_SCHED2)
		x += bpf_ntohs(p->sport);
	__u32 h = mh_slot(x);
	int i = table_at(s->table, h);
	if (i < 0)
		return -1;
	if (table_usable(s->list, i))
		return i;
	if (!(s->flags & SVC_F_SCHED1))
		return -1;
	struct lb_scratch_val *sc = lb_scratch_get();
	if (!sc)
		return -1;
	struct mh_ctx *c = &sc->mh;
	c->list = s->list;
	c->table = s->table;
	c->x = x;
	c->h = h;
	c->result = -1;
	bpf_loop(MH_TAB, mh_step, &c, 0);
	return c->result;
}

/* mul64 is bits.Mul64: the 128-bit product of x and y. */
static __always_inline void mul64(__u64 x, __u64 y, __u64 *hi, __u64 *lo)
{
	__u64 x0 = x & 0xffffffff, x1 = x >> 32;
	__u64 y0 = y & 0xffffffff, y1 = y >> 32;
	__u64 w0 = x0 * y0;
	__u64 t = x1 * y0 + (w0 >> 32);
	__u64 w1 = t & 0xffffffff;
	__u64 w2 = t >> 32;
	w1 += x0 * y1;
	*hi = x1 * y1 + w2 + (w1 >> 32);
	*lo = x * y;
}

/* pcg_uint64 is (*rand.PCG).Uint64: a 128-bit LCG step and the DXSM
 * output function. */
static __always_inline __u64 pcg_uint64(struct rng_state *st)
{
	__u64 hi, lo;
	mul64(st->lo, 4865540595714422341ULL, &hi, &lo);
	hi += st->hi * 4865540595714422341ULL + st->lo * 2549297995355413924ULL;
	__u64 nlo = lo + 1442695040888963407ULL;
	hi += 6364136223846793005ULL + (nlo < lo);
	st->lo = nlo;
	st->hi = hi;
	hi ^= hi >> 32;
	hi *= 0xda942042e4dd58b5ULL;
	hi ^= hi >> 48;
	hi *= nlo | 1;
	return hi;
}

/* pcg_uint64n is (*rand.Rand).uint64n on a 64-bit machine: [0, n). The
 * rejection loop runs with probability below n/2^64; it is bounded. */
static __always_inline __u64 pcg_uint64n(struct rng_state *st, __u64 n)
{
	if ((n & (n - 1)) == 0)
		return pcg_uint64(st) & (n - 1);
	__u64 hi, lo;
	mul64(pcg_uint64(st), n, &hi, &lo);
	if (lo < n) {
		__u64 thresh = (0 - n) % n;
		if (lo < thresh)
			mul64(pcg_uint64(st), n, &hi, &lo);
		if (lo < thresh)
			mul64(pcg_uint64(st), n, &hi, &lo);
		if (lo < thresh)
			mul64(pcg_uint64(st), n, &hi, &lo);
	}
	return hi;
}

static long twos_step(__u64 k, void *data)
{
	struct twos_ctx *c = *(struct twos_ctx **)data;
	int i = (int)k;
	if (i >= c->n)
		return 1;
	struct dview v;
	if (!dview_get(c->list, i, &v) || !usable(&v))
		return 0;
	__s64 w = v.weight;
	if (c->pass == 0) {
		c->total += w;
		return 0;
	}
	c->r1 -= w;
	c->r2 -= w;
	__s64 oh = ((__s64)v.active << 8) + v.inact;
	if (c->c1 < 0 && c->r1 <= 0) {
		c->c1 = i;
		c->w1 = w;
		c->oh1 = oh;
	}
	if (c->c2 < 0 && c->r2 <= 0) {
		c->c2 = i;
		c->w2 = w;
		c->oh2 = oh;
	}
	return c->c1 >= 0 && c->c2 >= 0;
}

/* sched_twos is sched's twos: two draws in [0, total weight], the less
 * loaded per weight wins (ties: the first). */
static __always_inline int sched_twos(const struct svc *s)
{
	__u32 sid = s->id;
	struct rng_state *rs = bpf_map_lookup_elem(&twos_rng, &sid);
	struct lb_scratch_val *sc = lb_scratch_get();
	if (!rs || !sc)
		return -1;
	struct twos_ctx *c = &sc->twos;
	c->list = s->list;
	c->n = s->ndests > GOVS_MAX_DESTS ? GOVS_MAX_DESTS : s->ndests;
	c->pass = 0;
	c->total = 0;
	c->c1 = c->c2 = -1;
	c->w1 = c->w2 = c->oh1 = c->oh2 = 0;
	bpf_loop(GOVS_MAX_DESTS, twos_step, &c, 0);
	if (c->total <= 0)
		return -1;
	/* Racing CPUs may draw the same numbers; that only costs randomness. */
	struct rng_state st = *rs;
	c->r1 = (__s64)pcg_uint64n(&st, (__u64)c->total + 1);
	c->r2 = (__s64)pcg_uint64n(&st, (__u64)c->total + 1);
	*rs = st;
	c->pass = 1;
	bpf_loop(GOVS_MAX_DESTS, twos_step, &c, 0);
	if (c->c1 < 0)
		return -1;
	if (c->c2 >= 0 && c->w2 * c->oh1 > c->w1 * c->oh2)
		return c->c2;
	return c->c1;
}

/* dview_id loads destination did (in a list or not) and its flags. */
static __always_inline int dview_id(__u32 did, struct dview *v, __u32 *flags)
{
	struct dest *d = bpf_map_lookup_elem(&dests, &did);
	struct dest_live *l = bpf_map_lookup_elem(&dest_live, &did);
	if (!d || !l)
		return 0;
	v->id = did;
	v->weight = d->weight;
	v->active = l->active;
	v->inact = l->inact;
	v->overloaded = l->overloaded;
	*flags = d->flags;
	return 1;
}

/* list_step: the index of c->target in the list, and whether some
 * destination has fewer than half its weight in active connections
 * (lblc's is_overloaded). */
static long list_step(__u64 k, void *data)
{
	struct lb_ctx *c = *(struct lb_ctx **)data;
	int i = (int)k;
	if (i >= c->n)
		return 1;
	struct dview v;
	if (!dview_get(c->list, i, &v))
		return 0;
	if (v.id == c->target)
		c->tidx = i;
	if ((__s64)v.active * 2 < (__s64)v.weight)
		c->under = 1;
	return 0;
}

/* set_step: lblcr's ip_vs_dest_set_min (LB_MIN) or _max (LB_MAX) over
 * c->v's members. */
static long set_step(__u64 k, void *data)
{
	struct lb_ctx *c = *(struct lb_ctx **)data;
	if (k >= c->v.n || k >= GOVS_LBLCR_SET)
		return 1;
	__u32 id = c->v.ids[k & (GOVS_LBLCR_SET - 1)];
	struct dview v;
	__u32 fl;
	if (!dview_id(id, &v, &fl))
		return 0;
	int avail = fl & DEST_F_AVAILABLE;
	__s64 w = v.weight;
	__s64 oh = ((__s64)v.active << 8) + v.inact;
	int take;
	if (c->mode == LB_MIN) {
		if (v.overloaded)
			return 0;
		if (c->best < 0)
			take = w > 0 && avail;
		else
			take = c->boh * w > oh * c->bw && avail;
	} else {
		if (c->best < 0)
			take = w > 0;
		else
			take = c->boh * w < oh * c->bw && w > 0;
	}
	if (take) {
		c->best = (int)k;
		c->bid = id;
		c->bw = w;
		c->boh = oh;
	}
	return 0;
}

static long find_step(__u64 k, void *data)
{
	struct lb_ctx *c = *(struct lb_ctx **)data;
	if (k >= c->v.n || k >= GOVS_LBLCR_SET)
		return 1;
	if (c->v.ids[k & (GOVS_LBLCR_SET - 1)] == c->find) {
		c->fidx = (int)k;
		return 1;
	}
	return 0;
}

/* erase_step shifts the members after c->fidx one place to the front. */
static long erase_step(__u64 k, void *data)
{
	struct lb_ctx *c = *(struct lb_ctx **)data;
	__u32 i = (__u32)c->fidx + (__u32)k;
	if (i + 1 >= c->v.n || i + 1 >= GOVS_LBLCR_SET)
		return 1;
	c->v.ids[i & (GOVS_LBLCR_SET - 1)] = c->v.ids[(i + 1) & (GOVS_LBLCR_SET - 1)];
	return 0;
}

/* insert_step shifts the first c->m members one place back. */
static long insert_step(__u64 k, void *data)
{
	struct lb_ctx *c = *(struct lb_ctx **)data;
	int i = c->m - 1 - (int)k;
	if (i < 0)
		return 1;
	c->v.ids[(i + 1) & (GOVS_LBLCR_SET - 1)] = c->v.ids[i & (GOVS_LBLCR_SET - 1)];
	return 0;
}

/* list_id returns the dest id at index i of the service's list. */
static __always_inline int list_id(__u32 list, int i, __u32 *id)
{
	if (i < 0 || i >= GOVS_MAX_DESTS)
		return -1;
	__u32 slot = list + i;
	__u32 *pid = bpf_map_lookup_elem(&svc_dests, &slot);
	if (!pid)
		return -1;
	*id = *pid;
	return 0;
}

/* lb_usable_entry: the cached destination c->target is available, has a
 * weight and is not overloaded in lblc's sense; its list index, or -1. */
static __always_inline int lb_check(struct lb_ctx *c, __u32 did)
{
	struct dview v;
	__u32 fl;
	if (!dview_id(did, &v, &fl))
		return -1;
	c->target = did;
	c->tidx = -1;
	c->under = 0;
	bpf_loop(GOVS_MAX_DESTS, list_step, &c, 0);
	if (!(fl & DEST_F_AVAILABLE) || v.weight <= 0 || c->tidx < 0)
		return -1;
	if (v.active > v.weight && c->under)
		return -1;
	return c->tidx;
}

/* sched_lblc is lblc's and lblcr's Schedule. now is bpf_ktime_get_ns(). */
__attribute__((noinline)) int sched_lblc(struct svc *s, struct pkt *p, __u64 now)
{
	if (!s || !p)
		return -1;
	struct lb_scratch_val *sc = lb_scratch_get();
	if (!sc)
		return -1;
	struct lb_ctx *c = &sc->lb;
	int lblcr = s->sched == SCHED_LBLCR;
	__builtin_memset(&c->key, 0, sizeof(c->key));
	__builtin_memcpy(c->key.addr, p->dst, 16);
	c->key.svc_id = s->id;
	c->key.family = p->family;
	c->list = s->list;
	c->n = s->ndests > GOVS_MAX_DESTS ? GOVS_MAX_DESTS : s->ndests;

	struct lblc_val *e = bpf_map_lookup_elem(&lblc, &c->key);
	int i;
	__u32 id;
	if (!lblcr) {
		if (e) {
			e->lastuse = now;
			i = lb_check(c, e->ids[0]);
			if (i >= 0)
				return i;
		}
		i = sched_scan(s, SCHED_WLC);
		if (i < 0 || list_id(s->list, i, &id))
			return -1;
		if (e) {
			if (e->ids[0] != id) {
				e->ids[0] = id;
				e->lastuse = now;
			}
			return i;
		}
		__builtin_memset(&c->v, 0, sizeof(c->v));
		c->v.lastuse = c->v.lastmod = now;
		c->v.n = 1;
		c->v.ids[0] = id;
		bpf_map_update_elem(&lblc, &c->key, &c->v, BPF_ANY);
		return i;
	}

	if (!e) {
		i = sched_scan(s, SCHED_WLC);
		if (i < 0 || list_id(s->list, i, &id))
			return -1;
		__builtin_memset(&c->v, 0, sizeof(c->v));
		c->v.lastuse = c->v.lastmod = now;
		c->v.n = 1;
		c->v.ids[0] = id;
		bpf_map_update_elem(&lblc, &c->key, &c->v, BPF_ANY);
		return i;
	}
	/* Work on a copy of the set; written back whole (racing CPUs: the
	 * last writer wins). */
	e->lastuse = now;
	c->v = *e;
	if (c->v.n > GOVS_LBLCR_SET)
		c->v.n = GOVS_LBLCR_SET;
	int changed = 0;
	c->mode = LB_MIN;
	c->best = -1;
	bpf_loop(GOVS_LBLCR_SET, set_step, &c, 0);
	int have = c->best >= 0;
	__u32 min_id = c->bid;
	if (c->v.n > 1 && now > c->v.lastmod + LBLC_EXPIRATION_NS) {
		c->mode = LB_MAX;
		c->best = -1;
		bpf_loop(GOVS_LBLCR_SET, set_step, &c, 0);
		if (c->best >= 0) {
			c->fidx = c->best;
			bpf_loop(GOVS_LBLCR_SET, erase_step, &c, 0);
			c->v.n--;
			c->v.lastmod = now;
			changed = 1;
		}
	}
	if (have) {
		i = lb_check(c, min_id);
		if (i >= 0) {
			if (changed)
				bpf_map_update_elem(&lblc, &c->key, &c->v, BPF_ANY);
			return i;
		}
	}
	i = sched_scan(s, SCHED_WLC);
	if (i < 0 || list_id(s->list, i, &id)) {
		if (changed)
			bpf_map_update_elem(&lblc, &c->key, &c->v, BPF_ANY);
		return -1;
	}
	c->find = id;
	c->fidx = -1;
	bpf_loop(GOVS_LBLCR_SET, find_step, &c, 0);
	if (c->fidx < 0) {
		/* A full set drops its oldest member. */
		c->m = c->v.n < GOVS_LBLCR_SET ? (int)c->v.n : GOVS_LBLCR_SET - 1;
		bpf_loop(GOVS_LBLCR_SET, insert_step, &c, 0);
		c->v.ids[0] = id;
		c->v.n = c->m + 1;
		c->v.lastmod = now;
		changed = 1;
	}
	if (changed)
		bpf_map_update_elem(&lblc, &c->key, &c->v, BPF_ANY);
	return i;
}

#endif
