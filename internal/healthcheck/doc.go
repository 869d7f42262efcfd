// Package healthcheck checks realservers the way keepalived's checker
// process does, so a keepalived.conf gives the same behaviour under govs.
//
// # Checkers
//
// One [Checker] interface, one file per keepalived checker kind: [TCP]
// (TCP_CHECK), [HTTP] (HTTP_GET and SSL_GET: paths, status_code ranges,
// genhash's MD5 digest, virtualhost, SNI, regex), [SMTP] (SMTP_CHECK),
// [DNS] (DNS_CHECK), [Misc] (MISC_CHECK with misc_dynamic), [UDP]
// (UDP_CHECK), [Ping] (PING_CHECK) and [File] (FILE_CHECK), plus govs's
// [Path] (check_via_vip). Option
// structs use keepalived's keyword names; the caller resolves defaults
// (connect_ip and connect_port from the realserver, timers from the
// virtual server) before constructing a checker.
//
// # The VIP's path
//
// [Path] is govs's check_via_vip for DR and TUN realservers: instead of
// connecting to the RIP it sends a TCP SYN to VIP:port the way the
// director forwards (DR: an Ethernet frame to the realserver's MAC; TUN:
// encapsulated in IPIP, IPv6-in-IPv6 or GUE to the RIP), reads the answer
// on an AF_PACKET socket with a BPF filter, and resets the half-open
// connection. On the director's segment it also asks who answers ARP (or
// neighbour solicitations) for the VIP: a realserver that does has the
// LVS-mini-HOWTO's "arp problem" and is down ([ErrARPProblem]). A RST is
// [ErrRefused], an ICMP error [ErrUnreachable], silence [ErrTimeout].
// Linux only: elsewhere [NewPath] fails with [ErrNotSupported].
//
// # Timing and state
//
// A [Runner] runs the checkers of one realserver: warmup, delay_loop,
// retry and delay_before_retry, alpha, several checkers per realserver
// (down if any is down), dynamic weights; it reports transitions as
// [Event] values and exposes [Runner.Status] for metrics. Its [Clock] is
// injectable (healthchecktest.FakeClock).
//
// # Policy
//
// A [Policy] is keepalived's ipwrapper logic for one virtual service,
// pure: fed realserver states and weights, it returns [Action] values
// (add, edit, delete destination, on ipvs types) and sends script runs
// (quorum_up, quorum_down, notify_up, notify_down) to a [Notifier]. It
// implements inhibit_on_failure, quorum with hysteresis, sorry_server
// (and sorry_server_inhibit), alpha start and omega shutdown.
//
// # What it is not
//
// It does not parse keepalived.conf (package config does) and does not
// touch the IPVS table: the director applies the actions and wires runner
// events into the policy. It sends no SMTP alerts.
package healthcheck
