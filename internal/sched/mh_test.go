package sched

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/govs/govs/internal/ipvs"
)

// hashMHRef builds the Maglev lookup table the textbook way, from the
// paper and the kernel's parameters, independently of MH.reassign: full
// permutation rows indexed by a per-destination cursor, hashes from the
// byte-oriented SipHash reference.
func hashMHRef(list []*ipvs.Dest) []*ipvs.Dest {
	const m = 4093
	h := func(d *ipvs.Dest, k uint64) uint32 {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(d.Port)+hashFold(d.Addr))
		return uint32(hashSipRef(1, 3, k, k, b[:]))
	}
	lw := func(d *ipvs.Dest) int {
		if d.Weight != 0 {
			return int(d.Weight)
		}
		return int(d.LastWeight)
	}
	g, top := 0, 0
	for _, d := range list {
		if w := lw(d); w > 0 {
			a, b := w, g
			for b != 0 {
				a, b = b, a%b
			}
			g = a
			top = max(top, w)
		}
	}
	table := make([]*ipvs.Dest, m)
	if g == 0 {
		return table
	}
	shift := max(bits.Len(uint(top/g))-6, 0)
	offset := make([]int, len(list))
	skip := make([]int, len(list))
	cursor := make([]int, len(list))
	turns := make([]int, len(list))
	for i, d := range list {
		offset[i] = int(h(d, 2654435761) % m)
		skip[i] = int(h(d, 2654446892)%(m-1) + 1)
		turns[i] = (lw(d) / g) >> shift
		if turns[i] == 0 && lw(d) > 0 {
			turns[i] = 1
		}
	}
	filled := 0
	for filled < m {
		for i := range list {
			for t := 0; t < turns[i] && filled < m; t++ {
				for {
					c := (offset[i] + cursor[i]*skip[i]) % m
					cursor[i]++
					if table[c] == nil {
						table[c] = list[i]
						filled++
						break
					}
				}
			}
		}
	}
	return table
}

func hashSameTable(t *testing.T, got, want []*ipvs.Dest) {
	t.Helper()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("slot %d: %s, want %s", i, hashName(got[i]), hashName(want[i]))
		}
	}
}

func hashCounts(tab []*ipvs.Dest) map[string]int {
	c := map[string]int{}
	for _, d := range tab {
		c[hashName(d)]++
	}
	return c
}

func TestMHTableSizePrime(t *testing.T) {
	for p := 2; p*p <= MHTableSize; p++ {
		if MHTableSize%p == 0 {
			t.Fatalf("MHTableSize %d divisible by %d", MHTableSize, p)
		}
	}
}

func TestMHTableMatchesReference(t *testing.T) {
	tests := [][]string{
		{"A:1"},
		{"A:1", "B:1"},
		{"A:1", "B:3"},
		{"A:2", "B:4", "C:6"},
		{"A:1", "B:1000"},            // shift 4: turns 1 and 62
		{"A:0", "B:2", "C:0", "D:5"}, // weight-0 adds claim nothing
		{"A:1", "B:2", "C:3", "D:4", "E:5", "F:6", "G:7", "H:8", "I:9", "J:10"},
	}
	for _, adds := range tests {
		v := hashNew(t, "mh", Config{}, adds...)
		hashSameTable(t, v.s.(*MH).Table(), hashMHRef(v.dests))
	}
}

// TestMHShares: in every round each destination claims turns slots, so a
// destination's count is within turns of size*turns/sum(turns).
func TestMHShares(t *testing.T) {
	tests := []struct {
		adds  []string
		turns map[string]int
	}{
		{[]string{"A:1"}, map[string]int{"A": 1}},
		{[]string{"A:1", "B:1"}, map[string]int{"A": 1, "B": 1}},
		{[]string{"A:1", "B:3"}, map[string]int{"A": 1, "B": 3}},
		// gcd 2: turns 1, 2, 3.
		{[]string{"A:2", "B:4", "C:6"}, map[string]int{"A": 1, "B": 2, "C": 3}},
		// 1000/1 needs 10 bits, 4 more than 6: turns 1>>4 -> 0 -> 1,
		// 1000>>4 = 62.
		{[]string{"A:1", "B:1000"}, map[string]int{"A": 1, "B": 62}},
		{[]string{"A:0", "B:2", "C:5"}, map[string]int{"B": 2, "C": 5}},
	}
	for _, tt := range tests {
		v := hashNew(t, "mh", Config{}, tt.adds...)
		c := hashCounts(v.s.(*MH).Table())
		if c["-"] != 0 {
			t.Errorf("%v: %d empty slots", tt.adds, c["-"])
		}
		sum := 0
		for _, n := range tt.turns {
			sum += n
		}
		for name, n := range tt.turns {
			want := float64(MHTableSize*n) / float64(sum)
			if got := float64(c[name]); got < want-float64(n) || got > want+float64(n) {
				t.Errorf("%v: %s has %d slots, want %.1f +- %d", tt.adds, name, c[name], want, n)
			}
		}
		if len(c) != len(tt.turns) {
			t.Errorf("%v: owners %v, want %v", tt.adds, c, tt.turns)
		}
	}
}

func TestMHChanges(t *testing.T) {
	adds := []string{"A:1", "B:1", "C:1", "D:1", "E:1", "F:1", "G:1", "H:1", "I:1", "J:1"}
	moved := func(before, after []*ipvs.Dest, except string) int {
		n := 0
		for i := range before {
			if hashName(before[i]) != except && hashName(after[i]) != except && before[i] != after[i] {
				n++
			}
		}
		return n
	}

	t.Run("remove", func(t *testing.T) {
		v := hashNew(t, "mh", Config{}, adds...)
		before := v.s.(*MH).Table()
		v.del("E")
		after := v.s.(*MH).Table()
		hashSameTable(t, after, hashMHRef(v.dests))
		// Maglev's promise: slots of other destinations mostly stay.
		if n := moved(before, after, "E"); n > MHTableSize/20 {
			t.Errorf("%d slots of other destinations moved, want < 5%%", n)
		}
		if c := hashCounts(after); c["E"] != 0 || c["-"] != 0 {
			t.Errorf("after removing E: %v", c)
		}
	})
	t.Run("add at head", func(t *testing.T) {
		v := hashNew(t, "mh", Config{}, adds...)
		before := v.s.(*MH).Table()
		v.add("K:1")
		after := v.s.(*MH).Table()
		hashSameTable(t, after, hashMHRef(v.dests))
		if n := moved(before, after, "K"); n > MHTableSize/20 {
			t.Errorf("%d slots moved between old destinations, want < 5%%", n)
		}
		if c := hashCounts(after)["K"]; c < MHTableSize/11-1 || c > MHTableSize/11+1 {
			t.Errorf("K has %d slots, want %d +- 1", c, MHTableSize/11)
		}
	})
	t.Run("reweight", func(t *testing.T) {
		v := hashNew(t, "mh", Config{}, adds...)
		v.edit("C", 3)
		hashSameTable(t, v.s.(*MH).Table(), hashMHRef(v.dests))
	})
	t.Run("quiesce keeps the table", func(t *testing.T) {
		v := hashNew(t, "mh", Config{}, adds...)
		before := v.s.(*MH).Table()
		v.edit("C", 0) // last_weight stays 1
		hashSameTable(t, v.s.(*MH).Table(), before)
		checkPicks(t, v, "C")
	})
	t.Run("overloaded", func(t *testing.T) {
		v := hashNew(t, "mh", Config{}, adds...)
		v.dest("C").Overloaded = true
		checkPicks(t, v, "C")
	})
	t.Run("added with weight 0", func(t *testing.T) {
		v := hashNew(t, "mh", Config{}, adds...)
		before := v.s.(*MH).Table()
		v.add("K:0") // last_weight 0: claims nothing, and nothing moves
		hashSameTable(t, v.s.(*MH).Table(), before)
	})
	t.Run("all weight 0 at add", func(t *testing.T) {
		v := hashNew(t, "mh", Config{}, "A:0", "B:0")
		if c := hashCounts(v.s.(*MH).Table()); c["-"] != MHTableSize {
			t.Errorf("table %v, want empty", c)
		}
		v.flags = ipvs.SchedFallback
		if got := v.pick(hashFrom("10.0.0.1")); got != "-" {
			t.Errorf("pick %s, want none", got)
		}
	})
}

// checkPicks: flows whose slot holds the unusable destination x find none
// without mh-fallback; with it, they get the destination of the first
// usable slot of the kernel's probe sequence; other flows are unaffected.
func checkPicks(t *testing.T, v *hashSvc, x string) {
	t.Helper()
	tab := v.s.(*MH).Table()
	r := rand.New(rand.NewPCG(9, 10))
	hits := 0
	for range 3000 {
		var a [4]byte
		binary.LittleEndian.PutUint32(a[:], r.Uint32())
		f := hashTCP(netip.AddrFrom4(a).String(), 1000, "10.1.1.1")
		slot := HashMH(f, 0, 0)
		v.flags = 0
		got := v.pick(f)
		if hashName(tab[slot]) != x {
			if got != hashName(tab[slot]) {
				t.Fatalf("flow %v: %s, want its slot's %s", f.Src, got, hashName(tab[slot]))
			}
			continue
		}
		hits++
		if got != "-" {
			t.Fatalf("flow %v on %s's slot: %s, want none", f.Src, x, got)
		}
		v.flags = ipvs.SchedFallback
		want := "-"
		for k := uint32(0); k < MHTableSize; k++ {
			if d := tab[HashMH(f, 0, (k+slot)%MHTableSize)]; hashName(d) != x {
				want = hashName(d)
				break
			}
		}
		if got := v.pick(f); got != want || got == "-" {
			t.Fatalf("flow %v with fallback: %s, want %s", f.Src, got, want)
		}
	}
	if hits < 200 {
		t.Fatalf("only %d of 3000 flows hit %s's slots", hits, x)
	}
}

func TestMHPort(t *testing.T) {
	v := hashNew(t, "mh", Config{}, "A:1", "B:1", "C:1", "D:1")
	tab := v.s.(*MH).Table()
	r := rand.New(rand.NewPCG(11, 12))
	for range 1000 {
		f := hashTCP("198.51.100.7", uint16(r.Uint32()), "10.1.1.1")
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(f.SrcPort)+0xC6336407)
		slot := uint32(hashSipRef(1, 3, 2654435761, 2654435761, b[:])) % MHTableSize
		v.flags = ipvs.SchedPort
		if got := v.pick(f); got != hashName(tab[slot]) {
			t.Fatalf("port %d: %s, want %s", f.SrcPort, got, hashName(tab[slot]))
		}
		f.Proto = 1 // ICMP: no port
		if got, want := v.pick(f), v.pick(hashFrom("198.51.100.7")); got != want {
			t.Fatalf("icmp with mh-port: %s, want %s", got, want)
		}
	}
}
