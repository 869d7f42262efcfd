package sched

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/govs/govs/internal/ipvs"
)

// Shared helpers of the dh, sh, mh, lblc and lblcr tests.

var hashNames = []string{"dh", "sh", "mh", "lblc", "lblcr"}

// hashT0 is an arbitrary start time for the schedulers that keep state.
var hashT0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// hashSvc is a virtual service as the engine keeps it: a destination list
// in the kernel's order (newest first) and a scheduler told of every change.
type hashSvc struct {
	t     testing.TB
	s     Scheduler
	dests []*ipvs.Dest
	flags ipvs.SchedFlags
	now   time.Time
}

// hashNew creates a service with scheduler name and adds dests in the
// order given ("A:2" is 10.0.0.A... see hashDest), so the last one given
// ends at the head of the list.
func hashNew(t testing.TB, name string, cfg Config, adds ...string) *hashSvc {
	t.Helper()
	n, err := Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	v := &hashSvc{t: t, s: n(cfg, nil), now: hashT0}
	for _, a := range adds {
		v.add(a)
	}
	return v
}

// hashDest makes a destination from "name:weight", where name is a
// letter: A is 192.168.0.1:80, B 192.168.0.2:80, and so on.
func hashDest(t testing.TB, spec string) *ipvs.Dest {
	t.Helper()
	var name rune
	var w int32
	if _, err := fmt.Sscanf(spec, "%c:%d", &name, &w); err != nil {
		t.Fatalf("dest spec %q: %v", spec, err)
	}
	addr := netip.AddrFrom4([4]byte{192, 168, 0, byte(name - 'A' + 1)})
	return ipvs.NewDest(ipvs.Destination{Addr: addr, Port: 80, Fwd: ipvs.Route, Weight: w})
}

// hashName is the inverse of hashDest's naming.
func hashName(d *ipvs.Dest) string {
	if d == nil {
		return "-"
	}
	b := d.Addr.As4()
	return string(rune('A' + b[3] - 1))
}

func (v *hashSvc) add(spec string) *ipvs.Dest {
	d := hashDest(v.t, spec)
	v.dests = slices.Insert(v.dests, 0, d)
	v.s.AddDest(v.dests, d)
	return d
}

func (v *hashSvc) dest(name string) *ipvs.Dest {
	for _, d := range v.dests {
		if hashName(d) == name {
			return d
		}
	}
	v.t.Fatalf("no dest %s", name)
	return nil
}

func (v *hashSvc) del(name string) {
	d := v.dest(name)
	at := slices.Index(v.dests, d)
	v.dests = slices.Delete(v.dests, at, at+1)
	d.Available = false
	v.s.DelDest(v.dests, d, at)
}

// edit sets a weight the way ip_vs_edit_dest does, last_weight included.
func (v *hashSvc) edit(name string, w int32) {
	d := v.dest(name)
	if w != 0 {
		d.LastWeight = w
	}
	d.Weight = w
	v.s.UpdDest(v.dests, d)
}

func (v *hashSvc) svc() Service {
	return Service{Dests: v.dests, Flags: v.flags, Now: v.now}
}

// pick schedules f and returns the destination's name, or "-" for
// ErrNoDestination.
func (v *hashSvc) pick(f Flow) string {
	v.t.Helper()
	d, err := v.s.Schedule(v.svc(), f)
	if err != nil {
		if !errors.Is(err, ErrNoDestination) {
			v.t.Fatalf("Schedule: %v", err)
		}
		return "-"
	}
	return hashName(d)
}

// hashTCP is a TCP flow from src:sport to dst:80.
func hashTCP(src string, sport uint16, dst string) Flow {
	return Flow{Proto: ipvs.ProtoTCP, Src: netip.MustParseAddr(src), SrcPort: sport,
		Dst: netip.MustParseAddr(dst), DstPort: 80}
}

// hashFrom is a TCP flow from src port 1000 to 10.1.1.1.
func hashFrom(src string) Flow { return hashTCP(src, 1000, "10.1.1.1") }

// hashRandFlow is a random IPv4 or IPv6 flow.
func hashRandFlow(r *rand.Rand) Flow {
	f := Flow{Proto: []ipvs.Protocol{ipvs.ProtoTCP, ipvs.ProtoUDP, ipvs.ProtoSCTP, 1}[r.IntN(4)],
		SrcPort: uint16(r.Uint32()), DstPort: 80}
	if r.IntN(4) == 0 {
		var a, b [16]byte
		binary.LittleEndian.PutUint64(a[:], r.Uint64())
		binary.LittleEndian.PutUint64(a[8:], r.Uint64())
		binary.LittleEndian.PutUint64(b[:], r.Uint64())
		f.Src, f.Dst = netip.AddrFrom16(a), netip.AddrFrom16(b)
		return f
	}
	var a, b [4]byte
	binary.LittleEndian.PutUint32(a[:], r.Uint32())
	binary.LittleEndian.PutUint32(b[:], r.Uint32()&0xff) // few dst addresses: cache hits
	f.Src, f.Dst = netip.AddrFrom4(a), netip.AddrFrom4(b)
	return f
}

// hashSipRef is a generic, byte-oriented SipHash-c-d, written from the
// SipHash paper independently of hashSip13, to check it.
func hashSipRef(c, d int, k0, k1 uint64, msg []byte) uint64 {
	v := [4]uint64{0x736f6d6570736575 ^ k0, 0x646f72616e646f6d ^ k1,
		0x6c7967656e657261 ^ k0, 0x7465646279746573 ^ k1}
	round := func() {
		v[0] += v[1]
		v[2] += v[3]
		v[1] = bits.RotateLeft64(v[1], 13) ^ v[0]
		v[3] = bits.RotateLeft64(v[3], 16) ^ v[2]
		v[0] = bits.RotateLeft64(v[0], 32)
		v[2] += v[1]
		v[0] += v[3]
		v[1] = bits.RotateLeft64(v[1], 17) ^ v[2]
		v[3] = bits.RotateLeft64(v[3], 21) ^ v[0]
		v[2] = bits.RotateLeft64(v[2], 32)
	}
	padded := make([]byte, (len(msg)/8+1)*8)
	copy(padded, msg)
	padded[len(padded)-1] = byte(len(msg))
	for i := 0; i < len(padded); i += 8 {
		m := binary.LittleEndian.Uint64(padded[i:])
		v[3] ^= m
		for range c {
			round()
		}
		v[0] ^= m
	}
	v[2] ^= 0xff
	for range d {
		round()
	}
	return v[0] ^ v[1] ^ v[2] ^ v[3]
}

func TestHashSipReference(t *testing.T) {
	// The reference against the SipHash-2-4 paper's vectors: key 00..0f,
	// messages 00..(n-1).
	key := make([]byte, 16)
	for i := range key {
		key[i] = byte(i)
	}
	k0, k1 := binary.LittleEndian.Uint64(key), binary.LittleEndian.Uint64(key[8:])
	msg := make([]byte, 15)
	for i := range msg {
		msg[i] = byte(i)
	}
	if got := hashSipRef(2, 4, k0, k1, msg); got != 0xa129ca6149be45e5 {
		t.Fatalf("SipHash-2-4(15 bytes) = %#x, want 0xa129ca6149be45e5", got)
	}
	if got := hashSipRef(2, 4, k0, k1, nil); got != 0x726fdb47dd0e0e31 {
		t.Fatalf("SipHash-2-4(empty) = %#x, want 0x726fdb47dd0e0e31", got)
	}
	// hsiphash of 4 bytes on a 64-bit kernel is SipHash-1-3 truncated.
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		v := r.Uint32()
		for _, k := range []hashSipKey{hashMHKey1, hashMHKey2, {r.Uint64(), r.Uint64()}} {
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], v)
			want := uint32(hashSipRef(1, 3, k[0], k[1], b[:]))
			if got := hashSip13(v, k); got != want {
				t.Fatalf("hashSip13(%#x, %x) = %#x, want %#x", v, k, got, want)
			}
		}
	}
}

func TestHashFunctions(t *testing.T) {
	// Golden-ratio bucket: (x * 2654435761) mod 256 = (x mod 256) * 0xB1
	// mod 256, since 2654435761 = 0x9E3779B1: only the low byte counts.
	tests := []struct {
		name string
		got  uint32
		want uint32
	}{
		{"dh 10.0.0.1", HashDH(Flow{Dst: netip.MustParseAddr("10.0.0.1")}), 177},
		{"dh 172.16.9.1 same last octet", HashDH(Flow{Dst: netip.MustParseAddr("172.16.9.1")}), 177},
		{"dh 10.0.0.2", HashDH(Flow{Dst: netip.MustParseAddr("10.0.0.2")}), 98},        // 354-256
		{"dh 10.0.0.3", HashDH(Flow{Dst: netip.MustParseAddr("10.0.0.3")}), 19},        // 531-512
		{"dh 10.0.0.4", HashDH(Flow{Dst: netip.MustParseAddr("10.0.0.4")}), 196},       // 708-512
		{"dh invalid", HashDH(Flow{}), 0},                                              // folds to 0
		{"dh 2001:db8::1", HashDH(Flow{Dst: netip.MustParseAddr("2001:db8::1")}), 233}, // fold 0x20010db9: 0xb9*0xb1 = 32745 = 127*256+233
		{"sh no port flag", HashSH(hashTCP("10.0.0.1", 1, "1.1.1.1"), 0, 0), 177},
		{"sh port 1", HashSH(hashTCP("10.0.0.1", 1, "1.1.1.1"), ipvs.SchedPort, 0), 98}, // low byte 1+1=2
		{"sh port 255", HashSH(hashTCP("10.0.0.1", 255, "1.1.1.1"), ipvs.SchedPort, 0), 0},
		{"sh port icmp ignored", HashSH(Flow{Proto: 1, Src: netip.MustParseAddr("10.0.0.1"), SrcPort: 1}, ipvs.SchedPort, 0), 177},
		{"sh offset 5", HashSH(hashFrom("10.0.0.1"), 0, 5), 182},
		{"sh offset wraps", HashSH(hashFrom("10.0.0.1"), 0, 100), 21}, // 277-256
		{"lblc bucket of 0.0.0.1", hash32(1, hashCacheBits), 0x61C88647 >> 22},
		{"mh < size", min(HashMH(hashFrom("203.0.113.9"), 0, 0), MHTableSize), HashMH(hashFrom("203.0.113.9"), 0, 0)},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %d, want %d", tt.name, tt.got, tt.want)
		}
	}
	// mh: the kernel's hsiphash of offset + port + folded address.
	f := hashTCP("203.0.113.9", 4242, "1.1.1.1")
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], 7+4242+0xCB007109)
	want := uint32(hashSipRef(1, 3, 2654435761, 2654435761, b[:])) % 4093
	if got := HashMH(f, ipvs.SchedPort|ipvs.SchedFallback, 7); got != want {
		t.Errorf("HashMH = %d, want %d", got, want)
	}
}

// TestHashProperties checks, for every scheduler of the family, what must
// hold whatever the algorithm: stable picks while nothing changes, no
// quiesced or overloaded picks for a new address, ErrNoDestination when
// nothing is usable.
func TestHashProperties(t *testing.T) {
	for _, name := range hashNames {
		for _, flags := range []ipvs.SchedFlags{0, ipvs.SchedFallback, ipvs.SchedPort, ipvs.SchedFallback | ipvs.SchedPort} {
			t.Run(fmt.Sprintf("%s/flags=%#x", name, uint32(flags)), func(t *testing.T) {
				v := hashNew(t, name, Config{}, "A:1", "B:3", "C:0", "D:2", "E:5", "F:1", "G:4")
				v.flags = flags
				v.dest("D").Overloaded = true
				v.dest("C").LastWeight = 0
				r := rand.New(rand.NewPCG(3, 4))
				for i := range 2000 {
					f := hashRandFlow(r)
					f.Dst = netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}) // new address each time
					d, err := v.s.Schedule(v.svc(), f)
					if err != nil {
						if !errors.Is(err, ErrNoDestination) {
							t.Fatal(err)
						}
						continue
					}
					if d.Weight <= 0 || d.Overloaded {
						t.Fatalf("flow %v got %s weight %d overloaded %v", f, hashName(d), d.Weight, d.Overloaded)
					}
					for range 3 {
						v.now = v.now.Add(time.Second)
						if d2, _ := v.s.Schedule(v.svc(), f); d2 != d {
							t.Fatalf("flow %v: %s then %s with nothing changed", f, hashName(d), hashName(d2))
						}
					}
				}
				for _, d := range v.dests {
					v.edit(hashName(d), 0)
				}
				for range 100 {
					f := hashRandFlow(r)
					if d, err := v.s.Schedule(v.svc(), f); !errors.Is(err, ErrNoDestination) || d != nil {
						t.Fatalf("all quiesced: got %v, %v; want ErrNoDestination", hashName(d), err)
					}
				}
			})
		}
	}
	for _, name := range hashNames {
		v := hashNew(t, name, Config{})
		if _, err := v.s.Schedule(v.svc(), hashFrom("10.0.0.1")); !errors.Is(err, ErrNoDestination) {
			t.Errorf("%s with no destinations: err %v, want ErrNoDestination", name, err)
		}
	}
}

// TestHashMultiDirector: two directors configured alike pick alike, so a
// flow rerouted between them by ECMP keeps its realserver.
func TestHashMultiDirector(t *testing.T) {
	for _, name := range hashNames {
		t.Run(name, func(t *testing.T) {
			adds := []string{"A:1", "B:2", "C:3", "D:0", "E:1", "F:7", "G:2", "H:1"}
			one := hashNew(t, name, Config{}, adds...)
			two := hashNew(t, name, Config{}, adds...)
			// The same edits, in the same order.
			for _, v := range []*hashSvc{one, two} {
				v.flags = ipvs.SchedFallback | ipvs.SchedPort
				v.del("C")
				v.edit("F", 0)
				v.add("I:4")
			}
			r := rand.New(rand.NewPCG(5, 6))
			for i := range 10000 {
				f := hashRandFlow(r)
				a, b := one.pick(f), two.pick(f)
				if a != b {
					t.Fatalf("flow %d %v: director one picks %s, two picks %s", i, f, a, b)
				}
			}
			type tabler interface{ Table() []*ipvs.Dest }
			if ta, ok := one.s.(tabler); ok {
				tb := two.s.(tabler)
				if !slices.EqualFunc(ta.Table(), tb.Table(), func(x, y *ipvs.Dest) bool { return hashName(x) == hashName(y) }) {
					t.Fatal("tables differ")
				}
			}
		})
	}
}

// TestHashTablesMatchSchedule checks the eBPF data plane's recipe: the
// exported table indexed by the exported hash gives Schedule's answer
// whenever that bucket's destination is usable.
func TestHashTablesMatchSchedule(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, name := range []string{"dh", "sh", "mh"} {
		v := hashNew(t, name, Config{}, "A:1", "B:2", "C:3", "D:4")
		v.flags = ipvs.SchedPort
		for range 5000 {
			f := hashRandFlow(r)
			var d *ipvs.Dest
			switch s := v.s.(type) {
			case *DH:
				d = s.Table()[HashDH(f)]
			case *SH:
				d = s.Table()[HashSH(f, v.flags, 0)]
			case *MH:
				d = s.Table()[HashMH(f, v.flags, 0)]
			}
			if got := v.pick(f); got != hashName(d) {
				t.Fatalf("%s flow %v: Schedule %s, table %s", name, f, got, hashName(d))
			}
		}
	}
}

// FuzzHashSchedulers drives all five schedulers through random sequences
// of add, delete, edit, overload, time and schedule operations: no panic,
// and every pick is a destination of the current list.
func FuzzHashSchedulers(f *testing.F) {
	f.Add([]byte{0, 1, 2, 0, 5, 3, 4, 9, 9, 9, 1, 0, 4, 4, 4, 2, 1, 0, 3, 2, 4, 7})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 4, 1, 2, 3, 5, 200, 4, 1})
	f.Add([]byte{0, 1, 0, 0, 1, 0, 2, 0, 0, 3, 0, 4, 0, 4, 1, 4, 2, 5, 255, 4, 3})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 4096 {
			return // every mh table rebuild costs ~0.3 ms
		}
		var scheds []Scheduler
		for _, name := range hashNames {
			n, _ := Lookup(name)
			scheds = append(scheds, n(Config{Expiration: time.Hour}, nil))
		}
		var list []*ipvs.Dest
		now := hashT0
		next := func() byte {
			if len(ops) == 0 {
				return 0
			}
			b := ops[0]
			ops = ops[1:]
			return b
		}
		for len(ops) > 0 {
			switch next() % 6 {
			case 0: // add
				a := netip.AddrFrom4([4]byte{192, 168, 1, next()})
				if slices.ContainsFunc(list, func(d *ipvs.Dest) bool { return d.Addr == a }) {
					continue
				}
				d := ipvs.NewDest(ipvs.Destination{Addr: a, Port: 80, Weight: int32(next() % 5)})
				list = slices.Insert(list, 0, d)
				for _, s := range scheds {
					s.AddDest(list, d)
				}
			case 1: // delete
				if len(list) == 0 {
					continue
				}
				at := int(next()) % len(list)
				d := list[at]
				list = slices.Delete(list, at, at+1)
				d.Available = false
				for _, s := range scheds {
					s.DelDest(list, d, at)
				}
			case 2: // edit weight
				if len(list) == 0 {
					continue
				}
				d := list[int(next())%len(list)]
				w := int32(next() % 5)
				if w != 0 {
					d.LastWeight = w
				}
				d.Weight = w
				for _, s := range scheds {
					s.UpdDest(list, d)
				}
			case 3: // overload and connections
				if len(list) == 0 {
					continue
				}
				d := list[int(next())%len(list)]
				b := next()
				d.Overloaded = b&1 != 0
				d.ActiveConns = int32(b >> 4)
				d.InactConns = int32(b>>1) & 7
			case 4: // schedule
				fl := Flow{Proto: ipvs.Protocol(next()), Src: netip.AddrFrom4([4]byte{10, 0, next(), next()}),
					SrcPort: uint16(next()), Dst: netip.AddrFrom4([4]byte{10, 1, 0, next() % 8})}
				svc := Service{Dests: list, Flags: ipvs.SchedFlags(next()%4) * ipvs.SchedFlag1, Now: now}
				for _, s := range scheds {
					d, err := s.Schedule(svc, fl)
					if err != nil {
						if !errors.Is(err, ErrNoDestination) {
							t.Fatalf("%s: %v", s.Name(), err)
						}
						continue
					}
					if !slices.Contains(list, d) {
						t.Fatalf("%s picked %v, not in the list", s.Name(), d.Addr)
					}
				}
			case 5: // time passes
				now = now.Add(time.Duration(next()) * time.Minute * time.Duration(1+next()%32))
			}
		}
	})
}
