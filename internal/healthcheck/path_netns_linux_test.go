package healthcheck_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/internal/dataplane/ebpf"
	"github.com/govs/govs/internal/healthcheck"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/netns"
)

// pathLab is a director and realservers on one segment (a bridge in a
// namespace of its own): the director d0 10.2.0.1/24 with the VIP
// 10.1.0.100, realserver i e0 10.2.0.1i/24 listening on port 80.
type pathLab struct {
	dir *netns.NS
	rs  []*netns.NS
	e0  []*netns.Link
}

const pathVIP = "10.1.0.100"

func newPathLab(t *testing.T, n int) *pathLab {
	netns.RequireRoot(t)
	lan := netns.New(t, "lan")
	br := lan.Bridge("br0")
	l := &pathLab{dir: netns.New(t, "dir")}
	d0, p := netns.Veth(t, l.dir, "d0", nil, lan, "pd", nil)
	p.SetMaster(br)
	d0.AddAddr("10.2.0.1/24")
	d0.AddAddr(pathVIP + "/32")
	for i := range n {
		rs := netns.New(t, fmt.Sprintf("rs%d", i+1))
		e0, p := netns.Veth(t, rs, "e0", nil, lan, fmt.Sprintf("p%d", i), nil)
		p.SetMaster(br)
		e0.AddAddr(fmt.Sprintf("10.2.0.%d/24", 11+i))
		var ln net.Listener
		rs.MustDo(func() error {
			var err error
			ln, err = net.Listen("tcp4", ":80")
			return err
		})
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		t.Cleanup(func() { ln.Close() })
		l.rs, l.e0 = append(l.rs, rs), append(l.e0, e0)
	}
	return l
}

// hideVIP puts the VIP on the realserver's lo the way the HOWTO says.
func hideVIP(rs *netns.NS) {
	rs.AddLoopbackAddr(pathVIP)
	rs.Sysctl("net.ipv4.conf.all.arp_ignore", "1")
	rs.Sysctl("net.ipv4.conf.all.arp_announce", "2")
}

// check runs c once in the director's namespace.
func (l *pathLab) check(t *testing.T, c healthcheck.Checker) healthcheck.Result {
	t.Helper()
	var res healthcheck.Result
	l.dir.MustDo(func() error {
		res = c.Check(context.Background())
		return nil
	})
	t.Logf("%s", res)
	return res
}

func pathChecker(t *testing.T, rip string, o healthcheck.PathOptions) *healthcheck.Path {
	t.Helper()
	o.ConnectIP, o.ConnectPort, o.Timeout = netip.MustParseAddr(rip), 80, time.Second
	o.VIP = netip.MustParseAddr(pathVIP)
	p, err := healthcheck.NewPath(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNetnsPathDR: realserver 1 is set up right; realserver 2 first has
// no VIP (a plain TCP_CHECK to its RIP passes, the path check does not),
// then the VIP on lo without arp_ignore, then right, then the VIP on e0
// as well: the ARP problem both times.
func TestNetnsPathDR(t *testing.T) {
	l := newPathLab(t, 2)
	hideVIP(l.rs[0])
	dr := healthcheck.PathOptions{Method: ipvs.Route}
	rs1, rs2 := pathChecker(t, "10.2.0.11", dr), pathChecker(t, "10.2.0.12", dr)
	if res := l.check(t, rs1); !res.Up {
		t.Fatalf("rs1: %s, want up", res)
	}

	tcp, err := healthcheck.NewTCP(healthcheck.TCPOptions{ConnOptions: healthcheck.ConnOptions{
		ConnectIP: netip.MustParseAddr("10.2.0.12"), ConnectPort: 80, Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if res := l.check(t, tcp); !res.Up {
		t.Errorf("TCP_CHECK of rs2: %s, want up", res)
	}
	if res := l.check(t, rs2); res.Up || !errors.Is(res.Err, healthcheck.ErrTimeout) {
		t.Errorf("rs2 without the VIP: %s, want down by timeout", res)
	}

	l.rs[1].AddLoopbackAddr(pathVIP) // arp_ignore 0: answers ARP for it on e0
	if res := l.check(t, rs2); res.Up || !errors.Is(res.Err, healthcheck.ErrARPProblem) {
		t.Errorf("rs2 with the VIP on lo, arp_ignore 0: %s, want down by the ARP problem", res)
	}
	l.rs[1].Sysctl("net.ipv4.conf.all.arp_ignore", "1")
	l.rs[1].Sysctl("net.ipv4.conf.all.arp_announce", "2")
	if res := l.check(t, rs2); !res.Up {
		t.Errorf("rs2 set up right: %s, want up", res)
	}
	l.e0[1].AddAddr(pathVIP + "/32")
	res := l.check(t, rs2)
	if res.Up || !errors.Is(res.Err, healthcheck.ErrARPProblem) {
		t.Errorf("rs2 with the VIP on e0: %s, want down by the ARP problem", res)
	}
	if want := fmt.Sprintf("down: realserver answers ARP for the VIP: realserver %s (10.2.0.12) answers ARP for the VIP", l.e0[1].MAC); len(res.String()) < len(want) || res.String()[:len(want)] != want {
		t.Errorf("reason %q, want it to start with %q", res, want)
	}
	if res := l.check(t, rs1); !res.Up {
		t.Errorf("rs1 after all that: %s, want up", res)
	}
}

// TestNetnsPathDRRefused: a service bound to the RIP only answers the
// RIP but refuses the VIP.
func TestNetnsPathDRRefused(t *testing.T) {
	l := newPathLab(t, 0)
	rs := netns.New(t, "rs")
	lan := l.dir // the realserver hangs directly off the director
	e0, d1 := netns.Veth(t, rs, "e0", nil, lan, "d1", nil)
	d1.AddAddr("10.3.0.1/24")
	e0.AddAddr("10.3.0.11/24")
	hideVIP(rs)
	var ln net.Listener
	rs.MustDo(func() error {
		var err error
		ln, err = net.Listen("tcp4", "10.3.0.11:80")
		return err
	})
	defer ln.Close()
	res := l.check(t, pathChecker(t, "10.3.0.11", healthcheck.PathOptions{Method: ipvs.Route}))
	if res.Up || !errors.Is(res.Err, healthcheck.ErrRefused) {
		t.Errorf("%s, want down: refused", res)
	}
}

// TestNetnsPathTUN: realserver 1 decapsulates with the BPF decapsulator
// (IPIP, GUE): up; without it: down.
func TestNetnsPathTUN(t *testing.T) {
	for _, tc := range []struct {
		tun  ipvs.TunnelType
		port uint16
	}{{ipvs.TunIPIP, 0}, {ipvs.TunGUE, 6080}} {
		t.Run(tc.tun.String(), func(t *testing.T) {
			l := newPathLab(t, 1)
			hideVIP(l.rs[0])
			c := pathChecker(t, "10.2.0.11", healthcheck.PathOptions{Method: ipvs.Tunnel, TunType: tc.tun, TunPort: tc.port})
			var d *ebpf.Decap
			l.rs[0].MustDo(func() error {
				var err error
				d, err = ebpf.AttachDecap("e0", tc.port, "")
				return err
			})
			if res := l.check(t, c); !res.Up {
				t.Errorf("with the decapsulator: %s, want up", res)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			res := l.check(t, c)
			if res.Up || !(errors.Is(res.Err, healthcheck.ErrUnreachable) || errors.Is(res.Err, healthcheck.ErrTimeout)) {
				t.Errorf("without the decapsulator: %s, want down", res)
			}
		})
	}
}
