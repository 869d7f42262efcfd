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
	vip         netip.Addr
	dp          *Dataplane
}

var topoCount atomic.Int32

func newTopo(t *testing.T, fwd ipvs.FwdMethod, tun ipvs.TunnelType) *topo {
	t.Helper()
	netns.RequireRoot(t)
	lan := netns.New(t, "lan")
	br := lan.Bridge("br0")
	tp := &topo{client: netns.New(t, "client"), dir: netns.New(t, "dir"), vip: netip.MustParseAddr("10.1.0.100")}
	tp.rs[0], tp.rs[1] = netns.New(t, "rs1"), netns.New(t, "rs2")

	c0, p := netns.Veth(t, tp.client, "c0", nil, lan, "pc", nil)
	p.SetMaster(br)
	c0.AddAddr("10.1.0.2/24")
	d0, p := netns.Veth(t, tp.dir, "d0", nil, lan, "pd", nil)
	p.SetMaster(br)
	d0.AddAddr("10.1.0.1/24")
	d0.AddAddr("10.2.0.1/24")
	d0.AddAddr("10.1.0.100/32")
	tp.dir.EnableForwarding()
	for i, rs := range tp.rs {
		e0, p := netns.Veth(t, rs, "e0", nil, lan, fmt.Sprintf("p%d", i), nil)
		p.SetMaster(br)
		e0.AddAddr(fmt.Sprintf("10.2.0.%d/24", 11+i))
		if fwd == ipvs.Masq {
			e0.AddRoute("0.0.0.0/0", "10.2.0.1", 0)
			continue
		}
		rs.AddLoopbackAddr(tp.vip.String())
		rs.Sysctl("net.ipv4.conf.all.arp_ignore", "1")
		rs.Sysctl("net.ipv4.conf.all.arp_announce", "2")
		rs.Sysctl("net.ipv4.conf.all.rp_filter", "0")
		rs.Sysctl("net.ipv4.conf.e0.rp_filter", "0")
		advmss := 0
		if fwd == ipvs.Tunnel {
			advmss = 1400 // room for the outer header
		}
		e0.AddRoute("10.1.0.0/24", "", advmss)
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
	pin := fmt.Sprintf("/sys/fs/bpf/govs-test-%d-%d", os.Getpid(), topoCount.Add(1))
	tp.dir.MustDo(func() error {
		var err error
		tp.dp, err = New(Options{Interfaces: []string{"d0"}, PinPath: pin}, slog.New(slog.DiscardHandler))
		return err
	})
	t.Cleanup(func() {
		tp.dp.Close()
		if err := Remove(pin); err != nil {
			t.Errorf("remove %s: %v", pin, err)
		}
	})
	return tp
}

// serve runs an HTTP server on rs port 80 answering "<name> <client addr>".
func (tp *topo) serve(t *testing.T, i int) {
	t.Helper()
	var ln net.Listener
	tp.rs[i].MustDo(func() error {
		var err error
		ln, err = net.Listen("tcp4", ":80")
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
	resp, err := cl.Get("http://" + tp.vip.String() + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func testNetnsForward(t *testing.T, fwd ipvs.FwdMethod, tun ipvs.TunnelType) {
	tp := newTopo(t, fwd, tun)
	tp.serve(t, 0)
	tp.serve(t, 1)
	svc := ipvs.Service{ServiceKey: ipvs.TCPService(netip.AddrPortFrom(tp.vip, 80)), Scheduler: "rr"}
	svc.SetDefaults()
	if err := tp.dp.AddService(svc); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		d := ipvs.Destination{Addr: netip.AddrFrom4([4]byte{10, 2, 0, byte(11 + i)}), Port: 80, Fwd: fwd, Weight: 1}
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
		if !strings.HasPrefix(client, "10.1.0.2:") {
			t.Errorf("request %d: realserver saw client %s, want 10.1.0.2", i, client)
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

	pin := tp.dp.opts.PinPath
	if err := tp.dp.Close(); err != nil {
		t.Fatal(err)
	}
	tp.dir.MustDo(func() error {
		var err error
		tp.dp, err = New(Options{Interfaces: []string{"d0"}, PinPath: pin}, slog.New(slog.DiscardHandler))
		return err
	})
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
