// Package proxy is the userspace data plane: a Linux Virtual Server
// director made of ordinary sockets, for hosts without IPVS or BPF and for
// users who want NAT (ipvsadm -m) semantics with no root at all.
//
// Every TCP virtual service is a listener on VIP:port and every UDP
// virtual service a socket bound to VIP:port. The decisions are not made
// here: each connection drives the same [engine.Engine] the control plane
// configured, with packets synthesized to look like what a NAT director
// sees, so scheduling, persistence, quiescent destinations, thresholds,
// connection states, ActiveConn/InActConn and the traffic counters behave
// as with the kernel's LVS-NAT. The proxy only moves the bytes.
//
// # TCP
//
// On accept the proxy calls Process with the client's SYN; the verdict's
// destination is dialled (WithDialTimeout). A successful dial is told to
// the engine as the server's SYN|ACK and the client's ACK, so the entry
// goes SYN_RECV -> ESTABLISHED and counts in ActiveConn; a failed dial
// is the server's RST (CLOSE, InActConn) and the client is reset. Data is
// moved with splice(2) through a pipe, zero-copy, and every chunk a
// splice returns is reported as one ACK packet carrying its length, in its
// direction, before it is forwarded. End of stream from either side is
// that side's FIN, passed on with a half-close (shutdown SHUT_WR), so the
// entry walks ESTABLISHED -> CLOSE_WAIT/FIN_WAIT -> TIME_WAIT and then
// expires on the engine's timeouts, as ipvsadm users expect of
// short-lived HTTP connections (InActConn counts them for two minutes).
// A reset from either side is that side's RST and resets the other side.
// Sockets get TCP keep-alive (Go's defaults) only once the connection
// has lived for a second: setting it costs eight system calls, which
// most short connections end before needing.
// When the engine refuses a chunk (its entry expired, or the destination
// was removed with expire_nodest_conn) both sides are reset, which is what
// the endpoints of a kernel NAT director see in the same case.
//
// # UDP
//
// A flow is a client address and the destination the engine chose for
// it. Each has a connected socket to the destination; replies are sent
// back to the client from the service's socket, so they come from the
// VIP. Every datagram is one Process call each way. A flow's socket is
// closed when it has been idle for the engine's current UDP timeout
// (ipvsadm --set); the engine's own entry expires by the same timeout
// when the daemon calls Expire. With one-packet scheduling (-o) every
// datagram is scheduled on its own.
//
// # PROXY protocol
//
// A destination whose [ipvs.Destination].ProxyProtocol is 1 or 2 (govsadm
// -a/-e --proxy-protocol, the API's proxy_protocol, keepalived.conf's
// proxy_protocol in a real_server) gets a PROXY protocol header (haproxy's
// proxy-protocol.txt) carrying the client's address and the virtual
// service's: version 1 (text, TCP services only) or version 2 (binary;
// for UDP it is prepended to every datagram of the flow). The proxy reads
// the setting from the engine's configuration when a connection or flow
// starts, so a change takes effect for new connections only. The header
// is written after the realserver accepts and before any of the client's
// bytes; the engine's byte counters do not count it, as it is not the
// client's traffic.
//
// # What it is not
//
// It does not forward by direct routing (Route), tunnelling (Tunnel) or
// to the local node (Local), nor firewall-mark, SCTP or port-0 services:
// CheckService and CheckDest refuse these with errors wrapping
// [dataplane.ErrUnsupported] that point to the ebpf data plane. It keeps
// no timers of its own for TCP: entries expire when the daemon calls
// engine.Expire. It does not preserve the client's address on the wire
// (realservers see the director's address), which is what the PROXY
// protocol is for.
//
// Listening sockets are bound with IP_FREEBIND, so a service can be
// loaded before its VIP arrives on the host, as on a keepalived backup.
package proxy
