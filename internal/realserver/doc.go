// Package realserver prepares a Linux host to be an LVS realserver for
// the DR and TUN forwarding methods (`govsadm realserver setup|status|
// teardown`): what the seeds' HOWTOs have users do by hand, done
// idempotently and reversibly. It is not the director, and it has nothing
// to do for NAT (a realserver behind NAT only routes through the
// director).
//
// # What setup does
//
//   - The VIPs on lo (or --dev, which must be a NOARP device) as host
//     addresses, /32 or /128 (IPv6 without DAD). A VIP found on another
//     device, or on lo with a wider prefix, is an error: either would
//     answer ARP for the VIP or make a whole subnet local.
//   - For IPv4 VIPs, net.ipv4.conf.{all,<dev>}.arp_ignore=1 and
//     arp_announce=2, as the seeds do for all and lo. The kernel uses the
//     larger of all and the receiving device, so all is what hides the
//     VIP from ARP requests arriving on the real interfaces; arp_ignore
//     values 2 and 8 also hide it and are left alone (3 does not: it
//     answers for global addresses on any device). IPv6 needs nothing:
//     the kernel answers neighbour solicitations only for addresses of
//     the receiving device.
//   - TUN, IPv4: rp_filter on all and on each ingress device set to 2
//     (loose, RFC 3704) when it is 1 (strict); 0 and 2 are left alone.
//     The kernel uses max(all, device), so both matter. With the kernel's
//     ipip module the inner packet appears on tunl0, where no route to
//     the client points, which is why the HOWTOs turn rp_filter off
//     there. Here the BPF decapsulator hands the inner packet to the stack
//     as received on the physical device, so the check only fails for
//     asymmetric routing (replies leave by another device, which
//     ip-sysctl.rst says is what loose mode is for): loose mode keeps
//     spoofing protection for unroutable sources and is enough.
//   - TUN: the decapsulator of package ebpf (govs_decap, IPIP,
//     IPv6-in-IPv6 and GUE on --gue-port) at TCX ingress of each ingress
//     device (--ingress-dev, default the devices of the default routes),
//     pinned in bpffs (--bpf-dir, under netns-<inode>/<dev>/, since bpffs
//     is shared by all namespaces) so it outlives govsadm: this kernel
//     has no ipip module.
//   - TUN: the MSS clamp. The director adds 20 bytes (IPIP; 40 for IPv6)
//     or 32 (GUE; 52) to each packet from the client, so a full-size
//     segment no longer fits the path. setup sets the advmss metric of
//     every main-table route out of the ingress devices (except
//     link-local and multicast) to MTU - outer header - inner IP and TCP
//     headers (1440 for IPIP, 1428 for GUE at MTU 1500), or --mss; --mtu
//     names the path MTU when it is not the device's. A smaller advmss
//     already there stays. The realserver's SYN-ACK, routed by exactly
//     these routes, then tells the client to send smaller segments. It
//     is plain netlink on any kernel; an nftables "tcp option maxseg size
//     set" rule would limit the clamp to the VIPs but needs the nft tool
//     or a netfilter library and the exthdr expression, and an MTU raise
//     needs the whole path to carry bigger frames. The price: connections
//     from the realserver's own addresses over those routes also get the
//     smaller MSS, and routes added later are not clamped (status shows
//     them).
//
// # State and reversal
//
// Every change is an [Item] with its value before and after. setup
// changes only the items whose current value does not already do the
// job, prints each (before -> after) and records them in the state file
// (/run/govs/realserver.json), keeping the first "before" when run again,
// so a second setup changes nothing and says so, and teardown puts back
// exactly what was there, newest first: it removes only the addresses
// setup added, restores sysctls and advmss, and unpins the decapsulator
// (which detaches it). Items teardown cannot restore stay in the state
// file for another try. status compares the host with the configuration
// (the last setup's by default) and fails when something is missing.
//
// # Testing
//
// All reading and changing of the host goes through [System]; the
// planner, setup, status and teardown are tested against the in-memory
// fake of package realservertest without root. TestNetnsRealserver* run
// the real System in namespaces the tests create (network sysctls are
// per namespace, so /proc/sys is read and written on a thread locked into
// the namespace), and TestNetnsRealserverTunHTTP sends HTTP through the
// eBPF director in TUN mode (IPIP and GUE, full-size frames) to
// realservers set up only by Setup. They need root and skip without it.
package realserver
