/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sync.h: govs_sync, the sync backup's install and update of one synced
 * connection or template (package connsync's Table), run by Go through
 * BPF_PROG_TEST_RUN as govs_expire is. Included by govs.c.
 *
 * Everything the data path would do for a connection it created happens
 * here, with the data path's atomics, so Go never writes a counter:
 *
 *   - the conns entry, created with BPF_NOEXIST: whoever creates it
 *     (this program or the data path, racing) binds the destination, so
 *     ActiveConn/InActConn/PersistConn move exactly once;
 *   - an existing entry (the data path's, or an earlier sync's) is
 *     updated instead: state and INACTIVE in one compare-and-swap of sf,
 *     the ActiveConn<->InActConn move done by the CPU whose swap
 *     succeeded (as conn_update); an expired one is first expired as the
 *     data path would (conn_expire);
 *   - the NAT reply entry of a Masq connection, written on every install
 *     and update (BPF_ANY), so a reply entry lost or never written comes
 *     back with the next sync message;
 *   - removal (the backup's replacement of a connection the master moved)
 *     is the kernel's ip_vs_conn_expire_now: the entry expires at once,
 *     except a template that still controls connections, which is
 *     re-armed for DEFERRED_EXPIRY_S as at its deadline (conn_expire);
 *     so a template is never removed under its connections, whose
 *     n_control would otherwise land on a later template of the key;
 *   - the template link: a connection of a persistent service is put
 *     under its template (CONN_F_CONTROLLED, n_control + 1) when the
 *     template exists and points to the same destination, as
 *     classify() does. The master sends a connection before its
 *     template, so a new connection often arrives first: it is linked by
 *     a later update (the master resends established connections every
 *     sync_period packets and every sweep).
 *
 * Residual race: linking an existing connection sets CONTROLLED after
 * the entry was created; the data path removing that very connection in
 * the same instant (only when its deadline passed, which the update has
 * just pushed back, or a SYN reusing a TIME_WAIT connection) may miss
 * the flag and leave the template one n_control too many, so the
 * template outlives its connections. A backup sees no client traffic,
 * and Go serialises govs_sync with its sweeper's govs_expire, so this
 * needs a client packet on a director that is not master.
 */
#ifndef GOVS_SYNC_H
#define GOVS_SYNC_H

#define SYNC_OP_INSTALL 0 /* create, or update what is there */
#define SYNC_OP_UPDATE 1  /* update; -ENOENT if there is nothing */
#define SYNC_OP_REMOVE 2  /* expire now (ip_vs_conn_expire_now) */

/* sync_args.flags */
#define SYNC_F_PERSISTENT 0x1 /* a connection of a persistent service */

/* sync_args.done: what the program did. */
#define SYNC_D_INSTALLED 0x1
#define SYNC_D_UPDATED 0x2
#define SYNC_D_LINKED 0x4 /* the connection was put under its template */
#define SYNC_D_NAT 0x8	  /* the NAT reply entry was written */
#define SYNC_D_REMOVED 0x10
#define SYNC_D_DEFERRED 0x20 /* remove: a template that controls connections */

#define GOVS_ENOENT 2

/* Arguments of govs_sync. c is the entry as Go renders the sync message:
 * dport, fwd, dest_id (the realserver's address and the service come
 * from its dests entry), sf (state, INACTIVE, NOOUTPUT, TPORT) and
 * ctl_mask (the service's netmask);
 * expires, the packet counts and n_control are the program's. */
struct sync_args {
	struct conn_key key;
	struct conn c;
	__u64 timeout; /* ns from now */
	__u32 op;
	__u32 flags;
	__s32 err;  /* out: 0, -ENOENT (update of nothing), or a map error */
	__u32 done; /* out: SYNC_D_* */
};

/* sync_link puts connection k, c under its template if the template is
 * there, points to the same destination and is alive (or deferred). The
 * caller set ctl_mask and TPORT on c (the mark is its destination's). */
static __always_inline int sync_link(const struct conn_key *k, struct conn *c, __u64 now)
{
	struct conn_key tk;
	template_key_of(&tk, k, c);
	struct conn *t = bpf_map_lookup_elem(&conns, &tk);
	if (!t || t->dest_id != c->dest_id || (t->expires <= now && (__s32)t->n_control <= 0))
		return 0;
	__u32 old = __sync_fetch_and_or(&c->sf, CONN_F_CONTROLLED);
	if (old & CONN_F_CONTROLLED)
		return 0;
	__sync_fetch_and_add(&t->n_control, 1);
	return 1;
}

/* sync_set_state gives an existing connection the synced state and
 * INACTIVE flag (the kernel's IP_VS_CONN_F_BACKUP_UPD_MASK); the counts
 * move with the swap that changed INACTIVE. */
static __always_inline void sync_set_state(struct conn *c, __u32 want)
{
	want &= CONN_STATE_MASK | CONN_F_INACTIVE;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u32 old = c->sf;
		__u32 nsf = (old & ~(CONN_STATE_MASK | CONN_F_INACTIVE)) | want;
		if (nsf == old)
			return;
		if (__sync_val_compare_and_swap(&c->sf, old, nsf) != old)
			continue;
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
		return;
	}
}

SEC("syscall")
int govs_sync(struct sync_args *a)
{
	struct conn_key k = a->key;
	struct conn nc = a->c;
	__u64 now = bpf_ktime_get_ns();
	int tmpl = k.kind == CONN_KIND_TEMPLATE;
	int persistent = !tmpl && (a->flags & SYNC_F_PERSISTENT);
	__u32 done = 0;

	a->err = 0;
	a->done = 0;
	struct conn *c = bpf_map_lookup_elem(&conns, &k);
	if (a->op == SYNC_OP_REMOVE) {
		if (!c)
			return 0;
		c->expires = now;
		if (conn_expire(&k, now))
			a->done = SYNC_D_REMOVED;
		else if (bpf_map_lookup_elem(&conns, &k))
			a->done = SYNC_D_DEFERRED;
		return 0;
	}
	if (c && c->expires <= now) {
		/* Gone for the data path: expire it as the data path would (a
		 * template still controlling connections is re-armed). */
		conn_expire(&k, now);
		c = bpf_map_lookup_elem(&conns, &k);
	}
	if (!c) {
		if (a->op == SYNC_OP_UPDATE) {
			a->err = -GOVS_ENOENT;
			return 0;
		}
		nc.expires = now + a->timeout;
		nc.inpkts = 0;
		nc.outpkts = 0;
		nc.n_control = 0;
		nc.sf &= CONN_STATE_MASK | CONN_F_INACTIVE | CONN_F_NOOUTPUT | CONN_F_TPORT;
		if (tmpl)
			nc.sf = 0;
		if (persistent)
			nc.sf |= CONN_F_CONTROLLED;
		long r = bpf_map_update_elem(&conns, &k, &nc, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&conns, &k);
		if (!c) {
			a->err = r ? (__s32)r : -GOVS_ENOENT; /* the table is full */
			return 0;
		}
		if (r == 0) {
			if (persistent) {
				/* As classify(): the flag is in the entry from the
				 * start, so a remover releases what we take. */
				struct conn_key tk;
				template_key_of(&tk, &k, &nc);
				struct conn *t = bpf_map_lookup_elem(&conns, &tk);
				if (t && t->dest_id == nc.dest_id) {
					__sync_fetch_and_add(&t->n_control, 1);
					done |= SYNC_D_LINKED;
				} else {
					__sync_fetch_and_and(&c->sf, ~CONN_F_CONTROLLED);
				}
			}
			bind_dest(nc.dest_id, tmpl, nc.sf & CONN_F_INACTIVE);
			done |= SYNC_D_INSTALLED;
		}
		/* r != 0: the data path created it meanwhile; update that. */
	}
	if (!(done & SYNC_D_INSTALLED)) {
		/* First the deadline, so that nobody expires what we update. */
		c->expires = now + a->timeout;
		if (!tmpl) {
			sync_set_state(c, nc.sf);
			if (persistent && !(c->sf & CONN_F_CONTROLLED)) {
				c->ctl_mask = nc.ctl_mask;
				if (nc.sf & CONN_F_TPORT)
					__sync_fetch_and_or(&c->sf, CONN_F_TPORT);
				else
					__sync_fetch_and_and(&c->sf, ~CONN_F_TPORT);
				if (sync_link(&k, c, now))
					done |= SYNC_D_LINKED;
			}
		}
		done |= SYNC_D_UPDATED;
	}
	if (!tmpl && c->fwd == FWD_MASQ) {
		struct nat_key nk;
		struct nat_val nv;
		nat_val_of(&nv, &k);
		if (nat_key_of(&nk, &k, c) == 0 && bpf_map_update_elem(&nat, &nk, &nv, BPF_ANY) == 0)
			done |= SYNC_D_NAT;
	}
	a->done = done;
	return 0;
}

#endif
