package realserver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ciliumebpf "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/govs/govs/internal/dataplane/ebpf"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/netns"
	"github.com/govs/govs/internal/realserver"
)

var bpfDirCount atomic.Int32

// testBPFDir is a bpffs directory of its own for the test's pins,
// removed at the end.
func testBPFDir(t *testing.T) string {
	dir := fmt.Sprintf("/sys/fs/bpf/govs-rs-test-%d-%d", os.Getpid(), bpfDirCount.Add(1))
	t.Cleanup(func() {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%s left behind", dir)
			os.RemoveAll(dir)
		}
	})
	return dir
}

// inNS runs a realserver command with the System of ns.
func inNS[T any](t *testing.T, ns *netns.NS, f func(realserver.System) (T, error)) (T, error) {
	t.Helper()
	var out T
	err := ns.Do(func() error {
		sys, err := realserver.NewSystem()
		if err != nil {
			return err
		}
		out, err = f(sys)
		return err
	})
	return out, err
}

// hostState is what setup may touch in a namespace, as text.
func hostState(t *testing.T, ns *netns.NS, devs ...string) string {
	t.Helper()
	var b strings.Builder
	ns.MustDo(func() error {
		for _, d := range append([]string{"all", "lo"}, devs...) {
			for _, k := range []string{"arp_ignore", "arp_announce", "rp_filter"} {
				v, err := os.ReadFile(filepath.Join("/proc/sys/net/ipv4/conf", d, k))
				if err != nil {
					return err
				}
				fmt.Fprintf(&b, "%s.%s=%s", d, k, v)
			}
		}
		nl := ns.Netlink()
		as, err := nl.AddrList(nil, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		var lines []string
		for _, a := range as {
			lines = append(lines, fmt.Sprintf("addr %d %s", a.LinkIndex, a.IPNet))
		}
		for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
			rs, err := nl.RouteList(nil, fam)
			if err != nil {
				return err
			}
			for _, r := range rs {
				lines = append(lines, fmt.Sprintf("route %s dev %d advmss %d", r.Dst, r.LinkIndex, r.AdvMSS))
			}
		}
		slices.Sort(lines)
		b.WriteString(strings.Join(lines, "\n"))
		for _, d := range devs {
			fmt.Fprintf(&b, "\ntcx %s: %v", d, tcxPrograms(t, d))
		}
		return nil
	})
	return b.String()
}

// tcxPrograms names the programs at TCX ingress of dev (call inside Do).
func tcxPrograms(t *testing.T, dev string) []string {
	t.Helper()
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	res, err := link.QueryPrograms(link.QueryOptions{Target: ifi.Index, Attach: ciliumebpf.AttachTCXIngress})
	if err != nil {
		t.Fatalf("query tcx of %s: %v", dev, err)
	}
	var names []string
	for _, p := range res.Programs {
		prog, err := ciliumebpf.NewProgramFromID(p.ID)
		if err != nil {
			t.Fatal(err)
		}
		info, err := prog.Info()
		prog.Close()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, info.Name)
	}
	return names
}

func sysctl(t *testing.T, ns *netns.NS, key string) string {
	t.Helper()
	var v []byte
	ns.MustDo(func() error {
		var err error
		v, err = os.ReadFile(filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/")))
		return err
	})
	return strings.TrimSpace(string(v))
}

// rsHost is a realserver namespace with e0 (10.2.0.11/24, an on-link
// default route) whose peer sits in another namespace, rp_filter strict
// as some distributions ship it.
func rsHost(t *testing.T) *netns.NS {
	rs := netns.New(t, "rs")
	peer := netns.New(t, "peer")
	e0, _ := netns.Veth(t, rs, "e0", nil, peer, "p0", nil)
	e0.AddAddr("10.2.0.11/24")
	e0.AddAddr("fd00:2::11/64")
	e0.AddRoute("0.0.0.0/0", "", 0)
	rs.Sysctl("net.ipv4.conf.all.rp_filter", "1")
	rs.Sysctl("net.ipv4.conf.e0.rp_filter", "1")
	return rs
}

// roundTripNS runs setup, setup again, status and teardown in ns and
// returns the first setup's report; check looks at the host set up.
func roundTripNS(t *testing.T, ns *netns.NS, cfg realserver.Config, check func()) {
	t.Helper()
	o := opts(t)
	before := hostState(t, ns, "e0")
	rep, err := inNS(t, ns, func(s realserver.System) (*realserver.Report, error) { return realserver.Setup(s, cfg, o) })
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	t.Logf("setup:\n%s", text(t, rep))
	if rep.Count(realserver.StatusChanged) == 0 {
		t.Error("first setup changed nothing")
	}
	check()
	after := hostState(t, ns, "e0")

	rep, err = inNS(t, ns, func(s realserver.System) (*realserver.Report, error) { return realserver.Setup(s, cfg, o) })
	if err != nil {
		t.Fatalf("second setup: %v", err)
	}
	if n := rep.Count(realserver.StatusChanged); n != 0 {
		t.Errorf("second setup changed %d items:\n%s", n, text(t, rep))
	}
	if got := hostState(t, ns, "e0"); got != after {
		t.Errorf("second setup changed the host:\n%s\nwant\n%s", got, after)
	}
	rep, err = inNS(t, ns, func(s realserver.System) (*realserver.Report, error) { return realserver.StatusOf(s, nil, o) })
	if err != nil || !rep.OK() {
		t.Errorf("status after setup: %v\n%s", err, text(t, rep))
	}

	rep, err = inNS(t, ns, func(s realserver.System) (*realserver.Report, error) { return realserver.Teardown(s, o) })
	if err != nil {
		t.Fatalf("teardown: %v", err)
	}
	t.Logf("teardown:\n%s", text(t, rep))
	if got := hostState(t, ns, "e0"); got != before {
		t.Errorf("teardown left\n%s\nwant\n%s", got, before)
	}
	rep, err = inNS(t, ns, func(s realserver.System) (*realserver.Report, error) { return realserver.StatusOf(s, &cfg, o) })
	if err != nil || rep.OK() {
		t.Errorf("status after teardown: %v, OK %v", err, rep != nil && rep.OK())
	}
}

func TestNetnsRealserverDR(t *testing.T) {
	rs := rsHost(t)
	cfg := realserver.Config{VIPs: vips("10.1.0.100", "fd00:1::100")}
	roundTripNS(t, rs, cfg, func() {
		for key, want := range map[string]string{
			"net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.lo.arp_ignore": "1",
			"net.ipv4.conf.all.arp_announce": "2", "net.ipv4.conf.lo.arp_announce": "2",
			"net.ipv4.conf.all.rp_filter": "1", // DR leaves it alone
		} {
			if got := sysctl(t, rs, key); got != want {
				t.Errorf("%s = %s, want %s", key, got, want)
			}
		}
		for _, p := range []string{"10.1.0.100/32", "fd00:1::100/128"} {
			a, err := netlink.ParseAddr(p)
			if err != nil {
				t.Fatal(err)
			}
			lo, err := rs.Netlink().LinkByName("lo")
			if err != nil {
				t.Fatal(err)
			}
			as, err := rs.Netlink().AddrList(lo, netlink.FAMILY_ALL)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(as, func(x netlink.Addr) bool { return x.IPNet.String() == a.IPNet.String() }) {
				t.Errorf("%s not on lo: %v", p, as)
			}
		}
	})
}

func TestNetnsRealserverTUN(t *testing.T) {
	rs := rsHost(t)
	cfg := realserver.Config{VIPs: vips("10.1.0.100"), Mode: realserver.ModeTUN, GUEPort: 6080, BPFDir: testBPFDir(t)}
	roundTripNS(t, rs, cfg, func() {
		for key, want := range map[string]string{
			"net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.all.arp_announce": "2",
			"net.ipv4.conf.all.rp_filter": "2", "net.ipv4.conf.e0.rp_filter": "2",
		} {
			if got := sysctl(t, rs, key); got != want {
				t.Errorf("%s = %s, want %s", key, got, want)
			}
		}
		rs.MustDo(func() error {
			if got := tcxPrograms(t, "e0"); !slices.Equal(got, []string{"govs_decap"}) {
				t.Errorf("tcx ingress of e0: %v, want govs_decap", got)
			}
			return nil
		})
		routes, err := rs.Netlink().RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range routes {
			if r.AdvMSS != 1428 { // 1500 - IPv4 - UDP - GUE - IPv4 - TCP
				t.Errorf("route %s: advmss %d, want 1428", r.Dst, r.AdvMSS)
			}
		}
	})
	// Switching the tunnel type replaces the decapsulator in place.
	o := opts(t)
	for _, c := range []realserver.Config{cfg, {VIPs: cfg.VIPs, Mode: realserver.ModeTUN, BPFDir: cfg.BPFDir}} {
		if _, err := inNS(t, rs, func(s realserver.System) (*realserver.Report, error) { return realserver.Setup(s, c, o) }); err != nil {
			t.Fatal(err)
		}
		rs.MustDo(func() error {
			if got := tcxPrograms(t, "e0"); len(got) != 1 {
				t.Errorf("after setup with %s: tcx ingress of e0: %v, want one govs_decap", c.TunType, got)
			}
			return nil
		})
	}
	if _, err := inNS(t, rs, func(s realserver.System) (*realserver.Report, error) { return realserver.Teardown(s, o) }); err != nil {
		t.Fatal(err)
	}
}

func TestNetnsRealserverErrors(t *testing.T) {
	rs := rsHost(t)
	rs.MustDo(func() error {
		sys, err := realserver.NewSystem()
		if err != nil {
			return err
		}
		for _, tc := range []struct {
			cfg  realserver.Config
			want error
		}{
			{realserver.Config{VIPs: vips("10.2.0.11")}, realserver.ErrVIPElsewhere},
			{realserver.Config{VIPs: vips("10.1.0.100"), Dev: "nosuch0"}, realserver.ErrNoDevice},
			{realserver.Config{VIPs: vips("10.1.0.100"), Dev: "e0"}, realserver.ErrDevAnswersARP},
			{realserver.Config{VIPs: vips("10.1.0.100"), Mode: realserver.ModeTUN, IngressDevs: []string{"nosuch0"}}, realserver.ErrNoDevice},
			{realserver.Config{VIPs: vips("fd00:1::100"), Mode: realserver.ModeTUN}, realserver.ErrNoIngress}, // no IPv6 default route
		} {
			_, err := realserver.Setup(sys, tc.cfg, opts(t))
			if !errors.Is(err, tc.want) {
				t.Errorf("setup %+v: %v, want %v", tc.cfg, err, tc.want)
			} else {
				t.Logf("%v", err)
			}
		}
		return nil
	})
}

// TestNetnsRealserverTunHTTP is the end to end test: the director runs the
// eBPF data plane in TUN mode (as package ebpf's own TUN test), and the two
// realservers are set up by realserver.Setup alone: no hand-made VIP,
// sysctl, route metric or decapsulator. HTTP through the VIP must reach
// both, by the director (its counters see every connection).
func TestNetnsRealserverTunHTTP(t *testing.T) {
	for _, tun := range []ipvs.TunnelType{ipvs.TunIPIP, ipvs.TunGUE} {
		t.Run(tun.String(), func(t *testing.T) { testTunHTTP(t, tun) })
	}
}

func testTunHTTP(t *testing.T, tun ipvs.TunnelType) {
	netns.RequireRoot(t)
	lan := netns.New(t, "lan")
	br := lan.Bridge("br0")
	client, dir := netns.New(t, "client"), netns.New(t, "dir")
	vip := netip.MustParseAddr("10.1.0.100")
	c0, p := netns.Veth(t, client, "c0", nil, lan, "pc", nil)
	p.SetMaster(br)
	c0.AddAddr("10.1.0.2/24")
	// Real frames, not 64 KB GSO packets whose segments the director's
	// encapsulation shrinks: without the realservers' MSS clamp a full-size
	// frame plus the outer header no longer fits the 1500-byte MTU.
	client.MustDo(func() error {
		out, err := exec.Command("ethtool", "-K", "c0", "tso", "off", "gso", "off").CombinedOutput()
		if err != nil {
			return fmt.Errorf("ethtool: %w: %s", err, out)
		}
		return nil
	})
	d0, p := netns.Veth(t, dir, "d0", nil, lan, "pd", nil)
	p.SetMaster(br)
	d0.AddAddr("10.1.0.1/24")
	d0.AddAddr("10.2.0.1/24")
	d0.AddAddr("10.1.0.100/32")
	dir.EnableForwarding()

	cfg := realserver.Config{VIPs: []netip.Addr{vip}, Mode: realserver.ModeTUN, BPFDir: testBPFDir(t)}
	if tun == ipvs.TunGUE {
		cfg.GUEPort = 6080
	}
	var rss [2]*netns.NS
	for i := range rss {
		rs := netns.New(t, fmt.Sprintf("rs%d", i+1))
		rss[i] = rs
		e0, p := netns.Veth(t, rs, "e0", nil, lan, fmt.Sprintf("p%d", i), nil)
		p.SetMaster(br)
		e0.AddAddr(fmt.Sprintf("10.2.0.%d/24", 11+i))
		e0.AddRoute("0.0.0.0/0", "", 0) // clients on-link: replies bypass the director
		o := realserver.Options{StatePath: filepath.Join(t.TempDir(), "rs.json")}
		rep, err := inNS(t, rs, func(s realserver.System) (*realserver.Report, error) { return realserver.Setup(s, cfg, o) })
		if err != nil {
			t.Fatalf("setup rs%d: %v", i+1, err)
		}
		t.Logf("rs%d setup:\n%s", i+1, text(t, rep))
		t.Cleanup(func() {
			if _, err := inNS(t, rs, func(s realserver.System) (*realserver.Report, error) { return realserver.Teardown(s, o) }); err != nil {
				t.Errorf("teardown rs%d: %v", i+1, err)
			}
		})
		var ln net.Listener
		rs.MustDo(func() error {
			var err error
			ln, err = net.Listen("tcp4", ":80")
			return err
		})
		body := strings.Repeat("x", 64<<10) // full-size segments: the MSS clamp matters
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "rs%d %s %s", i+1, r.RemoteAddr, body)
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}

	pin := fmt.Sprintf("/sys/fs/bpf/govs-rs-test-%d-dir%d", os.Getpid(), bpfDirCount.Add(1))
	var dp *ebpf.Dataplane
	dir.MustDo(func() error {
		var err error
		dp, err = ebpf.New(ebpf.Options{Interfaces: []string{"d0"}, PinPath: pin}, slog.New(slog.DiscardHandler))
		return err
	})
	t.Cleanup(func() {
		dp.Close()
		if err := ebpf.Remove(pin); err != nil {
			t.Errorf("remove %s: %v", pin, err)
		}
	})
	svc := ipvs.Service{ServiceKey: ipvs.TCPService(netip.AddrPortFrom(vip, 80)), Scheduler: "rr"}
	svc.SetDefaults()
	if err := dp.AddService(svc); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		d := ipvs.Destination{Addr: netip.AddrFrom4([4]byte{10, 2, 0, byte(11 + i)}), Port: 80, Fwd: ipvs.Tunnel, Weight: 1}
		if tun == ipvs.TunGUE {
			d.TunType, d.TunPort = ipvs.TunGUE, 6080
		}
		if err := dp.AddDest(svc.ServiceKey, d); err != nil {
			t.Fatal(err)
		}
	}

	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := client.Do(func() error {
				var err error
				c, err = (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	seen := map[string]int{}
	upload := strings.Repeat("y", 64<<10) // full-size segments through the tunnel
	const n = 4
	for i := range n {
		resp, err := cl.Post("http://"+vip.String()+"/", "text/plain", strings.NewReader(upload))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		f := strings.Fields(string(b))
		if len(f) != 3 || !strings.HasPrefix(f[1], "10.1.0.2:") {
			t.Fatalf("request %d: answer %.60q, want the realserver's name and the real client address", i, b)
		}
		seen[f[0]]++
	}
	if seen["rs1"] != n/2 || seen["rs2"] != n/2 {
		t.Errorf("answers %v, want rr over both realservers", seen)
	}
	st, err := dp.Services()
	if err != nil {
		t.Fatal(err)
	}
	var conns uint64
	for _, d := range st[0].Dests {
		conns += d.Stats.Conns
		if d.Stats.OutPkts != 0 {
			t.Errorf("%s: %d replies went through the director", d.Addr, d.Stats.OutPkts)
		}
	}
	if conns != n {
		t.Errorf("director counted %d connections, want %d (did a realserver answer ARP for the VIP?)", conns, n)
	}
}
