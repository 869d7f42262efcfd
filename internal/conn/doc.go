// Package conn holds IPVS connection semantics: the TCP and UDP state
// machines with the kernel's transition tables and timeouts
// (net/netfilter/ipvs/ip_vs_proto_tcp.c, ip_vs_proto_udp.c), and the
// connection table with expiry (ip_vs_conn.c).
//
// The package does no I/O, starts no goroutines and reads no clock:
// callers pass the time. It is not safe for concurrent use; package engine
// serialises every call under its lock.
//
// # States
//
// TCP connections move through the kernel's eleven states (NONE,
// ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT,
// LAST_ACK, LISTEN, SYNACK) by three tables, as in the kernel:
//
//   - INPUT, for client-to-server segments of a connection whose replies
//     also pass the director (NAT);
//   - OUTPUT, for those replies;
//   - INPUT-ONLY, for client-to-server segments of a connection whose
//     replies bypass the director (DR, TUN).
//
// Each segment picks a row by its flags with the precedence RST, SYN,
// FIN, ACK; a segment with none of them moves the connection to CLOSE. A
// new connection that is not NAT carries FlagNoOutput and its input
// segments use INPUT-ONLY; a NAT connection starts without the flag and
// uses INPUT and OUTPUT. The first server-to-client segment a connection
// shows clears FlagNoOutput for good (the kernel's IP_VS_CONN_F_NOOUTPUT
// rule). Every transition re-arms the timer with the
// new state's timeout: ESTABLISHED, FIN_WAIT and UDP come from ipvsadm
// --set ([Timeouts]), the others are the kernel's fixed defaults.
//
// A connection counts as active (its destination's ActiveConns) exactly
// while it is ESTABLISHED; [Entry.Update] reports each crossing so the
// caller can move the count, as set_tcp_state does with
// IP_VS_CONN_F_INACTIVE. UDP connections have one state, shown as "UDP",
// and are always inactive. SCTP is not supported yet ([CheckProtocol]).
//
// # The table
//
// [Table] keeps entries (connections and persistence templates) in chunks
// of 4096 that are allocated as the table grows and then reused through a
// free list, so that in steady state lookups, inserts and refreshes do not
// allocate. Entries hold no Go pointers (addresses are 16-byte arrays,
// links are 32-bit indices), so a table of millions of entries costs the
// garbage collector nothing to scan.
//
// Two chained hash indexes find entries: by the key of the client's
// packets (client -> virtual address, [MakeKey]) and, for NAT connections,
// by the key of the realserver's replies (realserver -> client), so the
// reply direction is one lookup too. Templates have keys of their own kind
// ([TemplateKey], [FWMarkTemplateKey]).
//
// # Expiry
//
// Entries expire on a timing wheel of 4096 one-second slots, driven by the
// times callers pass to [Table.Expire], [Table.Lookup] and [Table.Touch]:
//
//   - Touch, the per-packet refresh, only stores the new deadline when it
//     is later than the slot the entry waits in (the usual case), and moves
//     the entry to an earlier slot otherwise: O(1) either way.
//   - Expire visits the slots from the last run to now. An entry whose
//     deadline has passed is freed; one that was refreshed meanwhile is
//     re-queued into the slot of its new deadline (lazy re-check). A
//     deadline more than a revolution (about 68 minutes) away is simply
//     looked at once per revolution. Expiring is therefore proportional to
//     the entries expired or re-queued, never to the table's size.
//   - Lookup is exact regardless of how often Expire runs: a found entry
//     whose deadline has passed is expired on the spot.
//
// An entry that controls others (a persistence template with live
// connections, the kernel's n_control) does not expire when its timer
// fires: its timeout becomes 60 seconds and the timer is re-armed, as in
// ip_vs_conn_expire. [Table.OnExpire] is called for every entry freed, so
// the engine can release its destination's counters.
package conn
