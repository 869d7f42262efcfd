// Package demo is govsd --demo: a director on the embedded default
// configuration (demo.rules, in ipvsadm -S format), three HTTP
// realservers on loopback addresses, and a client that sends a request
// through the VIP every second and prints which realserver answered, with
// the ipvsadm -Ln table every few requests, so the weighted round robin
// and the ActiveConn/InActConn counters can be watched as they move.
//
// It needs no root: 127.0.0.0/8 is all local on Linux, so the VIP
// (127.0.0.1) and the realservers (127.0.0.2-4) are distinct addresses on
// lo, as a VIP and RIPs would be on a real network.
//
// # What it is not
//
// It is not a test fixture: the end-to-end tests build their own
// services. It configures the director only through api.Director, as
// govsadm would.
package demo
