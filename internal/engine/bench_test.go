package engine

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

func benchClient(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 24), byte(i >> 16), byte(i >> 8)}), uint16(1024+i&0xff))
}

func benchEngine(b *testing.B, scheduler string, dests int, tableSize int) (*Engine, ipvs.ServiceKey) {
	b.Helper()
	e := New(Options{ConnTableSize: tableSize, Seed: 1})
	k := ipvs.TCPService(ap(vip))
	if err := e.AddService(ipvs.Service{ServiceKey: k, Scheduler: scheduler}); err != nil {
		b.Fatal(err)
	}
	for i := range dests {
		d := ipvs.Destination{Addr: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Port: 80, Fwd: ipvs.Route, Weight: int32(1 + i%3)}
		if err := e.AddDest(k, d); err != nil {
			b.Fatal(err)
		}
	}
	return e, k
}

// BenchmarkEngineProcessEstablished is the per-packet cost of an
// established connection in a table of 1M connections: lookup, state
// update, counters, timer refresh.
func BenchmarkEngineProcessEstablished(b *testing.B) {
	const n = 1 << 20
	e, _ := benchEngine(b, "wlc", 10, n)
	now := t0
	dst := ap(vip)
	for i := range n {
		src := benchClient(i)
		e.Process(now, Packet{Proto: ipvs.ProtoTCP, Src: src, Dst: dst, Flags: conn.SYN, Len: 60})
		e.Process(now, Packet{Proto: ipvs.ProtoTCP, Src: src, Dst: dst, Flags: conn.ACK, Len: 60})
	}
	if e.ConnCount() != n {
		b.Fatalf("%d connections", e.ConnCount())
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		v, _ := e.Process(now, Packet{Proto: ipvs.ProtoTCP, Src: benchClient(i & (n - 1)), Dst: dst, Flags: conn.ACK, Len: 1500})
		if v.Action != Forward {
			b.Fatal(v.Action)
		}
		i += 7919
	}
}

// BenchmarkEngineProcessNew is the cost of a new connection: a SYN that
// is scheduled and gets an entry. Time advances 1 ms per connection and
// Expire runs every 1024 connections, so the table holds a steady minute
// of SYN_RECV entries (60 000) and entries are recycled.
func BenchmarkEngineProcessNew(b *testing.B) {
	for _, scheduler := range []string{"rr", "wlc"} {
		for _, dests := range []int{10, 1000} {
			b.Run(fmt.Sprintf("%s/%d", scheduler, dests), func(b *testing.B) {
				e, _ := benchEngine(b, scheduler, dests, 1<<17)
				now := t0
				dst := ap(vip)
				e.Expire(now)
				// Warm up to the steady state.
				i := 0
				for ; i < 200_000; i++ {
					now = now.Add(time.Millisecond)
					e.Process(now, Packet{Proto: ipvs.ProtoTCP, Src: benchClient(i), Dst: dst, Flags: conn.SYN, Len: 60})
					if i&1023 == 0 {
						e.Expire(now)
					}
				}
				b.ReportAllocs()
				for b.Loop() {
					now = now.Add(time.Millisecond)
					v, _ := e.Process(now, Packet{Proto: ipvs.ProtoTCP, Src: benchClient(i), Dst: dst, Flags: conn.SYN, Len: 60})
					if !v.New {
						b.Fatal("not new")
					}
					if i&1023 == 0 {
						e.Expire(now)
					}
					i++
				}
			})
		}
	}
}
