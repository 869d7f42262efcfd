// Package ipvs is the model of an IP Virtual Server table: virtual services,
// their destinations (realservers) and the live per-destination counters that
// the schedulers read and the connection table writes.
//
// The types map one to one onto what ipvsadm can set and what the kernel's
// include/uapi/linux/ip_vs.h carries, so that a line of `ipvsadm -S` output,
// a keepalived virtual_server block and an API request all become the same
// [Service] and [Destination] values. Validation follows the kernel's rules in
// net/netfilter/ipvs/ip_vs_ctl.c and ipvsadm's own range checks, and reports
// every problem it finds, each naming the field and the value.
//
// # What it is not
//
// This package holds no tables and does no I/O. The service table with the
// kernel's list semantics lives in package engine; schedulers in package
// sched; connection states in package conn.
package ipvs
