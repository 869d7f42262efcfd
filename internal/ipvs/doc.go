// Package ipvs is the model of an IP Virtual Server table: virtual services,
// their destinations (realservers) and the live per-destination counters that
// the schedulers read and the connection table writes.
//
// The types map one to one onto what ipvsadm can set and what the kernel's
// include/uapi/linux/ip_vs.h carries, so that a line of `ipvsadm -S` output,
// a keepalived virtual_server block and an API request all become the same
// [Service] and [Destination] values. The one attribute that is not
// ipvsadm's is marked as a govs extension where it is declared
// ([Destination].ProxyProtocol); it is zero unless a govs interface (govsadm
// under its own name, the API, keepalived.conf's proxy_protocol) sets it,
// so an ipvsadm-shaped table means the same as in the kernel. Validation follows the kernel's rules in
// net/netfilter/ipvs/ip_vs_ctl.c and ipvsadm's own range checks, and reports
// every problem it finds, each naming the field and the value.
//
// # What it is not
//
// This package holds no tables and does no I/O. The service table with the
// kernel's list semantics lives in package engine; schedulers in package
// sched; connection states in package conn.
package ipvs
