// Package ebpf is govs's kernel data plane: a BPF program at TC ingress
// (TCX) of the director's interfaces that forwards packets for the virtual
// services by NAT, DR (direct routing) and TUN (IPIP, GUE,
// IPv6-in-IPv6), keeps the connection table with the kernel's TCP state
// machine, and schedules new connections itself. It needs no IPVS in the
// kernel. [Dataplane] implements dataplane.Dataplane (govsd --dataplane
// ebpf); [Decap] is the realserver side of TUN mode.
//
// The BPF C sources are in bpf/ (structs.h: the layouts shared with Go;
// maps.h; parse.h; csum.h; conn.h: states and counters; sched.h; fwd.h:
// NAT, encapsulation, routing; govs.c: the program; decap.c: the
// realserver's decapsulator). `go generate ./internal/dataplane/ebpf/`
// rebuilds govs_bpfel.{go,o} and decap_bpfel.{go,o} with clang-14
// (pinned in gen.go).
//
// # Packet path
//
// For each frame govs_tc parses Ethernet, IPv4 (options allowed) or IPv6
// (no extension headers), and TCP or UDP, checking every length field
// against the packet. Anything it cannot parse is passed to the stack
// untouched, never forwarded: other ethertypes (ARP, VLAN), truncated or
// inconsistent headers, IPv4 and IPv6 fragments, IPv6 extension headers,
// protocols other than TCP and UDP (see parse.h). Then, in order: a NAT
// reply (the nat map, keyed by the realserver's 5-tuple) has its source
// rewritten back to VIP:vport; a packet of a known connection (conns map)
// takes its state transition and is forwarded; the first packet for a
// service (fwmark first, then proto+VIP+port, then proto+VIP+port 0) is
// scheduled, gets a connection entry and is forwarded. A TCP packet for a
// service that is not a SYN, or is SYN+RST, is dropped (the engine's
// rule); so is a new connection when no destination is available.
//
// Forwarding: NAT rewrites addresses and ports with
// bpf_l3_csum_replace/bpf_l4_csum_replace (UDP checksum 0 stays 0); DR
// only rewrites MACs; TUN prepends an outer header (IPv4 for IPv4, IPv6
// for IPv6) with bpf_skb_adjust_room, its source the address the route
// lookup picks (BPF_FIB_LOOKUP_SRC); GUE adds UDP (no checksum) and a
// 4-byte GUE header, the source port a flow hash. Every mode then looks
// the realserver (or, for NAT replies, the client) up with bpf_fib_lookup
// and redirects; an unresolved neighbour goes through bpf_redirect_neigh,
// which resolves it (the stack cannot help for DR and TUN: the VIP is
// local). Local destinations are passed to the stack. TTLs are not
// decremented, as with IPVS.
//
// # Connections and counters
//
// A connection is an entry in the conns LRU hash keyed by the client's
// 5-tuple (templates share the map with kind=1). Its state and flags
// (INACTIVE, NOOUTPUT) are one word changed by compare-and-swap, using the
// kernel's tables (conn.h): full for NAT, input-only for DR/TUN/Local. The
// move between ActiveConn and InActConn that a state change implies is an
// atomic add on dest_live, done by the CPU whose swap succeeded. Entries
// expire by deadline: the data path treats an expired entry as gone and
// removes it; Go's sweeper removes the rest through the govs_expire
// syscall program, so Go never writes a counter. Whoever's
// bpf_map_delete_elem succeeds decrements the counters: exactly once.
// An entry evicted by the LRU (table full) leaks its count; size the table
// (Options.MaxConns) for the load.
//
// A TCP SYN for a connection in TIME_WAIT starts a new connection
// (conn_reuse_mode 1). Persistence templates (per masked client and
// service; fwmark services keyed by the mark) are refreshed by each new
// connection and dropped when their destination left the service; unlike
// the kernel and the engine, a template does not track the connections it
// controls, so it can expire while they still run.
//
// # Scheduling: who computes what
//
// All decisions for a new connection are made in BPF, from state Go keeps
// in maps; a differential test runs one packet sequence (with random
// opens, ACKs, FINs, RSTs, weight edits, destination removals and
// additions) through Program.Run and through package engine and requires
// the same realserver for every new connection.
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
//   - mh, lblc, lblcr, twos: not yet; CheckService refuses them with
//     ErrUnsupported. mh needs SipHash-1-3 in BPF (sched.HashMH) and a
//     4093-slot table; lblc/lblcr per-address state with expiry; twos a
//     random source shared with the reference.
//
// The loops run under bpf_loop with their context in a per-CPU map
// rather than on the stack (see "Verifier notes").
//
// # Pinning and restart
//
// New pins every map (except per-CPU scratch) and every TCX link under
// Options.PinPath (/sys/fs/bpf/govs, mounting bpffs if needed). On start it
// adopts the pinned maps, rebuilds its view of services and destinations
// from them (the control plane's replay of its configuration then updates
// them in place), and moves each pinned link to the newly loaded program
// with link.Update, so forwarding never stops. Close leaves everything
// pinned; Remove detaches and deletes it all.
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
//   - BPF_PROG_TEST_RUN hands the program a linear skb, while real traffic
//     arrives with the payload in fragments: length fields must be checked
//     against skb->len, headers against data_end. The fixtures could not
//     catch that; the namespace tests did. Test runs also refuse frames
//     whose ethertype is IPv4/IPv6 but whose IP header is cut short
//     (EINVAL), so those cases are covered by parse.h's bounds checks
//     (which the verifier enforces) rather than by fixtures.
//
// # veth notes
//
// TC (TCX) redirect works on veth with default settings, including back
// out of the ingress device (one-armed director on a bridge). Packets from
// a local sender on veth carry partial checksums (CHECKSUM_PARTIAL);
// bpf_l4_csum_replace with BPF_F_PSEUDO_HDR handles them. For TUN the
// realserver must clamp the MSS (route advmss) or raise its MTU: a
// full-size frame plus the outer header exceeds the veth MTU and is
// dropped. XDP is not implemented yet (New refuses Options.XDP); on veth
// it would need an XDP program or GRO on the peer of the egress device.
//
// # Testing
//
// Tier 2 (fixtures, Program.Run): TestFixture* run packets built with
// gopacket through govs_tc inside a namespace with static neighbours, and
// compare output bytes (so checksums are checked exactly) and verdicts.
// TestDiffSchedulers is the differential test against package engine.
// Tier 3 (TestNetns*): client, director and two realservers on a bridge,
// HTTP through the VIP by NAT, DR, TUN/IPIP and TUN/GUE, and a restart
// under an open connection. All need root; without root they skip with a
// message, as root a failure to load BPF fails them.
package ebpf
