package vrrp_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/govs/govs/internal/testenv"
	"github.com/govs/govs/internal/vrrp"
)

// side is one end of a veth pair, in its own named network namespace.
type side struct {
	ns     string // name under /var/run/netns
	path   string
	ifname string
	addr   netip.Prefix
	h      *netlink.Handle
}

func needRoot(t *testing.T) {
	t.Helper()
	testenv.Root(t)
}

// newPair builds two namespaces joined by a veth pair, addressed from
// 10.99.N.0/24 (IPv4) and with IPv6 link-local addresses ready (no DAD).
// Everything is deleted on cleanup.
func newPair(t *testing.T, n int) (a, b *side) {
	t.Helper()
	id := os.Getpid() % 100000
	a = &side{ns: fmt.Sprintf("govs-vrrp-%d-%da", id, n), ifname: fmt.Sprintf("gv%da%d", n, id)}
	b = &side{ns: fmt.Sprintf("govs-vrrp-%d-%db", id, n), ifname: fmt.Sprintf("gv%db%d", n, id)}
	a.addr = netip.MustParsePrefix(fmt.Sprintf("10.99.%d.1/24", n))
	b.addr = netip.MustParsePrefix(fmt.Sprintf("10.99.%d.2/24", n))
	for _, s := range []*side{a, b} {
		s.path = "/var/run/netns/" + s.ns
		createNamedNetns(t, s.ns)
		ns, err := netns.GetFromName(s.ns)
		if err != nil {
			t.Fatal(err)
		}
		s.h, err = netlink.NewHandleAt(ns)
		ns.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.h.Close)
		// No duplicate address detection: link-local addresses are
		// usable at once.
		for _, f := range []string{"accept_dad", "dad_transmits"} {
			writeSysctlIn(t, s.ns, "/proc/sys/net/ipv6/conf/default/"+f, "0")
		}
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a.ifname}, PeerName: b.ifname}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("create veth: %v", err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(a.ifname); err == nil {
			netlink.LinkDel(l)
		}
	})
	for _, s := range []*side{a, b} {
		l, err := netlink.LinkByName(s.ifname)
		if err != nil {
			t.Fatal(err)
		}
		ns, err := netns.GetFromName(s.ns)
		if err != nil {
			t.Fatal(err)
		}
		err = netlink.LinkSetNsFd(l, int(ns))
		ns.Close()
		if err != nil {
			t.Fatalf("move %s: %v", s.ifname, err)
		}
		l, err = s.h.LinkByName(s.ifname)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.h.AddrAdd(l, &netlink.Addr{IPNet: prefixNet(s.addr)}); err != nil {
			t.Fatal(err)
		}
		if err := s.h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
		if lo, err := s.h.LinkByName("lo"); err == nil {
			s.h.LinkSetUp(lo)
		}
	}
	return a, b
}

func createNamedNetns(t *testing.T, name string) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	ns.Close()
	if err := netns.Set(orig); err != nil {
		t.Fatalf("restore netns: %v", err)
	}
	t.Cleanup(func() { netns.DeleteNamed(name) })
}

// writeSysctlIn writes a /proc/sys file inside namespace name.
func writeSysctlIn(t *testing.T, name, file, value string) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, _ := netns.Get()
	defer orig.Close()
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	werr := os.WriteFile(file, []byte(value), 0o644)
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
	if werr != nil {
		t.Fatalf("write %s: %v", file, werr)
	}
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// hasAddr reports whether p is on the side's veth.
func (s *side) hasAddr(t *testing.T, p netip.Prefix) bool {
	t.Helper()
	l, err := s.h.LinkByName(s.ifname)
	if err != nil {
		t.Fatal(err)
	}
	family := netlink.FAMILY_V4
	if p.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := s.h.AddrList(l, family)
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(addrs, func(a netlink.Addr) bool {
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap() == p.Addr()
	})
}

// running is a govs node running on a side.
type running struct {
	n      *vrrp.Node
	conn   *vrrp.RawConn
	cancel context.CancelFunc
	done   chan error
}

func startNode(t *testing.T, s *side, cfg vrrp.Config) *running {
	t.Helper()
	cfg.Interface = s.ifname
	conn, err := vrrp.Dial(vrrp.ConnConfig{Interface: s.ifname, NetnsPath: s.path, IPv6: cfg.Is6(),
		Unicast: len(cfg.UnicastPeer) > 0, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	act, err := vrrp.NewSystemActions(vrrp.SystemActionsConfig{NetnsPath: s.path, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	n, err := vrrp.New(cfg, conn, act, vrrp.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{n: n, conn: conn, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- n.Run(ctx) }()
	t.Cleanup(func() {
		r.stop()
		act.Close()
	})
	return r
}

// stop ends the node cleanly: priority 0, addresses removed.
func (r *running) stop() {
	r.cancel()
	<-r.done
	r.done <- nil // stop is idempotent
	r.conn.Close()
}

// kill makes the node vanish without a word, as a crash would: its
// socket closes before it can send priority 0.
func (r *running) kill() {
	r.conn.Close()
	r.stop()
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func TestNetnsVRRPElection(t *testing.T) {
	needRoot(t)
	for i, tc := range []struct {
		name string
		vip  netip.Prefix
		mut  func(*vrrp.Config)
	}{
		{"v3 IPv4", netip.MustParsePrefix("10.99.1.100/32"), func(c *vrrp.Config) {
			c.Version, c.AdvertInt = 3, 100*time.Millisecond
		}},
		{"v3 IPv6", netip.MustParsePrefix("fd00:99::100/128"), func(c *vrrp.Config) {
			c.Version, c.AdvertInt = 3, 100*time.Millisecond
		}},
		{"v2 PASS unicast", netip.MustParsePrefix("10.99.3.100/32"), func(c *vrrp.Config) {
			c.Version, c.AdvertInt = 2, time.Second
			c.AuthType, c.AuthPass = "PASS", "govs"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newPair(t, i+1)
			mk := func(name string, prio uint8, peer *side) vrrp.Config {
				c := vrrp.Config{Name: name, VirtualRouterID: 51, Priority: prio,
					VirtualIPAddresses: []netip.Prefix{tc.vip}}
				tc.mut(&c)
				if tc.name == "v2 PASS unicast" {
					c.UnicastPeer = []netip.Addr{peer.addr.Addr()}
				}
				return c
			}
			ca, cb := mk("A", 150, b), mk("B", 100, a)
			mdi := vrrp.MasterDownInterval(ca.Version, ca.AdvertInt, 100)
			slack := 250 * time.Millisecond

			ra := startNode(t, a, ca)
			rb := startNode(t, b, cb)
			waitFor(t, "A master", 2*mdi+time.Second, func() bool { return ra.n.State() == vrrp.StateMaster })
			// Let B hear A; one master, VIP only on A.
			time.Sleep(2 * ca.AdvertInt)
			if rb.n.State() != vrrp.StateBackup {
				t.Fatalf("B is %v, want BACKUP", rb.n.State())
			}
			if !a.hasAddr(t, tc.vip) || b.hasAddr(t, tc.vip) {
				t.Fatalf("VIP on A %v, on B %v: want only on A", a.hasAddr(t, tc.vip), b.hasAddr(t, tc.vip))
			}
			if rb.n.Stats().AdvertsReceived == 0 || rb.n.Stats().Dropped != 0 {
				t.Fatalf("B stats %+v", rb.n.Stats())
			}

			// Kill the master: B takes over within the master down interval.
			ra.kill()
			took := waitFor(t, "B takes over", mdi+slack, func() bool { return rb.n.State() == vrrp.StateMaster })
			t.Logf("takeover after kill: %v (master down interval %v)", took, mdi)
			waitFor(t, "VIP on B", time.Second, func() bool { return b.hasAddr(t, tc.vip) })

			// A comes back with the higher priority and preempts.
			ra = startNode(t, a, ca)
			waitFor(t, "A preempts", 2*mdi+slack, func() bool { return ra.n.State() == vrrp.StateMaster })
			waitFor(t, "B yields", time.Second, func() bool { return rb.n.State() == vrrp.StateBackup })
			waitFor(t, "VIP leaves B", time.Second, func() bool { return !b.hasAddr(t, tc.vip) })

			// A clean stop sends priority 0: B takes over after its skew time.
			ra.stop()
			skew := mdi - 3*ca.AdvertInt
			took = waitFor(t, "B takes over after priority 0", skew+slack, func() bool { return rb.n.State() == vrrp.StateMaster })
			t.Logf("takeover after priority 0: %v (skew %v)", took, skew)
			if a.hasAddr(t, tc.vip) {
				t.Error("A kept the VIP after stopping")
			}
		})
	}
}
