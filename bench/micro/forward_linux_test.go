package micro

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	govsebpf "github.com/govs/govs/internal/dataplane/ebpf"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/netns"
)

const (
	benchVIP   = "10.1.0.100"
	tableFill  = 1_000_000
	maxConns   = 2 * tableFill
	portDR     = 80
	portNAT    = 81
	portTUN    = 82
	clientBase = 0x0a010000 // 10.1.0.0/16: fill and first-packet clients
)

// lb is the data plane loaded in a namespace of its own, with the
// program found through its pinned link.
type lb struct {
	ns    *netns.NS
	dp    *govsebpf.Dataplane
	prog  *ebpf.Program
	nexts uint32 // next client (address, port) index for first packets
}

func newDirector(b *testing.B, ndests int) *lb {
	b.Helper()
	netns.RequireRoot(b)
	ns := netns.New(b, "dir")
	peer := netns.New(b, "peer")
	d0, _ := netns.Veth(b, ns, "d0", nil, peer, "p0", nil)
	d0.AddAddr("10.1.0.1/16")
	d0.AddAddr("10.2.0.1/16")
	d0.AddAddr(benchVIP + "/32")
	ns.EnableForwarding()
	mac := netns.MustParseMAC("02:00:00:00:00:02")
	d0.AddNeigh("10.1.0.2", mac)
	for i := range ndests {
		d0.AddNeigh(rip(i).String(), mac)
	}
	pinSeq++
	pin := fmt.Sprintf("/sys/fs/bpf/govs-micro-%d-%d", os.Getpid(), pinSeq)
	d := &lb{ns: ns}
	ns.MustDo(func() error {
		var err error
		d.dp, err = govsebpf.New(govsebpf.Options{Interfaces: []string{"d0"}, PinPath: pin, MaxConns: maxConns, SweepInterval: time.Hour}, slog.New(slog.DiscardHandler))
		return err
	})
	b.Cleanup(func() {
		d.dp.Close()
		if err := govsebpf.Remove(pin); err != nil {
			b.Errorf("remove %s: %v", pin, err)
		}
	})
	for _, m := range []struct {
		port uint16
		fwd  ipvs.FwdMethod
	}{{portDR, ipvs.Route}, {portNAT, ipvs.Masq}, {portTUN, ipvs.Tunnel}} {
		svc := ipvs.Service{ServiceKey: ipvs.TCPService(netip.AddrPortFrom(netip.MustParseAddr(benchVIP), m.port)), Scheduler: "wlc"}
		svc.SetDefaults()
		if err := d.dp.AddService(svc); err != nil {
			b.Fatal(err)
		}
		for i := range ndests {
			dst := ipvs.Destination{Addr: rip(i), Port: m.port, Fwd: m.fwd, Weight: 1}
			if err := d.dp.AddDest(svc.ServiceKey, dst); err != nil {
				b.Fatalf("add destination %d: %v", i, err)
			}
		}
	}
	l, err := link.LoadPinnedLink(filepath.Join(pin, "tcx_d0"), nil)
	if err != nil {
		b.Fatalf("load the data plane's pinned link: %v", err)
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		b.Fatal(err)
	}
	d.prog, err = ebpf.NewProgramFromID(info.Program)
	if err != nil {
		b.Fatalf("open govs_tc by id: %v", err)
	}
	b.Cleanup(func() { d.prog.Close() })
	return d
}

var pinSeq int

// rip is the i-th realserver: 10.2.0.11 up, 200 per /24, clear of the
// director's own 10.2.0.1.
func rip(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 2, byte(i / 200), byte(11 + i%200)}) }

// packet is an Ethernet/IPv4/TCP frame from client to VIP:port.
func (d *lb) packet(b *testing.B, client netip.Addr, sport, dport uint16, syn bool) []byte {
	b.Helper()
	// BPF_PROG_TEST_RUN classifies the frame against the loopback
	// device (MAC 0): addressed to it, it is PACKET_HOST, which govs_tc
	// requires (frames for other hosts pass to the stack).
	eth := &layers.Ethernet{SrcMAC: netns.MustParseMAC("02:00:00:00:00:02"), DstMAC: net.HardwareAddr{0, 0, 0, 0, 0, 0}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: client.AsSlice(), DstIP: net.ParseIP(benchVIP).To4()}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 1, Window: 65535, SYN: syn, ACK: !syn}
	if !syn {
		tcp.Ack = 1
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		b.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, eth, ip, tcp, gopacket.Payload(make([]byte, 6))); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// nextClient is a fresh (client address, port) pair.
func (d *lb) nextClient() (netip.Addr, uint16) {
	n := d.nexts
	d.nexts++
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], clientBase+2+n/60000)
	return netip.AddrFrom4(a), uint16(1024 + n%60000)
}

// run runs one packet through govs_tc once, in the director's namespace
// (the program's route lookups happen in the caller's), and returns the
// kernel's time for it.
func (d *lb) run(b *testing.B, prog *ebpf.Program, pkt []byte, repeat int) (uint32, time.Duration) {
	var ret uint32
	var dur time.Duration
	d.ns.MustDo(func() error {
		var err error
		ret, dur, err = prog.Benchmark(pkt, repeat, nil)
		return err
	})
	return ret, dur
}

// fill opens n connections to the DR service through the program.
func (d *lb) fill(b *testing.B, n int) time.Duration {
	b.Helper()
	pkt := d.packet(b, netip.MustParseAddr("10.1.0.2"), 1024, portDR, true)
	var total time.Duration
	d.ns.MustDo(func() error {
		for range n {
			a, p := d.nextClient()
			setClient(pkt, a, p)
			_, dur, err := d.prog.Benchmark(pkt, 1, nil)
			if err != nil {
				return err
			}
			total += dur
		}
		return nil
	})
	return total / time.Duration(n)
}

// setClient rewrites the source address and port in place. The
// checksums go stale; govs_tc updates them incrementally and never
// checks them, so the cost is the same.
func setClient(pkt []byte, a netip.Addr, port uint16) {
	copy(pkt[14+12:14+16], a.AsSlice())
	binary.BigEndian.PutUint16(pkt[14+20:], port)
}

// floor is a TC program that does nothing.
func floor(b *testing.B) *ebpf.Program {
	b.Helper()
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.SchedCLS,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		License:      "GPL",
	})
	if err != nil {
		b.Fatalf("load the floor program: %v", err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}

// fibOnly is a TC program that does one bpf_fib_lookup (client ->
// realserver 10.2.0.11 out of the ingress device) and returns
// TC_ACT_OK: the cost of the route lookup every forwarded packet makes.
func fibOnly(b *testing.B) *ebpf.Program {
	b.Helper()
	ins := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1), asm.Mov.Imm(asm.R1, 0)}
	for off := int16(-64); off < 0; off += 8 {
		ins = append(ins, asm.StoreMem(asm.RFP, off, asm.R1, asm.DWord))
	}
	ins = append(ins,
		asm.Mov.Imm(asm.R1, 2), // family AF_INET
		asm.StoreMem(asm.RFP, -64, asm.R1, asm.Byte),
		asm.Mov.Imm(asm.R1, 6), // l4_protocol TCP
		asm.StoreMem(asm.RFP, -63, asm.R1, asm.Byte),
		asm.LoadMem(asm.R2, asm.R6, 40, asm.Word), // skb->ifindex
		asm.StoreMem(asm.RFP, -56, asm.R2, asm.Word),
		asm.Mov.Imm32(asm.R1, 0x0200010a), // ipv4_src 10.1.0.2
		asm.StoreMem(asm.RFP, -48, asm.R1, asm.Word),
		asm.Mov.Imm32(asm.R1, 0x0b00020a), // ipv4_dst 10.2.0.11
		asm.StoreMem(asm.RFP, -32, asm.R1, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -64),
		asm.Mov.Imm(asm.R3, 64),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnFibLookup.Call(),
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
	)
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, Instructions: ins, License: "GPL"})
	if err != nil {
		b.Fatalf("load the fib-only program: %v", err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}

const tcActRedirect = 7

// maxSingle caps the one-run-per-packet loops, so that the first-packet
// runs of the three modes (new entries each) stay within the table
// (1M filled + 3 x 200k < maxConns: no LRU eviction while measuring).
const maxSingle = 200_000

// BenchmarkForward reports ns/pkt measured by the kernel (the Go loop's
// own ns/op is meaningless here and left at one iteration's cost).
func BenchmarkForward(b *testing.B) {
	netns.RequireRoot(b)
	fl := floor(b)
	fib := fibOnly(b)
	// dests=1000: the first packet's scheduling walk at its largest
	// (wlc reads every destination's counters).
	for _, cf := range []struct{ dests, fill int }{{10, 0}, {10, tableFill}, {1000, 0}} {
		b.Run(fmt.Sprintf("dests=%d/conns=%d", cf.dests, cf.fill), func(b *testing.B) {
			d := newDirector(b, cf.dests)
			if cf.fill > 0 {
				start := time.Now()
				fillCost := d.fill(b, cf.fill)
				b.Logf("filled the connection table with %d connections in %s (%.0f ns/first packet while filling)", cf.fill, time.Since(start).Round(time.Millisecond), float64(fillCost))
			}
			pkt := d.packet(b, netip.MustParseAddr("10.1.0.2"), 1024, portDR, false)
			b.Run("floor/established", func(b *testing.B) {
				_, dur := d.run(b, fl, pkt, b.N)
				b.ReportMetric(float64(dur.Nanoseconds()), "ns/pkt")
			})
			b.Run("fib-lookup-only/established", func(b *testing.B) {
				_, dur := d.run(b, fib, pkt, b.N)
				b.ReportMetric(float64(dur.Nanoseconds()), "ns/pkt")
			})
			b.Run("floor/single", func(b *testing.B) {
				var total time.Duration
				n := min(b.N, maxSingle)
				for range n {
					_, dur := d.run(b, fl, pkt, 1)
					total += dur
				}
				b.ReportMetric(float64(total.Nanoseconds())/float64(n), "ns/pkt")
			})
			for _, m := range []struct {
				name string
				port uint16
			}{{"dr", portDR}, {"nat", portNAT}, {"tun", portTUN}} {
				// Single runs, a fresh copy of the packet each: a repeated
				// run reuses one skb, which NAT and TUN have rewritten
				// (and TUN grown) after the first pass.
				b.Run(m.name+"/established", func(b *testing.B) {
					a, p := d.nextClient()
					syn := d.packet(b, a, p, m.port, true)
					if ret, _ := d.run(b, d.prog, syn, 1); ret != tcActRedirect {
						b.Fatalf("SYN: verdict %d, want TC_ACT_REDIRECT", ret)
					}
					ack := d.packet(b, a, p, m.port, false)
					var total time.Duration
					n := min(b.N, maxSingle)
					for range n {
						ret, dur := d.run(b, d.prog, ack, 1)
						if ret != tcActRedirect {
							b.Fatalf("ACK: verdict %d, want TC_ACT_REDIRECT", ret)
						}
						total += dur
					}
					b.ReportMetric(float64(total.Nanoseconds())/float64(n), "ns/pkt")
				})
				if m.name == "dr" {
					// DR only rewrites MACs, so a repeated run is valid and
					// compares with the repeated floor.
					b.Run("dr/established-repeat", func(b *testing.B) {
						a, p := d.nextClient()
						syn := d.packet(b, a, p, m.port, true)
						d.run(b, d.prog, syn, 1)
						ack := d.packet(b, a, p, m.port, false)
						ret, dur := d.run(b, d.prog, ack, b.N)
						if ret != tcActRedirect {
							b.Fatalf("ACK: verdict %d, want TC_ACT_REDIRECT", ret)
						}
						b.ReportMetric(float64(dur.Nanoseconds()), "ns/pkt")
					})
				}
				b.Run(m.name+"/first", func(b *testing.B) {
					syn := d.packet(b, netip.MustParseAddr("10.1.0.2"), 1024, m.port, true)
					var total time.Duration
					n := min(b.N, maxSingle)
					for range n {
						a, p := d.nextClient()
						setClient(syn, a, p)
						ret, dur := d.run(b, d.prog, syn, 1)
						if ret != tcActRedirect {
							b.Fatalf("SYN: verdict %d, want TC_ACT_REDIRECT", ret)
						}
						total += dur
					}
					b.ReportMetric(float64(total.Nanoseconds())/float64(n), "ns/pkt")
				})
			}
		})
	}
}
