package conn

import (
	"net/netip"
	"time"

	"github.com/govs/govs/internal/ipvs"
)

// Flags are a connection entry's kernel flags that the engine reads.
type Flags uint16

// Entry flags, named after the kernel's IP_VS_CONN_F_*.
const (
	// FlagTemplate: the entry is a persistence template.
	FlagTemplate Flags = 1 << iota
	// FlagNoOutput: the director has seen no server-to-client packet of
	// this connection, so its state moves by the input-only table. Set
	// for every new connection that is not NAT; a NAT connection has it
	// clear from the start (the kernel's IP_VS_CONN_F_NOOUTPUT rule).
	FlagNoOutput
	// FlagInactive: the connection is counted in its destination's
	// InactConns rather than ActiveConns.
	FlagInactive
	// FlagOnePacket: one-packet scheduling (the entry does not outlive
	// its packet).
	FlagOnePacket
)

// Entry is one connection or persistence template in a Table. Its
// exported fields belong to the caller, who may change them while it holds
// the entry (the Table reads Timeout when the entry is touched); the rest
// is the table's.
//
// An *Entry stays valid until it expires or is removed; the caller must
// not keep it past that (the table reuses the memory).
type Entry struct {
	// The first cache line holds what a lookup reads: the key, the hash,
	// the chain link and the deadline.
	key  Key
	in   chain // the in-direction index
	self int32
	// expires is the deadline in nanoseconds from the table's epoch.
	expires int64

	// Timeout is the entry's current timeout: the timer is re-armed with
	// it on every Touch.
	Timeout time.Duration
	// Dest is the caller's handle for the destination (the engine's
	// destination id); the table does not interpret it.
	Dest uint32
	// FWMark is the firewall mark of the service the entry belongs to
	// (0 for address services).
	FWMark uint32
	// Fwd is the forwarding method, fixed when the connection was
	// created (editing the destination changes only new connections).
	Fwd ipvs.FwdMethod
	// State is the protocol state.
	State State
	// Flags are the kernel flags above.
	Flags Flags
	dport uint16
	// tflags are the table's own bits (live, hashed).
	tflags uint8
	daddr  [16]byte
	// InPkts and OutPkts count the entry's packets in each direction.
	InPkts  uint64
	OutPkts uint64

	// slot is the absolute wheel slot the entry is queued in; wNext and
	// wPrev link the slot's list (table indices, 0 is nil).
	slot         int64
	wNext, wPrev int32
	// out is the out-direction index (NAT connections only).
	out chain
	// control is the index of the template that controls this entry (0:
	// none); nControl is how many entries this one controls.
	control  int32
	nControl int32
	// released is when the last entry this one controlled went away.
	released int64
	// Pad to three cache lines, so entries in a chunk stay aligned.
	_ [24]byte
}

// chain is an entry's place in one of the table's two hash indexes.
type chain struct {
	h          uint32 // the key's hash
	next, prev int32  // bucket neighbours (table indices, 0 is nil)
}

// The two indexes: by the in-direction key (client -> virtual) and, for
// NAT connections, by the out-direction key (realserver -> client).
const (
	idxIn  = 0
	idxOut = 1
)

// chain returns e's place in index i.
func (e *Entry) chain(i int) *chain {
	if i == idxIn {
		return &e.in
	}
	return &e.out
}

// Table-private entry bits. tInHashed<<i is "linked into index i".
const (
	tLive uint8 = 1 << iota
	tInHashed
	tOutHashed
)

// Key returns the entry's in-direction key (client -> virtual).
func (e *Entry) Key() Key { return e.key }

// Proto returns the entry's protocol (0 for a firewall-mark template).
func (e *Entry) Proto() ipvs.Protocol { return e.key.Proto }

// Client returns the client address and port (for a template, the client
// network and port 0).
func (e *Entry) Client() netip.AddrPort { return e.key.SrcAddrPort() }

// Virtual returns the virtual address and port the client addressed.
func (e *Entry) Virtual() netip.AddrPort { return e.key.DstAddrPort() }

// DestAddrPort returns the realserver address and port.
func (e *Entry) DestAddrPort() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(e.daddr).Unmap(), e.dport)
}

// IsTemplate reports whether e is a persistence template.
func (e *Entry) IsTemplate() bool { return e.Flags&FlagTemplate != 0 }

// Active reports whether the connection counts as active (ESTABLISHED).
func (e *Entry) Active() bool { return e.Flags&(FlagInactive|FlagTemplate) == 0 }

// NControl returns how many entries e controls.
func (e *Entry) NControl() int { return int(e.nControl) }

// Hashed reports whether lookups can find e (a template invalidated by
// Unhash cannot, but lives on until its timer fires).
func (e *Entry) Hashed() bool { return e.tflags&tInHashed != 0 }

// Update moves a TCP connection's state for one segment with flags f in
// direction dir, and sets its timeout for the new state from t. It applies
// the kernel's NOOUTPUT rule: while FlagNoOutput is set, input segments
// use the input-only table; the first output segment clears the flag.
//
// It returns +1 if the connection became active (its destination must move
// one connection from InactConns to ActiveConns), -1 if it became
// inactive, and 0 otherwise; the kernel's INACTIVE-flag accounting in
// set_tcp_state. Update does nothing to templates and, for UDP, only
// refreshes the timeout.
func (e *Entry) Update(dir Dir, f TCPFlags, t *Timeouts) int {
	if e.Flags&FlagTemplate != 0 {
		return 0
	}
	if e.key.Proto != ipvs.ProtoTCP {
		e.State = UDPNormal
		e.Timeout = t.UDP
		return 0
	}
	table := TableInput
	if dir == DirOut {
		table = TableOutput
	}
	if e.Flags&FlagNoOutput != 0 {
		if dir == DirOut {
			e.Flags &^= FlagNoOutput
		} else {
			table = TableInputOnly
		}
	}
	next := NextTCPState(table, e.State, f)
	change := 0
	if next != e.State {
		switch {
		case e.Flags&FlagInactive == 0 && next != TCPEstablished:
			e.Flags |= FlagInactive
			change = -1
		case e.Flags&FlagInactive != 0 && next == TCPEstablished:
			e.Flags &^= FlagInactive
			change = +1
		}
	}
	e.State = next
	e.Timeout = t.For(ipvs.ProtoTCP, next)
	return change
}

// Info returns e as ipvsadm -Lc shows it, with the time left until now.
func (e *Entry) Info(t *Table, now time.Time) Info {
	left := time.Duration(e.expires - t.nanos(now))
	if left < 0 {
		left = 0
	}
	info := Info{
		Proto:    e.key.Proto,
		Template: e.IsTemplate(),
		FWMark:   e.FWMark,
		Client:   e.Client(),
		Virtual:  e.Virtual(),
		Dest:     e.DestAddrPort(),
		State:    StateName(e.key.Proto, e.IsTemplate(), e.State),
		Expires:  left,
		Fwd:      e.Fwd,
		InPkts:   e.InPkts,
		OutPkts:  e.OutPkts,
	}
	if info.Template && e.key.Proto == ipvs.ProtoNone {
		// A firewall-mark template's virtual "address" is the mark.
		info.Virtual = netip.AddrPortFrom(netip.AddrFrom4([4]byte(e.key.Dst[:4])), 0)
	}
	return info
}
