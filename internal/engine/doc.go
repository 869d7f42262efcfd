// Package engine is the Go reference implementation of an IPVS director's
// decisions: the service table with the kernel's semantics (ip_vs_ctl.c),
// scheduling with persistence (ip_vs_core.c ip_vs_schedule and
// ip_vs_sched_persist), connection entries and their states (ip_vs_conn.c
// with package conn), the per-destination counters the schedulers read,
// and traffic statistics with the kernel's rate estimator (ip_vs_est.c,
// package stats).
//
// It processes abstract packets ([Packet]) and returns what to do with
// them ([Verdict]); it does no I/O, starts no goroutines and reads no
// clock: every method that needs the time takes it. The userspace proxy
// data plane runs on it directly, and the eBPF data plane is proved
// against it packet for packet by differential tests.
//
// An Engine is safe for concurrent use: every method takes its one lock.
//
// # The service table
//
// Services are added, edited and deleted as ip_vs_ctl.c does it. A
// service is checked with ipvs.Service.SetDefaults and Validate, its
// scheduler looked up by name (errors wrap ipvs.ErrNoScheduler), and SCTP
// services and persistence engines are refused as not supported yet.
// Destinations are inserted at the head of the service's list and the
// scheduler's AddDest, DelDest and UpdDest hooks run where the kernel runs
// add_dest, del_dest and upd_dest; editing a service's scheduler binds a
// new instance over the current list. A removed destination (or every
// destination of a removed service) goes to a trash, like the kernel's:
// it is no longer available, its connections continue (or, with
// ExpireNodestConn, are dropped), and adding it again while it is there
// revives it with its connection counts and, within the same service,
// its traffic counters. It is freed once it has had no connections for
// TrashPeriod.
//
// # Packets
//
// [Engine.Process] follows ip_vs_in for client-to-VIP packets: look the
// connection up by its addresses; if there is none, find the service
// (firewall mark, then address and port, then the address's port-zero
// service) and schedule, which for TCP happens only on a SYN; move the
// connection's state by the TCP tables of package conn (input-only for DR
// and TUN until a reply is seen) and re-arm its timer; count packets and
// bytes on its service and destination. Persistent services go through
// templates keyed by the client address masked with the service's netmask
// (and the mark, for firewall-mark services, across all ports), which
// live while they control connections and are refreshed by every new
// connection they place. A SYN that reuses the ports of a connection in
// TIME_WAIT starts a new connection, as with the kernel's default
// conn_reuse_mode. Realserver-to-client packets of NAT connections follow
// ip_vs_out.
//
// # Verdicts and the data planes
//
// A [Verdict] is what the kernel's hooks would do with the packet:
//
//   - Pass: the packet is not for a virtual service (or is a reply of a
//     connection that is not NAT). The eBPF data plane returns it to the
//     stack (TC_ACT_OK / XDP_PASS); the proxy, which only sees traffic to
//     its own listeners, never gets it.
//   - Forward: send the packet to Verdict.Dest by Verdict.Fwd. For the
//     eBPF data plane that is the rewrite (NAT: destination address and
//     port; DR: destination MAC; TUN: encapsulation) and redirect; for a
//     DirOut NAT reply, the source becomes Verdict.Virtual. For the proxy,
//     a Forward with New set is "dial Verdict.Dest for this client" and a
//     Forward of an existing connection is "keep relaying"; it feeds the
//     engine synthesized segments (SYN, ACK, FIN, RST, in both directions)
//     so that states, counters and -Lc match what the kernel would show.
//   - Drop: the packet is for a service but cannot be forwarded: no
//     destination could take a new connection (the error wraps
//     sched.ErrNoDestination; the kernel sends ICMP port unreachable), or
//     a TCP segment other than a SYN for no known connection. The eBPF
//     data plane drops it; the proxy refuses the connection (or datagram).
//
// Verdict.State is the connection's state after the packet, as ipvsadm
// -Lc prints it.
//
// # Time
//
// Connection expiry, the flush of connections to removed destinations,
// the trash and the rate estimator's two-second samples all run from
// [Engine.Expire], which callers call about once a second. Lookups are
// exact between runs (an entry past its timeout is never used), and
// [Engine.Services] and [Engine.Conns] expire what is due at the time they
// are given before they take their snapshot.
package engine
