// Package vrrp is govs's VRRP: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798,
// IPv4 and IPv6, sub-second adverts), interoperable with keepalived, so
// that two directors share their virtual addresses and one takes over
// when the other fails.
//
// It is not a keepalived.conf parser (package config is; the daemon maps
// a vrrp_instance onto Config, whose fields carry keepalived's keyword
// names), not the connection synchronisation daemon (it follows the VRRP
// state through SystemActionsConfig.OnTransition), and it does not run
// vrrp_script checks: their results come in through Node.SetTracked.
//
// # Sections
//
// Packets: Advert, Marshal, Decode and DecodeIPv4 encode and decode
// advertisements. The v2 checksum covers the VRRP message only; the v3
// checksum includes the IPv4 or IPv6 pseudo-header. Decode checks what
// the message alone tells (version, type, length, checksum); the checks
// that need the instance (TTL 255, VRID, authentication, interval,
// addresses) are Node's.
//
// State machine: Node runs one vrrp_instance: INIT, BACKUP, MASTER and
// keepalived's FAULT. It follows keepalived where the RFCs leave a choice:
// priority 255 takes over at once; state MASTER waits one advert interval
// instead of three; a master answers a lower priority advert with its own;
// a stopping master sends priority 0 and a backup then waits only its skew
// time; preempt_delay counts from the first lower priority advert heard;
// track_interface and track_script change the priority by their weight,
// or cause FAULT when their weight is 0. A Node touches the world only
// through two interfaces, Conn (adverts) and Actions (addresses,
// gratuitous ARP / unsolicited NA, notify scripts), and reads time from a
// Clock, so the state machine is tested step by step without sockets or
// sleeps (package vrrptest has the fakes).
//
// System: Dial opens the real Conn, a raw IP socket of protocol 112 bound
// to the interface, joined to 224.0.0.18 or ff02::12 (or unicast peers),
// sending with TTL 255. NewSystemActions adds and removes addresses with
// netlink and announces them with mdlayher/arp and mdlayher/ndp. Both
// take a network namespace path, which the namespace tests use. Other
// operating systems get ErrUnsupported. The interface's own MAC address
// is used, as keepalived does by default; no virtual MAC.
//
// # Tests
//
// go test runs the packet golden tests, fuzz seeds and the state machine
// tests. As root it also runs TestNetnsVRRPElection (two govs nodes in two
// namespaces), TestNetnsVRRPKeepalived (govs against keepalived, if
// installed) and TestNetnsTsharkDecodesAdverts (if tshark is installed).
package vrrp
