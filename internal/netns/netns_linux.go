package netns

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/govs/govs/internal/testenv"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// RequireRoot skips tb when not running as root, saying why (in CI, where
// GOVS_REQUIRE_PRIVILEGED=1, it fails instead; see internal/testenv); as
// root it does nothing, so a broken environment fails the test loudly.
// Outside tests (an Env) not being root is a failure.
func RequireRoot(tb TB) {
	tb.Helper()
	if t, ok := tb.(testing.TB); ok {
		testenv.Root(t)
		return
	}
	if os.Geteuid() != 0 {
		tb.Fatal("needs root (network namespaces, BPF): run it as root")
	}
}

// NS is a network namespace created for a test.
type NS struct {
	tb     TB
	Name   string
	handle netns.NsHandle
	nl     *netlink.Handle
}

var counter atomic.Uint64

// New creates an empty network namespace with lo up, removed at the end of
// the test. Its name is unique per process (govs-<pid>-<n>-<name>) and it
// is also visible to `ip netns` while the test runs.
func New(tb TB, name string) *NS {
	tb.Helper()
	RequireRoot(tb)
	full := fmt.Sprintf("govs-%d-%d-%s", os.Getpid(), counter.Add(1), name)
	if len(full) > 64 {
		full = full[:64]
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		tb.Fatalf("get current netns: %v", err)
	}
	h, err := netns.NewNamed(full)
	if serr := netns.Set(orig); serr != nil {
		panic(fmt.Sprintf("netns: cannot return to the original namespace: %v", serr))
	}
	orig.Close()
	runtime.UnlockOSThread()
	if err != nil {
		tb.Fatalf("create netns %s: %v", full, err)
	}
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		h.Close()
		_ = netns.DeleteNamed(full)
		tb.Fatalf("netlink handle in %s: %v", full, err)
	}
	n := &NS{tb: tb, Name: full, handle: h, nl: nl}
	tb.Cleanup(func() {
		nl.Close()
		h.Close()
		if err := netns.DeleteNamed(full); err != nil {
			tb.Errorf("delete netns %s: %v", full, err)
		}
	})
	lo, err := nl.LinkByName("lo")
	if err == nil {
		err = nl.LinkSetUp(lo)
	}
	if err != nil {
		tb.Fatalf("set lo up in %s: %v", full, err)
	}
	return n
}

// Handle returns the namespace's handle (an open file descriptor).
func (n *NS) Handle() netns.NsHandle { return n.handle }

// Netlink returns a netlink handle that works in the namespace.
func (n *NS) Netlink() *netlink.Handle { return n.nl }

// Do runs f on a thread switched into the namespace.
func (n *NS) Do(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(n.handle); err != nil {
		return fmt.Errorf("enter netns %s: %w", n.Name, err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			// The thread is in the wrong namespace: never let it run
			// other goroutines.
			panic(fmt.Sprintf("netns: cannot return to the original namespace: %v", err))
		}
	}()
	return f()
}

// MustDo is Do that fails the test on error.
func (n *NS) MustDo(f func() error) {
	n.tb.Helper()
	if err := n.Do(f); err != nil {
		n.tb.Fatal(err)
	}
}

// Sysctl sets a sysctl inside the namespace, key in dotted or slashed form
// ("net.ipv4.ip_forward").
func (n *NS) Sysctl(key, value string) {
	n.tb.Helper()
	path := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	n.MustDo(func() error {
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s in %s: %w", key, value, n.Name, err)
		}
		return nil
	})
}

// EnableForwarding turns on IPv4 and IPv6 forwarding.
func (n *NS) EnableForwarding() {
	n.Sysctl("net.ipv4.ip_forward", "1")
	n.Sysctl("net.ipv6.conf.all.forwarding", "1")
}

// Link is one end of a veth pair.
type Link struct {
	NS    *NS
	Name  string
	Index int
	MAC   net.HardwareAddr
}

// Veth creates a veth pair with ends aName in a and bName in b, both up.
// MACs are fixed when given (nil: random).
func Veth(tb TB, a *NS, aName string, aMAC net.HardwareAddr, b *NS, bName string, bMAC net.HardwareAddr) (*Link, *Link) {
	tb.Helper()
	la := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: aName, HardwareAddr: aMAC},
		PeerName:  bName,
	}
	if bMAC != nil {
		la.PeerHardwareAddr = bMAC
	}
	if err := a.nl.LinkAdd(la); err != nil {
		tb.Fatalf("add veth %s/%s in %s: %v", aName, bName, a.Name, err)
	}
	peer, err := a.nl.LinkByName(bName)
	if err != nil {
		tb.Fatalf("find veth peer %s: %v", bName, err)
	}
	if b != a {
		if err := a.nl.LinkSetNsFd(peer, int(b.handle)); err != nil {
			tb.Fatalf("move %s to %s: %v", bName, b.Name, err)
		}
	}
	return a.up(aName), b.up(bName)
}

func (n *NS) up(name string) *Link {
	n.tb.Helper()
	l, err := n.nl.LinkByName(name)
	if err != nil {
		n.tb.Fatalf("find %s in %s: %v", name, n.Name, err)
	}
	if err := n.nl.LinkSetUp(l); err != nil {
		n.tb.Fatalf("set %s up: %v", name, err)
	}
	return &Link{NS: n, Name: name, Index: l.Attrs().Index, MAC: l.Attrs().HardwareAddr}
}

func (l *Link) link() netlink.Link {
	l.NS.tb.Helper()
	nl, err := l.NS.nl.LinkByIndex(l.Index)
	if err != nil {
		l.NS.tb.Fatalf("find link %s: %v", l.Name, err)
	}
	return nl
}

// AddAddr adds a prefix ("10.0.0.1/24") to the link, without duplicate
// address detection so IPv6 addresses are usable at once.
func (l *Link) AddAddr(prefix string) {
	tb := l.NS.tb
	tb.Helper()
	p := netip.MustParsePrefix(prefix)
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		a.Flags = 0x02 // IFA_F_NODAD
	}
	if err := l.NS.nl.AddrAdd(l.link(), a); err != nil {
		tb.Fatalf("add %s to %s: %v", prefix, l.Name, err)
	}
}

// AddNeigh adds a permanent neighbour entry on the link.
func (l *Link) AddNeigh(addr string, mac net.HardwareAddr) {
	tb := l.NS.tb
	tb.Helper()
	ip := netip.MustParseAddr(addr)
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	n := &netlink.Neigh{LinkIndex: l.Index, Family: fam, State: netlink.NUD_PERMANENT, IP: ip.AsSlice(), HardwareAddr: mac}
	if err := l.NS.nl.NeighSet(n); err != nil {
		tb.Fatalf("add neighbour %s on %s: %v", addr, l.Name, err)
	}
}

// SetMTU sets the link's MTU.
func (l *Link) SetMTU(mtu int) {
	l.NS.tb.Helper()
	if err := l.NS.nl.LinkSetMTU(l.link(), mtu); err != nil {
		l.NS.tb.Fatalf("set mtu of %s: %v", l.Name, err)
	}
}

// AddRoute adds a route to dst ("0.0.0.0/0", "fd00::/64") via gw (may be
// empty for an on-link route) out of the link. advmss, if non-zero, sets
// the route's advertised MSS (the TUN-mode clamp).
func (l *Link) AddRoute(dst, gw string, advmss int) {
	tb := l.NS.tb
	tb.Helper()
	p := netip.MustParsePrefix(dst)
	r := &netlink.Route{
		LinkIndex: l.Index,
		Dst:       &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		AdvMSS:    advmss,
	}
	if gw != "" {
		r.Gw = netip.MustParseAddr(gw).AsSlice()
	}
	if err := l.NS.nl.RouteAdd(r); err != nil {
		tb.Fatalf("add route %s via %q dev %s: %v", dst, gw, l.Name, err)
	}
}

// AddLoopbackAddr adds addr as a host address (/32 or /128) on lo: a
// realserver's VIP in DR and TUN.
func (n *NS) AddLoopbackAddr(addr string) {
	n.tb.Helper()
	a := netip.MustParseAddr(addr)
	(&Link{NS: n, Name: "lo", Index: 1}).AddAddr(netip.PrefixFrom(a, a.BitLen()).String())
}

// MustParseMAC parses a MAC address or panics.
func MustParseMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// Bridge creates a bridge named name in n, up.
func (n *NS) Bridge(name string) *Link {
	n.tb.Helper()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
	if err := n.nl.LinkAdd(br); err != nil {
		n.tb.Fatalf("add bridge %s in %s: %v", name, n.Name, err)
	}
	return n.up(name)
}

// SetMaster enslaves the link to bridge br (same namespace).
func (l *Link) SetMaster(br *Link) {
	l.NS.tb.Helper()
	if err := l.NS.nl.LinkSetMasterByIndex(l.link(), br.Index); err != nil {
		l.NS.tb.Fatalf("enslave %s to %s: %v", l.Name, br.Name, err)
	}
}

// SetGRO turns generic receive offload on a veth on or off; native XDP on
// a veth needs GRO (or an XDP program) on the peer of the egress device.
func (l *Link) SetGRO(on bool) {
	l.NS.tb.Helper()
	v := "off"
	if on {
		v = "on"
	}
	l.NS.MustDo(func() error {
		return runIn("ethtool", "-K", l.Name, "gro", v)
	})
}

// SetTxChecksum turns transmit checksum offload on a veth on or off. A
// packet sent with offload carries a partial checksum (CHECKSUM_PARTIAL)
// that native XDP on the receiving side loses: senders whose packets an
// XDP program forwards must compute full checksums.
func (l *Link) SetTxChecksum(on bool) {
	l.NS.tb.Helper()
	v := "off"
	if on {
		v = "on"
	}
	l.NS.MustDo(func() error {
		return runIn("ethtool", "-K", l.Name, "tx", v)
	})
}
