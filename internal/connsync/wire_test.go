package connsync_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/ipvs"
)

// golden turns annotated hex lines into bytes: everything after "//" on a
// line is a comment.
func golden(lines ...string) []byte {
	var b []byte
	for _, l := range lines {
		if i := strings.Index(l, "//"); i >= 0 {
			l = l[:i]
		}
		h, err := hex.DecodeString(strings.Join(strings.Fields(l), ""))
		if err != nil {
			panic(err)
		}
		b = append(b, h...)
	}
	return b
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// goldenV4 is a version 1 message with one IPv4 TCP connection in DR mode.
var goldenV4 = golden(
	"00",   // reserved: 0 (a version 0 backup reads it as nr_conns and ignores the message)
	"05",   // syncid 5
	"002c", // size 44 = header 8 + entry 36
	"01",   // nr_conns 1
	"01",   // version 1
	"0000", // spare
	// entry 0: struct ip_vs_sync_v4
	"00",       // type 0: IPv4
	"06",       // protocol TCP
	"0024",     // ver_size: entry version 0 (top 4 bits), size 36
	"00000083", // flags: IP_VS_CONN_F_NOOUTPUT 0x80 | IP_VS_CONN_F_DROUTE 3
	"0001",     // state 1: ESTABLISHED
	"9c40",     // cport 40000
	"0050",     // vport 80
	"0050",     // dport 80
	"00000000", // fwmark 0
	"00000384", // timeout 900 s
	"0a000001", // caddr 10.0.0.1
	"c0a8016e", // vaddr 192.168.1.110
	"c0a8010b", // daddr 192.168.1.11
)

var goldenV4Conn = connsync.Conn{
	Proto:   ipvs.ProtoTCP,
	Flags:   connsync.FlagNoOutput | connsync.FlagDRoute,
	State:   1,
	Client:  ap("10.0.0.1:40000"),
	Virtual: ap("192.168.1.110:80"),
	Dest:    ap("192.168.1.11:80"),
	Timeout: 900 * time.Second,
}

// goldenOpts has an IPv4 NAT connection with sequence options, the
// padding that aligns the next entry, and an IPv6 SIP persistence
// template of a firewall-mark service with PE data and name.
var goldenOpts = golden(
	"00 07 009a 02 01 0000", // reserved, syncid 7, size 154, 2 conns, version 1, spare
	// entry 0: IPv4, 62 bytes
	"00",                         // type IPv4
	"06",                         // TCP
	"003e",                       // version 0, size 62 = 36 + option header 2 + 24
	"00000600",                   // flags: IN_SEQ 0x400 | OUT_SEQ 0x200, MASQ 0
	"0001",                       // ESTABLISHED
	"04d2",                       // cport 1234
	"0015",                       // vport 21
	"0849",                       // dport 2121 (NAT maps ports)
	"00000000",                   // fwmark
	"0000003c",                   // timeout 60 s
	"0a000002",                   // caddr 10.0.0.2
	"0a010001",                   // vaddr 10.1.0.1
	"0a020005",                   // daddr 10.2.0.5
	"01 18",                      // option IPVS_OPT_SEQ_DATA, length 24
	"01020304 00000005 00000000", // in_seq: init_seq, delta, previous_delta (network order)
	"a0b0c0d0 fffffffb 00000001", // out_seq
	"0000",                       // padding: entry 1 starts at offset 72, 32-bit aligned
	// entry 1: IPv6, 82 bytes
	"01",                               // type: STYPE_F_INET6
	"11",                               // UDP
	"0052",                             // version 0, size 82 = 72 + (2+3) + (2+3)
	"00001003",                         // flags: TEMPLATE 0x1000 | DROUTE
	"0000",                             // template state NONE
	"0000",                             // cport 0 (templates have none)
	"13c4",                             // vport 5060
	"13c4",                             // dport 5060
	"00000007",                         // fwmark 7
	"00000168",                         // timeout 360 s
	"20010db8000000000000000000000001", // caddr 2001:db8::1
	"20010db8000100000000000000000080", // vaddr 2001:db8:1::80
	"20010db800020000000000000000000b", // daddr 2001:db8:2::b
	"02 03 616263",                     // IPVS_OPT_PE_DATA, 3 bytes "abc" (the SIP Call-ID)
	"03 03 736970",                     // IPVS_OPT_PE_NAME, 3 bytes "sip"; no padding after the last entry
)

var goldenOptsConns = []connsync.Conn{
	{
		Proto:   ipvs.ProtoTCP,
		Flags:   connsync.FlagInSeq | connsync.FlagOutSeq,
		State:   1,
		Client:  ap("10.0.0.2:1234"),
		Virtual: ap("10.1.0.1:21"),
		Dest:    ap("10.2.0.5:2121"),
		Timeout: time.Minute,
		Seq: &connsync.SeqOptions{
			In:  connsync.Seq{InitSeq: 0x01020304, Delta: 5},
			Out: connsync.Seq{InitSeq: 0xa0b0c0d0, Delta: 0xfffffffb, PreviousDelta: 1},
		},
	},
	{
		Proto:   ipvs.ProtoUDP,
		Flags:   connsync.FlagTemplate | connsync.FlagDRoute,
		Client:  ap("[2001:db8::1]:0"),
		Virtual: ap("[2001:db8:1::80]:5060"),
		Dest:    ap("[2001:db8:2::b]:5060"),
		FWMark:  7,
		Timeout: 360 * time.Second,
		PEData:  []byte("abc"),
		PEName:  "sip",
	},
}

// goldenV0 is a legacy version 0 message.
var goldenV0 = golden(
	"02",   // nr_conns 2
	"09",   // syncid 9
	"004c", // size 76 = header 4 + 24 + 24 + 24 bytes of sequence options
	// entry 0: struct ip_vs_sync_conn_v0
	"00",       // reserved
	"06",       // TCP
	"9c41",     // cport 40001
	"0050",     // vport 80
	"0050",     // dport 80
	"0a000003", // caddr 10.0.0.3
	"c0a8016e", // vaddr 192.168.1.110
	"c0a8010c", // daddr 192.168.1.12
	"0083",     // flags (16 bits): NOOUTPUT | DROUTE
	"0001",     // ESTABLISHED
	// entry 1, with IP_VS_CONN_F_SEQ_MASK set: followed by its options
	"00 06 9c42 0015 0015 0a000004 c0a8016e c0a8010c",
	"0600",                       // flags: IN_SEQ | OUT_SEQ | MASQ
	"0005",                       // TIME_WAIT
	"44332211 01000000 00000000", // in_seq in the sender's (little-endian) host order
	"88776655 02000000 03000000", // out_seq
)

var goldenV0Conns = []connsync.Conn{
	{
		Proto: ipvs.ProtoTCP, Flags: connsync.FlagNoOutput | connsync.FlagDRoute, State: 1,
		Client: ap("10.0.0.3:40001"), Virtual: ap("192.168.1.110:80"), Dest: ap("192.168.1.12:80"),
	},
	{
		Proto: ipvs.ProtoTCP, Flags: connsync.FlagSeqMask, State: 5,
		Client: ap("10.0.0.4:40002"), Virtual: ap("192.168.1.110:21"), Dest: ap("192.168.1.12:21"),
		Seq: &connsync.SeqOptions{
			In:  connsync.Seq{InitSeq: 0x11223344, Delta: 1},
			Out: connsync.Seq{InitSeq: 0x55667788, Delta: 2, PreviousDelta: 3},
		},
	},
}

func TestEncodeGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  connsync.Message
		want []byte
	}{
		{"ipv4", connsync.Message{SyncID: 5, Conns: []connsync.Conn{goldenV4Conn}}, goldenV4},
		{"options", connsync.Message{SyncID: 7, Conns: goldenOptsConns}, goldenOpts},
		{"empty", connsync.Message{SyncID: 1}, golden("00 01 0008 00 01 0000")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := connsync.Encode(&tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("Encode:\n got %x\nwant %x", got, tc.want)
			}
		})
	}
}

func TestDecodeGolden(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []byte
		version uint8
		syncID  uint8
		conns   []connsync.Conn
	}{
		{"ipv4", goldenV4, 1, 5, []connsync.Conn{goldenV4Conn}},
		{"options", goldenOpts, 1, 7, goldenOptsConns},
		{"v0", goldenV0, 0, 9, goldenV0Conns},
		// A version 1 header with spare != 0 is read as version 0: its
		// first byte (reserved, 0) is nr_conns, so nothing is installed.
		{"spare set is v0", golden("00 03 0008 01 01 0001"), 0, 3, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := connsync.Decode(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if m.Version != tc.version || m.SyncID != tc.syncID || m.Skipped != 0 {
				t.Errorf("version %d syncid %d skipped %d, want %d %d 0", m.Version, m.SyncID, m.Skipped, tc.version, tc.syncID)
			}
			if !connsEqual(m.Conns, tc.conns) {
				t.Errorf("conns:\n got %+v\nwant %+v", m.Conns, tc.conns)
			}
		})
	}
}

func connsEqual(a, b []connsync.Conn) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !reflect.DeepEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

func TestDecodeErrors(t *testing.T) {
	v4 := func(mod func(b []byte) []byte) []byte { return mod(bytes.Clone(goldenV4)) }
	setSize := func(b []byte) []byte { b[2], b[3] = byte(len(b)>>8), byte(len(b)); return b }
	for _, tc := range []struct {
		name    string
		in      []byte
		wantErr bool
		conns   int
		skipped int
	}{
		{"short", golden("00 01 00"), true, 0, 0},
		{"size mismatch", v4(func(b []byte) []byte { return b[:40] }), true, 0, 0},
		{"size field lies", v4(func(b []byte) []byte { b[3] = 0x2d; return b }), true, 0, 0},
		{"entry runs past", v4(func(b []byte) []byte { b[11] = 0x28; return b }), true, 0, 0},
		{"entry shorter than fixed part", v4(func(b []byte) []byte { b[11] = 0x20; return b }), true, 0, 0},
		{"entry version 1", v4(func(b []byte) []byte { b[10] = 0x10; return b }), true, 0, 0},
		{"unknown type", v4(func(b []byte) []byte { b[8] = 0x02; return b }), true, 0, 0},
		{"more conns than bytes", v4(func(b []byte) []byte { b[4] = 2; return b }), true, 1, 0},
		{"unknown mandatory option skips the entry", v4(func(b []byte) []byte {
			b = append(b, 0x05, 0x02, 0xaa, 0xbb)
			b[11] += 4
			return setSize(b)
		}), false, 0, 1},
		{"unknown optional option is ignored", v4(func(b []byte) []byte {
			b = append(b, 0x45, 0x02, 0xaa, 0xbb) // 0x40: IPVS_OPT_F_PARAM
			b[11] += 4
			return setSize(b)
		}), false, 1, 0},
		{"zero-length option", v4(func(b []byte) []byte {
			b = append(b, 0x45, 0x00)
			b[11] += 2
			return setSize(b)
		}), true, 0, 0},
		{"option header cut", v4(func(b []byte) []byte {
			b = append(b, 0x45)
			b[11]++
			return setSize(b)
		}), true, 0, 0},
		{"sequence option of wrong length", v4(func(b []byte) []byte {
			b = append(b, 0x01, 0x04, 1, 2, 3, 4)
			b[11] += 6
			return setSize(b)
		}), true, 0, 0},
		{"PE data twice", v4(func(b []byte) []byte {
			b = append(b, 0x02, 0x01, 'x', 0x02, 0x01, 'y')
			b[11] += 6
			return setSize(b)
		}), true, 0, 0},
		{"PE name too long", v4(func(b []byte) []byte {
			b = append(b, 0x02, 0x01, 'x', 0x03, 17)
			b = append(b, bytes.Repeat([]byte{'n'}, 17)...)
			b[11] += 3 + 2 + 17
			return setSize(b)
		}), true, 0, 0},
		{"v0 entry cut", golden("01 00 0010 000600500050 0a000003 c0a8"), true, 0, 0},
		{"v0 options cut", golden("01 00 001c 00 06 9c42 0015 0015 0a000004 c0a8016e c0a8010c 0600 0005"), true, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := connsync.Decode(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, connsync.ErrMalformed) {
				t.Errorf("err %v does not wrap ErrMalformed", err)
			}
			var n, skipped int
			if m != nil {
				n, skipped = len(m.Conns), m.Skipped
			}
			if n != tc.conns || skipped != tc.skipped {
				t.Errorf("%d conns %d skipped, want %d %d", n, skipped, tc.conns, tc.skipped)
			}
		})
	}
}

func TestEncodeRejects(t *testing.T) {
	ok := goldenV4Conn
	for _, tc := range []struct {
		name string
		mod  func(c *connsync.Conn)
	}{
		{"mixed families", func(c *connsync.Conn) { c.Dest = ap("[2001:db8::1]:80") }},
		{"no address", func(c *connsync.Conn) { c.Virtual = netip.AddrPort{} }},
		{"sub-second timeout", func(c *connsync.Conn) { c.Timeout = 1500 * time.Millisecond }},
		{"negative timeout", func(c *connsync.Conn) { c.Timeout = -time.Second }},
		{"PE data too long", func(c *connsync.Conn) { c.PEData = make([]byte, 256) }},
		{"PE name too long", func(c *connsync.Conn) { c.PEData, c.PEName = []byte("x"), strings.Repeat("n", 17) }},
		{"PE name alone", func(c *connsync.Conn) { c.PEName = "sip" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			if _, err := connsync.Encode(&connsync.Message{Conns: []connsync.Conn{c}}); !errors.Is(err, connsync.ErrInvalidConn) {
				t.Errorf("err = %v, want ErrInvalidConn", err)
			}
		})
	}
	many := make([]connsync.Conn, 256)
	for i := range many {
		many[i] = ok
	}
	if _, err := connsync.Encode(&connsync.Message{Conns: many}); !errors.Is(err, connsync.ErrTooLong) {
		t.Errorf("256 conns: err = %v, want ErrTooLong", err)
	}
}

// randConn returns a random valid Conn.
func randConn(r *rand.Rand) connsync.Conn {
	addr := func(v6 bool) netip.Addr {
		if v6 {
			var a [16]byte
			for i := range a {
				a[i] = byte(r.Uint32())
			}
			return netip.AddrFrom16(a)
		}
		return netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
	}
	v6 := r.IntN(2) == 0
	port := func() uint16 { return uint16(r.Uint32()) }
	c := connsync.Conn{
		Proto:   ipvs.Protocol(r.Uint32()),
		Flags:   connsync.Flags(r.Uint32()) &^ connsync.FlagHashed,
		State:   uint16(r.Uint32()),
		Client:  netip.AddrPortFrom(addr(v6), port()),
		Virtual: netip.AddrPortFrom(addr(v6), port()),
		Dest:    netip.AddrPortFrom(addr(v6), port()),
		FWMark:  r.Uint32(),
		Timeout: time.Duration(r.Uint32()) * time.Second,
	}
	if r.IntN(2) == 0 {
		c.Seq = &connsync.SeqOptions{
			In:  connsync.Seq{InitSeq: r.Uint32(), Delta: r.Uint32(), PreviousDelta: r.Uint32()},
			Out: connsync.Seq{InitSeq: r.Uint32(), Delta: r.Uint32(), PreviousDelta: r.Uint32()},
		}
	}
	if r.IntN(2) == 0 {
		c.PEData = make([]byte, 1+r.IntN(connsync.PEDataMaxLen))
		for i := range c.PEData {
			c.PEData[i] = byte(r.Uint32())
		}
		if r.IntN(2) == 0 {
			c.PEName = strings.Repeat("p", 1+r.IntN(connsync.PENameMaxLen))
		}
	}
	return c
}

func TestEncodeDecodeRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		m := connsync.Message{Version: 1, SyncID: uint8(r.Uint32())}
		for range r.IntN(40) {
			m.Conns = append(m.Conns, randConn(r))
		}
		b, err := connsync.Encode(&m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := connsync.Decode(b)
		if err != nil {
			t.Fatalf("decode %x: %v", b, err)
		}
		if got.Version != 1 || got.SyncID != m.SyncID || !connsEqual(got.Conns, m.Conns) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
		}
	}
}

func TestBuilderSplitsAtMaxLen(t *testing.T) {
	// 1472 bytes (1500 less IP and UDP headers): the header and 40
	// IPv4 entries of 36 bytes fit (8+40*36 = 1448), the 41st does not.
	b := connsync.NewBuilder(3, 1472)
	c := goldenV4Conn
	var msgs [][]byte
	for range 100 {
		if !b.Fits(&c) {
			msgs = append(msgs, b.Take())
		}
		if err := b.Add(&c); err != nil {
			t.Fatal(err)
		}
	}
	msgs = append(msgs, b.Take())
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want 3", len(msgs))
	}
	for i, want := range []int{40, 40, 20} {
		m, err := connsync.Decode(msgs[i])
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Conns) != want || m.SyncID != 3 || len(msgs[i]) > 1472 {
			t.Errorf("message %d: %d conns, %d bytes, syncid %d; want %d conns", i, len(m.Conns), len(msgs[i]), m.SyncID, want)
		}
	}
	if b.Take() != nil {
		t.Error("Take on an empty builder returned a message")
	}

	// An entry larger than the limit gets a message of its own.
	big := goldenV4Conn
	big.PEData, big.PEName = make([]byte, 200), "sip"
	b = connsync.NewBuilder(0, 100)
	for range 2 {
		if !b.Fits(&big) {
			msgs = append(msgs[:0], b.Take())
		}
		if err := b.Add(&big); err != nil {
			t.Fatal(err)
		}
	}
	if len(msgs) != 1 || b.Len() != 1 {
		t.Errorf("oversized entries: %d taken, %d pending; want one each", len(msgs), b.Len())
	}

	// nr_conns is a byte: 255 entries close a message whatever maxLen.
	b = connsync.NewBuilder(0, 65507)
	n := 0
	for !(b.Len() > 0 && !b.Fits(&c)) {
		_ = b.Add(&c)
		n++
	}
	if n != connsync.MaxConns {
		t.Errorf("message closed after %d entries, want %d", n, connsync.MaxConns)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(goldenV4)
	f.Add(goldenOpts)
	f.Add(goldenV0)
	f.Add(golden("00 01 0008 00 01 0000"))
	f.Add(golden("00 03 0008 01 01 0001"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := connsync.Decode(b)
		if m == nil {
			if err == nil {
				t.Fatal("nil message without error")
			}
			return
		}
		// Whatever Decode returns is valid and survives a round trip.
		enc, err := connsync.Encode(&connsync.Message{SyncID: m.SyncID, Conns: m.Conns})
		if err != nil {
			t.Fatalf("re-encode %+v: %v", m.Conns, err)
		}
		got, err := connsync.Decode(enc)
		if err != nil {
			t.Fatalf("decode re-encoded %x: %v", enc, err)
		}
		if got.SyncID != m.SyncID || got.Skipped != 0 || !connsEqual(got.Conns, m.Conns) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got.Conns, m.Conns)
		}
	})
}
