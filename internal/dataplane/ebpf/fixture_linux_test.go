package ebpf

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/netns"
)

// TC verdicts (linux/pkt_cls.h).
const (
	actOK       = 0
	actShot     = 2
	actRedirect = 7
)

// The fixture topology: one namespace, the "director", with a realserver
// side (rs0, 10.0.0.0/24 and fd00::/64) and a client side (cl0,
// 192.168.1.0/24 and fd01::/64); neighbours are static so route lookups
// give fixed MACs. Nothing is attached: packets go through Program.Run.
var (
	macRS0    = netns.MustParseMAC("02:00:00:00:00:01") // director on the RS side
	macRS1    = netns.MustParseMAC("02:00:00:00:00:02")
	macRS2    = netns.MustParseMAC("02:00:00:00:00:03")
	macCL0    = netns.MustParseMAC("02:00:00:00:01:01") // director on the client side
	macClient = netns.MustParseMAC("02:00:00:00:01:64")
	macOther  = netns.MustParseMAC("02:00:00:00:09:09")

	dip4    = netip.MustParseAddr("10.0.0.1")
	rs1v4   = netip.MustParseAddr("10.0.0.2")
	rs2v4   = netip.MustParseAddr("10.0.0.3")
	rsNoNb4 = netip.MustParseAddr("10.0.0.4") // no neighbour entry
	cipv4   = netip.MustParseAddr("192.168.1.100")
	vipv4   = netip.MustParseAddr("192.168.1.10")

	dip6  = netip.MustParseAddr("fd00::1")
	rs1v6 = netip.MustParseAddr("fd00::2")
	rs2v6 = netip.MustParseAddr("fd00::3")
	cipv6 = netip.MustParseAddr("fd01::100")
	vipv6 = netip.MustParseAddr("fd01::10")
)

type fixture struct {
	t    *testing.T
	ns   *netns.NS
	objs *govsObjects
	tab  *tables
	// xdp: run packets through govs_xdp (ingress cl0) instead of govs_tc.
	xdp      bool
	cl0, rs0 int    // ifindexes: a frame enters by the device its destination MAC is
	xmeta    []byte // the XDP metadata of the last run, if any
}

func newFixtureMode(t *testing.T, xdp bool) *fixture {
	f := newFixture(t)
	f.xdp = xdp
	return f
}

// newFixture loads the BPF objects (unpinned) and builds the topology. As
// root, any failure is fatal: BPF must work here.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	netns.RequireRoot(t)
	ns := netns.New(t, "fix")
	rs0, _ := netns.Veth(t, ns, "rs0", macRS0, ns, "rs0p", macOther)
	cl0, _ := netns.Veth(t, ns, "cl0", macCL0, ns, "cl0p", nil)
	rs0.AddAddr("10.0.0.1/24")
	rs0.AddAddr("fd00::1/64")
	cl0.AddAddr("192.168.1.1/24")
	cl0.AddAddr("fd01::1/64")
	rs0.AddNeigh("10.0.0.2", macRS1)
	rs0.AddNeigh("10.0.0.3", macRS2)
	rs0.AddNeigh("fd00::2", macRS1)
	rs0.AddNeigh("fd00::3", macRS2)
	cl0.AddNeigh("192.168.1.100", macClient)
	cl0.AddNeigh("fd01::100", macClient)
	ns.EnableForwarding()

	objs := loadObjects(t)
	tab := newTables(objs)
	if err := tab.setTimeouts(conn.DefaultTimeouts); err != nil {
		t.Fatal(err)
	}
	// What the loader records when it attaches govs_xdp.
	for _, l := range []struct {
		index int
		mac   net.HardwareAddr
	}{{cl0.Index, macCL0}, {rs0.Index, macRS0}} {
		if err := setIfMAC(objs.Ifmac, l.index, l.mac); err != nil {
			t.Fatal(err)
		}
	}
	return &fixture{t: t, ns: ns, objs: objs, tab: tab, cl0: cl0.Index, rs0: rs0.Index}
}

// ingress is the device a frame arrives on: the one whose MAC is its
// destination (rs0 for the realservers' side, cl0 otherwise), as a
// switch would deliver it.
func (f *fixture) ingress(frame []byte) int {
	if len(frame) >= 6 && bytes.Equal(frame[:6], macRS0) {
		return f.rs0
	}
	return f.cl0
}

func loadObjects(tb testing.TB) *govsObjects {
	tb.Helper()
	var objs govsObjects
	if err := loadGovsObjects(&objs, &ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{LogSizeStart: 1 << 28}}); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			tb.Fatalf("load BPF objects: %+v", ve)
		}
		tb.Fatalf("load BPF objects: %v", err)
	}
	tb.Cleanup(func() { objs.Close() })
	return &objs
}

// run sends one frame through govs_tc inside the fixture's namespace.
func (f *fixture) run(in []byte, mark uint32) (uint32, []byte) {
	f.t.Helper()
	out := make([]byte, len(in)+256)
	var ret uint32
	if f.xdp {
		return f.runXDP(in)
	}
	f.ns.MustDo(func() error {
		// The ifindex makes BPF_PROG_TEST_RUN compute pkt_type against
		// that device's MAC (eth_type_trans); without it, against the
		// loopback's, and every frame would be PACKET_OTHERHOST.
		ifi := uint32(f.ingress(in))
		opts := &ebpf.RunOptions{Data: in, DataOut: out, Context: skbCtx{Mark: mark, IngressIfindex: ifi, Ifindex: ifi}}
		var err error
		ret, err = f.objs.GovsTc.Run(opts)
		out = opts.DataOut
		if err != nil {
			return fmt.Errorf("run govs_tc on %d bytes %x: %w", len(in), in, err)
		}
		return nil
	})
	return ret, out
}

// XDP verdicts.
const (
	xdpDrop     = 1
	xdpPass     = 2
	xdpRedirect = 4
)

// xdpCtx is struct xdp_md as BPF_PROG_TEST_RUN takes it.
type xdpCtx struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// runXDP sends one frame through govs_xdp and returns the TC verdict
// that means the same, so that fixtures serve both programs; metadata the
// program left in front of a passed frame is cut off into f.xmeta.
func (f *fixture) runXDP(in []byte) (uint32, []byte) {
	f.t.Helper()
	out := make([]byte, len(in)+256)
	var ret uint32
	f.ns.MustDo(func() error {
		opts := &ebpf.RunOptions{Data: in, DataOut: out,
			Context: xdpCtx{DataEnd: uint32(len(in)), IngressIfindex: uint32(f.ingress(in))}}
		var err error
		ret, err = f.objs.GovsXdp.Run(opts)
		out = opts.DataOut
		if err != nil {
			return fmt.Errorf("run govs_xdp on %d bytes %x: %w", len(in), in, err)
		}
		return nil
	})
	f.xmeta = nil
	if ret == xdpPass && len(out) == len(in)+xmetaLen && binary.NativeEndian.Uint32(out) == xmetaMagic {
		f.xmeta, out = out[:xmetaLen], out[xmetaLen:]
	}
	switch ret {
	case xdpPass:
		return actOK, out
	case xdpDrop:
		return actShot, out
	case xdpRedirect:
		return actRedirect, out
	}
	return 100 + ret, out
}

// The struct xmeta the XDP program leaves for TC.
const (
	xmetaLen   = 32
	xmetaMagic = 0x676f7673
)

// skbCtx is the prefix of struct __sk_buff that BPF_PROG_TEST_RUN accepts
// as context, up to ifindex. Only mark, priority, ingress_ifindex and
// ifindex may be set (test_run.c's convert___skb_to_skb): pkt_type is
// computed from the frame and the device ifindex names.
type skbCtx struct {
	Len            uint32
	PktType        uint32
	Mark           uint32
	QueueMapping   uint32
	Protocol       uint32
	VlanPresent    uint32
	VlanTCI        uint32
	VlanProto      uint32
	Priority       uint32
	IngressIfindex uint32
	Ifindex        uint32
}

func (f *fixture) addService(svc ipvs.Service, dests ...ipvs.Destination) {
	f.t.Helper()
	svc.SetDefaults()
	if err := f.tab.addService(svc); err != nil {
		f.t.Fatal(err)
	}
	for _, d := range dests {
		d.Normalize(&svc)
		if err := f.tab.addDest(svc.ServiceKey, d); err != nil {
			f.t.Fatal(err)
		}
	}
}

// Packet building.

type l4 struct {
	proto      ipvs.Protocol
	sport      uint16
	dport      uint16
	flags      conn.TCPFlags
	payload    []byte
	udpNoCsum  bool
	ipOptions  bool
	tos        uint8
	ethPadding int
}

func ethFor(src, dst net.HardwareAddr, v6 bool) *layers.Ethernet {
	e := &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeIPv4}
	if v6 {
		e.EthernetType = layers.EthernetTypeIPv6
	}
	return e
}

// ipPacket returns the IP packet (no Ethernet header) from src to dst.
func ipPacket(t testing.TB, src, dst netip.Addr, p l4) []byte {
	t.Helper()
	var net gopacket.NetworkLayer
	var ls []gopacket.SerializableLayer
	if src.Is4() {
		ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Protocol: layers.IPProtocol(p.proto), TOS: p.tos, Id: 0x1234, Flags: layers.IPv4DontFragment}
		if p.ipOptions {
			ip.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
		}
		net = ip
		ls = append(ls, ip)
	} else {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), NextHeader: layers.IPProtocol(p.proto), TrafficClass: p.tos}
		net = ip
		ls = append(ls, ip)
	}
	switch p.proto {
	case ipvs.ProtoTCP:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(p.sport), DstPort: layers.TCPPort(p.dport), Seq: 1000, Ack: 0, Window: 512,
			FIN: p.flags&conn.FIN != 0, SYN: p.flags&conn.SYN != 0, RST: p.flags&conn.RST != 0, ACK: p.flags&conn.ACK != 0}
		if tcp.ACK {
			tcp.Ack = 2000
		}
		_ = tcp.SetNetworkLayerForChecksum(net)
		ls = append(ls, tcp)
	case ipvs.ProtoUDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(p.sport), DstPort: layers.UDPPort(p.dport)}
		_ = udp.SetNetworkLayerForChecksum(net)
		ls = append(ls, udp)
	}
	ls = append(ls, gopacket.Payload(p.payload))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if p.udpNoCsum && src.Is4() {
		off := 20
		if p.ipOptions {
			off += 4
		}
		b[off+6], b[off+7] = 0, 0
	}
	return b
}

func frame(src, dst net.HardwareAddr, v6 bool, ip []byte) []byte {
	e := ethFor(src, dst, v6)
	buf := gopacket.NewSerializeBuffer()
	_ = gopacket.SerializeLayers(buf, gopacket.SerializeOptions{}, e, gopacket.Payload(ip))
	return buf.Bytes()
}

// encapIPv4 wraps inner in an outer IPv4 header as the program builds it.
func encapIPv4(t testing.TB, src, dst netip.Addr, tos uint8, proto layers.IPProtocol, payload []byte) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, TOS: tos, Flags: layers.IPv4DontFragment, Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encapIPv6(t testing.TB, src, dst netip.Addr, tc uint8, next layers.IPProtocol, payload []byte) []byte {
	ip := &layers.IPv6{Version: 6, HopLimit: 64, TrafficClass: tc, NextHeader: next, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ip, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gueHeader(sport, dport uint16, innerLen int, inner6 bool) []byte {
	b := make([]byte, 12)
	b[0], b[1] = byte(sport>>8), byte(sport)
	b[2], b[3] = byte(dport>>8), byte(dport)
	l := innerLen + 12
	b[4], b[5] = byte(l>>8), byte(l)
	// b[6:8] checksum 0; GUE: version 0, hlen 0, proto
	b[9] = 4
	if inner6 {
		b[9] = 41
	}
	return b
}

func diffPackets(t testing.TB, name string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	t.Errorf("%s: output packet differs\n got: %s\nwant: %s\n got decoded: %s\nwant decoded: %s", name,
		hex.EncodeToString(got), hex.EncodeToString(want),
		gopacket.NewPacket(got, layers.LayerTypeEthernet, gopacket.Default).String(),
		gopacket.NewPacket(want, layers.LayerTypeEthernet, gopacket.Default).String())
}
