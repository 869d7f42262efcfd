// Package connsync is IPVS connection synchronisation between directors:
// the kernel's sync protocol version 1 (net/netfilter/ipvs/ip_vs_sync.c),
// the master's decision of what to send and when, and the backup's rules
// for installing what it receives. A govs director interoperates with a
// kernel IPVS director in either role.
//
// # Sections
//
//   - wire.go: [Encode], [Decode], [Builder]. Messages are laid out byte
//     for byte as the kernel lays them out: an 8-byte header (reserved 0,
//     syncid, size, nr_conns, version 1, spare), then IPv4 (36-byte) or
//     IPv6 (72-byte) entries, each 32-bit aligned, with the optional
//     sequence, PE data and PE name parameters. Legacy version 0 messages
//     are decoded (a kernel backup still accepts them), never sent.
//   - master.go: [Master]. [Master.Packet] is ip_vs_sync_conn: it is called
//     for each incoming packet of a connection with the connection's
//     [SyncState] and applies sync_threshold, sync_period,
//     sync_refresh_period, sync_retries, the TCP/SCTP state rules,
//     templates and one-packet scheduling ([Settings]). Entries are
//     batched per sync thread into messages of at most sync_maxlen bytes,
//     kept at most 2 s, queued up to sync_qlen_max and sent by
//     [Master.Run] through a [Sender].
//   - backup.go: [Backup]. [Backup.Process] is ip_vs_process_message: it
//     checks the syncid and the format, masks the flags
//     (IP_VS_CONN_F_BACKUP_MASK, and IP_VS_CONN_F_BACKUP_UPD_MASK for an
//     entry it already has), fills a missing timeout from the state, and
//     calls a [Table] to Install, Update or Remove entries.
//   - config.go: [Config] is ipvsadm --start-daemon master|backup with its
//     --mcast-* options and keepalived's lvs_sync_daemon; [Settings] are
//     the sync sysctls.
//   - sender_linux.go: [Dial] and [Listen] open the multicast sockets as
//     make_send_sock and make_receive_sock do (group 224.0.0.81, port
//     8848+thread, TTL 1, no loopback, no DF, bound to the interface).
//     connsynctest has a recording Sender, a Receiver and a Table.
//
// # What it is not
//
// connsync holds no connection table: the engine owns entries and their
// SyncState and implements [Table]. It decides nothing about roles: the
// daemon starts a Master or a Backup (or both, as the kernel allows) and
// switches them as VRRP says, as described below.
//
// # Deviations from the kernel
//
//   - A message is closed at 255 entries (nr_conns is a byte; the kernel
//     does not check, which matters only with a sync_maxlen above ~9 KB).
//   - Queued messages are sent as soon as they are queued, not after the
//     kernel's 20 ms batching delay.
//   - SCTP entries are skipped by the backup until the connection table
//     supports SCTP; the only persistence engine known is "sip".
//   - Version 0 sequence options are read as little-endian (the kernel
//     copies them in the sender's host order).
//
// # Returning masters: learn first, then preempt
//
// A director that starts (or restarts) has an empty connection table. If
// it took the VIP at once, every established connection's next packet
// would find no entry: a TCP segment that is not a SYN is dropped by the
// engine (or, on a kernel director, answered with a reset by the local
// stack), and the connection dies. The rule is: a director that comes
// back must not serve the VIP before it has the state, so it stays backup
// until it has learnt it. The daemon and VRRP cooperate like this:
//
//  1. Always start as sync backup. Whatever keepalived.conf says (state
//     MASTER, a higher priority), govsd starts the Backup on the sync
//     interface before it starts VRRP, so no message is missed, and VRRP
//     starts in BACKUP state.
//
//  2. Learn. The current master's Packet rules resend an active
//     ESTABLISHED connection every sync_period packets (or when its
//     expiry moved by sync_refresh_period), and every state change; that
//     does not cover idle connections (a held-open connection with no
//     traffic is never resent). So the master also sweeps its table: every
//     SweepPeriod (default 30 s, rate-limited to the message queue), the
//     daemon walks the engine's entries and calls [Master.Announce] for
//     each established connection and template. Announce uses the normal
//     v1 format, so kernel backups benefit too.
//
//  3. Readiness gate. The backup is ready when it has been receiving for
//     at least one SweepPeriod plus a margin (2 x CheckPeriod) since the
//     first message of its syncid ([Backup.LastHeard] tells whether a
//     master is talking at all), or when no message arrived for a whole
//     SweepPeriod (there is no master to learn from: nothing to lose). Until
//     ready, the daemon holds VRRP preemption: the VRRP instance gets a
//     preempt gate (a func() bool the daemon supplies) that makes it behave
//     as nopreempt, i.e. it never sends a higher-priority advertisement to
//     take over a live master. This is the same mechanism as preempt_delay,
//     with the delay ending at readiness instead of after fixed seconds.
//
//  4. Failover is never delayed. The gate only blocks preemption. If the
//     master dies while the backup is still learning, the master-down
//     timer fires as usual and the backup takes over with what it has:
//     partial state is better than none, and the connections it learnt
//     continue.
//
//  5. Role switch follows VRRP (lvs_sync_daemon's instance). Becoming VRRP
//     MASTER: start the Master (the connections learnt as backup are in
//     the engine with their SyncState reset to the threshold, so they are
//     resent on their next packets and by the next sweep), then stop the
//     Backup. Becoming BACKUP or FAULT: stop the Master, discarding what it
//     had queued, and start the Backup. The old master, which now becomes
//     backup, keeps its table: its entries are refreshed by the new
//     master's messages (Update) or expire by their timeouts.
//
//  6. Handing the VIP back. With preemption, the returning higher-priority
//     director becomes ready and then takes over; the director it replaces
//     goes to backup as in step 5. Entries created on the replaced
//     director after the last sweep reach the returning one through the
//     per-packet rules in the interval between readiness and takeover, which
//     is why readiness waits a full sweep after messages start arriving.
//
// What the lead wires: govsd starts connsync.Backup before VRRP; the engine
// implements [Table], keeps a [SyncState] per entry and calls
// [Master.Packet] on each incoming packet while the master role is active;
// a sweep goroutine calls [Master.Announce]; the VRRP instance takes the
// readiness gate.
package connsync
