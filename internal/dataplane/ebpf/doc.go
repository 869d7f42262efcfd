// Package ebpf is govs's kernel data plane: a BPF program at TC ingress
// (TCX) of the director's interfaces, optionally with an XDP fast path in
// front of it, that forwards packets for the virtual services by NAT, DR
// (direct routing) and TUN (IPIP, GUE, IPv6-in-IPv6), keeps the
// connection table with the kernel's TCP state machine, and schedules new
// connections itself with all 14 IPVS schedulers. It needs no IPVS in the
// kernel. [Dataplane] implements dataplane.Dataplane (govsd --dataplane
// ebpf); [Decap] is the realserver side of TUN mode.
//
// The BPF C sources are in bpf/ (structs.h: the layouts shared with Go;
// maps.h; parse.h; csum.h; conn.h: states, counters, templates, expiry;
// sched.h: the list schedulers; sched_hash.h: mh, twos, lblc, lblcr;
// fwd.h: NAT, encapsulation, routing; icmp.h: ICMP errors; govs.c: the
// TC program and classify(), shared with xdp.h: the XDP program; sync.h:
// govs_sync, the sync backup's install; decap.c: the realserver's
// decapsulator). `go generate ./internal/dataplane/ebpf/`
// rebuilds govs_bpfel.{go,o} and decap_bpfel.{go,o} with clang-14
// (pinned in gen.go).
//
// # Firewall marks: classified by govs
//
// Firewall-mark services match the packet's mark. The kernel runs TC
// ingress (sch_handle_ingress, TCX included) and XDP before netfilter
// (nf_ingress, then PREROUTING), so a mark that nftables or iptables
// sets on the director is NOT yet on the packet when govs_tc or govs_xdp
// sees it, and never will be: use Options.MarkRules (govsd
// --fwmark-rule "tcp 10.0.0.100/32 80-81 7") instead of a MARK rule.
//
// govs classifies marks itself: New writes the rules to the mark_rules
// array (at most 256: family, protocol or any, destination prefix,
// destination port range, mark) and their count to mark_nrules[0] (last,
// so a program never reads a rule not written yet). Both maps are
// configuration, not state: they are not pinned, and each New writes
// them from its Options. After parsing, govs_tc takes skb->mark if it is
// not 0 (a mark set before TC ingress, e.g. by another TC program
// earlier in the chain); otherwise it walks the rules in order
// (mark_match, a bpf_loop) and the first match gives the mark, which it
// also stores in skb->mark so that the stack sees it if the packet is
// passed (policy routing, netfilter). The service lookup then tries the
// fwmark service of that mark first, as before. govs_xdp, which has no
// skb->mark, does not evaluate the rules: the first packet of a
// firewall-mark service's connection is passed to govs_tc, which
// classifies and schedules it; the connection's later packets are found
// in the connection table by XDP. (Calling mark_match from govs_xdp made
// TestNetnsXDPTunPMTU6 fail intermittently, for a reason not yet
// understood; it was left out.) The fixtures run packets without a mark
// in the context through both programs (TestFixtureMarkRules).
//
// # Packet path
//
// Only frames addressed to the director are its business. govs_tc
// passes (TC_ACT_OK) every frame whose skb->pkt_type is not PACKET_HOST:
// a switch or bridge floods frames for a MAC it has not learnt or has
// aged out to every port, so a backup director receives the VRRP
// master's traffic (PACKET_OTHERHOST) and must not forward it a second
// time; multicast and broadcast frames never carry a unicast TCP/UDP
// service's packets (ARP, VRRP and sync messages are among them) and go
// to the stack too, as IPVS only sees what ip_rcv accepted. govs_xdp has
// no pkt_type: it compares the destination MAC with the interface's own,
// which the loader records in the ifmac map when it attaches (an
// interface missing from the map has everything passed to TC). These
// frames are not counted in ctr (its size is a pinned format).
//
// For each frame govs_tc parses Ethernet, IPv4 (options allowed) or IPv6
// (no extension headers), and TCP or UDP, checking every length field
// against the packet. Anything it cannot parse is passed to the stack
// untouched, never forwarded: other ethertypes (ARP, VLAN), truncated or
// inconsistent headers, IPv4 and IPv6 fragments, IPv6 extension headers,
// protocols other than TCP and UDP (see parse.h), except ICMP errors
// (below). Then classify() runs, in order: a NAT
// reply (the nat map, keyed by the realserver's 5-tuple) has its source
// rewritten back to VIP:vport; a packet of a known connection (conns map)
// takes its state transition and is forwarded; the first packet for a
// service (fwmark first, then proto+VIP+port, then proto+VIP+port 0) is
// scheduled, gets a connection entry and is forwarded. A TCP packet for a
// service that is not a SYN, or is SYN+RST, is dropped (the engine's
// rule); so is a new connection when no destination is available. A TUN
// packet too big for the tunnel is answered with an ICMP error (below).
//
// Forwarding: NAT rewrites addresses and ports with
// bpf_l3_csum_replace/bpf_l4_csum_replace (UDP checksum 0 stays 0); DR
// only rewrites MACs; TUN prepends an outer header (IPv4 for IPv4, IPv6
// for IPv6) with bpf_skb_adjust_room, its source the address the route
// lookup picks (BPF_FIB_LOOKUP_SRC); GUE adds UDP (no checksum) and a
// 4-byte GUE header, the source port a flow hash. Every mode then sends
// the packet to the realserver by the next-hop cache (below) or, on a
// miss and for NAT replies (to the client), by bpf_fib_lookup, and
// redirects; an unresolved neighbour goes through bpf_redirect_neigh,
// which resolves it (the stack cannot help for DR and TUN: the VIP is
// local). Local destinations are passed to the stack. TTLs are not
// decremented, as with IPVS.
//
// # TUN and the MTU
//
// Encapsulation adds 20 bytes (IPIP), 40 (IPv6-in-IPv6), 12 more for
// GUE, so a full-size packet from the client no longer fits. The TUN
// route lookup is given the encapsulated length (tot_len): the kernel
// checks it against the route's MTU and returns
// BPF_FIB_LKUP_RET_FRAG_NEEDED with the MTU in mtu_result; the next-hop
// cache keeps that MTU, and a hit that would not fit takes the full
// lookup. A packet that does not fit is answered as a router (and IPVS,
// ip_vs_xmit.c's ensure_mtu_is_adequate) would, by tun_toobig (govs.c)
// and icmp_too_big (icmp.h): the frame is turned in place into the error
// and redirected back out of the device it came in on, to the MAC it came
// from, from the MAC it was sent to.
//
//   - IPv4 with DF: ICMP fragmentation needed (type 3 code 4), next-hop
//     MTU = route MTU - overhead, quoting the IP header (with options) and
//     8 bytes (CTR_ICMP_FRAG_NEEDED). Below 68 IPVS drops without an
//     answer; so does this (CTR_DROP_TOO_BIG).
//   - IPv6: ICMPv6 packet too big (type 2), MTU = route MTU - overhead but
//     at least 1280, quoting as much of the packet as fits in 1280 bytes
//     (CTR_ICMP6_TOO_BIG).
//   - IPv4 without DF: IPVS encapsulates with the outer DF cleared (copied
//     from the inner) and lets ip_local_out fragment the outer packet. A
//     redirected skb is never fragmented (the device drops what exceeds
//     its MTU) and BPF cannot fragment, so the packet is dropped and
//     counted (CTR_DROP_TOO_BIG): the one case still lost; such senders
//     have turned path MTU discovery off.
//   - An ICMP error forwarded through the tunnel is never answered with
//     one (IPVS's rule): dropped and counted. GSO packets are not checked
//     (IPVS skips them too): bpf_skb_adjust_room shrinks their segment
//     size by the overhead.
//
// The error comes from the VIP, to the client. The kernel's icmp_send
// takes the packet's destination as the source when that is a local
// address, so IPVS's errors come from the VIP too. The client's stack
// finds the flow, and the destination whose PMTU it records, in the
// quote, whatever the source; but the VIP is the address every hop
// between client and director already routes and filters as the
// service's, where a director address may be private, or dropped by the
// client's firewall or anti-spoofing as a stranger. IPv4 header: TOS
// 0xc0, TTL 64, DF with ID 0 (an atomic datagram, RFC 6864); IPv6: hop
// limit 64. The ICMP checksum covers a copy of the quote (up to 1232
// bytes) summed with bpf_csum_diff in the per-CPU scratch.
//
// Which MTU: bpf_fib_lookup answers for the forwarding path, so the route
// MTU is the egress device's MTU or a PMTU exception the director has
// learnt, and a route's own mtu metric only when locked (ip route ... mtu
// lock N) or with net.ipv4.ip_forward_use_pmtu=1; IPVS, sending from the
// director itself, uses the output route's MTU, which always includes
// the metric. With XDP, govs_xdp makes the same check and passes the
// frame to govs_tc with a note (XMETA_TOOBIG and the MTU), which builds
// the error: one implementation, with skb helpers. A client on the
// director host itself (a veth with checksum offload) sends
// CHECKSUM_PARTIAL packets; the error keeps that state, which points into
// what is now the quote: harmless on veth, which never computes it. The
// realserver's MSS clamp (govsadm realserver setup --mode tun) still
// spares TCP the round trip.
//
// # Next-hop cache
//
// bpf_fib_lookup costs ~130 ns, a third of an established packet's cost,
// and its answer for a destination rarely changes. The nexthop map keeps,
// per destination id, what the last successful lookup for it returned
// (egress device, MACs, MTU, the source TUN uses) and for which ingress
// device; a packet of any connection to that destination, arriving on
// that device, uses it. An entry is valid while its generation equals
// nh_gen[0] and for at most a second (NH_TTL_NS); filling and reading are
// ordered by a sequence word (odd while a CPU writes), so a reader never
// uses half an entry.
//
// Correctness: the answer depends on the routes, neighbours, devices,
// addresses, rules and forwarding sysctls of the namespace, and, through
// rules only, on the packet's source, mark and ingress device. New
// subscribes (nexthop_linux.go) to the rtnetlink groups of all of them
// (neighbours, IPv4/IPv6 routes, addresses, links, rules, netconf) and
// bumps nh_gen on every notification, lost ones (ENOBUFS) included, which
// invalidates every entry at once; while the namespace has any rule
// besides the three defaults (local, main, default) it writes NH_GEN_OFF
// and the cache is off, since it is not keyed by source or mark. When a
// realserver's neighbour entry changes (a new MAC after a failover, a
// gratuitous ARP), the kernel updates its table and notifies; packets
// forwarded between the change and Go's bump, a notification's latency,
// go to the old MAC, as frames already queued would; the next one looks
// the route up again (TestFixtureNextHopCache). A neighbour that is not
// resolved is never cached (only BPF_FIB_LKUP_RET_SUCCESS fills), so
// resolution still goes through bpf_redirect_neigh. The lookup's MTU check
// (is_skb_forwardable; for TUN the encapsulated length against the
// route's MTU) is repeated with the cached MTU; a packet that fails it
// takes the full lookup. Programs loaded without New (the
// fixtures) have no watch: entries then live for the TTL. The cache is
// not pinned: a restart starts empty.
//
// ICMP errors that belong to a connection (icmp.h; ICMPv4 destination
// unreachable, fragmentation needed included, source quench, time
// exceeded; ICMPv6 destination unreachable, packet too big, time
// exceeded) are found by the packet they quote. One from the realserver
// side about a NAT connection's packet goes to the client with the outer
// source and the quoted destination turned back into the VIP:vport; one
// from the client side about a reply goes to the realserver, translated
// for NAT (outer destination, quoted source) and unchanged by DR and TUN
// (so a DR or TUN realserver learns the path MTU towards the client). The
// quoted IPv4 header checksum and the ICMP checksum are kept right; the
// quoted TCP/UDP checksum is left alone, as the kernel leaves it. Other
// ICMP passes to the stack.
//
// # Connections and counters
//
// A connection is an entry in the conns hash keyed by the client's
// 5-tuple (templates share the map with kind=1). The value is 32 bytes:
// deadline, state, packet counts, the destination id, the realserver port
// and the forwarding method; the realserver's address, its tunnel
// settings and the service's id and mark are read from dests[dest_id]
// (an id is not reused while a connection counts on it). A NAT
// connection has a second entry in nat, keyed by the reply's 5-tuple,
// whose value is only the virtual address and port (with the key's
// client they make the connection's key). Its state and flags
// (INACTIVE, NOOUTPUT) are one word changed by compare-and-swap, using the
// kernel's tables (conn.h): full for NAT, input-only for DR/TUN/Local. The
// move between ActiveConn and InActConn that a state change implies is an
// atomic add on dest_live, done by the CPU whose swap succeeded. Entries
// expire by deadline: the data path treats an expired entry as gone and
// removes it; Go's sweeper removes the rest through the govs_expire
// syscall program, so Go never writes a counter. Whoever's
// bpf_map_delete_elem succeeds decrements the counters: exactly once.
//
// Synced entries (a sync backup's connsync.Table, sync_linux.go) go in
// through govs_sync, a syscall program like govs_expire (bpf/sync.h):
// it creates the conns entry with BPF_NOEXIST and binds the destination
// if it created it, or updates the existing entry (state and INACTIVE by
// compare-and-swap, the count moved by the winner), writes a Masq
// connection's NAT reply entry on every install and update, and puts a
// connection of a persistent service under its template (n_control) as
// classify() does; a connection that arrived before its template is
// linked by a later update. Removal is ip_vs_conn_expire_now: a template
// that still controls connections is deferred, not deleted. Go
// serialises its syscall programs (tables.prog), so the sweeper and the
// sync backup never race on one entry; the residual race with the data
// path is described in sync.h. The counts equal the engine's for the
// same messages (TestSyncDiffEngine); the engine does not link synced
// connections to templates, so there a synced template lives by its own
// timeout, here (as for the data path's templates) while it controls
// connections.
//
// Full table: conns (and nat) are plain hashes, not LRUs, because an LRU
// evicts entries behind the program's back and their counts would leak.
// When conns is full a new connection is dropped (CTR_DROP_TABLE_FULL)
// while the existing ones continue, so ActiveConn/InActConn/PersistConn
// stay exact; size the table (Options.MaxConns) for the load, SYN floods
// included (a SYN_RECV entry lives 60 s).
//
// A TCP SYN for a connection in TIME_WAIT that no template controls
// starts a new connection (conn_reuse_mode 1). Persistence templates (per
// masked client and service; fwmark services keyed by the mark) track the
// connections they control as the engine's do: n_control in the template,
// incremented when a connection is created under it; the connection has
// CONN_F_CONTROLLED and enough (ctl_mask, TPORT, fwmark) to rebuild the
// template's key when it goes, and releases the template only if it still
// points to the same destination (a template whose destination left the
// service is deleted at once, since a hash has one entry per key, where
// the engine unhashes it). A template whose deadline comes while it
// controls connections is re-armed every 60 s from that deadline
// (CONN_F_DEFERRED; refreshed by 60 s, its new timeout, when it places
// connections), and goes at the first tick that finds it idle. The layout
// of conns changed for this (n_control): maps pinned by an older build
// are refused at start ("remove with govsd --ebpf-remove").
//
// # Scheduling: who computes what
//
// All decisions for a new connection are made in BPF, from state Go keeps
// in maps; a differential test runs one packet sequence (with random
// opens, ACKs, FINs, RSTs, weight edits, destination removals and
// additions) through Program.Run and through package engine and requires
// the same realserver for every new connection.
//
// Each service's destination list is a range of svc_dests (svc.list,
// list_cap: a power of two from 8 to 1,024) that Go allocates first fit
// from a pool of twice Options.MaxDests slots and moves to a larger range
// when the list outgrows it; sh, dh and mh services also get one of
// Options.MaxHashServices tables of sched_table. A service has at most
// 1,024 destinations (GOVS_MAX_DESTS, the bound of the bpf_loop walks);
// Options.MaxServices (default 16,384) and Options.MaxDests (default
// 65,536, removed destinations still draining included) size the rest.
// The walks are bpf_loop callbacks, so the verifier checks one iteration
// whatever the bound; their cost grows with the list (first packet of a
// wlc service: see docs/BENCHMARKS.md).
//
//   - rr, wrr: the position (and wrr's current weight) lives in svc_state
//     and the program walks the list exactly as ip_vs_rr/ip_vs_wrr do. Go
//     computes wrr's max weight and gcd and adjusts the position where the
//     kernel's add_dest/del_dest/upd_dest hooks do (tables.go).
//   - lc, wlc, sed, nq, fo, ovf: one pass over the list comparing the live
//     counters (dest_live), cross-multiplied, ties to the earlier entry.
//   - sh, dh: Go builds the 256-bucket tables with package sched
//     ((*SH).Table, (*DH).Table) on every list change; BPF hashes as
//     sched.HashSH/HashDH do and checks usability (sh-fallback probes the
//     following buckets).
//   - mh: Go builds the 4093-slot Maglev table with (*sched.MH).Table
//     from the destinations' last non-zero weights (kept in Go, so
//     quiescing moves no slot; after a restart a quiesced destination's
//     last weight is taken as 0 until its weight is raised); BPF computes
//     the kernel's hsiphash, SipHash-1-3 with ip_vs_mh.c's fixed keys, of
//     the folded source (+ port with mh-port), as sched.HashMH, and walks
//     the rehash chain for mh-fallback in a bpf_loop.
//   - twos: two draws from Go's math/rand/v2 PCG (128-bit LCG, DXSM
//     output, Rand.Int64N's multiply-and-reject reduction), in BPF with a
//     64x64->128 multiply done in 32-bit halves. The PCG state is per
//     service in twos_rng: Go seeds it from crypto/rand when a service
//     gets twos, and tests seed it (tables.seedTwos) with what an engine
//     with Options.Seed s gives its n-th scheduler instance, PCG(s, n), so
//     both draw the same numbers and pick the same destinations. CPUs
//     racing on one service may draw the same numbers: only randomness
//     suffers.
//   - lblc, lblcr: per service and packet destination address, an entry
//     in the lblc map (an LRU hash of 65536: an eviction is an early
//     expiry) with the destination (lblcr: the set, newest first, at most
//     32, a full set drops its oldest member) and lastuse/lastmod. The
//     decisions are sched/lblc.go's and sched/lblcr.go's (lblc's own
//     overload rule, weighted least-connection over the list, lblcr's set
//     min/max and 24 h set shrinking); lblcr edits a copy of the set and
//     writes it back (racing CPUs: last writer wins). Go's sweeper runs
//     the kernel's garbage collection per service: a minute tick, a full
//     check every 30th (entries unused for 24 h go), a partial check
//     (unused 6 min) above 16384 entries, visiting entries in map order
//     rather than the kernel's bucket rover; the first tick is a minute
//     after the service got its scheduler. A new scheduler on a service,
//     or its removal, empties its entries. A destination id is reused
//     only after its connections drained; an lblc entry still naming a
//     reused id would follow the new destination (rare, not handled).
//
// The loops run under bpf_loop with their context in a per-CPU map
// rather than on the stack (see "Verifier notes"). The differential test
// covers all 14 schedulers (lblc, lblcr and dh also on a firewall-mark
// service with packets to eight addresses, so that their per-address
// state matters; rr, wrr, wlc, nq, sh, mh, twos and lblcr also at 1,000
// destinations, TestDiffSchedulers1000); what it cannot reach is time: lblc/lblcr expiry (24 h)
// is tested separately (TestLBGC), lblcr's set shrinking is not.
//
// # Rates
//
// --rate is the kernel's estimator (package stats) run in Go: every two
// seconds (stats.Clock, driven by the sweeper) each service's and
// destination's per-CPU counters are summed and sampled. Zero resets the
// estimators; after a restart they start from the adopted counters, so
// the traffic before it is not a rate.
//
// # Pinning and restart
//
// New pins every map (except per-CPU scratch, the next-hop cache and the
// mark rules, which it writes from Options) and every TCX and XDP link under
// Options.PinPath (/sys/fs/bpf/govs, mounting bpffs if needed). On start it
// adopts the pinned maps, rebuilds its view of services and destinations
// from them (the control plane's replay of its configuration then updates
// them in place), and moves each pinned link to the newly loaded program
// with link.Update, so forwarding never stops. Close leaves everything
// pinned; Remove detaches and deletes it all. A pinned map whose layout
// or size differs from what this build and its Options want (another
// MaxConns, MaxServices, MaxDests, MaxHashServices, or a map of an older
// layout) is refused with the advice to remove the pins
// (TestNewRefusesOldPins): there is no migration.
//
// # Verifier notes
//
//   - Everything __always_inline made govs_tc 5400 instructions whose
//     verification ran for seconds and then failed with EFAULT ("The
//     sequence of 8193 jumps is too complex"). The big steps (schedule,
//     pick, forward_in, nat_out, conn_update, conn_expire) are global
//     functions: the verifier checks each once, not once per call site.
//     Their pointer arguments must be NULL-checked.
//   - The working structures live in a per-CPU scratch map: inlined, they
//     exceed the 512-byte stack. bpf2go cannot render struct
//     bpf_fib_lookup (anonymous unions), so the scratch map has no BTF
//     value type.
//   - bpf_loop contexts must be stack pointers, but the verifier tracks
//     stack values exactly and simulated wrr's callback once per position
//     (thousands of times). The stack holds a pointer to a map value
//     instead: values read from maps are unknown, one pass suffices.
//   - The PCG's rejection loop under #pragma unroll failed to compile
//     ("loop not unrolled"); it is three explicit ifs (the loop runs with
//     probability below n/2^64 anyway).
//   - linux/icmp.h and icmpv6.h pull in libc (gnu/stubs-32.h is missing
//     for the BPF target): icmp.h defines the few types it needs.
//   - lblc/lblcr's set scans, edits and the mh fallback chain (4093
//     SipHashes) are bpf_loop callbacks like the others; sched_lblc is a
//     global function so govs_tc's verification does not grow with it.
//   - Sharing the pipeline between TC and XDP: classify() (connection
//     table, scheduling, counters) is one global function taking the
//     scratch area and the mark; only the packet moves (rewrite, encap,
//     redirect) exist twice, for skb helpers and for direct XDP writes.
//   - BPF_PROG_TEST_RUN computes skb->pkt_type with eth_type_trans
//     against the device the context's ifindex names, the loopback
//     device when it names none (whose MAC is all zeros: every frame
//     would be PACKET_OTHERHOST). The fixtures pass a __sk_buff context
//     with the ifindex of the veth whose MAC the frame is addressed to
//     (fixture.ingress), and govs_xdp's runs the same ingress_ifindex.
//   - BPF_PROG_TEST_RUN hands the program a linear skb, while real traffic
//     arrives with the payload in fragments: length fields must be checked
//     against skb->len, headers against data_end. The fixtures could not
//     catch that; the namespace tests did. Test runs also refuse frames
//     whose ethertype is IPv4/IPv6 but whose IP header is cut short
//     (EINVAL), so those cases are covered by parse.h's bounds checks
//     (which the verifier enforces) rather than by fixtures.
//   - The stack is at its limit: an attempt to fold repeated key-filling
//     code (nat_key/conn_key setters in govs.c) and to make dview_get call
//     dview_id (one more __u32 slot) was refused with "combined stack size
//     of 4 calls is 560. Too large" at sched_lblc. Before deduplicating
//     code on the scheduling path, move the new locals into the scratch
//     map or check the combined stack of the bpf_loop call chains.
//
// # veth notes
//
// TC (TCX) redirect works on veth with default settings, including back
// out of the ingress device (one-armed director on a bridge). Packets from
// a local sender on veth carry partial checksums (CHECKSUM_PARTIAL);
// bpf_l4_csum_replace with BPF_F_PSEUDO_HDR handles them. For TUN the
// realserver should clamp the MSS (route advmss) or raise its MTU: a
// full-size frame plus the outer header exceeds the veth MTU; the
// director answers it with an ICMP error (see "TUN and the MTU"), so
// path MTU discovery recovers after a round trip, which the clamp
// avoids.
//
// # XDP
//
// With Options.XDP, govs_xdp is attached in native (driver) mode in front
// of govs_tc (both stay attached and pinned; see xdp.h). XDP forwards
// TCP/UDP of the virtual services by NAT (both directions), DR and TUN
// with direct writes and hand-updated checksums (RFC 1624) and
// bpf_redirect; it passes untouched what it does not handle (ARP, ICMP
// errors, fragments, packets for no service, and firewall-mark services:
// XDP has no mark and does not evaluate the mark rules, so those
// connections start at TC; their later packets are found in the
// connection table by XDP). When
// it acted on a packet but cannot send it itself (a Local destination, a
// NAT packet without a route, an unresolved neighbour: XDP has no
// bpf_redirect_neigh) it passes it with a struct xmeta in the XDP
// metadata, and govs_tc does only what the note says (TC_ACT_OK,
// bpf_redirect_neigh, or the ICMP error for a TUN packet too big for the
// tunnel). A driver without metadata support loses the note:
// TC then sees the packet again (NAT/TUN packets are already rewritten
// and go through the stack; a DR packet is counted twice).
//
// veth caveats, measured here and set up by the XDP tests: a frame
// redirected by XDP out of a veth is dropped unless the peer of that veth
// has an XDP program or GRO on (ethtool -K peer gro on); and XDP works on
// bytes, so a partial checksum (a local sender on a veth with tx checksum
// offload) arrives wrong: senders turn it off (ethtool -K dev tx off,
// netns.Link.SetTxChecksum). Real NICs deliver full checksums.
//
// # Testing
//
// Tier 2 (fixtures, Program.Run): TestFixture* run packets built with
// gopacket through govs_tc inside a namespace with static neighbours, and
// compare output bytes (so checksums are checked exactly) and verdicts;
// TestFixtureXDP runs the forwarding fixtures through govs_xdp, plus its
// notes to TC; TestFixtureNotForHost frames for another MAC, multicast
// and broadcast (passed untouched, TC and XDP); TestFixtureSyncNAT a NAT
// connection installed by govs_sync (replies translated, TC and XDP);
// TestSyncProgram and TestSyncDiffEngine govs_sync's install, update,
// link, removal and counters against package engine; TestFixtureICMP the ICMP errors (v4, v6, NAT both ways,
// DR); TestFixtureTemplateControl and TestFixtureTableFull the templates'
// control and the full table, TestFixtureRates --rate, TestLBGC the
// lblc expiry. TestDiffSchedulers is the differential test against
// package engine; TestFixtureNextHopCache the next-hop cache (filled,
// used, invalidated by a neighbour change through the netlink watch, off
// while a source rule exists); TestScaleServices 10,000 services and one
// with 1,024 destinations; TestNewRefusesOldPins and TestNewRefusesOldCtr
// the refusal of maps pinned with another layout or size;
// TestFixtureTunnelMTU (also at XDP: the note to TC) and
// TestFixtureTunnelMTUTCP the TUN MTU cases: the ICMP errors byte for
// byte (addresses, quote, checksums) for IPv4 with DF (with and without
// IP options), IPv6, IPIP and GUE, a locked route MTU below the device's,
// the drop without DF, and a packet that just fits, encapsulated as
// before.
// Tier 3 (TestNetns*): client, director and two realservers on a bridge,
// HTTP through the VIP by NAT, DR, TUN/IPIP and TUN/GUE over IPv4 and
// IPv6, at TC and at XDP (TestNetnsXDP*: govs_xdp must have forwarded
// packets itself); a restart under an open connection and during a 50 MB
// download at TC and XDP (TestNetnsRestartBulk, checked by SHA-256); a
// destination set to weight 0 that drains while ActiveConn/InActConn
// equal what the engine shows for the same packets, fed to it from an
// AF_PACKET tap on the director (TestNetnsDrainNAT, TestNetnsDrainDR);
// TUN without the realservers' MSS clamp (TestNetnsTunPMTU, PMTUGUE,
// PMTU6, and at XDP): a full-size UDP datagram with DF from the client
// brings the ICMP error, the client's route cache learns the PMTU (ip
// route get shows it) and the datagram resent at that size reaches the
// realserver. All need root; without root they skip with a
// message, as root a failure to load BPF fails them.
package ebpf
