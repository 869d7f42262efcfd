package ebpf

import (
	"net"
	"testing"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/netns"
)

// TestFixtureNotForHost: frames that reach the director but are not
// addressed to its MAC (a switch flooding the VRRP master's MAC to the
// backup; multicast, broadcast) pass to the stack untouched and create
// no connection, at TC (pkt_type) and at XDP (the ifmac map); the same
// packet to the director's MAC is forwarded.
func TestFixtureNotForHost(t *testing.T) {
	for _, xdp := range []bool{false, true} {
		name := "TC"
		if xdp {
			name = "XDP"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixtureMode(t, xdp)
			f.addService(tcpService(vipv4, 80, "rr"), ipvs.Destination{Addr: rs1v4, Port: 8080, Fwd: ipvs.Masq, Weight: 1})
			f.addService(udpService(vipv4, 53, "rr"), ipvs.Destination{Addr: rs1v4, Fwd: ipvs.Route, Weight: 1})
			syn := ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoTCP, sport: 40000, dport: 80, flags: conn.SYN})
			udp := ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoUDP, sport: 40000, dport: 53, payload: []byte("q")})
			// The reply of a NAT connection that is not ours, to the
			// master's MAC on the realservers' side.
			reply := ipPacket(t, rs1v4, cipv4, l4{proto: ipvs.ProtoTCP, sport: 8080, dport: 40001, flags: conn.SYN | conn.ACK})
			master := netns.MustParseMAC("02:00:00:00:01:02")
			bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
			mcast := net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12}
			f.check([]step{
				{desc: "SYN to another MAC: passed", in: frame(macClient, master, false, syn), verdict: actOK},
				{desc: "UDP to another MAC: passed", in: frame(macClient, master, false, udp), verdict: actOK},
				{desc: "UDP to the broadcast MAC: passed", in: frame(macClient, bcast, false, udp), verdict: actOK},
				{desc: "UDP to a multicast MAC: passed", in: frame(macClient, mcast, false, udp), verdict: actOK},
			})
			if cs, err := f.tab.conns(monotonicNow()); err != nil || len(cs) != 0 {
				t.Fatalf("connections after frames for others: %+v, %v", cs, err)
			}
			f.check([]step{
				{desc: "the same SYN to our MAC: forwarded", in: frame(macClient, macCL0, false, syn), verdict: actRedirect,
					out: frame(macRS0, macRS1, false, ipPacket(t, cipv4, rs1v4, l4{proto: ipvs.ProtoTCP, sport: 40000, dport: 8080, flags: conn.SYN}))},
				{desc: "its reply to another MAC on the realservers' side: passed", in: frame(macRS1, master, false,
					ipPacket(t, rs1v4, cipv4, l4{proto: ipvs.ProtoTCP, sport: 8080, dport: 40000, flags: conn.SYN | conn.ACK})), verdict: actOK},
				{desc: "a reply to another MAC: passed", in: frame(macRS1, master, false, reply), verdict: actOK},
			})
			if cs, err := f.tab.conns(monotonicNow()); err != nil || len(cs) != 1 || cs[0].OutPkts != 0 {
				t.Errorf("connections: %+v, %v; want the one SYN to our MAC, no reply counted", cs, err)
			}
		})
	}
	t.Run("XDPWithoutMAC", func(t *testing.T) {
		// An interface the loader did not record (attached by hand):
		// XDP passes everything and TC decides.
		f := newFixtureMode(t, true)
		f.addService(tcpService(vipv4, 80, "rr"), ipvs.Destination{Addr: rs1v4, Fwd: ipvs.Route, Weight: 1})
		if err := f.objs.Ifmac.Delete(uint32(f.cl0)); err != nil {
			t.Fatal(err)
		}
		in := frame(macClient, macCL0, false, ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoTCP, sport: 1, dport: 80, flags: conn.SYN}))
		f.check([]step{{desc: "SYN on an interface without a recorded MAC: passed to TC", in: in, verdict: actOK}})
		if f.xmeta != nil {
			t.Errorf("metadata %x: XDP must not have acted", f.xmeta)
		}
		f.xdp = false
		f.check([]step{{desc: "TC forwards it", in: in, verdict: actRedirect, out: frame(macRS0, macRS1, false, in[14:])}})
	})
}
