package engine

import (
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

var fuzzFlags = []conn.TCPFlags{
	conn.SYN, conn.SYN | conn.ACK, conn.ACK, conn.FIN | conn.ACK, conn.FIN,
	conn.RST, conn.RST | conn.ACK, conn.SYN | conn.RST, 0, conn.SYN | conn.FIN,
}

// FuzzTCPStateMachine drives random flag sequences in both directions for
// a few clients of a NAT and a DR service, with time passing, and checks
// after every packet that nothing panics, no counter goes negative, and
// every destination's ActiveConns + InactConns equals its live
// connections (and PersistConns its templates).
func FuzzTCPStateMachine(f *testing.F) {
	f.Add([]byte{0x00, 0x14, 0x08, 0x18, 0x1c})
	f.Add([]byte{0x00, 0x04, 0x08, 0x0c, 0x2c, 0x14, 0x10})
	f.Add([]byte{0x01, 0x09, 0x19, 0xff, 0x01, 0x29, 0x31})
	f.Add([]byte{0x02, 0x0a, 0x06, 0x1a, 0x3e, 0x02})
	f.Fuzz(func(t *testing.T, data []byte) {
		h := newHarness(t, Options{})
		nat := h.addService(tcpSvc("192.0.2.1:80", "rr"))
		dr := h.addService(persistSvc("192.0.2.2:80", 30, 0))
		h.addDest(nat, "10.1.0.1:8080", ipvs.Masq, 1)
		h.addDest(nat, "10.1.0.2:8080", ipvs.Masq, 1)
		h.addDest(dr, "10.1.0.1:80", ipvs.Route, 1)
		for _, b := range data {
			cl := int(b & 3)
			svc := "192.0.2.1:80"
			if cl >= 2 {
				svc = "192.0.2.2:80"
			}
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(cl + 1)}), 40000)
			flags := fuzzFlags[int(b>>3)%len(fuzzFlags)]
			if b>>3 >= 30 {
				h.advance(time.Duration(b&7+1) * 10 * time.Second)
				checkInvariants(t, h.e)
				continue
			}
			p := Packet{Dir: conn.DirIn, Proto: ipvs.ProtoTCP, Src: src, Dst: ap(svc), Flags: flags, Len: 40}
			if b&4 != 0 {
				// A reply: from whichever destination the connection has.
				v, _ := h.e.Process(h.now, Packet{Dir: conn.DirIn, Proto: ipvs.ProtoTCP, Src: src, Dst: ap(svc), Flags: conn.ACK})
				if v.Action != Forward {
					continue
				}
				p = Packet{Dir: conn.DirOut, Proto: ipvs.ProtoTCP, Src: v.Dest, Dst: src, Flags: flags, Len: 40}
			}
			if _, err := h.e.Process(h.now, p); err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, h.e)
		}
		h.advance(time.Hour)
		checkInvariants(t, h.e)
		if n := h.e.ConnCount(); n != 0 {
			t.Fatalf("%d entries left after an hour", n)
		}
	})
}

// FuzzEngine runs random configuration operations and packets against one
// engine and checks the counter invariants after each.
func FuzzEngine(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 10, 11, 12, 13, 4, 5, 6, 7, 8, 9, 14, 15})
	f.Add([]byte{0, 2, 2, 10, 10, 18, 42, 5, 10, 7, 10, 13, 30, 1, 3})
	f.Add([]byte{16, 17, 2, 26, 34, 10, 50, 58, 66, 74, 82, 90, 98, 106, 114, 122, 9, 9, 9})
	f.Fuzz(func(t *testing.T, data []byte) {
		h := newHarness(t, Options{ExpireNodestConn: len(data)%2 == 1, ExpireQuiescentTemplate: len(data)%3 == 1, Seed: 1})
		scheds := []string{"rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf", "twos", "sh", "dh", "mh", "lblc", "lblcr"}
		services := []ipvs.Service{
			tcpSvc("192.0.2.1:80", "rr"),
			persistSvc("192.0.2.2:80", 20, 24),
			{ServiceKey: ipvs.UDPService(ap("192.0.2.1:53")), Scheduler: "wlc", OnePacket: true},
			{ServiceKey: ipvs.FWMarkService(3, ipvs.IPv4), Scheduler: "sh", Persistent: true, Timeout: 15},
			persistSvc("192.0.2.3:0", 10, 32),
		}
		rips := []string{"10.1.0.1", "10.1.0.2", "10.1.0.3"}
		fwds := []ipvs.FwdMethod{ipvs.Masq, ipvs.Route, ipvs.Tunnel}
		for i := 0; i < len(data); i++ {
			b := data[i]
			arg := int(b >> 4)
			s := services[arg%len(services)]
			var err error
			switch b & 15 {
			case 0, 1:
				err = h.e.AddService(s)
			case 2:
				s.Scheduler = scheds[arg%len(scheds)]
				err = h.e.EditService(s)
			case 3:
				err = h.e.DelService(s.ServiceKey)
			case 4, 5:
				d := ipvs.Destination{Addr: addr(rips[arg%3]), Port: 80, Fwd: fwds[arg%3], Weight: int32(arg % 4), Upper: uint32(arg % 3)}
				err = h.e.AddDest(services[(arg+i)%len(services)].ServiceKey, d)
			case 6:
				d := ipvs.Destination{Addr: addr(rips[arg%3]), Port: 80, Fwd: fwds[(arg+1)%3], Weight: int32(arg % 3)}
				err = h.e.EditDest(services[(arg+i)%len(services)].ServiceKey, d)
			case 7:
				err = h.e.DelDest(services[(arg+i)%len(services)].ServiceKey, ipvs.DestKey{Addr: addr(rips[arg%3]), Port: 80})
			case 8:
				h.advance(time.Duration(arg+1) * 3 * time.Second)
			case 9:
				h.e.Flush()
			case 10, 11, 12, 13:
				proto := ipvs.ProtoTCP
				dst := []string{"192.0.2.1:80", "192.0.2.2:80", "192.0.2.1:53", "192.0.2.9:443", "192.0.2.3:22"}[arg%5]
				if arg%5 == 2 {
					proto = ipvs.ProtoUDP
				}
				src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(arg & 1), byte(arg >> 1)}), uint16(1000+arg%3))
				p := Packet{Dir: conn.DirIn, Proto: proto, Src: src, Dst: ap(dst), FWMark: uint32(arg % 4), Flags: fuzzFlags[(int(b)+i)%len(fuzzFlags)], Len: 50}
				if b&15 == 13 {
					v, _ := h.e.Process(h.now, Packet{Dir: conn.DirIn, Proto: proto, Src: src, Dst: ap(dst), FWMark: p.FWMark, Flags: conn.ACK})
					if v.Action == Forward {
						p = Packet{Dir: conn.DirOut, Proto: proto, Src: v.Dest, Dst: src, Flags: p.Flags, Len: 50}
					}
				}
				v, perr := h.e.Process(h.now, p)
				if perr != nil && v.Action != Drop {
					t.Fatalf("error %v with %s", perr, v.Action)
				}
			case 14:
				err = h.e.Zero(nil)
			case 15:
				h.e.SetTimeouts(conn.Timeouts{TCP: time.Duration(arg+1) * time.Second})
			}
			_ = err
			checkInvariants(t, h.e)
			h.e.Services(h.now)
			h.e.Conns(h.now)
		}
		h.e.Flush()
		h.advance(2 * time.Hour)
		h.advance(2 * TrashPeriod)
		checkInvariants(t, h.e)
		if n := h.e.ConnCount(); n != 0 {
			t.Fatalf("%d entries left", n)
		}
		if len(h.e.trash) != 0 {
			t.Fatalf("%d destinations left in the trash", len(h.e.trash))
		}
	})
}
