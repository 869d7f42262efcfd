/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * maps.h: every map of the data plane. The Go loader pins them all under
 * /sys/fs/bpf/govs/<name> and adopts them on restart, so a map's name,
 * type, key and value are an on-disk format: change them only with a new
 * name.
 */
#ifndef GOVS_MAPS_H
#define GOVS_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "structs.h"

/* Virtual services by key. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GOVS_MAX_SERVICES);
	__type(key, struct svc_key);
	__type(value, struct svc);
} services SEC(".maps");

/* Per-service scheduler position (rr, wrr), indexed by svc.id. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GOVS_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct svc_state);
} svc_state SEC(".maps");

/* Destinations by id. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GOVS_MAX_DEST_IDS);
	__type(key, __u32);
	__type(value, struct dest);
} dests SEC(".maps");

/* Destination lists: dest ids, newest first, each service's in its range
 * svc_dests[svc.list .. svc.list+svc.list_cap). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GOVS_LIST_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} svc_dests SEC(".maps");

/* Live connection counts per destination id. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GOVS_MAX_DEST_IDS);
	__type(key, __u32);
	__type(value, struct dest_live);
} dest_live SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GOVS_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct stats);
} svc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GOVS_MAX_DEST_IDS);
	__type(key, __u32);
	__type(value, struct stats);
} dest_stats SEC(".maps");

/*
 * The connection table (connections and persistence templates). A plain
 * hash, not an LRU: an entry is only ever removed by conn_expire, which
 * gives its destination counters back, so ActiveConn/InActConn/PersistConn
 * are exact. When it is full a new connection is dropped
 * (CTR_DROP_TABLE_FULL) and existing ones continue: size it for the load
 * (Options.MaxConns). The nat map has one entry per NAT connection, so it
 * cannot fill first.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct conn_key);
	__type(value, struct conn);
} conns SEC(".maps");

/* NAT replies: realserver->client 5-tuple to the virtual address and
 * port, which with the key's client make the connection's key
 * (conn_key_of_nat). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct nat_key);
	__type(value, struct nat_val);
} nat SEC(".maps");

/* Timeouts in seconds by state (see structs.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NUM_TIMEOUTS);
	__type(key, __u32);
	__type(value, __u32);
} timeouts SEC(".maps");

/* Lookup tables of sh, dh and mh: GOVS_SCHED_TABLE slots per table (a
 * service using one of them has svc.table), each the index of a
 * destination in the service's list (0xffff: none). */
#define GOVS_SCHED_TABLE 4096
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GOVS_SCHED_TABLES * GOVS_SCHED_TABLE);
	__type(key, __u32);
	__type(value, __u16);
} sched_table SEC(".maps");

/* twos: the PCG state of each service, indexed by svc.id. Go seeds it
 * when the service gets the scheduler. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GOVS_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct rng_state);
} twos_rng SEC(".maps");

/* lblc and lblcr: per-address state. An LRU hash: an entry it evicts is
 * one that expired early, which only costs locality. Go's sweeper runs the
 * kernel's garbage collection (full check every 30 minutes, partial above
 * 16384 entries per service). */
#define GOVS_LBLC_ENTRIES 65536
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GOVS_LBLC_ENTRIES);
	__type(key, struct lblc_key);
	__type(value, struct lblc_val);
} lblc SEC(".maps");

/* govs_xdp: the MAC address of each interface it is attached to, by
 * ifindex, written by the loader when it attaches (see xdp.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct ifmac);
} ifmac SEC(".maps");

/* The next-hop cache (fwd.h), by dest id, and its generation: Go bumps
 * nh_gen[0] on every neighbour, route, address, link or rule change it
 * hears of, which invalidates every entry at once; NH_GEN_OFF turns the
 * cache off (source-dependent routing rules). Not pinned: a restart
 * starts with an empty cache. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GOVS_MAX_DEST_IDS);
	__type(key, __u32);
	__type(value, struct nexthop);
} nexthop SEC(".maps");

#define NH_GEN_OFF 0xffffffff
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} nh_gen SEC(".maps");

/* Firewall-mark rules, evaluated in order (mark_match in govs.c), and
 * their count in mark_nrules[0]. Written by New from Options.MarkRules;
 * not pinned: configuration, not state. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GOVS_MAX_MARK_RULES);
	__type(key, __u32);
	__type(value, struct mark_rule);
} mark_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} mark_nrules SEC(".maps");

/* What the program did, per CPU (enum govs_ctr). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CTR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} ctr SEC(".maps");

static __always_inline void count(__u32 what)
{
	__u64 *v = bpf_map_lookup_elem(&ctr, &what);
	if (v)
		*v += 1;
}

#endif
