// Package director is govsd's control plane: it implements api.Director
// over an engine (the configuration truth, with the kernel's semantics)
// and a data plane (what forwards the packets), and keeps the two in
// agreement.
//
// # Changes
//
// Every addition or edit goes: the data plane checks it can forward the
// change (CheckService, CheckDest), the engine applies it with the
// kernel's rules (validation, duplicates, defaults), and the data plane
// mirrors what the engine now holds. If the data plane fails, the engine
// is rolled back. Deletions go to the data plane first and the engine
// second, so no deletion ever needs undoing in the engine (which would
// lose the counters and connections it keeps for removed destinations).
// Flush is a deletion of each service in turn. Changes are serialised.
//
// Apply runs a batch of such changes (govsadm -R's table commands) under
// one hold of the lock, each op exactly as its single-change method (its
// own check, engine change, mirror and rollback); the first op that fails
// stops the batch, and the ops before it stay applied. A destination
// change costs the same at any table size: the director keeps the
// services' settings by key, so adding a destination does not copy its
// service out of the engine.
//
// # Reads
//
// Services, Service and Conns come from the data plane, which knows the
// live counters; Timeouts from the engine; Info reports IPVS version
// 1.2.1 and a connection table size of 4096, as the kernel does.
//
// # What it is not
//
// # Connection sync
//
// StartDaemon, StopDaemon and Daemons are ipvsadm's --start-daemon,
// --stop-daemon and -L --daemon (sync.go), one daemon per role as in the
// kernel. A master sends the data plane's connection updates by the
// kernel's rules (connsync.Master): the engine feeds it per packet; a data
// plane with its own table (ConnSyncer: ebpf) is polled every
// PollInterval and a Poller turns the differences into the same rules. A
// master also announces every established connection and template every
// SweepPeriod. A backup installs what it receives in the engine, or in a
// ConnSyncer's table. SyncStatus feeds the VRRP readiness gate (package
// ha).
//
// # What it is not
//
// It does not forward, schedule or health-check, and it does not decide
// the sync role: ipvsadm or package ha (following VRRP) does.
package director
