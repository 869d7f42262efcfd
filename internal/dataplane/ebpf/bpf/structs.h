/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * structs.h: the structures shared between the BPF programs and the Go
 * loader. bpf2go generates the Go mirrors (govsXxx types) from these, so a
 * field added here must be added nowhere else. Keep every struct free of
 * implicit padding: explicit pad fields make the Go and C layouts agree and
 * keep hash keys free of uninitialised bytes.
 *
 * Addresses are stored as four 32-bit words in network byte order; IPv4
 * uses word 0 and leaves the others zero. Ports are in network byte order.
 */
#ifndef GOVS_STRUCTS_H
#define GOVS_STRUCTS_H

#include <linux/types.h>

/* Map sizes are defaults: the loader sets the memory-relevant ones from
 * Options (MaxServices, MaxDests, MaxHashServices) before loading, so the
 * programs never rely on them; only GOVS_MAX_DESTS is a compile-time
 * bound. */
#define GOVS_MAX_SERVICES 16384
/* Destinations per service: the bound of the schedulers' bpf_loop walks
 * (a power of two). */
#define GOVS_MAX_DESTS 1024
/* Destination ids (all services together). */
#define GOVS_MAX_DEST_IDS 65536
/* Slots of svc_dests, where each service has a range (svc.list,
 * svc.list_cap) that Go allocates and grows: twice the ids, room for
 * the ranges' rounding and fragmentation. */
#define GOVS_LIST_SLOTS (2 * GOVS_MAX_DEST_IDS)
/* Services that can use sh, dh or mh at the same time (sched_table). */
#define GOVS_SCHED_TABLES 256
/* lblcr's destination sets: at most this many members. */
#define GOVS_LBLCR_SET 32
/* Firewall-mark rules (mark_rules): at most this many. */
#define GOVS_MAX_MARK_RULES 256

/* Forwarding methods: the kernel's IP_VS_CONN_F_* values (ipvs.FwdMethod). */
#define FWD_MASQ 0
#define FWD_LOCAL 1
#define FWD_TUNNEL 2
#define FWD_ROUTE 3

/* Tunnel types (ipvs.TunnelType). */
#define TUN_IPIP 0
#define TUN_GUE 1

/* Schedulers the BPF program runs itself (svc.sched). */
enum govs_sched {
	SCHED_RR = 0,
	SCHED_WRR = 1,
	SCHED_LC = 2,
	SCHED_WLC = 3,
	SCHED_SED = 4,
	SCHED_NQ = 5,
	SCHED_FO = 6,
	SCHED_OVF = 7,
	/* Table schedulers: Go fills svc_table with dest indexes. */
	SCHED_TABLE_SH = 8,
	SCHED_TABLE_DH = 9,
	SCHED_TABLE_MH = 10,
	/* Per-address state in the lblc map. */
	SCHED_LBLC = 11,
	SCHED_LBLCR = 12,
	/* Random, from the PCG state in twos_rng. */
	SCHED_TWOS = 13,
};

/* Service flags (svc.flags). */
#define SVC_F_PERSISTENT 0x01
#define SVC_F_ONEPACKET 0x04
#define SVC_F_SCHED1 0x08 /* sh/mh fallback */
#define SVC_F_SCHED2 0x10 /* sh/mh port */

/* A firewall-mark rule (mark_rules): a packet of family, proto (0: any),
 * destination in daddr/plen (daddr network order, already masked) and
 * destination port in [dport_min, dport_max] (host order) gets mark. */
struct mark_rule {
	__u32 daddr[4];
	__u32 mark;
	__u16 dport_min;
	__u16 dport_max;
	__u8 family;
	__u8 proto;
	__u8 plen;
	__u8 pad;
};

/* Key of a virtual service: proto+VIP+port, or a firewall mark (then
 * proto, port and addr are zero). */
struct svc_key {
	__u32 addr[4];
	__u32 fwmark;
	__u16 port;
	__u8 proto;
	__u8 family; /* AF_INET or AF_INET6 */
};

/* A virtual service. */
struct svc {
	__u32 id; /* index into svc_state, svc_stats, twos_rng */
	__u32 timeout; /* persistence timeout, seconds */
	__u16 flags;
	__u8 sched;
	__u8 netmask; /* persistence prefix length */
	__u16 ndests;
	__u16 list_cap; /* slots of the range at list */
	/* wrr: the maximum weight and the weights' gcd, computed by Go. */
	__s32 wrr_mw;
	__s32 wrr_gcd;
	__u32 fwmark; /* the service's mark, 0 for proto+addr+port services */
	__u16 port;   /* the service's port (network order) */
	__u16 pad;
	__u32 list;  /* the destination list: svc_dests[list .. list+ndests) */
	__u32 table; /* sh, dh, mh: the table in sched_table (table*GOVS_SCHED_TABLE) */
};

/* Per-service scheduler state that the BPF program writes (rr/wrr position). */
struct svc_state {
	__s32 last; /* rr/wrr: index of the last picked dest, -1 for none */
	__s32 cw;   /* wrr: current weight */
};

/* A destination, by its id (stable while connections use it). A service's
 * list is svc_dests[svc.list+i] = dest id, i in the kernel's list order
 * (newest first). */
#define DEST_F_AVAILABLE 0x1 /* still in its service (not in the trash) */
struct dest {
	__u32 addr[4];
	__s32 weight;
	__u32 upper; /* thresholds, 0 = none */
	__u32 lower;
	__u32 flags;
	__u16 port;
	__u16 tun_port;
	__u8 fwd;
	__u8 family;
	__u8 tun_type;
	__u8 tun_flags;
	__u32 svc_id; /* its service's id and firewall mark (0 if none) */
	__u32 fwmark;
};

/* The live counters of a destination (ipvs.Dest's counters), updated with
 * atomic operations from every CPU. */
struct dest_live {
	__s32 active;
	__s32 inact;
	__s32 persist;
	__u32 overloaded;
};

/* Traffic counters (ipvs.Counters), per CPU. */
struct stats {
	__u64 conns;
	__u64 inpkts;
	__u64 outpkts;
	__u64 inbytes;
	__u64 outbytes;
};

/* twos's random source: the 128-bit state of Go's math/rand/v2 PCG
 * (hi, lo), one per service (see sched.h). */
struct rng_state {
	__u64 hi;
	__u64 lo;
};

/* lblc and lblcr: per service and packet destination address, the
 * destination (lblc: ids[0], n 1) or destination set (lblcr: ids[0..n),
 * newest first) last chosen, with the kernel's lastuse (both) and lastmod
 * (lblcr), bpf_ktime_get_ns() times. */
struct lblc_key {
	__u32 addr[4];
	__u32 svc_id;
	__u8 family;
	__u8 pad[3];
};

struct lblc_val {
	__u64 lastuse;
	__u64 lastmod;
	__u32 n;
	__u32 pad;
	__u32 ids[GOVS_LBLCR_SET];
};

/* Connection table key. Kind distinguishes connections from persistence
 * templates, which share the map. For a connection, src/sport are the
 * client, dst/dport the virtual address. For a template, src is the masked
 * client address, dst/dport the virtual address and port (the fwmark in
 * dst[0] for a fwmark service, proto 0). */
#define CONN_KIND_CONN 0
#define CONN_KIND_TEMPLATE 1
struct conn_key {
	__u32 src[4];
	__u32 dst[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family;
	__u8 kind;
	__u8 pad;
};

/* Connection flags (conn.sf bits above the state byte): INACTIVE and
 * NOOUTPUT as the kernel's; CONTROLLED: a persistence template controls
 * the connection (its key is rebuilt from the connection's key, ctl_mask,
 * fwmark and TPORT: the template's port is the connection's virtual
 * port); DEFERRED: a template whose deadline came while it controlled
 * connections, re-armed for DEFERRED_EXPIRY. */
#define CONN_F_INACTIVE 0x0100
#define CONN_F_NOOUTPUT 0x0200
#define CONN_F_CONTROLLED 0x0400
#define CONN_F_TPORT 0x0800
#define CONN_F_DEFERRED 0x1000
#define CONN_STATE_MASK 0x00ff
#define DEFERRED_EXPIRY_S 60

/* A connection or a template: 32 bytes, since the table holds millions.
 * The realserver's address, family and tunnel settings, the service's id
 * and mark are its destination's (dests[dest_id]): a destination id is
 * not reused while a connection counts on it (tables.go allocDestID), so
 * the entry it names stays the one the connection was made with. The
 * forwarding method is the connection's own (an edit of the destination's
 * method does not move open connections, as in IPVS). */
struct conn {
	__u64 expires; /* bpf_ktime_get_ns() deadline */
	__u32 sf;      /* state | flags, changed with cmpxchg */
	__u32 dest_id;
	__u32 inpkts;  /* wrap at 2^32, like the kernel's in_pkts */
	__u32 outpkts;
	__u32 n_control; /* templates: connections controlled (atomic) */
	__u16 dport;     /* realserver port */
	__u8 fwd;
	__u8 ctl_mask; /* CONTROLLED: the service's netmask when it was made */
};

/* Key of the NAT reply table: the packet as the realserver sends it back
 * (src RIP:rport, dst CIP:cport). The value is what the connection's key
 * has beyond it (nat_val): its key is <CIP:cport -> VIP:vport>. */
struct nat_key {
	__u32 src[4];
	__u32 dst[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family;
	__u16 pad;
};

/* The next hop of a destination (the nexthop map, by dest id): what the
 * route lookup for it returned, so that the packets of its connections
 * skip bpf_fib_lookup (fwd.h). Valid while seq is non-zero and even, gen
 * equals nh_gen, the packet arrived on in_ifindex, the connection has
 * the forwarding method fwd (TUN's lookup differs: it asks for a source)
 * and the entry is younger than NH_TTL_NS. */
struct nexthop {
	__u64 filled; /* bpf_ktime_get_ns() of the lookup */
	__u32 seq;    /* odd while a CPU rewrites the entry */
	__u32 gen;    /* nh_gen at the lookup */
	__u32 in_ifindex;
	__u32 ifindex; /* egress device */
	__u32 mtu;     /* egress MTU (the lookup's mtu_result) */
	__u32 src[4];  /* the source the lookup chose (TUN's outer source) */
	__u8 dmac[6];
	__u8 smac[6];
	__u32 fwd;
};

struct nat_val {
	__u32 vaddr[4];
	__u16 vport;
	__u16 pad;
};

/* The MAC address of an interface govs_xdp is attached to (the ifmac
 * map): XDP has no pkt_type, so it compares the frame's destination with
 * this and passes frames addressed elsewhere. */
struct ifmac {
	__u8 addr[6];
	__u16 pad;
};

/* Timeouts, seconds, indexed by TCP state; UDP at TIMEOUT_UDP. */
#define TCP_S_NONE 0
#define TCP_S_ESTABLISHED 1
#define TCP_S_SYN_SENT 2
#define TCP_S_SYN_RECV 3
#define TCP_S_FIN_WAIT 4
#define TCP_S_TIME_WAIT 5
#define TCP_S_CLOSE 6
#define TCP_S_CLOSE_WAIT 7
#define TCP_S_LAST_ACK 8
#define TCP_S_LISTEN 9
#define TCP_S_SYNACK 10
#define TCP_S_LAST 11
#define UDP_S_NORMAL 0
#define TIMEOUT_UDP 11
#define TIMEOUT_TEMPLATE 12 /* unused slot, keeps the array 16 long */
#define NUM_TIMEOUTS 16

/* Global counters of what the program did (the ctr map), for debugging and
 * for tests that check a packet took the documented path. */
enum govs_ctr {
	CTR_PASS_NOT_IP = 0,
	CTR_PASS_BAD_HDR,
	CTR_PASS_FRAG,
	CTR_PASS_PROTO,
	CTR_PASS_NO_SVC,
	CTR_DROP_NO_DEST,
	CTR_DROP_NO_CONN,
	CTR_DROP_FIB,
	CTR_DROP_ENCAP,
	CTR_FWD_IN,
	CTR_FWD_OUT,
	CTR_LOCAL,
	CTR_NEW_CONN,
	CTR_CONN_EXPIRED,
	CTR_REDIRECT_NEIGH,
	CTR_PASS_TO_STACK,
	CTR_DROP_TABLE_FULL,
	CTR_ICMP_OUT, /* an ICMP error about a NAT connection, to the client */
	CTR_ICMP_IN,  /* an ICMP error about a reply, to the realserver */
	CTR_XDP_REDIRECT, /* packets govs_xdp sent on itself */
	/* TUN, a packet too big for the tunnel (route MTU - outer headers): */
	CTR_ICMP_FRAG_NEEDED, /* IPv4 with DF: answered with fragmentation needed */
	CTR_ICMP6_TOO_BIG,    /* IPv6: answered with packet too big */
	CTR_DROP_TOO_BIG,     /* dropped: IPv4 without DF (a redirected skb cannot be
			       * fragmented), an ICMP error, an MTU below 68 */
	CTR_MAX,
};

#endif
