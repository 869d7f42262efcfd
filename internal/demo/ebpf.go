//go:build linux

package demo

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
	"strings"
	"time"

	"github.com/govs/govs/internal/dataplane/ebpf"
	"github.com/govs/govs/internal/director"
	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/ipvsadm"
	"github.com/govs/govs/internal/netns"
)

// The eBPF demo's topology: the classic LVS picture on one Ethernet
// segment (a bridge in its own namespace), everything in network
// namespaces so nothing touches the host's network.
//
//	client   10.1.0.2                 --+
//	director 10.1.0.1 10.2.0.1        --+-- br0
//	         VIP 10.1.0.100 (d0, govs_tc)
//	rs1      10.2.0.11  --+                 (NAT: default via 10.2.0.1;
//	rs2      10.2.0.12  --+                  DR/TUN: VIP on lo, replies direct)
var (
	ebpfVIP  = netip.MustParseAddr("10.1.0.100")
	ebpfRIPs = [2]netip.Addr{netip.MustParseAddr("10.2.0.11"), netip.MustParseAddr("10.2.0.12")}
	// ebpfWeights make wrr's spreading visible: rs2 (added last, so
	// first in the kernel's list) gets two connections for each of rs1's.
	ebpfWeights = [2]int{1, 2}
)

type ebpfTopo struct {
	client, dir *netns.NS
	rs          [2]*netns.NS
}

// RunEBPF runs the root demo on the eBPF data plane: it builds a
// namespace topology (client, director, two realservers running small
// HTTP servers), starts the data plane with an engine and a director in
// the director's namespace, loads a wrr service forwarding by mode ("dr",
// "nat" or "tun"), and sends HTTP requests from the client, printing which
// realserver answered and the live table. With requests > 0 it stops
// after that many; with 0 it sends one a second until ctx ends. Either
// way everything it built is removed before it returns. It needs root.
func RunEBPF(ctx context.Context, out io.Writer, mode string, requests int) (err error) {
	var fwd ipvs.FwdMethod
	switch mode {
	case "dr", "":
		fwd, mode = ipvs.Route, "dr"
	case "nat":
		fwd = ipvs.Masq
	case "tun":
		fwd = ipvs.Tunnel
	default:
		return fmt.Errorf("ebpf demo: unknown mode %q: use dr, nat or tun", mode)
	}
	if os.Geteuid() != 0 {
		return errors.New("ebpf demo: needs root (network namespaces, BPF): run govsd --demo --dataplane ebpf as root")
	}
	env := &netns.Env{}
	defer func() {
		if cerr := env.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("ebpf demo: clean up: %w", cerr))
		}
	}()
	var tp *ebpfTopo
	if err := env.Build(func() { tp = buildEBPFTopo(env, fwd) }); err != nil {
		return fmt.Errorf("ebpf demo: build the namespaces: %w", err)
	}
	for i, rs := range tp.rs {
		if err := serveRealserver(env, rs, fmt.Sprintf("rs%d", i+1), ebpfRIPs[i]); err != nil {
			return err
		}
	}

	pin := fmt.Sprintf("%s-demo-%d", ebpf.DefaultPinPath, os.Getpid())
	var dp *ebpf.Dataplane
	if err := tp.dir.Do(func() error {
		var err error
		dp, err = ebpf.New(ebpf.Options{Interfaces: []string{"d0"}, PinPath: pin}, slog.New(slog.DiscardHandler))
		return err
	}); err != nil {
		_ = ebpf.Remove(pin)
		return fmt.Errorf("ebpf demo: start the data plane: %w", err)
	}
	env.Cleanup(func() {
		dp.Close()
		if err := ebpf.Remove(pin); err != nil {
			env.Errorf("remove %s: %v", pin, err)
		}
	})
	d, err := director.New(director.Config{Engine: engine.New(engine.Options{}), Dataplane: dp})
	if err != nil {
		return fmt.Errorf("ebpf demo: %w", err)
	}
	rules := ebpfRules(fwd)
	if err := ipvsadm.Restore(ctx, strings.NewReader(rules), "ebpf demo rules", d); err != nil {
		return fmt.Errorf("ebpf demo: load the configuration: %w", err)
	}

	method := map[ipvs.FwdMethod]string{ipvs.Route: "DR (direct routing)", ipvs.Masq: "NAT (masquerading)", ipvs.Tunnel: "TUN (IPIP tunnel)"}[fwd]
	fmt.Fprintf(out, "\ngovs demo: the eBPF data plane (TC on the director's d0) forwarding by %s\n\n", method)
	fmt.Fprintf(out, "  namespace %-26s client    10.1.0.2\n", tp.client.Name)
	fmt.Fprintf(out, "  namespace %-26s director  10.1.0.1, 10.2.0.1, VIP %s on d0; BPF pinned at %s\n", tp.dir.Name, ebpfVIP, pin)
	for i, rs := range tp.rs {
		extra := "default route via the director"
		if fwd != ipvs.Masq {
			extra = "VIP on lo, arp_ignore=1 arp_announce=2, replies straight to the client"
		}
		if fwd == ipvs.Tunnel {
			extra += ", govs_decap on e0, advmss 1400"
		}
		fmt.Fprintf(out, "  namespace %-26s rs%d       %s weight %d; %s\n", rs.Name, i+1, ebpfRIPs[i], ebpfWeights[i], extra)
	}
	fmt.Fprintf(out, "\nRules (ipvsadm -S):\n%s\n", rules)
	if err := printTable(ctx, d, out); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nTry it:   ip netns exec %s curl http://%s/\n", tp.client.Name, ebpfVIP)
	fmt.Fprintf(out, "Stop:     Ctrl-C (removes the namespaces and the BPF pins)\n\n")

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for n := 1; requests == 0 || n <= requests; n++ {
		answer, err := tp.get(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			fmt.Fprintf(out, "client: request %d: %v\n", n, err)
		} else {
			fmt.Fprintf(out, "client: request %d -> %s\n", n, answer)
		}
		if n%5 == 0 || n == requests {
			fmt.Fprintln(out)
			if err := printTable(ctx, d, out); err != nil {
				return err
			}
			fmt.Fprintln(out)
		}
		if requests != 0 {
			if n == requests {
				break
			}
			continue // a bounded run does not wait
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
	return nil
}

// ebpfRules is the demo's configuration in ipvsadm -S format.
func ebpfRules(fwd ipvs.FwdMethod) string {
	flag := map[ipvs.FwdMethod]string{ipvs.Route: "-g", ipvs.Masq: "-m", ipvs.Tunnel: "-i"}[fwd]
	var b strings.Builder
	vip := netip.AddrPortFrom(ebpfVIP, 80)
	fmt.Fprintf(&b, "-A -t %s -s wrr\n", vip)
	for i, rip := range ebpfRIPs {
		fmt.Fprintf(&b, "-a -t %s -r %s %s -w %d\n", vip, netip.AddrPortFrom(rip, 80), flag, ebpfWeights[i])
	}
	return b.String()
}

func buildEBPFTopo(tb netns.TB, fwd ipvs.FwdMethod) *ebpfTopo {
	lan := netns.New(tb, "lan")
	br := lan.Bridge("br0")
	tp := &ebpfTopo{client: netns.New(tb, "client"), dir: netns.New(tb, "director")}
	tp.rs[0], tp.rs[1] = netns.New(tb, "rs1"), netns.New(tb, "rs2")
	c0, p := netns.Veth(tb, tp.client, "c0", nil, lan, "pc", nil)
	p.SetMaster(br)
	c0.AddAddr("10.1.0.2/24")
	d0, p := netns.Veth(tb, tp.dir, "d0", nil, lan, "pd", nil)
	p.SetMaster(br)
	d0.AddAddr("10.1.0.1/24")
	d0.AddAddr("10.2.0.1/24")
	d0.AddAddr(ebpfVIP.String() + "/32")
	tp.dir.EnableForwarding()
	for i, rs := range tp.rs {
		e0, p := netns.Veth(tb, rs, "e0", nil, lan, fmt.Sprintf("p%d", i), nil)
		p.SetMaster(br)
		e0.AddAddr(ebpfRIPs[i].String() + "/24")
		if fwd == ipvs.Masq {
			e0.AddRoute("0.0.0.0/0", "10.2.0.1", 0)
			continue
		}
		rs.AddLoopbackAddr(ebpfVIP.String())
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
				dc, err := ebpf.AttachDecap("e0", 0, "")
				if err != nil {
					return err
				}
				tb.Cleanup(func() { dc.Close() })
				return nil
			})
		}
	}
	return tp
}

// serveRealserver runs an HTTP server on port 80 inside rs that answers
// with its name, its address and the client address it sees.
func serveRealserver(env *netns.Env, rs *netns.NS, name string, addr netip.Addr) error {
	var ln net.Listener
	if err := rs.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", ":80")
		return err
	}); err != nil {
		return fmt.Errorf("ebpf demo: start %s: %w", name, err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s (%s) answered, client %s\n", name, addr, r.RemoteAddr)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	srv.SetKeepAlivesEnabled(false)
	go srv.Serve(ln)
	env.Cleanup(func() { srv.Close() })
	return nil
}

// get fetches http://VIP/ from the client's namespace.
func (tp *ebpfTopo) get(ctx context.Context) (string, error) {
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
	defer tr.CloseIdleConnections()
	return get(ctx, &http.Client{Transport: tr, Timeout: 5 * time.Second}, "http://"+ebpfVIP.String()+"/")
}
