// Command govsd is the govs director daemon: it holds the virtual service
// table (package engine), forwards with a data plane (--dataplane proxy or
// ebpf), serves the administration API on a unix socket for govsadm
// (--socket, default /run/govs/govsd.sock or $GOVS_SOCKET) and exports
// Prometheus metrics (--metrics-address, default 127.0.0.1:9477).
//
//	govsd --dataplane proxy --socket /tmp/govsd.sock
//	GOVS_SOCKET=/tmp/govsd.sock govsadm -A -t 10.0.0.1:80 -s rr
//
// It starts with an empty table, or with the rules of --rules FILE (the
// ipvsadm -S format). SIGTERM or SIGINT stops it: the API and metrics
// listeners close, the socket is removed and the data plane is closed.
//
// # What it is not
//
// main only parses flags, wires the parts together and handles signals;
// everything else is in internal/. keepalived.conf (-f) and connection
// sync are later work.
package main
