package ebpf

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/netns"
)

// The end-to-end topology: client, director and two realservers on one
// Ethernet segment (a bridge in its own namespace), the classic LVS
// picture. The VIP lives on the director's d0; realservers have their RIPs
// in 10.2.0.0/24 behind the director.
//
//	client 10.1.0.2 --+
//	director 10.1.0.1, 10.2.0.1, VIP 10.1.0.100 (d0) --+-- br0 (lan)
//	rs1 10.2.0.11 --+
//	rs2 10.2.0.12 --+
//
// NAT: realservers route everything through the director (default via
// 10.2.0.1). DR and TUN: realservers have the VIP on lo, arp_ignore=1,
// arp_announce=2 and a direct route to the client's subnet, so replies
// bypass the director. TUN: the realservers run govs_decap on their
// interface and clamp the MSS (advmss) of the route to the client.
type topo struct {
	client, dir *netns.NS
	rs          [2]*netns.NS
	rip         [2]netip.Addr
	vip         netip.Addr
	pin         string
	xdp         bool
	dp          *Dataplane
}

// topoConfig chooses the forwarding method, the family of the VIP and
// realserver addresses, and TC or XDP.
type topoConfig struct {
	fwd ipvs.FwdMethod
	tun ipvs.TunnelType
	v6  bool
	xdp bool
	// noClamp: TUN realservers without the MSS clamp (advmss), as
	// when the path MTU is left to ICMP (TestNetnsTunPMTU).
	noClamp bool
}

var topoCount atomic.Int32

func newTopo(t *testing.T, fwd ipvs.FwdMethod, tun ipvs.TunnelType) *topo {
	return newTopoConfig(t, topoConfig{fwd: fwd, tun: tun})
}

// newTopoConfig builds the topology. IPv6 mirrors IPv4: client fd10:1::2,
// director fd10:1::1 and fd10:2::1, VIP fd10:1::100, realservers
// fd10:2::11 and fd10:2::12. With XDP, the director's d0 gets govs_xdp
// too; its peer (pd, on the bridge) gets GRO so that frames XDP
// redirects back out of d0 are accepted, and the client and the
// realservers send with full checksums (tx offload off), which XDP needs.
func newTopoConfig(t *testing.T, cfg topoConfig) *topo {
	t.Helper()
	netns.RequireRoot(t)
	fwd := cfg.fwd
	lan := netns.New(t, "lan")
	br := lan.Bridge("br0")
	tp := &topo{client: netns.New(t, "client"), dir: netns.New(t, "dir"), vip: netip.MustParseAddr("10.1.0.100"), xdp: cfg.xdp}
	tp.rs[0], tp.rs[1] = netns.New(t, "rs1"), netns.New(t, "rs2")
	tp.rip = [2]netip.Addr{netip.MustParseAddr("10.2.0.11"), netip.MustParseAddr("10.2.0.12")}
	if cfg.v6 {
		tp.vip = netip.MustParseAddr("fd10:1::100")
		tp.rip = [2]netip.Addr{netip.MustParseAddr("fd10:2::11"), netip.MustParseAddr("fd10:2::12")}
	}

	c0, p := netns.Veth(t, tp.client, "c0", nil, lan, "pc", nil)
	p.SetMaster(br)
	c0.AddAddr("10.1.0.2/24")
	c0.AddAddr("fd10:1::2/64")
	d0, pd := netns.Veth(t, tp.dir, "d0", nil, lan, "pd", nil)
	pd.SetMaster(br)
	d0.AddAddr("10.1.0.1/24")
	d0.AddAddr("10.2.0.1/24")
	d0.AddAddr("10.1.0.100/32")
	d0.AddAddr("fd10:1::1/64")
	d0.AddAddr("fd10:2::1/64")
	d0.AddAddr("fd10:1::100/128")
	tp.dir.EnableForwarding()
	if cfg.xdp {
		pd.SetGRO(true)
		c0.SetTxChecksum(false)
	}
	for i, rs := range tp.rs {
		e0, p := netns.Veth(t, rs, "e0", nil, lan, fmt.Sprintf("p%d", i), nil)
		p.SetMaster(br)
		e0.AddAddr(fmt.Sprintf("10.2.0.%d/24", 11+i))
		e0.AddAddr(fmt.Sprintf("fd10:2::%d/64", 11+i))
		if cfg.xdp {
			e0.SetTxChecksum(false)
		}
		if fwd == ipvs.Masq {
			e0.AddRoute("0.0.0.0/0", "10.2.0.1", 0)
			e0.AddRoute("::/0", "fd10:2::1", 0)
			continue
		}
		rs.AddLoopbackAddr("10.1.0.100")
		rs.AddLoopbackAddr("fd10:1::100")
		rs.Sysctl("net.ipv4.conf.all.arp_ignore", "1")
		rs.Sysctl("net.ipv4.conf.all.arp_announce", "2")
		rs.Sysctl("net.ipv4.conf.all.rp_filter", "0")
		rs.Sysctl("net.ipv4.conf.e0.rp_filter", "0")
		advmss := 0
		if fwd == ipvs.Tunnel && !cfg.noClamp {
			advmss = 1400 // room for the outer header
		}
		e0.AddRoute("10.1.0.0/24", "", advmss)
		e0.AddRoute("fd10:1::/64", "", advmss)
		if fwd == ipvs.Tunnel {
			rs.MustDo(func() error {
				d, err := AttachDecap("e0", 6080, "")
				if err != nil {
					return err
				}
				t.Cleanup(func() { d.Close() })
				return nil
			})
		}
	}
	tp.pin = fmt.Sprintf("/sys/fs/bpf/govs-test-%d-%d", os.Getpid(), topoCount.Add(1))
	tp.start(t)
	t.Cleanup(func() {
		tp.dp.Close()
		if err := Remove(tp.pin); err != nil {
			t.Errorf("remove %s: %v", tp.pin, err)
		}
	})
	return tp
}

// start starts (or restarts, adopting the pins) the data plane on d0.
func (tp *topo) start(t *testing.T) {
	t.Helper()
	tp.dir.MustDo(func() error {
		var err error
		tp.dp, err = New(Options{Interfaces: []string{"d0"}, PinPath: tp.pin, XDP: tp.xdp}, slog.New(slog.DiscardHandler))
		return err
	})
}

// xdpRedirects is how many packets govs_xdp forwarded itself.
func (tp *topo) xdpRedirects(t *testing.T) uint64 {
	t.Helper()
	var per []uint64
	if err := tp.dp.objs.Ctr.Lookup(uint32(19) /* CTR_XDP_REDIRECT */, &per); err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n
}

// serve runs an HTTP server on rs port 80 answering "<name> <client addr>".
func (tp *topo) serve(t *testing.T, i int) {
	t.Helper()
	var ln net.Listener
	tp.rs[i].MustDo(func() error {
		var err error
		ln, err = net.Listen("tcp", ":80")
		return err
	})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "rs%d %s", i+1, r.RemoteAddr)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// get fetches http://VIP/ from the client namespace.
func (tp *topo) get(t *testing.T) (string, error) {
	t.Helper()
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := tp.client.Do(func() error {
				var err error
				c, err = (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + netip.AddrPortFrom(tp.vip, 80).String() + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func testNetnsForward(t *testing.T, fwd ipvs.FwdMethod, tun ipvs.TunnelType) {
	testNetnsForwardConfig(t, topoConfig{fwd: fwd, tun: tun})
}

func testNetnsForwardConfig(t *testing.T, cfg topoConfig) {
	fwd, tun := cfg.fwd, cfg.tun
	tp := newTopoConfig(t, cfg)
	tp.serve(t, 0)
	tp.serve(t, 1)
	svc := ipvs.Service{ServiceKey: ipvs.TCPService(netip.AddrPortFrom(tp.vip, 80)), Scheduler: "rr"}
	svc.SetDefaults()
	if err := tp.dp.AddService(svc); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		d := ipvs.Destination{Addr: tp.rip[i], Port: 80, Fwd: fwd, Weight: 1}
		if fwd == ipvs.Tunnel && tun == ipvs.TunGUE {
			d.TunType, d.TunPort = ipvs.TunGUE, 6080
		}
		if err := tp.dp.AddDest(svc.ServiceKey, d); err != nil {
			t.Fatal(err)
		}
	}
	// rr, newest first: rs2 then rs1, alternating.
	want := []string{"rs2", "rs1", "rs2", "rs1"}
	for i, w := range want {
		body, err := tp.get(t)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		name, client, _ := strings.Cut(body, " ")
		if name != w {
			t.Errorf("request %d answered by %s, want %s (rr order)", i, name, w)
		}
		// The realserver sees the real client address in every mode.
		wantClient := "10.1.0.2:"
		if cfg.v6 {
			wantClient = "[fd10:1::2]:"
		}
		if !strings.HasPrefix(client, wantClient) {
			t.Errorf("request %d: realserver saw client %s, want %s", i, client, wantClient)
		}
	}
	st, err := tp.dp.Services()
	if err != nil {
		t.Fatal(err)
	}
	var conns uint64
	for _, d := range st[0].Dests {
		conns += d.Stats.Conns
		t.Logf("%s %s active %d inactive %d conns %d inpkts %d outpkts %d", d.Addr, d.Fwd, d.ActiveConns, d.InactConns, d.Stats.Conns, d.Stats.InPkts, d.Stats.OutPkts)
		if fwd != ipvs.Masq && d.Stats.OutPkts != 0 {
			t.Errorf("%s: %d reply packets passed the director in %s mode", d.Addr, d.Stats.OutPkts, fwd)
		}
	}
	if conns != uint64(len(want)) {
		t.Errorf("%d connections counted, want %d", conns, len(want))
	}
	if tp.xdp {
		n := tp.xdpRedirects(t)
		t.Logf("govs_xdp forwarded %d packets itself", n)
		if n == 0 {
			t.Errorf("XDP attached but govs_xdp forwarded nothing")
		}
	}
	cs, err := tp.dp.Conns()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		t.Logf("conn %s %s -> %s -> %s %s expires %s", c.Proto, c.Client, c.Virtual, c.Dest, c.State, c.Expires.Round(time.Second))
	}
}

func TestNetnsNAT(t *testing.T)     { testNetnsForward(t, ipvs.Masq, 0) }
func TestNetnsDR(t *testing.T)      { testNetnsForward(t, ipvs.Route, 0) }
func TestNetnsTunIPIP(t *testing.T) { testNetnsForward(t, ipvs.Tunnel, ipvs.TunIPIP) }
func TestNetnsTunGUE(t *testing.T)  { testNetnsForward(t, ipvs.Tunnel, ipvs.TunGUE) }

func TestNetnsNAT6(t *testing.T) { testNetnsForwardConfig(t, topoConfig{fwd: ipvs.Masq, v6: true}) }
func TestNetnsDR6(t *testing.T)  { testNetnsForwardConfig(t, topoConfig{fwd: ipvs.Route, v6: true}) }
func TestNetnsTun6(t *testing.T) { testNetnsForwardConfig(t, topoConfig{fwd: ipvs.Tunnel, v6: true}) }
func TestNetnsTunGUE6(t *testing.T) {
	testNetnsForwardConfig(t, topoConfig{fwd: ipvs.Tunnel, tun: ipvs.TunGUE, v6: true})
}

func TestNetnsXDPNAT(t *testing.T) { testNetnsForwardConfig(t, topoConfig{fwd: ipvs.Masq, xdp: true}) }
func TestNetnsXDPDR(t *testing.T)  { testNetnsForwardConfig(t, topoConfig{fwd: ipvs.Route, xdp: true}) }
func TestNetnsXDPTun(t *testing.T) {
	testNetnsForwardConfig(t, topoConfig{fwd: ipvs.Tunnel, xdp: true})
}
func TestNetnsXDPNAT6(t *testing.T) {
	testNetnsForwardConfig(t, topoConfig{fwd: ipvs.Masq, xdp: true, v6: true})
}

// TestNetnsRestart restarts the data plane (Close, then New on the same
// pin path) while a keep-alive HTTP connection is open: the pinned
// connection table and TC link are adopted, the control plane's replay
// of its configuration finds everything in place, and the open connection
// keeps going to the same realserver.
func TestNetnsRestart(t *testing.T) {
	tp := newTopo(t, ipvs.Masq, 0)
	tp.serve(t, 0)
	tp.serve(t, 1)
	svc := ipvs.Service{ServiceKey: ipvs.TCPService(netip.AddrPortFrom(tp.vip, 80)), Scheduler: "rr"}
	svc.SetDefaults()
	dests := []ipvs.Destination{
		{Addr: netip.MustParseAddr("10.2.0.11"), Port: 80, Fwd: ipvs.Masq, Weight: 1},
		{Addr: netip.MustParseAddr("10.2.0.12"), Port: 80, Fwd: ipvs.Masq, Weight: 1},
	}
	configure := func(dp *Dataplane) {
		t.Helper()
		if err := dp.AddService(svc); err != nil {
			t.Fatal(err)
		}
		for _, d := range dests {
			if err := dp.AddDest(svc.ServiceKey, d); err != nil {
				t.Fatal(err)
			}
		}
	}
	configure(tp.dp)

	var c net.Conn
	tp.client.MustDo(func() error {
		var err error
		c, err = net.DialTimeout("tcp4", tp.vip.String()+":80", 3*time.Second)
		return err
	})
	defer c.Close()
	ask := func() string {
		t.Helper()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: vip\r\n\r\n")
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		_, body, _ := strings.Cut(string(buf[:n]), "\r\n\r\n")
		name, _, _ := strings.Cut(body, " ")
		return name
	}
	first := ask()

	if err := tp.dp.Close(); err != nil {
		t.Fatal(err)
	}
	tp.start(t)
	configure(tp.dp) // the director replays its configuration

	if again := ask(); again != first {
		t.Errorf("after the restart the connection went to %s, before to %s", again, first)
	}
	st, err := tp.dp.Services()
	if err != nil {
		t.Fatal(err)
	}
	var active uint32
	for _, d := range st[0].Dests {
		active += d.ActiveConns
	}
	if active != 1 {
		t.Errorf("after the restart %d active connections listed, want the 1 open one", active)
	}
}
