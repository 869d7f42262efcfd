package ebpf

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/ipvs"
)

// TestDiffSchedulers is the differential test of the schedulers that run
// in BPF: the same packet sequence, with configuration changes between
// packets, goes through govs_tc (Program.Run) and through the Go reference
// (engine.Process), and every new connection must get the same realserver.
// Connections are opened (SYN), established (ACK), closed (FIN, RST) at
// random so that the counters the least-connection schedulers compare, and
// the overload thresholds, move as they would under traffic.
func TestDiffSchedulers(t *testing.T) {
	for _, sched := range []string{"rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf", "sh", "dh", "sh-fallback-port",
		"mh", "mh-fallback-port", "twos", "lblc", "lblcr", "dh-fwm", "lblc-fwm", "lblcr-fwm"} {
		for _, seed := range []uint64{1, 2, 3} {
			t.Run(fmt.Sprintf("%s/seed%d", sched, seed), func(t *testing.T) {
				runDiff(t, sched, seed, 400, 4)
			})
		}
	}
}

// TestDiffSchedulers1000 is TestDiffSchedulers at 1,000 destinations per
// service (the list walks at their largest), for the schedulers that walk
// the list (rr, wrr, wlc, nq, twos), hash into a table (sh, mh) or keep
// per-address sets (lblcr).
func TestDiffSchedulers1000(t *testing.T) {
	for _, sched := range []string{"rr", "wrr", "wlc", "nq", "sh", "mh-fallback-port", "twos", "lblcr-fwm"} {
		t.Run(sched, func(t *testing.T) {
			runDiff(t, sched, 1, 300, 1000)
		})
	}
}

// diffRIP is the address of the diff test's i-th destination.
func diffRIP(i int) netip.Addr {
	if i < 250 {
		return netip.AddrFrom4([4]byte{10, 0, 0, byte(2 + i)})
	}
	return netip.AddrFrom4([4]byte{10, 0, byte(i / 250), byte(2 + i%250)})
}

type diffConn struct {
	client netip.AddrPort
	dst    netip.Addr
}

// runDiff runs steps random packets and edits against a service with
// ndests destinations at the start.
func runDiff(t *testing.T, schedName string, seed uint64, steps, ndests int) {
	f := newFixture(t)
	// twos: the engine's first scheduler instance draws from the PCG
	// (Seed, 1); the BPF service's PCG state is set to the same.
	engSeed := 1000 + seed
	eng := engine.New(engine.Options{Seed: engSeed})
	rnd := rand.New(rand.NewPCG(seed, 42))

	// "-fwm": a firewall-mark service, so that packets to many addresses
	// (what dh, lblc and lblcr hash or remember) belong to it.
	base, fwm := strings.CutSuffix(schedName, "-fwm")
	svc := tcpService(vipv4, 80, base)
	if fwm {
		svc = ipvs.Service{ServiceKey: ipvs.FWMarkService(7, ipvs.IPv4), Scheduler: base}
	}
	if b, ok := strings.CutSuffix(base, "-fallback-port"); ok {
		svc.Scheduler = b
		svc.SchedFlags = ipvs.SchedFallback | ipvs.SchedPort
	}
	// dh hashes the destination address; with one VIP every connection
	// lands in one bucket, which still checks the usability rules.
	svc.SetDefaults()
	if err := eng.AddService(svc); err != nil {
		t.Fatal(err)
	}
	if err := f.tab.addService(svc); err != nil {
		t.Fatal(err)
	}
	if svc.Scheduler == "twos" {
		if err := f.tab.seedTwos(f.tab.svcs[svc.ServiceKey], engSeed, 1); err != nil {
			t.Fatal(err)
		}
	}
	var dests []ipvs.Destination
	addDest := func(i int) {
		d := ipvs.Destination{Addr: diffRIP(i), Fwd: ipvs.Route, Weight: int32(rnd.IntN(4))}
		if rnd.IntN(3) == 0 {
			d.Upper = uint32(2 + rnd.IntN(4))
			if rnd.IntN(2) == 0 {
				d.Lower = uint32(1 + rnd.IntN(int(d.Upper)))
			}
		}
		d.Normalize(&svc)
		if err := eng.AddDest(svc.ServiceKey, d); err != nil {
			t.Fatal(err)
		}
		if err := f.tab.addDest(svc.ServiceKey, d); err != nil {
			t.Fatal(err)
		}
		dests = append(dests, d)
	}
	for i := range ndests {
		addDest(i)
	}

	var conns []*diffConn
	nextPort := uint16(10000)
	var mark uint32
	if fwm {
		mark = 7
	}
	send := func(c *diffConn, flags conn.TCPFlags) (bpfDest, engDest netip.Addr, engErr error) {
		pkt := ipPacket(t, c.client.Addr(), c.dst, l4{proto: ipvs.ProtoTCP, sport: c.client.Port(), dport: 80, flags: flags})
		f.run(frame(macClient, macCL0, false, pkt), mark)
		v, err := eng.Process(time.Now(), engine.Packet{Dir: conn.DirIn, Proto: ipvs.ProtoTCP, FWMark: mark,
			Src: c.client, Dst: netip.AddrPortFrom(c.dst, 80), Flags: flags, Len: len(pkt)})
		var k govsConnKey
		k.Src = addrWords(c.client.Addr())
		k.Dst = addrWords(c.dst)
		k.Sport = htons(c.client.Port())
		k.Dport = htons(80)
		k.Proto = 6
		k.Family = afInet
		var bc govsConn
		if lerr := f.objs.Conns.Lookup(k, &bc); lerr == nil {
			dv := (&destReader{m: f.objs.Dests}).get(bc.DestId)
			bpfDest = wordsAddr(dv.Addr, dv.Family)
		}
		if err == nil && v.Action == engine.Forward {
			engDest = v.Dest.Addr()
		}
		return bpfDest, engDest, err
	}

	news := 0
	for step := range steps {
		r := rnd.IntN(100)
		switch {
		case r < 45 || len(conns) == 0:
			c := &diffConn{client: netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 168, 1, byte(100 + rnd.IntN(50))}), nextPort), dst: vipv4}
			if fwm {
				c.dst = netip.AddrFrom4([4]byte{192, 168, 2, byte(1 + rnd.IntN(8))})
			}
			nextPort++
			b, e, err := send(c, conn.SYN)
			if b != e {
				t.Fatalf("step %d: new connection from %s: bpf chose %v, engine chose %v (engine err %v)", step, c.client, b, e, err)
			}
			if e.IsValid() {
				news++
				conns = append(conns, c)
			}
		case r < 75:
			c := conns[rnd.IntN(len(conns))]
			send(c, conn.ACK)
		case r < 85:
			c := conns[rnd.IntN(len(conns))]
			send(c, conn.FIN|conn.ACK)
		case r < 90:
			c := conns[rnd.IntN(len(conns))]
			send(c, conn.RST)
		case r < 97:
			// Edit a destination: weight and thresholds.
			i := rnd.IntN(len(dests))
			d := dests[i]
			d.Weight = int32(rnd.IntN(5))
			if err := eng.EditDest(svc.ServiceKey, d); err != nil {
				t.Fatal(err)
			}
			if err := f.tab.editDest(svc.ServiceKey, d); err != nil {
				t.Fatal(err)
			}
			dests[i] = d
		default:
			// Remove a destination and add a new one.
			if len(dests) > 2 {
				i := rnd.IntN(len(dests))
				d := dests[i]
				if err := eng.DelDest(svc.ServiceKey, d.Key()); err != nil {
					t.Fatal(err)
				}
				if err := f.tab.delDest(svc.ServiceKey, d.Key()); err != nil {
					t.Fatal(err)
				}
				dests = append(dests[:i], dests[i+1:]...)
			}
			if ndests > 4 {
				addDest(ndests + step)
			} else {
				addDest(4 + step%200)
			}
		}
	}
	// The counters the listing shows must agree too.
	st := eng.Services(time.Now())
	for _, ds := range st[0].Dests {
		var l govsDestLive
		for _, de := range f.tab.svcs[svc.ServiceKey].dests {
			if de.d.Key() == ds.Key() {
				if err := f.objs.DestLive.Lookup(de.id, &l); err != nil {
					t.Fatal(err)
				}
			}
		}
		if uint32(l.Active) != ds.ActiveConns || uint32(l.Inact) != ds.InactConns {
			t.Errorf("%s: bpf active/inact %d/%d, engine %d/%d", ds.Addr, l.Active, l.Inact, ds.ActiveConns, ds.InactConns)
		}
	}
	t.Logf("%d new connections compared", news)
}
