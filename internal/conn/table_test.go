package conn

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/govs/govs/internal/ipvs"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func natParams(client, vip, rip string) Params {
	return Params{
		Key:     MakeKey(ipvs.ProtoTCP, ap(client), ap(vip)),
		Dest:    ap(rip),
		Fwd:     ipvs.Masq,
		Flags:   FlagInactive,
		Timeout: InitialTimeout,
	}
}

func TestTableLookupInOut(t *testing.T) {
	tab := NewTable(0)
	now := time.Unix(0, 0)
	nat := tab.Insert(natParams("10.0.0.1:1000", "192.0.2.1:80", "10.1.0.1:8080"), now)
	dr := tab.Insert(Params{
		Key: MakeKey(ipvs.ProtoTCP, ap("10.0.0.2:1000"), ap("192.0.2.1:80")), Dest: ap("10.1.0.2:80"),
		Fwd: ipvs.Route, Flags: FlagInactive | FlagNoOutput, Timeout: InitialTimeout,
	}, now)
	v6 := tab.Insert(natParams("[2001:db8::1]:1000", "[2001:db8::80]:80", "[2001:db8:1::1]:80"), now)

	if got := tab.Lookup(MakeKey(ipvs.ProtoTCP, ap("10.0.0.1:1000"), ap("192.0.2.1:80")), now); got != nat {
		t.Fatalf("in lookup: %v", got)
	}
	if got := tab.Lookup(MakeKey(ipvs.ProtoUDP, ap("10.0.0.1:1000"), ap("192.0.2.1:80")), now); got != nil {
		t.Fatal("protocol ignored")
	}
	if got := tab.LookupOut(MakeKey(ipvs.ProtoTCP, ap("10.1.0.1:8080"), ap("10.0.0.1:1000")), now); got != nat {
		t.Fatalf("out lookup: %v", got)
	}
	if got := tab.LookupOut(MakeKey(ipvs.ProtoTCP, ap("10.1.0.2:80"), ap("10.0.0.2:1000")), now); got != nil {
		t.Fatal("DR connection found by reply key")
	}
	if got := tab.Lookup(MakeKey(ipvs.ProtoTCP, ap("10.0.0.2:1000"), ap("192.0.2.1:80")), now); got != dr {
		t.Fatal("DR in lookup")
	}
	if got := tab.LookupOut(MakeKey(ipvs.ProtoTCP, ap("[2001:db8:1::1]:80"), ap("[2001:db8::1]:1000")), now); got != v6 {
		t.Fatal("v6 out lookup")
	}
	if nat.Client() != ap("10.0.0.1:1000") || nat.Virtual() != ap("192.0.2.1:80") || nat.DestAddrPort() != ap("10.1.0.1:8080") {
		t.Fatalf("addresses: %v %v %v", nat.Client(), nat.Virtual(), nat.DestAddrPort())
	}
	if tab.Len() != 3 {
		t.Fatalf("Len %d", tab.Len())
	}
	info := nat.Info(tab, now.Add(time.Second))
	if info.State != "NONE" || info.Expires != 2*time.Second || info.Dest != ap("10.1.0.1:8080") {
		t.Fatalf("info %+v", info)
	}
}

func TestTableExpiryIsExact(t *testing.T) {
	tab := NewTable(0)
	var freed []Key
	tab.OnExpire = func(e *Entry) { freed = append(freed, e.Key()) }
	t0 := time.Unix(100, 500_000_000) // not on a slot boundary
	var keys []Key
	for i := range 50 {
		p := natParams(fmt.Sprintf("10.0.0.%d:1000", i+1), "192.0.2.1:80", "10.1.0.1:80")
		p.Timeout = time.Duration(i+1) * 700 * time.Millisecond
		tab.Insert(p, t0)
		keys = append(keys, p.Key)
	}
	for i := range 50 {
		deadline := t0.Add(time.Duration(i+1) * 700 * time.Millisecond)
		if tab.Lookup(keys[i], deadline.Add(-time.Nanosecond)) == nil {
			t.Fatalf("entry %d gone before its deadline", i)
		}
		tab.Expire(deadline.Add(-time.Nanosecond))
		if len(freed) != i {
			t.Fatalf("at deadline %d-: %d freed", i, len(freed))
		}
		tab.Expire(deadline)
		if len(freed) != i+1 || freed[i] != keys[i] {
			t.Fatalf("at deadline %d: freed %d", i, len(freed))
		}
	}
	if tab.Len() != 0 {
		t.Fatalf("Len %d", tab.Len())
	}
}

func TestTableTouchEarlierAndLater(t *testing.T) {
	tab := NewTable(0)
	t0 := time.Unix(0, 0)
	p := natParams("10.0.0.1:1000", "192.0.2.1:80", "10.1.0.1:80")
	p.Timeout = 900 * time.Second
	e := tab.Insert(p, t0)
	// Shorten: state change to CLOSE (10 s).
	e.Timeout = 10 * time.Second
	tab.Touch(e, t0.Add(time.Second))
	if n := tab.Expire(t0.Add(11 * time.Second)); n != 1 {
		t.Fatalf("shortened entry not expired (%d)", n)
	}
	// Lengthen repeatedly: re-queued lazily, never expired early.
	e = tab.Insert(p, t0)
	e.Timeout = 5 * time.Second
	tab.Touch(e, t0)
	for s := 1; s < 10000; s += 3 {
		now := t0.Add(time.Duration(s) * time.Second)
		tab.Touch(e, now)
		if n := tab.Expire(now.Add(4 * time.Second)); n != 0 {
			t.Fatalf("expired at %d s although touched", s)
		}
	}
	if n := tab.Expire(t0.Add(20000 * time.Second)); n != 1 {
		t.Fatalf("not expired after a long jump (%d)", n)
	}
}

func TestTableLongTimeoutRevolutions(t *testing.T) {
	tab := NewTable(0)
	t0 := time.Unix(0, 0)
	p := Params{Key: TemplateKey(ipvs.ProtoTCP, netip.MustParseAddr("10.0.0.0"), netip.MustParseAddr("192.0.2.1"), 80),
		Dest: ap("10.1.0.1:80"), Flags: FlagTemplate, Timeout: 31 * 24 * time.Hour}
	tab.Insert(p, t0)
	for h := 1; h < 31*24; h++ {
		if n := tab.Expire(t0.Add(time.Duration(h) * time.Hour)); n != 0 {
			t.Fatalf("template expired after %d h", h)
		}
	}
	if n := tab.Expire(t0.Add(31 * 24 * time.Hour)); n != 1 {
		t.Fatalf("template not expired at its deadline (%d)", n)
	}
}

func TestTableTemplateControl(t *testing.T) {
	tab := NewTable(0)
	t0 := time.Unix(0, 0)
	tplKey := TemplateKey(ipvs.ProtoTCP, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("192.0.2.1"), 80)
	tpl := tab.Insert(Params{Key: tplKey, Dest: ap("10.1.0.1:80"), Fwd: ipvs.Route, Flags: FlagTemplate, Timeout: 300 * time.Second}, t0)
	c := tab.Insert(Params{Key: MakeKey(ipvs.ProtoTCP, ap("10.0.0.1:1000"), ap("192.0.2.1:80")), Dest: ap("10.1.0.1:80"),
		Fwd: ipvs.Route, Flags: FlagInactive | FlagNoOutput, Timeout: 900 * time.Second}, t0)
	tab.SetControl(c, tpl)
	if tpl.NControl() != 1 || tab.Controller(c) != tpl {
		t.Fatal("control link")
	}
	// At 300 s the template's timer fires but it controls c: 60 s more.
	if n := tab.Expire(t0.Add(300 * time.Second)); n != 0 {
		t.Fatal("template expired while controlling")
	}
	if tpl.Timeout != DeferredExpiry || tab.Deadline(tpl) != t0.Add(360*time.Second) {
		t.Fatalf("deferred to %v timeout %v", tab.Deadline(tpl), tpl.Timeout)
	}
	if tab.Lookup(tplKey, t0.Add(330*time.Second)) != tpl {
		t.Fatal("template not found while deferred")
	}
	// c expires at 900 s; the template at the next 60 s re-arm after that.
	if n := tab.Expire(t0.Add(900 * time.Second)); n != 1 || tpl.NControl() != 0 {
		t.Fatalf("at 900 s: %d freed, ncontrol %d", n, tpl.NControl())
	}
	if n := tab.Expire(t0.Add(960 * time.Second)); n != 1 || tab.Len() != 0 {
		t.Fatalf("template outlived its controlled connection: %d", tab.Len())
	}
}

func TestTableExpireNowAndUnhash(t *testing.T) {
	tab := NewTable(0)
	t0 := time.Unix(0, 0)
	tplKey := TemplateKey(ipvs.ProtoTCP, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("192.0.2.1"), 80)
	tpl := tab.Insert(Params{Key: tplKey, Flags: FlagTemplate, Timeout: 300 * time.Second}, t0)
	ck := MakeKey(ipvs.ProtoTCP, ap("10.0.0.1:1000"), ap("192.0.2.1:80"))
	c := tab.Insert(Params{Key: ck, Flags: FlagInactive, Timeout: 900 * time.Second}, t0)
	tab.SetControl(c, tpl)
	if tab.ExpireNow(tpl, t0, false) {
		t.Fatal("controlling template freed")
	}
	tab.Unhash(tpl)
	if tab.Lookup(tplKey, t0) != nil {
		t.Fatal("unhashed template found")
	}
	if !tab.ExpireNow(c, t0, true) {
		t.Fatal("connection not freed")
	}
	if tab.Len() != 0 {
		t.Fatalf("controller not dropped with its last connection: %d", tab.Len())
	}
}

func TestFWMarkTemplateKey(t *testing.T) {
	k := FWMarkTemplateKey(7, netip.MustParseAddr("10.0.0.0"))
	if k.Proto != 0 || !k.Template || binary.BigEndian.Uint32(k.Dst[:4]) != 7 {
		t.Fatalf("%+v", k)
	}
	if k == FWMarkTemplateKey(8, netip.MustParseAddr("10.0.0.0")) {
		t.Fatal("marks collide")
	}
	tab := NewTable(0)
	e := tab.Insert(Params{Key: k, Flags: FlagTemplate, FWMark: 7, Dest: ap("10.1.0.1:0"), Timeout: time.Minute}, time.Unix(0, 0))
	info := e.Info(tab, time.Unix(0, 0))
	if info.Virtual != ap("0.0.0.7:0") || !info.Template || info.State != "NONE" {
		t.Fatalf("%+v", info)
	}
}

func TestTableGrowAndReuse(t *testing.T) {
	tab := NewTable(0)
	t0 := time.Unix(0, 0)
	const n = 20000
	for i := range n {
		p := natParams(addrN(i), "192.0.2.1:80", "10.1.0.1:80")
		p.Timeout = time.Duration(1+i%7) * time.Second
		tab.Insert(p, t0)
	}
	for i := range n {
		if tab.Lookup(MakeKey(ipvs.ProtoTCP, ap(addrN(i)), ap("192.0.2.1:80")), t0) == nil {
			t.Fatalf("entry %d lost in growth", i)
		}
		if tab.LookupOut(MakeKey(ipvs.ProtoTCP, ap("10.1.0.1:80"), ap(addrN(i))), t0) == nil {
			t.Fatalf("entry %d lost from out index", i)
		}
	}
	chunks := len(tab.chunks)
	if got := tab.Expire(t0.Add(time.Hour)); got != n {
		t.Fatalf("expired %d", got)
	}
	for i := range n {
		tab.Insert(natParams(addrN(i), "192.0.2.1:80", "10.1.0.1:80"), t0.Add(time.Hour))
	}
	if len(tab.chunks) != chunks {
		t.Fatalf("free list not reused: %d chunks, was %d", len(tab.chunks), chunks)
	}
	n2 := 0
	for range tab.All() {
		n2++
	}
	if n2 != n {
		t.Fatalf("All yielded %d", n2)
	}
	var seen int
	tab.OnExpire = func(*Entry) { seen++ }
	tab.Flush()
	if tab.Len() != 0 || seen != n {
		t.Fatalf("Flush: len %d, OnExpire %d", tab.Len(), seen)
	}
}

func addrN(i int) string {
	return fmt.Sprintf("10.%d.%d.%d:%d", (i>>16)&255, (i>>8)&255, i&255, 1024+i%50000)
}

func key4(i uint32) Key {
	var k Key
	k.Proto = ipvs.ProtoTCP
	k.Src = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).As16()
	k.Dst = netip.AddrFrom4([4]byte{192, 0, 2, 1}).As16()
	k.SrcPort = uint16(1024 + i%60000)
	k.DstPort = 80
	return k
}

const benchEntries = 1 << 20

func fillTable(b *testing.B, n int) (*Table, []Key, time.Time) {
	b.Helper()
	tab := NewTable(n)
	now := time.Unix(0, 0)
	keys := make([]Key, n)
	for i := range keys {
		keys[i] = key4(uint32(i))
		tab.Insert(Params{Key: keys[i], Dest: ap("10.1.0.1:80"), Fwd: ipvs.Masq, Flags: FlagInactive, Timeout: time.Hour}, now)
	}
	return tab, keys, now
}

// BenchmarkConnLookup looks up entries of a table of 1M connections.
func BenchmarkConnLookup(b *testing.B) {
	tab, keys, now := fillTable(b, benchEntries)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if tab.Lookup(keys[i&(benchEntries-1)], now) == nil {
			b.Fatal("miss")
		}
		i += 7919
	}
}

// BenchmarkConnInsert replaces entries of a table of 1M connections: each
// iteration expires one entry and inserts one (steady state: the free list
// is reused, nothing is allocated).
func BenchmarkConnInsert(b *testing.B) {
	tab, keys, now := fillTable(b, benchEntries)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		k := keys[i&(benchEntries-1)]
		e := tab.Lookup(k, now)
		tab.ExpireNow(e, now, false)
		tab.Insert(Params{Key: k, Dest: ap("10.1.0.1:80"), Fwd: ipvs.Masq, Flags: FlagInactive, Timeout: time.Hour}, now)
		i += 7919
	}
}

// BenchmarkConnTouch is the per-packet refresh of an established entry.
func BenchmarkConnTouch(b *testing.B) {
	tab, keys, now := fillTable(b, benchEntries)
	to := DefaultTimeouts
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		e := tab.Lookup(keys[i&(benchEntries-1)], now)
		e.Update(DirIn, ACK, &to)
		tab.Touch(e, now)
		i += 7919
	}
}

func TestEntrySize(t *testing.T) {
	if s := unsafe.Sizeof(Entry{}); s%64 != 0 || unsafe.Offsetof(Entry{}.expires) >= 64 {
		t.Errorf("Entry is %d bytes, expires at %d: keep it a multiple of a cache line with the lookup fields in the first", s, unsafe.Offsetof(Entry{}.expires))
	}
}

// TestTableDeferredReplay: one Expire after a long gap gives what the
// kernel's timers would have: the template fired at 30 s while its
// connection lived (re-armed to 90 s), the connection went at 60 s, the
// template at 90 s.
func TestTableDeferredReplay(t *testing.T) {
	for _, tc := range []struct {
		at       time.Duration
		wantLeft int
	}{
		{59 * time.Second, 2},
		{70 * time.Second, 1},
		{89 * time.Second, 1},
		{90 * time.Second, 0},
		{time.Hour, 0},
	} {
		tab := NewTable(0)
		t0 := time.Unix(0, 0)
		tpl := tab.Insert(Params{Key: TemplateKey(ipvs.ProtoTCP, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("192.0.2.1"), 80),
			Flags: FlagTemplate, Timeout: 30 * time.Second}, t0)
		c := tab.Insert(Params{Key: MakeKey(ipvs.ProtoTCP, ap("10.0.0.1:1"), ap("192.0.2.1:80")), Flags: FlagInactive, Timeout: 60 * time.Second}, t0)
		tab.SetControl(c, tpl)
		tab.Expire(t0.Add(tc.at))
		if tab.Len() != tc.wantLeft {
			t.Errorf("one Expire at %v: %d entries left, want %d", tc.at, tab.Len(), tc.wantLeft)
		}
		if tc.wantLeft == 1 && tab.Deadline(tpl) != t0.Add(90*time.Second) {
			t.Errorf("at %v: template deadline %v", tc.at, tab.Deadline(tpl).Sub(t0))
		}
	}
}

// BenchmarkBaselineMapLookup is the yardstick for BenchmarkConnLookup: a
// plain Go map with the same 1M keys and the same access pattern, in the
// same run, so the table's cost can be given as a ratio on a noisy machine.
func BenchmarkBaselineMapLookup(b *testing.B) {
	m := make(map[Key]uint32, benchEntries)
	keys := make([]Key, benchEntries)
	for i := range keys {
		keys[i] = key4(uint32(i))
		m[keys[i]] = uint32(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, ok := m[keys[i&(benchEntries-1)]]; !ok {
			b.Fatal("miss")
		}
		i += 7919
	}
}
