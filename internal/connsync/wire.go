package connsync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/govs/govs/internal/ipvs"
)

// Protocol constants of ip_vs_sync.c.
const (
	// ProtoVersion is the sync protocol version govs sends (SYNC_PROTO_VER).
	ProtoVersion = 1

	// HeaderLen is the length of a version 1 message header.
	HeaderLen = 8
	// HeaderLenV0 is the length of a version 0 message header.
	HeaderLenV0 = 4
	// ConnLenV4 and ConnLenV6 are the fixed parts of a version 1
	// connection entry (struct ip_vs_sync_v4, ip_vs_sync_v6).
	ConnLenV4 = 36
	ConnLenV6 = 72
	// ConnLenV0 is a version 0 entry without options
	// (SIMPLE_CONN_SIZE); SeqOptLen the sequence options that follow it
	// when the entry's flags carry IP_VS_CONN_F_SEQ_MASK.
	ConnLenV0 = 24
	SeqOptLen = 24

	// PEDataMaxLen and PENameMaxLen bound the persistence engine options
	// (IP_VS_PEDATA_MAXLEN, IP_VS_PENAME_MAXLEN).
	PEDataMaxLen = 255
	PENameMaxLen = 16

	// MaxConns is the most entries one message can count: nr_conns is a
	// byte.
	MaxConns = 255
	// MaxMessageLen is the largest message the 16-bit size field allows.
	MaxMessageLen = 65535
)

// Entry type bits and option types.
const (
	typeInet6 = 1 << 0 // STYPE_F_INET6

	verShift = 12     // SVER_SHIFT
	sizeMask = 0x0fff // SVER_MASK

	optSeqData = 1  // IPVS_OPT_SEQ_DATA
	optPEData  = 2  // IPVS_OPT_PE_DATA
	optPEName  = 3  // IPVS_OPT_PE_NAME
	optParam   = 64 // IPVS_OPT_F_PARAM: the option may be ignored
)

// Flags are a connection's IP_VS_CONN_F_* bits as the sync protocol carries
// them (32 bits in version 1, the low 16 in version 0).
type Flags uint32

// Connection flags, with the kernel's values (include/uapi/linux/ip_vs.h).
const (
	FlagFwdMask   Flags = 0x0007 // forwarding method, see [Flags.Fwd]
	FlagMasq      Flags = 0x0000
	FlagLocalNode Flags = 0x0001
	FlagTunnel    Flags = 0x0002
	FlagDRoute    Flags = 0x0003
	FlagBypass    Flags = 0x0004
	FlagSync      Flags = 0x0020 // entry created by sync
	FlagHashed    Flags = 0x0040 // hashed entry; never sent
	FlagNoOutput  Flags = 0x0080 // no output packets seen
	FlagInactive  Flags = 0x0100 // not established
	FlagOutSeq    Flags = 0x0200 // must do output seq adjust
	FlagInSeq     Flags = 0x0400 // must do input seq adjust
	FlagSeqMask   Flags = 0x0600
	FlagNoCport   Flags = 0x0800 // no client port set yet
	FlagTemplate  Flags = 0x1000 // persistence template
	FlagOnePacket Flags = 0x2000 // forward only one packet

	// FlagBackupMask are the bits a backup accepts from a version 1
	// entry (IP_VS_CONN_F_BACKUP_MASK).
	FlagBackupMask = FlagFwdMask | FlagNoOutput | FlagInactive | FlagSeqMask | FlagNoCport | FlagTemplate
	// FlagBackupUpdMask are the bits a sync message may change on an
	// entry the backup already has (IP_VS_CONN_F_BACKUP_UPD_MASK).
	FlagBackupUpdMask = FlagInactive | FlagSeqMask
)

// Fwd returns the forwarding method in f. Bypass (4) has no ipvs
// equivalent and is reported as false.
func (f Flags) Fwd() (ipvs.FwdMethod, bool) {
	m := f & FlagFwdMask
	if m > FlagDRoute {
		return 0, false
	}
	return ipvs.FwdMethod(m), true
}

// FwdFlags returns the flag bits of forwarding method m.
func FwdFlags(m ipvs.FwdMethod) Flags { return Flags(m) & FlagFwdMask }

// Seq is a TCP sequence adjustment (struct ip_vs_seq), used by
// application helpers that change payload lengths (ip_vs_ftp).
type Seq struct {
	InitSeq       uint32 // add delta from this seq on
	Delta         uint32 // delta in sequence numbers
	PreviousDelta uint32 // delta in sequence numbers before the last resized packet
}

// SeqOptions are the two sequence adjustments an entry can carry.
type SeqOptions struct {
	In, Out Seq
}

// Conn is one connection or persistence template as the sync protocol
// carries it (one struct ip_vs_sync_v4 or ip_vs_sync_v6 with its options).
//
// The address family is the client address's: all three addresses are
// IPv4 (an IPv4 entry) or all IPv6 (an IPv6 entry). For a template of a
// firewall-mark service the protocol is 0 (IPPROTO_IP) and Virtual's
// address holds the mark in its first four bytes, as the kernel keys it.
type Conn struct {
	Proto ipvs.Protocol
	// Flags are the IP_VS_CONN_F_* bits, sent as they are (the master
	// clears FlagHashed, as the kernel does).
	Flags Flags
	// State is the protocol state (conn.State values for TCP); a
	// template's is IP_VS_CTPL_S_* (0 or 1).
	State   uint16
	Client  netip.AddrPort
	Virtual netip.AddrPort
	Dest    netip.AddrPort
	FWMark  uint32
	// Timeout is the entry's current timeout, carried in whole seconds; 0
	// means "not given" (always so in version 0), and the backup then uses
	// the state's default.
	Timeout time.Duration
	// Seq are the sequence options; nil when not sent.
	Seq *SeqOptions
	// PEData and PEName are the persistence engine's data (the SIP
	// Call-ID for --pe sip) and its name.
	PEData []byte
	PEName string
}

// IsTemplate reports whether c is a persistence template.
func (c *Conn) IsTemplate() bool { return c.Flags&FlagTemplate != 0 }

// Is6 reports whether c is an IPv6 entry.
func (c *Conn) Is6() bool { return !c.Client.Addr().Is4() }

// Message is one sync datagram: a header and its entries.
type Message struct {
	// Version is 1, or 0 for a legacy message (decoding only).
	Version uint8
	SyncID  uint8
	Conns   []Conn
	// Skipped counts entries Decode left out because they carry an
	// option it does not know that is marked mandatory, as the kernel
	// drops them. Encode ignores it.
	Skipped int
}

// Errors of Encode and Decode. Decode's errors wrap ErrMalformed.
var (
	// ErrMalformed: the bytes are not a sync message the kernel accepts.
	ErrMalformed = errors.New("malformed sync message")
	// ErrTooLong: an entry or message exceeds the protocol's limits.
	ErrTooLong = errors.New("sync message too long")
	// ErrInvalidConn: a Conn that cannot be encoded.
	ErrInvalidConn = errors.New("invalid sync connection")
)

// EncodedLen returns the length of c's version 1 entry without
// alignment padding (the entry's size field).
func EncodedLen(c *Conn) int {
	n := ConnLenV4
	if c.Is6() {
		n = ConnLenV6
	}
	if c.Seq != nil {
		n += 2 + SeqOptLen
	}
	if len(c.PEData) > 0 {
		n += 2 + len(c.PEData)
		if c.PEName != "" {
			n += 2 + len(c.PEName)
		}
	}
	return n
}

// Check reports why c cannot be encoded, or nil.
func (c *Conn) Check() error {
	ca, va, da := c.Client.Addr(), c.Virtual.Addr(), c.Dest.Addr()
	if !ca.IsValid() || !va.IsValid() || !da.IsValid() {
		return fmt.Errorf("%w: client, virtual and destination addresses are required", ErrInvalidConn)
	}
	if ca.Is4() != va.Is4() || ca.Is4() != da.Is4() {
		return fmt.Errorf("%w: addresses %s, %s, %s mix IPv4 and IPv6", ErrInvalidConn, ca, va, da)
	}
	if ca.Zone() != "" || va.Zone() != "" || da.Zone() != "" {
		return fmt.Errorf("%w: addresses cannot carry a zone", ErrInvalidConn)
	}
	if c.Timeout < 0 || c.Timeout%time.Second != 0 || c.Timeout/time.Second > 1<<32-1 {
		return fmt.Errorf("%w: timeout %v is not whole seconds in 0..%d", ErrInvalidConn, c.Timeout, uint32(1<<32-1))
	}
	if len(c.PEData) > PEDataMaxLen {
		return fmt.Errorf("%w: %d bytes of PE data, at most %d", ErrInvalidConn, len(c.PEData), PEDataMaxLen)
	}
	if len(c.PEName) > PENameMaxLen {
		return fmt.Errorf("%w: PE name %q longer than %d bytes", ErrInvalidConn, c.PEName, PENameMaxLen)
	}
	if c.PEName != "" && len(c.PEData) == 0 {
		return fmt.Errorf("%w: PE name %q without PE data is not sent", ErrInvalidConn, c.PEName)
	}
	if EncodedLen(c) > sizeMask {
		return fmt.Errorf("%w: entry of %d bytes", ErrTooLong, EncodedLen(c))
	}
	return nil
}

// AppendConn appends c's version 1 entry to b, without padding, laid out
// as ip_vs_sync_conn writes it: the fixed part in network order, then the
// sequence option if c.Seq is set, then PE data and, if there is data,
// the PE name.
func AppendConn(b []byte, c *Conn) ([]byte, error) {
	if err := c.Check(); err != nil {
		return b, err
	}
	size := EncodedLen(c)
	var typ byte
	if c.Is6() {
		typ = typeInet6
	}
	b = append(b, typ, byte(c.Proto))
	b = binary.BigEndian.AppendUint16(b, uint16(size)&sizeMask) // entry version 0 in the top 4 bits
	b = binary.BigEndian.AppendUint32(b, uint32(c.Flags))
	b = binary.BigEndian.AppendUint16(b, c.State)
	b = binary.BigEndian.AppendUint16(b, c.Client.Port())
	b = binary.BigEndian.AppendUint16(b, c.Virtual.Port())
	b = binary.BigEndian.AppendUint16(b, c.Dest.Port())
	b = binary.BigEndian.AppendUint32(b, c.FWMark)
	b = binary.BigEndian.AppendUint32(b, uint32(c.Timeout/time.Second))
	b = appendAddr(b, c.Client.Addr())
	b = appendAddr(b, c.Virtual.Addr())
	b = appendAddr(b, c.Dest.Addr())
	if c.Seq != nil {
		b = append(b, optSeqData, SeqOptLen)
		b = appendSeq(b, c.Seq.In)
		b = appendSeq(b, c.Seq.Out)
	}
	if len(c.PEData) > 0 {
		b = append(b, optPEData, byte(len(c.PEData)))
		b = append(b, c.PEData...)
		if c.PEName != "" {
			b = append(b, optPEName, byte(len(c.PEName)))
			b = append(b, c.PEName...)
		}
	}
	return b, nil
}

func appendAddr(b []byte, a netip.Addr) []byte {
	if a.Is4() {
		v := a.As4()
		return append(b, v[:]...)
	}
	v := a.As16()
	return append(b, v[:]...)
}

func appendSeq(b []byte, s Seq) []byte {
	b = binary.BigEndian.AppendUint32(b, s.InitSeq)
	b = binary.BigEndian.AppendUint32(b, s.Delta)
	return binary.BigEndian.AppendUint32(b, s.PreviousDelta)
}

// pad returns the zero bytes the kernel puts before an entry that would
// start at offset off, so that every entry starts 32-bit aligned.
func pad(off int) int { return (4 - off) & 3 }

// Encode returns m as a version 1 datagram: the header (reserved 0,
// syncid, size, nr_conns, version 1, spare 0) and the entries, each after
// the padding that aligns it to 32 bits. m.Version is ignored; govs sends
// only version 1.
func Encode(m *Message) ([]byte, error) {
	if len(m.Conns) > MaxConns {
		return nil, fmt.Errorf("%w: %d entries, at most %d", ErrTooLong, len(m.Conns), MaxConns)
	}
	b := appendHeader(make([]byte, 0, 512), m.SyncID)
	for i := range m.Conns {
		for range pad(len(b)) {
			b = append(b, 0)
		}
		var err error
		if b, err = AppendConn(b, &m.Conns[i]); err != nil {
			return nil, fmt.Errorf("encode entry %d: %w", i, err)
		}
	}
	if len(b) > MaxMessageLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLong, len(b))
	}
	setHeader(b, len(m.Conns))
	return b, nil
}

func appendHeader(b []byte, syncID uint8) []byte {
	return append(b,
		0,      // reserved: must be 0 (a version 0 receiver reads it as nr_conns)
		syncID, // syncid
		0, 0,   // size, set by setHeader
		0,            // nr_conns, set by setHeader
		ProtoVersion, // version
		0, 0,         // spare
	)
}

func setHeader(b []byte, n int) {
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	b[4] = byte(n)
}

// Decode parses one datagram as the kernel's backup does
// (ip_vs_process_message). A message whose header says version 1 with the
// reserved and spare fields zero is version 1; anything else is taken as
// version 0.
//
// Decode checks the wire format only: the header's size must equal
// len(b), each entry must lie inside the message and have entry version
// 0, and its options must be well formed (a sequence option of 24 bytes,
// PE data of at most 255 and a PE name of at most 16 bytes, none twice).
// An entry with an unknown option that is not marked optional is left out
// and counted in Skipped, as the kernel skips it. At the first malformed
// entry Decode stops and returns the entries before it together with an
// error: the kernel has installed those by then. Semantic checks
// (protocol, state, syncid) are the backup's.
func Decode(b []byte) (*Message, error) {
	if len(b) < HeaderLenV0 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than a header", ErrMalformed, len(b))
	}
	if size := int(binary.BigEndian.Uint16(b[2:4])); size != len(b) {
		return nil, fmt.Errorf("%w: header size %d but %d bytes received", ErrMalformed, size, len(b))
	}
	if len(b) >= HeaderLen && b[0] == 0 && b[5] == ProtoVersion && b[6] == 0 && b[7] == 0 {
		return decodeV1(b)
	}
	return decodeV0(b)
}

func decodeV1(b []byte) (*Message, error) {
	m := &Message{Version: 1, SyncID: b[1]}
	n := int(b[4])
	if n > 0 {
		m.Conns = make([]Conn, 0, n)
	}
	off := HeaderLen
	for i := range n {
		if off+ConnLenV4 > len(b) {
			return m, fmt.Errorf("%w: entry %d at offset %d: message too small", ErrMalformed, i, off)
		}
		vs := binary.BigEndian.Uint16(b[off+2:])
		size := int(vs & sizeMask)
		if off+size > len(b) {
			return m, fmt.Errorf("%w: entry %d at offset %d: size %d runs past the message", ErrMalformed, i, off, size)
		}
		if v := vs >> verShift; v != 0 {
			return m, fmt.Errorf("%w: entry %d: unknown entry version %d", ErrMalformed, i, v)
		}
		c, skip, err := decodeConn(b[off : off+size])
		if err != nil {
			return m, fmt.Errorf("%w: entry %d at offset %d: %w", ErrMalformed, i, off, err)
		}
		if skip {
			m.Skipped++
		} else {
			m.Conns = append(m.Conns, c)
		}
		off += (size + 3) &^ 3
	}
	return m, nil
}

// decodeConn parses one version 1 entry that is exactly e. skip reports
// an entry the kernel leaves out (an unknown mandatory option).
func decodeConn(e []byte) (c Conn, skip bool, err error) {
	if len(e) < ConnLenV4 {
		return c, false, fmt.Errorf("size %d is shorter than the fixed part %d", len(e), ConnLenV4)
	}
	fixed := ConnLenV4
	switch {
	case e[0]&typeInet6 != 0:
		fixed = ConnLenV6
	case e[0] != 0:
		return c, false, fmt.Errorf("unknown entry type %#x", e[0])
	}
	if len(e) < fixed {
		return c, false, fmt.Errorf("size %d is shorter than the fixed part %d", len(e), fixed)
	}
	c.Proto = ipvs.Protocol(e[1])
	c.Flags = Flags(binary.BigEndian.Uint32(e[4:]))
	c.State = binary.BigEndian.Uint16(e[8:])
	cport := binary.BigEndian.Uint16(e[10:])
	vport := binary.BigEndian.Uint16(e[12:])
	dport := binary.BigEndian.Uint16(e[14:])
	c.FWMark = binary.BigEndian.Uint32(e[16:])
	c.Timeout = time.Duration(binary.BigEndian.Uint32(e[20:])) * time.Second
	var ca, va, da netip.Addr
	if fixed == ConnLenV6 {
		ca = netip.AddrFrom16([16]byte(e[24:40]))
		va = netip.AddrFrom16([16]byte(e[40:56]))
		da = netip.AddrFrom16([16]byte(e[56:72]))
	} else {
		ca = netip.AddrFrom4([4]byte(e[24:28]))
		va = netip.AddrFrom4([4]byte(e[28:32]))
		da = netip.AddrFrom4([4]byte(e[32:36]))
	}
	c.Client = netip.AddrPortFrom(ca, cport)
	c.Virtual = netip.AddrPortFrom(va, vport)
	c.Dest = netip.AddrPortFrom(da, dport)

	var seen uint8
	p := fixed
	for p < len(e) {
		if p+2 > len(e) {
			return c, false, errors.New("truncated option header")
		}
		typ, n := e[p], int(e[p+1])
		p += 2
		if n == 0 || p+n > len(e) {
			return c, false, fmt.Errorf("option %d of length %d does not fit", typ, n)
		}
		data := e[p : p+n]
		p += n
		kind := typ &^ optParam
		if kind == optSeqData || kind == optPEData || kind == optPEName {
			if seen&(1<<kind) != 0 {
				return c, false, fmt.Errorf("option %d found twice", kind)
			}
			seen |= 1 << kind
		}
		switch kind {
		case optSeqData:
			if n != SeqOptLen {
				return c, false, fmt.Errorf("sequence option of %d bytes, want %d", n, SeqOptLen)
			}
			c.Seq = &SeqOptions{In: seqAt(data[0:12]), Out: seqAt(data[12:24])}
		case optPEData:
			c.PEData = append([]byte(nil), data...)
		case optPEName:
			if n > PENameMaxLen {
				return c, false, fmt.Errorf("PE name of %d bytes, at most %d", n, PENameMaxLen)
			}
			c.PEName = string(data)
		default:
			if typ&optParam == 0 {
				skip = true // unknown mandatory option: the kernel drops this entry
			}
		}
	}
	if len(c.PEData) == 0 {
		// The kernel looks at the name only together with data.
		c.PEName = ""
	}
	return c, skip, nil
}

func seqAt(b []byte) Seq {
	return Seq{
		InitSeq:       binary.BigEndian.Uint32(b[0:]),
		Delta:         binary.BigEndian.Uint32(b[4:]),
		PreviousDelta: binary.BigEndian.Uint32(b[8:]),
	}
}

// decodeV0 parses a legacy message (ip_vs_process_message_v0): a 4-byte
// header (nr_conns, syncid, size) and IPv4 entries of 24 bytes (reserved,
// protocol, cport, vport, dport, caddr, vaddr, daddr, 16-bit flags,
// state), each followed by 24 bytes of sequence options when its flags
// have IP_VS_CONN_F_SEQ_MASK. A version 0 entry has no timeout and no
// firewall mark.
//
// The version 0 sequence options are the sender's struct ip_vs_seq copied
// in its host byte order; Decode reads them as little-endian, the order of
// the x86 and arm64 machines that send them.
func decodeV0(b []byte) (*Message, error) {
	m := &Message{Version: 0, SyncID: b[1]}
	n := int(b[0])
	if n > 0 {
		m.Conns = make([]Conn, 0, n)
	}
	off := HeaderLenV0
	for i := range n {
		if off+ConnLenV0 > len(b) {
			return m, fmt.Errorf("%w: version 0 entry %d at offset %d: message too small", ErrMalformed, i, off)
		}
		e := b[off : off+ConnLenV0]
		c := Conn{
			Proto:   ipvs.Protocol(e[1]),
			Client:  netip.AddrPortFrom(netip.AddrFrom4([4]byte(e[8:12])), binary.BigEndian.Uint16(e[2:])),
			Virtual: netip.AddrPortFrom(netip.AddrFrom4([4]byte(e[12:16])), binary.BigEndian.Uint16(e[4:])),
			Dest:    netip.AddrPortFrom(netip.AddrFrom4([4]byte(e[16:20])), binary.BigEndian.Uint16(e[6:])),
			Flags:   Flags(binary.BigEndian.Uint16(e[20:])),
			State:   binary.BigEndian.Uint16(e[22:]),
		}
		off += ConnLenV0
		if c.Flags&FlagSeqMask != 0 {
			if off+SeqOptLen > len(b) {
				return m, fmt.Errorf("%w: version 0 entry %d: sequence options run past the message", ErrMalformed, i)
			}
			o := b[off : off+SeqOptLen]
			le := binary.LittleEndian
			c.Seq = &SeqOptions{
				In:  Seq{InitSeq: le.Uint32(o[0:]), Delta: le.Uint32(o[4:]), PreviousDelta: le.Uint32(o[8:])},
				Out: Seq{InitSeq: le.Uint32(o[12:]), Delta: le.Uint32(o[16:]), PreviousDelta: le.Uint32(o[20:])},
			}
			off += SeqOptLen
		}
		m.Conns = append(m.Conns, c)
	}
	return m, nil
}

// Builder accumulates entries into version 1 messages of at most a
// maximum length, as the kernel fills its sync buffers: an entry that
// does not fit (with its alignment padding) closes the message, and an
// entry larger than the maximum gets a message of its own.
//
// Builder also closes a message at 255 entries, which the kernel does not
// check (its byte counter would wrap with a sync_maxlen above about 9 KB).
type Builder struct {
	syncID uint8
	maxLen int
	buf    []byte
	n      int
}

// NewBuilder returns a Builder for messages of syncID of at most maxLen
// bytes (the effective sync_maxlen, see [Config.MaxLen]).
func NewBuilder(syncID uint8, maxLen int) *Builder {
	return &Builder{syncID: syncID, maxLen: maxLen}
}

// Fits reports whether c can be added to the current message without
// closing it.
func (b *Builder) Fits(c *Conn) bool {
	if b.n == 0 {
		return true
	}
	return b.n < MaxConns && len(b.buf)+pad(len(b.buf))+EncodedLen(c) <= b.maxLen
}

// Add appends c to the current message, starting one if there is none.
// The caller checks Fits first and takes the message with Take if not.
func (b *Builder) Add(c *Conn) error {
	if err := c.Check(); err != nil {
		return err
	}
	if b.n == 0 {
		b.buf = appendHeader(make([]byte, 0, max(b.maxLen, HeaderLen+EncodedLen(c))), b.syncID)
	} else {
		for range pad(len(b.buf)) {
			b.buf = append(b.buf, 0)
		}
	}
	b.buf, _ = AppendConn(b.buf, c)
	b.n++
	setHeader(b.buf, b.n)
	return nil
}

// Len returns the number of entries in the current message.
func (b *Builder) Len() int { return b.n }

// Take returns the current message and starts afresh; nil if it has no
// entries.
func (b *Builder) Take() []byte {
	if b.n == 0 {
		return nil
	}
	m := b.buf
	b.buf, b.n = nil, 0
	return m
}
