// Package ha runs the high-availability part of a keepalived.conf in
// govsd: the vrrp_instance blocks (package vrrp does the protocol), their
// vrrp_sync_group and vrrp_script blocks, interface tracking, and
// lvs_sync_daemon, whose role (sync master or backup) follows the state
// of its VRRP instance, behind the readiness gate of connsync's
// returning-master design.
//
// It is not the VRRP state machine (package vrrp), not the sync protocol
// (package connsync) and does not run the sync daemons itself: it asks a
// SyncController (director.Director) to start and stop them, as
// ipvsadm --start-daemon / --stop-daemon would.
//
// # Sections
//
//   - build.go: NewPlan maps config.Config onto vrrp.Config per instance
//     (nopreempt, authentication, unicast peers, the global
//     vrrp_check_unicast_src / vrrp_skip_check_adv_addr, track_script
//     weights resolved from the script when the entry has none, notify
//     scripts, garp settings) and refuses what govs does not do (AH
//     authentication, use_vmac, track_file on instances).
//   - manager.go: Manager. Run starts the sync backup first (no message of
//     a current master is missed), removes addresses a crashed run left
//     behind, then runs the instances. Transitions of the lvs_sync_daemon
//     instance switch the sync role on a goroutine of their own (MASTER:
//     start the sync master, then stop the backup; BACKUP or FAULT: start
//     the backup, then stop the master). A vrrp_sync_group's instances
//     follow each other to MASTER and BACKUP (vrrp.Node.Follow) and share
//     FAULT through a weight-0 tracked object that is down while any
//     member's own weight-0 objects are; the group's notify scripts run
//     once per group state. vrrp_script runs every interval with its
//     timeout, going down after fall failures and up after rise successes
//     (down at start with init_fail). Interfaces are tracked from netlink
//     link notifications: up means administratively up with carrier.
//   - gate.go: Gate, the readiness gate. While the sync backup has not
//     yet heard a full sweep of the master's connections (SweepPeriod
//     plus twice connsync.CheckPeriod after its first message; or one
//     silent SweepPeriod when no master talks), the instance behaves as
//     nopreempt. A dead master is taken over at once: the gate never
//     holds the master down timer.
//
// # Tests
//
// Unit tests run the Manager against vrrptest's fake network and an
// accelerated fake clock with a recording SyncController: the order of
// the role switches and the gate holding preemption. As root,
// TestNetnsHAFailoverDR runs two govsd processes with the ebpf data plane
// in DR mode in namespaces, crashes the master during a download and a
// held-open connection, and brings it back (docs/HA.md has the timings).
package ha
