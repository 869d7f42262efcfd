package healthcheck

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/net/bpf"

	"github.com/govs/govs/internal/ipvs"
)

var (
	dirMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	rsMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x11}
	rs2MAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x12}
	dirIP  = netip.MustParseAddr("10.2.0.1")
	rsIP   = netip.MustParseAddr("10.2.0.11")
	vipIP  = netip.MustParseAddr("10.1.0.100")
)

func testProbe(dir, vip netip.Addr) *probe {
	return &probe{src: netip.AddrPortFrom(dir, 40000), dst: netip.AddrPortFrom(vip, 80), seq: 0x01020304, ipID: 0x1234}
}

// reserialize decodes frame with gopacket and serializes it again with
// checksums computed by gopacket: equal bytes mean our checksums and
// lengths are right.
func reserialize(t *testing.T, frame []byte) []byte {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	if el := pkt.ErrorLayer(); el != nil {
		t.Fatalf("gopacket: %v", el.Error())
	}
	var ls []gopacket.SerializableLayer
	var nl gopacket.NetworkLayer
	for _, l := range pkt.Layers() {
		switch l := l.(type) {
		case *layers.IPv4:
			nl = l
		case *layers.IPv6:
			nl = l
		case *layers.TCP:
			if err := l.SetNetworkLayerForChecksum(nl); err != nil {
				t.Fatal(err)
			}
		case *layers.ICMPv6:
			if err := l.SetNetworkLayerForChecksum(nl); err != nil {
				t.Fatal(err)
			}
		}
		if s, ok := l.(gopacket.SerializableLayer); ok {
			ls = append(ls, s)
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestPathFrames compares the frames with golden bytes and with
// gopacket's checksums.
func TestPathFrames(t *testing.T) {
	v6dir, v6vip := netip.MustParseAddr("fd00:2::1"), netip.MustParseAddr("fd00:1::100")
	p4, p6 := testProbe(dirIP, vipIP), testProbe(v6dir, v6vip)
	tests := []struct {
		name   string
		frame  []byte
		golden string
	}{
		{"SYN IPv4", ethernet(rsMAC, dirMAC, etherTypeIPv4, p4.syn()),
			"020000000011020000000001 0800 45000 02c12344000400614310a0200010a010064 9c40005001020304000000006002faf0e8370000020405b4"},
		{"RST IPv4", ethernet(rsMAC, dirMAC, etherTypeIPv4, p4.rst()),
			"020000000011020000000001 0800 4500002812354000400614340a0200010a010064 9c400050010203050000000050040000fae10000"},
		{"SYN IPv6", ethernet(rsMAC, dirMAC, etherTypeIPv6, p6.syn()),
			"020000000011020000000001 86dd 6000000000180640fd000002000000000000000000000001fd000001000000000000000000000100 9c40005001020304000000006002faf0019a0000020405b4"},
		{"ARP request", solicit(dirMAC, dirIP, vipIP),
			"ffffffffffff020000000001 0806 0001080006040001 020000000001 0a020001 000000000000 0a010064"},
		{"neighbour solicitation", solicit(dirMAC, v6dir, v6vip),
			"3333ff000100020000000001 86dd 6000000000203afffd000002000000000000000000000001ff0200000000000000000001ff000100 8700 7b98 00000000 fd000001000000000000000000000100 0101020000000001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hex.EncodeToString(tt.frame)
			want := strings.ReplaceAll(tt.golden, " ", "")
			if got != want {
				t.Errorf("frame\n %s\nwant\n %s", got, want)
			}
			// gopacket pads frames to Ethernet's 60-byte minimum.
			if re := reserialize(t, tt.frame); !bytes.Equal(bytes.TrimRight(re[len(tt.frame):], "\x00"), nil) || !bytes.Equal(re[:len(tt.frame)], tt.frame) {
				t.Errorf("gopacket re-serialized\n %x\nours\n %x", re, tt.frame)
			}
		})
	}
}

func TestPathGUE(t *testing.T) {
	p := testProbe(dirIP, vipIP)
	g := gue(p.syn())
	if !bytes.Equal(g[:4], []byte{0, protoIPIP, 0, 0}) || !bytes.Equal(g[4:], p.syn()) {
		t.Errorf("gue = %x", g)
	}
	if g := gue(testProbe(netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")).syn()); g[1] != protoIPv6 {
		t.Errorf("gue IPv6 proto = %d", g[1])
	}
}

// answer builds the TCP segment the VIP sends back to the probe.
func answer(p *probe, flags uint8, ack uint32) []byte {
	return tcpPacket(p.dst, p.src, 0xaabbccdd, ack, flags, 7)
}

// icmpErr builds an ICMP (IPv4) error from src quoting quoted.
func icmpErr(src, dst netip.Addr, typ, code uint8, quoted []byte) []byte {
	m := append([]byte{typ, code, 0, 0, 0, 0, 0, 0}, quoted...)
	cs := fold(sum(0, m))
	m[2], m[3] = byte(cs>>8), byte(cs)
	b := make([]byte, 20+len(m))
	putIPHeader(b, src, dst, protoICMP, len(m), 9)
	copy(b[20:], m)
	return b
}

func arpReply(mac net.HardwareAddr, ip netip.Addr) []byte {
	f := solicit(mac, ip, dirIP)[14:]
	f[7] = 2
	return f
}

// outer wraps inner in an IPv4 header of protocol proto from the
// director to the realserver.
func outer(proto uint8, inner []byte) []byte {
	b := make([]byte, 20+len(inner))
	putIPHeader(b, dirIP, rsIP, proto, len(inner), 1)
	copy(b[20:], inner)
	return b
}

func udpTo(port uint16, payload []byte) []byte {
	u := make([]byte, 8+len(payload))
	u[2], u[3] = byte(port>>8), byte(port)
	copy(u[8:], payload)
	return outer(protoUDP, u)
}

func TestPathClassify(t *testing.T) {
	p := testProbe(dirIP, vipIP)
	p.tunPort = 6080
	na := func(target netip.Addr, opt bool) []byte {
		m := make([]byte, 24)
		m[0] = 136
		tt := target.As16()
		copy(m[8:], tt[:])
		if opt {
			m = append(m, 2, 1)
			m = append(m, rs2MAC...)
		}
		b := make([]byte, 40+len(m))
		putIPHeader(b, target, netip.MustParseAddr("fd00:2::1"), protoICMPv6, len(m), 0)
		b[7] = 255
		copy(b[40:], m)
		return b
	}
	v6vip := netip.MustParseAddr("fd00:1::100")
	tests := []struct {
		name string
		pkt  []byte
		want reply
	}{
		{"SYN-ACK", answer(p, tcpSYN|tcpACK, p.seq+1), reply{kind: replySYNACK, from: vipIP}},
		{"SYN-ACK wrong ack", answer(p, tcpSYN|tcpACK, p.seq+2), reply{}},
		{"RST-ACK", answer(p, tcpRST|tcpACK, p.seq+1), reply{kind: replyRST, from: vipIP}},
		{"other port", tcpPacket(netip.AddrPortFrom(vipIP, 81), p.src, 1, p.seq+1, tcpSYN|tcpACK, 0), reply{}},
		{"other source", tcpPacket(netip.AddrPortFrom(rsIP, 80), p.src, 1, p.seq+1, tcpSYN|tcpACK, 0), reply{}},
		{"our own SYN", p.syn(), reply{}},
		{"ARP reply", arpReply(rsMAC, vipIP), reply{kind: replyNeighbor, from: vipIP, mac: rsMAC}},
		{"ARP request", solicit(rsMAC, rsIP, vipIP)[14:], reply{}},
		{"port unreachable", icmpErr(rsIP, dirIP, 3, 3, p.syn()), reply{kind: replyICMP, from: rsIP, icmpType: 3, icmpCode: 3}},
		{"unreachable for another SYN", icmpErr(rsIP, dirIP, 3, 3, testProbe(dirIP, rsIP).syn()), reply{}},
		{"protocol unreachable, IPIP", icmpErr(rsIP, dirIP, 3, 2, outer(protoIPIP, p.syn())), reply{kind: replyICMP, from: rsIP, icmpType: 3, icmpCode: 2}},
		{"port unreachable, GUE", icmpErr(rsIP, dirIP, 3, 3, udpTo(6080, gue(p.syn()))), reply{kind: replyICMP, from: rsIP, icmpType: 3, icmpCode: 3}},
		{"port unreachable, other UDP", icmpErr(rsIP, dirIP, 3, 3, udpTo(53, gue(p.syn()))), reply{}},
		{"truncated", p.syn()[:10], reply{}},
		{"NA with option", na(v6vip, true), reply{kind: replyNeighbor, from: v6vip, mac: rs2MAC, v6: true}},
		{"NA without option", na(v6vip, false), reply{kind: replyNeighbor, from: v6vip, mac: rsMAC, v6: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.classify(tt.pkt, rsMAC)
			if got.kind != tt.want.kind || got.from != tt.want.from || !bytes.Equal(got.mac, tt.want.mac) ||
				got.icmpType != tt.want.icmpType || got.icmpCode != tt.want.icmpCode || got.v6 != tt.want.v6 {
				t.Errorf("classify = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestPathFilter runs the socket filter in x/net/bpf's VM.
func TestPathFilter(t *testing.T) {
	p := testProbe(dirIP, vipIP)
	p6 := testProbe(netip.MustParseAddr("fd00:2::1"), netip.MustParseAddr("fd00:1::100"))
	frag := answer(p, tcpSYN|tcpACK, p.seq+1)
	frag[7] = 1
	opts := answer(p, tcpSYN|tcpACK, p.seq+1)
	opts = append(append(append([]byte{}, opts[:20]...), 1, 1, 1, 0), opts[20:]...) // IPv4 options: ihl 6
	opts[0] = 0x46
	tests := []struct {
		name string
		pkt  []byte
		want bool
	}{
		{"SYN-ACK", answer(p, tcpSYN|tcpACK, p.seq+1), true},
		{"IPv4 options", opts, true},
		{"SYN-ACK IPv6", answer(p6, tcpSYN|tcpACK, p6.seq+1), true},
		{"other destination port", tcpPacket(p.dst, netip.AddrPortFrom(dirIP, 40001), 1, 1, tcpACK, 0), false},
		{"other source port IPv6", tcpPacket(netip.AddrPortFrom(p6.dst.Addr(), 22), p6.src, 1, 1, tcpACK, 0), false},
		{"our SYN", p.syn(), false},
		{"fragment", frag, false},
		{"ICMP", icmpErr(rsIP, dirIP, 3, 3, p.syn()), true},
		{"ARP", arpReply(rsMAC, vipIP), true},
		{"UDP", udpTo(53, nil), false},
		{"garbage", []byte{0x12, 0x34, 0x56}, false},
	}
	raw, err := p.filter()
	if err != nil {
		t.Fatal(err)
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("disassemble")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		n, err := vm.Run(tt.pkt)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := n > 0; got != tt.want {
			t.Errorf("%s: accepted %v, want %v", tt.name, got, tt.want)
		}
	}
}

// fakeConn is the sockets of one check: respond answers each frame or
// tunnel payload with packets to read.
type fakeConn struct {
	mu       sync.Mutex
	deadline time.Time
	queue    [][]byte
	frames   [][]byte
	tunnel   [][]byte
	respond  func(c *fakeConn, b []byte, tunnel bool) [][]byte
}

func (c *fakeConn) WriteFrame(f []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frames = append(c.frames, f)
	c.queue = append(c.queue, c.respond(c, f, false)...)
	return nil
}

func (c *fakeConn) WriteTunnel(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tunnel = append(c.tunnel, b)
	c.queue = append(c.queue, c.respond(c, b, true)...)
	return nil
}

func (c *fakeConn) ReadPacket(b []byte) (int, net.HardwareAddr, error) {
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			n := copy(b, c.queue[0])
			c.queue = c.queue[1:]
			c.mu.Unlock()
			return n, rsMAC, nil
		}
		dl := c.deadline
		c.mu.Unlock()
		if !time.Now().Before(dl) {
			return 0, nil, os.ErrDeadlineExceeded
		}
		time.Sleep(time.Millisecond)
	}
}

func (c *fakeConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return nil
}

func (c *fakeConn) Close() error { return nil }

// realserver answers like a host on the link: ARP for its own address
// and (when arpVIP) for the VIP, and the SYN with flags.
func realserver(p *probe, mac net.HardwareAddr, arpVIP bool, flags uint8) func(*fakeConn, []byte, bool) [][]byte {
	return func(c *fakeConn, b []byte, tunnel bool) [][]byte {
		if mac == nil { // nobody there
			return nil
		}
		if tunnel {
			if len(b) > 0 && b[0] == 0 { // GUE
				b = b[4:]
			}
			if flags == 0 {
				return [][]byte{icmpErr(rsIP, dirIP, 3, 2, outer(protoIPIP, b))}
			}
		} else if bytes.Equal(b[12:14], []byte{0x08, 0x06}) {
			target := netip.AddrFrom4([4]byte(b[14+24 : 14+28]))
			if target == rsIP || (target == vipIP && arpVIP) {
				return [][]byte{arpReply(mac, target)}
			}
			return nil
		} else {
			if !bytes.Equal(b[0:6], mac) {
				return nil
			}
			b = b[14:]
		}
		if b[33] != tcpSYN || flags == 0 { // only the SYN is answered
			return nil
		}
		return [][]byte{answer(p, flags, p.seq+1)}
	}
}

func TestPathRun(t *testing.T) {
	base := PathOptions{ConnOptions: ConnOptions{ConnectIP: rsIP, ConnectPort: 80, Timeout: 200 * time.Millisecond}, VIP: vipIP, Method: ipvs.Route}
	tun := base
	tun.Method = ipvs.Tunnel
	gueOpts := tun
	gueOpts.TunType, gueOpts.TunPort = ipvs.TunGUE, 6080
	tests := []struct {
		name    string
		opts    PathOptions
		rt      pathRoute
		mac     net.HardwareAddr // the realserver's
		arpVIP  bool
		flags   uint8
		wantUp  bool
		wantErr error
		want    string
		frames  int
	}{
		{"DR up", base, pathRoute{onLink: true, rsMAC: rsMAC}, rsMAC, false, tcpSYN | tcpACK, true, nil, "SYN-ACK from 10.1.0.100:80 through realserver 10.2.0.11 (02:00:00:00:00:11) via d0", 3},
		{"DR up, MAC asked", base, pathRoute{onLink: true}, rsMAC, false, tcpSYN | tcpACK, true, nil, "SYN-ACK", 4},
		{"DR refused", base, pathRoute{onLink: true, rsMAC: rsMAC}, rsMAC, false, tcpRST | tcpACK, false, ErrRefused, "answered RST for 10.1.0.100:80: nothing listens on the VIP", 2},
		{"DR no VIP", base, pathRoute{onLink: true, rsMAC: rsMAC}, rsMAC, false, 0, false, ErrTimeout, "the realserver does not accept the VIP", 2},
		{"DR no ARP answer", base, pathRoute{onLink: true}, nil, false, 0, false, ErrTimeout, "realserver 10.2.0.11 does not answer ARP on d0", 1},
		{"DR ARP problem", base, pathRoute{onLink: true, rsMAC: rsMAC}, rsMAC, true, tcpSYN | tcpACK, false, ErrARPProblem,
			"realserver 02:00:00:00:00:11 (10.2.0.11) answers ARP for the VIP 10.1.0.100 on d0", 3},
		{"DR ARP problem, refused too", base, pathRoute{onLink: true, rsMAC: rsMAC}, rsMAC, true, tcpRST | tcpACK, false, ErrARPProblem, "answers ARP for the VIP", 2},
		{"TUN IPIP up", tun, pathRoute{onLink: true, rsMAC: rsMAC}, rsMAC, false, tcpSYN | tcpACK, true, nil, "SYN-ACK", 1},
		{"TUN routed up", tun, pathRoute{}, rsMAC, false, tcpSYN | tcpACK, true, nil, "SYN-ACK", 0},
		{"TUN no decapsulator", tun, pathRoute{}, rsMAC, false, 0, false, ErrUnreachable,
			"ICMP protocol unreachable from 10.2.0.11 for the SYN to 10.1.0.100:80 through realserver 10.2.0.11 via d0: the realserver does not decapsulate ipip", 0},
		{"TUN GUE up", gueOpts, pathRoute{}, rsMAC, false, tcpSYN | tcpACK, true, nil, "SYN-ACK", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc, err := NewPath(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			pr := testProbe(dirIP, vipIP)
			if tt.opts.TunType == ipvs.TunGUE {
				pr.tunPort = tt.opts.TunPort
			}
			tt.rt.ifname, tt.rt.mac, tt.rt.src = "d0", dirMAC, dirIP
			c := &fakeConn{respond: realserver(pr, tt.mac, tt.arpVIP, tt.flags)}
			res := pc.run(context.Background(), time.Now(), c, tt.rt, pr)
			t.Logf("%s", res)
			if res.Up != tt.wantUp || (tt.wantErr != nil && !errors.Is(res.Err, tt.wantErr)) || !strings.Contains(res.String(), tt.want) {
				t.Errorf("result %q (up %v), want up %v, %v, containing %q", res, res.Up, tt.wantUp, tt.wantErr, tt.want)
			}
			if len(c.frames) != tt.frames {
				t.Errorf("sent %d frames, want %d", len(c.frames), tt.frames)
			}
			if tt.opts.Method == ipvs.Tunnel {
				want := pr.syn()
				if tt.opts.TunType == ipvs.TunGUE {
					want = gue(want)
				}
				if len(c.tunnel) == 0 || !bytes.Equal(c.tunnel[0], want) {
					t.Errorf("tunnel payload %x, want %x", c.tunnel, want)
				}
			}
			if tt.wantUp { // the half-open connection is reset
				last := c.frames
				if tt.opts.Method == ipvs.Tunnel {
					last = c.tunnel
				}
				rst := last[len(last)-1]
				if tt.opts.TunType == ipvs.TunGUE {
					rst = rst[4:]
				}
				if tt.opts.Method == ipvs.Route {
					rst = rst[14:]
				}
				if !bytes.Equal(rst, pr.rst()) {
					t.Errorf("last packet %x, want the RST %x", rst, pr.rst())
				}
			}
		})
	}
}

// TestPathRunOtherMAC: another host answering ARP for the VIP (the
// director, a backup director) is not this realserver's problem.
func TestPathRunOtherMAC(t *testing.T) {
	pc, err := NewPath(PathOptions{ConnOptions: ConnOptions{ConnectIP: rsIP, ConnectPort: 80, Timeout: time.Second}, VIP: vipIP, Method: ipvs.Route})
	if err != nil {
		t.Fatal(err)
	}
	pr := testProbe(dirIP, vipIP)
	rs := realserver(pr, rsMAC, false, tcpSYN|tcpACK)
	c := &fakeConn{respond: func(c *fakeConn, b []byte, tun bool) [][]byte {
		out := rs(c, b, tun)
		if bytes.Equal(b[12:14], []byte{0x08, 0x06}) {
			out = append(out, arpReply(rs2MAC, vipIP))
		}
		return out
	}}
	res := pc.run(context.Background(), time.Now(), c, pathRoute{ifname: "d0", mac: dirMAC, src: dirIP, onLink: true, rsMAC: rsMAC}, pr)
	if !res.Up {
		t.Errorf("result %s, want up", res)
	}
}

// TestPathRunCancel: a cancelled context ends the wait at once.
func TestPathRunCancel(t *testing.T) {
	pc, err := NewPath(PathOptions{ConnOptions: ConnOptions{ConnectIP: rsIP, ConnectPort: 80, Timeout: time.Minute}, VIP: vipIP, Method: ipvs.Route})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	pr := testProbe(dirIP, vipIP)
	c := &fakeConn{respond: realserver(pr, rsMAC, false, 0)}
	start := time.Now()
	res := pc.run(ctx, start, c, pathRoute{ifname: "d0", mac: dirMAC, src: dirIP, onLink: true, rsMAC: rsMAC}, pr)
	if res.Up || !errors.Is(res.Err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Errorf("result %s after %s, want down by cancellation", res, time.Since(start))
	}
}

func TestNewPathErrors(t *testing.T) {
	ok := PathOptions{ConnOptions: ConnOptions{ConnectIP: rsIP, ConnectPort: 80}, VIP: vipIP, Method: ipvs.Route}
	tests := []struct {
		name string
		mod  func(*PathOptions)
		want string
	}{
		{"no VIP", func(o *PathOptions) { o.VIP = netip.Addr{} }, "the VIP is required"},
		{"no port", func(o *PathOptions) { o.ConnectPort = 0 }, "connect_port is required"},
		{"NAT", func(o *PathOptions) { o.Method = ipvs.Masq }, "only DR and TUN"},
		{"GRE", func(o *PathOptions) { o.Method, o.TunType = ipvs.Tunnel, ipvs.TunGRE }, "gre tunnels are not supported"},
		{"GUE without port", func(o *PathOptions) { o.Method, o.TunType = ipvs.Tunnel, ipvs.TunGUE }, "GUE tunnel needs its port"},
		{"families", func(o *PathOptions) { o.VIP = netip.MustParseAddr("fd00::1") }, "different families"},
	}
	for _, tt := range tests {
		o := ok
		tt.mod(&o)
		_, err := NewPath(o)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: NewPath = %v, want ErrConfig with %q", tt.name, err, tt.want)
		}
	}
}

func FuzzPathClassify(f *testing.F) {
	p := testProbe(dirIP, vipIP)
	p.tunPort = 6080
	f.Add(answer(p, tcpSYN|tcpACK, p.seq+1))
	f.Add(arpReply(rsMAC, vipIP))
	f.Add(icmpErr(rsIP, dirIP, 3, 2, outer(protoIPIP, p.syn())))
	f.Add(icmpErr(rsIP, dirIP, 3, 3, udpTo(6080, gue(p.syn()))))
	f.Add(testProbe(netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")).syn())
	f.Fuzz(func(t *testing.T, b []byte) {
		r := p.classify(b, rsMAC)
		if r.kind == replyNeighbor && len(r.mac) != 6 {
			t.Errorf("neighbour answer with MAC %x", r.mac)
		}
	})
}
