package ebpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/netns"
)

// The ctr map's indexes for the TUN MTU cases (structs.h).
const (
	ctrICMPFragNeeded = 20
	ctrICMP6TooBig    = 21
	ctrDropTooBig     = 22
)

func ctrSum(t *testing.T, m *ebpf.Map, idx uint32) uint64 {
	t.Helper()
	var per []uint64
	if err := m.Lookup(idx, &per); err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n
}

// clearDF returns an IPv4 packet with DF cleared and its header checksum
// fixed.
func clearDF(ip []byte) []byte {
	ip = append([]byte(nil), ip...)
	ip[6] &^= 0x40
	hl := int(ip[0]&0xf) * 4
	ip[10], ip[11] = 0, 0
	var sum uint32
	for i := 0; i < hl; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	return ip
}

// tooBig is the error the director answers an oversized TUN packet inner
// (an IP packet from the client to the VIP) with: from the VIP to the
// client, ICMPv4 fragmentation needed quoting the header and 8 bytes, or
// ICMPv6 packet too big quoting what fits in 1280 bytes.
func tooBig(t testing.TB, inner []byte, v6 bool, mtu int) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	var err error
	if !v6 {
		hl := int(inner[0]&0xf) * 4
		src, dst := netip.AddrFrom4([4]byte(inner[16:20])), netip.AddrFrom4([4]byte(inner[12:16]))
		ip := &layers.IPv4{Version: 4, TOS: 0xc0, TTL: 64, Flags: layers.IPv4DontFragment, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Protocol: layers.IPProtocolICMPv4}
		ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodeFragmentationNeeded), Seq: uint16(mtu)}
		err = gopacket.SerializeLayers(buf, opts, ip, ic, gopacket.Payload(inner[:hl+8]))
	} else {
		src, dst := netip.AddrFrom16([16]byte(inner[24:40])), netip.AddrFrom16([16]byte(inner[8:24]))
		q := inner
		if len(q) > 1280-48 {
			q = q[:1280-48]
		}
		ip := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), NextHeader: layers.IPProtocolICMPv6}
		ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypePacketTooBig, 0)}
		_ = ic.SetNetworkLayerForChecksum(ip)
		m := binary.BigEndian.AppendUint32(nil, uint32(mtu))
		err = gopacket.SerializeLayers(buf, opts, ip, ic, gopacket.Payload(append(m, q...)))
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// setRouteMTU gives the fixture namespace a host route to dst via rs0
// with an MTU metric.
func (f *fixture) setRouteMTU(dst netip.Addr, mtu int) {
	f.t.Helper()
	bits := 32
	if dst.Is6() {
		bits = 128
	}
	// Locked: bpf_fib_lookup answers for the forwarding path, which
	// takes a route's MTU only when it is locked (or with
	// net.ipv4.ip_forward_use_pmtu); PMTU exceptions always count.
	r := &netlink.Route{LinkIndex: f.rs0, Dst: &net.IPNet{IP: dst.AsSlice(), Mask: net.CIDRMask(bits, bits)}, MTU: mtu, MTULock: true}
	if err := f.ns.Netlink().RouteReplace(r); err != nil {
		f.t.Fatalf("route %s mtu %d: %v", dst, mtu, err)
	}
}

// TestFixtureTunnelMTU: a TUN packet that would exceed the route's MTU
// once encapsulated is answered as a router would (fragmentation needed
// for IPv4 with DF, packet too big for IPv6) from the VIP to the client's
// MAC out of the ingress device; IPv4 without DF is dropped and counted;
// a packet that fits is encapsulated as before. The oversized packets
// come after one that fits, so they meet the filled next-hop cache, whose
// MTU check sends them to the full lookup.
func TestFixtureTunnelMTU(t *testing.T) { testFixtureTunnelMTU(t, false) }

func testFixtureTunnelMTU(t *testing.T, xdp bool) {
	for _, fam := range families {
		for _, gue := range []bool{false, true} {
			name := fam.name + "/ipip"
			if gue {
				name = fam.name + "/gue"
			}
			t.Run(name, func(t *testing.T) {
				f := newFixtureMode(t, xdp)
				overhead := 20
				if fam.v6 {
					overhead = 40
				}
				d := ipvs.Destination{Addr: fam.rs1, Fwd: ipvs.Tunnel, Weight: 1}
				if gue {
					d.TunType, d.TunPort = ipvs.TunGUE, 6080
					overhead += 12
				}
				// The device MTU is 1500; the route to RS1 says 1450:
				// the route's MTU is the one that counts.
				routeMTU := 1450
				if fam.v6 {
					routeMTU = 1400
				}
				f.setRouteMTU(fam.rs1, routeMTU)
				f.addService(udpService(fam.vip, 53, "rr"), d)
				inner := func(sport uint16, ipLen int, opts bool) []byte {
					hdr := 20 + 8
					if opts {
						hdr += 4
					}
					if fam.v6 {
						hdr = 40 + 8
					}
					return ipPacket(t, fam.cip, fam.vip, l4{proto: ipvs.ProtoUDP, sport: sport, dport: 53, ipOptions: opts, payload: make([]byte, ipLen-hdr)})
				}
				encapped := func(in []byte, sport uint16) []byte {
					payload, proto := in, fam.encapProto
					if gue {
						f.t.Helper()
						payload = append(gueHeader(sport, 6080, len(in), fam.v6), in...)
						proto = layers.IPProtocolUDP
					}
					if fam.v6 {
						return frame(macRS0, macRS1, true, encapIPv6(t, fam.dip, fam.rs1, 0, proto, payload))
					}
					return frame(macRS0, macRS1, false, encapIPv4(t, fam.dip, fam.rs1, 0, proto, payload))
				}
				max := routeMTU - overhead

				// Fits exactly: encapsulated to RS1 (fills the cache).
				fits := inner(40000, max, false)
				ret, got := f.run(frame(macClient, macCL0, fam.v6, fits), 0)
				if ret != actRedirect {
					t.Fatalf("packet of %d bytes (fits %d): verdict %d, want redirect", max, routeMTU, ret)
				}
				sport := uint16(0)
				if gue {
					off := 14 + 20
					if fam.v6 {
						off = 14 + 40
					}
					sport = binary.BigEndian.Uint16(got[off:])
				}
				diffPackets(t, "fits", got, encapped(fits, sport))

				// One byte more, same connection: too big.
				big := inner(40000, max+1, false)
				in := frame(macClient, macCL0, fam.v6, big)
				want := frame(macCL0, macClient, fam.v6, tooBig(t, big, fam.v6, max))
				if fam.v6 && max < 1280 {
					t.Fatalf("test setup: IPv6 mtu %d", max)
				}
				if xdp {
					ret, got := f.run(in, 0)
					if ret != actOK || len(f.xmeta) != xmetaLen {
						t.Fatalf("too big at XDP: verdict %d meta %x, want pass with a note", ret, f.xmeta)
					}
					action := binary.NativeEndian.Uint32(f.xmeta[4:])
					mtu := binary.NativeEndian.Uint32(f.xmeta[16:])
					if action != 3 || mtu != uint32(max) {
						t.Errorf("note action %d mtu %d, want 3 (too big) and %d", action, mtu, max)
					}
					diffPackets(t, "too big, passed to TC", got, in)
					return
				}
				f.check([]step{{desc: "too big: ICMP to the client", in: in, verdict: actRedirect, out: want}})
				// A full-size packet of a new connection (no cache).
				full := inner(40001, 1500, false)
				f.check([]step{{desc: "1500 bytes, new connection: ICMP", in: frame(macClient, macCL0, fam.v6, full), verdict: actRedirect,
					out: frame(macCL0, macClient, fam.v6, tooBig(t, full, fam.v6, max))}})
				n := uint64(2)
				if !fam.v6 {
					// IP options are quoted with the header.
					opt := inner(40002, 1500, true)
					f.check([]step{{desc: "with IP options: ICMP quotes them", in: frame(macClient, macCL0, false, opt), verdict: actRedirect,
						out: frame(macCL0, macClient, false, tooBig(t, opt, false, max))}})
					n++
					// Without DF: no fragmentation for a redirected skb,
					// dropped and counted.
					nodf := clearDF(inner(40003, 1500, false))
					f.check([]step{{desc: "no DF: dropped", in: frame(macClient, macCL0, false, nodf), verdict: actShot}})
					if c := ctrSum(t, f.objs.Ctr, ctrDropTooBig); c != 1 {
						t.Errorf("CTR_DROP_TOO_BIG %d, want 1", c)
					}
					// Without DF but fitting: encapsulated.
					small := clearDF(inner(40004, max, false))
					ret, _ := f.run(frame(macClient, macCL0, false, small), 0)
					if ret != actRedirect {
						t.Errorf("no DF, fits: verdict %d, want redirect", ret)
					}
				}
				idx := uint32(ctrICMPFragNeeded)
				if fam.v6 {
					idx = ctrICMP6TooBig
				}
				if c := ctrSum(t, f.objs.Ctr, idx); c != n {
					t.Errorf("ICMP counter %d, want %d", c, n)
				}
			})
		}
	}
}

// TestFixtureTunnelMTUTCP: the same for a TCP segment (the quote holds
// the ports and the sequence number).
func TestFixtureTunnelMTUTCP(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			f := newFixture(t)
			f.addService(tcpService(fam.vip, 80, "rr"), ipvs.Destination{Addr: fam.rs1, Fwd: ipvs.Tunnel, Weight: 1})
			hdr := 20 + 20
			if fam.v6 {
				hdr = 40 + 20
			}
			syn := ipPacket(t, fam.cip, fam.vip, l4{proto: ipvs.ProtoTCP, sport: 1234, dport: 80, flags: conn.SYN})
			if ret, _ := f.run(frame(macClient, macCL0, fam.v6, syn), 0); ret != actRedirect {
				t.Fatalf("SYN: verdict %d", ret)
			}
			seg := ipPacket(t, fam.cip, fam.vip, l4{proto: ipvs.ProtoTCP, sport: 1234, dport: 80, flags: conn.ACK, payload: make([]byte, 1500-hdr)})
			max := 1480
			if fam.v6 {
				max = 1460
			}
			f.check([]step{{desc: "full-size segment: ICMP", in: frame(macClient, macCL0, fam.v6, seg), verdict: actRedirect,
				out: frame(macCL0, macClient, fam.v6, tooBig(t, seg, fam.v6, max))}})
		})
	}
}

// testNetnsTunPMTU: TUN without the realservers' MSS clamp. The client
// sends a full-size UDP datagram with DF (IP_PMTUDISC_DO) to the VIP; it
// does not fit the tunnel, the director answers with fragmentation needed
// (IPv6: packet too big) from the VIP, the client's route cache learns the
// path MTU (ip route get shows it, the socket refuses the big datagram
// with EMSGSIZE and reports IP_MTU), and the datagram resent at that size
// reaches the realserver through the tunnel.
func testNetnsTunPMTU(t *testing.T, cfg topoConfig) {
	cfg.fwd, cfg.noClamp = ipvs.Tunnel, true
	tp := newTopoConfig(t, cfg)
	const port = 5353
	svc := ipvs.Service{ServiceKey: ipvs.UDPService(netip.AddrPortFrom(tp.vip, port)), Scheduler: "rr"}
	svc.SetDefaults()
	if err := tp.dp.AddService(svc); err != nil {
		t.Fatal(err)
	}
	d := ipvs.Destination{Addr: tp.rip[0], Port: port, Fwd: ipvs.Tunnel, Weight: 1}
	overhead := 20
	if cfg.v6 {
		overhead = 40
	}
	if cfg.tun == ipvs.TunGUE {
		d.TunType, d.TunPort = ipvs.TunGUE, 6080
		overhead += 12
	}
	if err := tp.dp.AddDest(svc.ServiceKey, d); err != nil {
		t.Fatal(err)
	}
	wantMTU := 1500 - overhead

	// The realserver: a UDP socket on the VIP's port.
	var srv net.PacketConn
	tp.rs[0].MustDo(func() error {
		var err error
		srv, err = net.ListenPacket("udp", fmt.Sprintf(":%d", port))
		return err
	})
	defer srv.Close()
	got := make(chan int, 16)
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := srv.ReadFrom(buf)
			if err != nil {
				close(got)
				return
			}
			got <- n
		}
	}()

	var c *net.UDPConn
	tp.client.MustDo(func() error {
		var err error
		c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(tp.vip, port)))
		return err
	})
	defer c.Close()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	level, opt, val, mtuOpt := unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO, unix.IP_MTU
	hdr := 20 + 8
	if cfg.v6 {
		level, opt, val, mtuOpt = unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DO, unix.IPV6_MTU
		hdr = 40 + 8
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, val) }); err != nil || serr != nil {
		t.Fatalf("set PMTU discovery: %v %v", err, serr)
	}
	sockMTU := func() int {
		var m int
		raw.Control(func(fd uintptr) { m, serr = unix.GetsockoptInt(int(fd), level, mtuOpt) })
		return m
	}
	if m := sockMTU(); m != 1500 {
		t.Fatalf("client's path MTU before: %d, want 1500", m)
	}

	// Full-size datagrams until the socket knows better.
	big := make([]byte, 1500-hdr)
	learnt := false
	for i := 0; i < 20 && !learnt; i++ {
		_, err := c.Write(big)
		switch {
		case errors.Is(err, unix.EMSGSIZE):
			learnt = true
		case err != nil:
			t.Fatalf("write: %v", err)
		default:
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !learnt {
		t.Fatalf("the client never learnt a smaller path MTU (director counters: frag needed %d, too big %d, dropped %d)",
			ctrSum(t, tp.dp.objs.Ctr, ctrICMPFragNeeded), ctrSum(t, tp.dp.objs.Ctr, ctrICMP6TooBig), ctrSum(t, tp.dp.objs.Ctr, ctrDropTooBig))
	}
	if m := sockMTU(); m != wantMTU {
		t.Errorf("client's path MTU to the VIP: %d, want %d", m, wantMTU)
	}
	var route string
	tp.client.MustDo(func() error {
		out, err := exec.Command("ip", "route", "get", tp.vip.String()).CombinedOutput()
		route = string(out)
		return err
	})
	t.Logf("client: ip route get %s: %s", tp.vip, strings.Join(strings.Fields(route), " "))
	if !strings.Contains(route, fmt.Sprintf("mtu %d", wantMTU)) {
		t.Errorf("ip route get %s does not show mtu %d: %s", tp.vip, wantMTU, route)
	}
	idx := uint32(ctrICMPFragNeeded)
	if cfg.v6 {
		idx = ctrICMP6TooBig
	}
	if n := ctrSum(t, tp.dp.objs.Ctr, idx); n == 0 {
		t.Errorf("the director counted no ICMP error")
	}

	// The resent datagram, at the learnt size, reaches the realserver.
	// (The ICMP error also left EMSGSIZE pending on the connected
	// socket, which the next send would report: collect it first.)
	raw.Control(func(fd uintptr) { unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR) })
	small := make([]byte, wantMTU-hdr)
	if _, err := c.Write(small); err != nil {
		t.Fatalf("write %d bytes: %v", len(small), err)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case n, ok := <-got:
			if !ok {
				t.Fatal("realserver socket closed")
			}
			if n == len(small) {
				return
			}
			t.Errorf("realserver got a datagram of %d bytes (the big one must not pass)", n)
		case <-deadline:
			t.Fatalf("the %d-byte datagram did not reach the realserver", len(small))
		}
	}
}

func TestNetnsTunPMTU(t *testing.T) { testNetnsTunPMTU(t, topoConfig{tun: ipvs.TunIPIP}) }
func TestNetnsTunPMTUGUE(t *testing.T) {
	testNetnsTunPMTU(t, topoConfig{tun: ipvs.TunGUE})
}
func TestNetnsTunPMTU6(t *testing.T) { testNetnsTunPMTU(t, topoConfig{tun: ipvs.TunIPIP, v6: true}) }
func TestNetnsXDPTunPMTU(t *testing.T) {
	testNetnsTunPMTU(t, topoConfig{tun: ipvs.TunIPIP, xdp: true})
}
func TestNetnsXDPTunPMTU6(t *testing.T) {
	testNetnsTunPMTU(t, topoConfig{tun: ipvs.TunIPIP, xdp: true, v6: true})
}

// TestNewRefusesOldCtr: the ctr map grew by the TUN MTU counters; a ctr
// pinned by an older build (20 entries) is refused with the advice to
// remove the pins, like any map of another layout.
func TestNewRefusesOldCtr(t *testing.T) {
	netns.RequireRoot(t)
	pin := filepath.Join("/sys/fs/bpf", fmt.Sprintf("govs-oldctr-%d", os.Getpid()))
	if err := os.MkdirAll(pin, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pin) })
	old, err := ebpf.NewMap(&ebpf.MapSpec{Name: "ctr", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.Pin(filepath.Join(pin, "ctr")); err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{PinPath: pin}, slog.New(slog.DiscardHandler))
	if err == nil {
		d.Close()
		t.Fatal("New adopted a ctr map of the old size")
	}
	if !strings.Contains(err.Error(), "govsd --ebpf-remove") {
		t.Fatalf("New: %v, want the advice to remove the pins", err)
	}
}
