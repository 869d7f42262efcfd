package conn

import (
	"errors"
	"fmt"
	"time"

	"github.com/govs/govs/internal/ipvs"
)

// State is a connection's protocol state, numbered as the kernel numbers
// them (IP_VS_TCP_S_*), so that the eBPF data plane and the sync protocol
// can use the same values. UDP connections and persistence templates have
// a single state, 0.
type State uint8

// TCP states, with the kernel's values.
const (
	TCPNone        State = 0
	TCPEstablished State = 1
	TCPSynSent     State = 2
	TCPSynRecv     State = 3
	TCPFinWait     State = 4
	TCPTimeWait    State = 5
	TCPClose       State = 6
	TCPCloseWait   State = 7
	TCPLastAck     State = 8
	TCPListen      State = 9
	TCPSynAck      State = 10

	// NumTCPStates is the number of TCP states (IP_VS_TCP_S_LAST).
	NumTCPStates = 11
)

// UDPNormal is the only state of a UDP connection (IP_VS_UDP_S_NORMAL).
const UDPNormal State = 0

// tcpStateNames are the names ipvsadm -Lc prints (tcp_state_name_table).
var tcpStateNames = [NumTCPStates]string{
	TCPNone:        "NONE",
	TCPEstablished: "ESTABLISHED",
	TCPSynSent:     "SYN_SENT",
	TCPSynRecv:     "SYN_RECV",
	TCPFinWait:     "FIN_WAIT",
	TCPTimeWait:    "TIME_WAIT",
	TCPClose:       "CLOSE",
	TCPCloseWait:   "CLOSE_WAIT",
	TCPLastAck:     "LAST_ACK",
	TCPListen:      "LISTEN",
	TCPSynAck:      "SYNACK",
}

// TCPString returns s's name as a TCP state ("ESTABLISHED"), or "ERR!" as
// the kernel does for a value out of range.
func (s State) TCPString() string {
	if int(s) < NumTCPStates {
		return tcpStateNames[s]
	}
	return "ERR!"
}

// StateName returns the state column of ipvsadm -Lc for a connection of
// protocol p in state s: the TCP state name, "UDP" for UDP, and "NONE" for
// a persistence template (the kernel's template state table).
func StateName(p ipvs.Protocol, template bool, s State) string {
	switch {
	case template:
		return "NONE"
	case p == ipvs.ProtoTCP:
		return s.TCPString()
	case p == ipvs.ProtoUDP:
		return "UDP"
	}
	return "ERR!"
}

// ErrUnsupportedProtocol is wrapped by the error for a protocol the
// connection table cannot track (SCTP, for now).
var ErrUnsupportedProtocol = errors.New("protocol not supported")

// CheckProtocol reports whether connections of protocol p can be tracked:
// TCP and UDP can; SCTP cannot yet. A firewall-mark service (ProtoNone)
// carries TCP and UDP packets and is accepted. The error wraps both
// ErrUnsupportedProtocol and ipvs.ErrInvalid.
func CheckProtocol(p ipvs.Protocol) error {
	switch p {
	case ipvs.ProtoTCP, ipvs.ProtoUDP, ipvs.ProtoNone:
		return nil
	case ipvs.ProtoSCTP:
		return fmt.Errorf("%w: SCTP services are not supported yet; use a TCP (-t) or UDP (-u) service (%w)",
			ErrUnsupportedProtocol, ipvs.ErrInvalid)
	}
	return fmt.Errorf("%w: %s; use TCP or UDP (%w)", ErrUnsupportedProtocol, p, ipvs.ErrInvalid)
}

// Events of the TCP state tables: the row index, chosen from the flags
// with the kernel's precedence rst > syn > fin > ack (tcp_state_idx).
const (
	evSYN = iota
	evFIN
	evACK
	evRST
	numEvents
)

// tcpEvent returns the table row for flags, or -1 for a segment with none
// of the four flags (the kernel then moves the connection to CLOSE).
func tcpEvent(f TCPFlags) int {
	switch {
	case f&RST != 0:
		return evRST
	case f&SYN != 0:
		return evSYN
	case f&FIN != 0:
		return evFIN
	case f&ACK != 0:
		return evACK
	}
	return -1
}

// Transitions selects one of the kernel's three TCP transition tables.
type Transitions uint8

// The three tables of ip_vs_proto_tcp.c (tcp_states, not the secure_tcp
// "dos" variant).
const (
	// TableInput is for client-to-server packets of a connection whose
	// replies pass the director (NAT).
	TableInput Transitions = iota
	// TableOutput is for server-to-client packets (NAT replies).
	TableOutput
	// TableInputOnly is for client-to-server packets of a connection whose
	// replies bypass the director (DR, TUN, and NAT until a reply is seen).
	TableInputOnly
)

// Short names keep the tables below readable as the kernel's are.
const (
	sNO = TCPNone
	sES = TCPEstablished
	sSS = TCPSynSent
	sSR = TCPSynRecv
	sFW = TCPFinWait
	sTW = TCPTimeWait
	sCL = TCPClose
	sCW = TCPCloseWait
	sLA = TCPLastAck
	sLI = TCPListen
	sSA = TCPSynAck
)

// tcpStates is the kernel's tcp_states table: [table][event][current
// state] -> next state. The columns are in state order:
// sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA.
var tcpStates = [3][numEvents][NumTCPStates]State{
	TableInput: {
		evSYN: {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},
		evFIN: {sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW},
		evACK: {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
		evRST: {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR},
	},
	TableOutput: {
		evSYN: {sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR},
		evFIN: {sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW},
		evACK: {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES},
		evRST: {sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL},
	},
	TableInputOnly: {
		evSYN: {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},
		evFIN: {sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW},
		evACK: {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
		evRST: {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL},
	},
}

// NextTCPState returns the state a TCP connection in state cur moves to on
// a segment with flags f, looked up in table t. A segment with none of
// SYN, FIN, ACK, RST moves the connection to CLOSE, as in the kernel.
func NextTCPState(t Transitions, cur State, f TCPFlags) State {
	ev := tcpEvent(f)
	if ev < 0 || int(cur) >= NumTCPStates || t > TableInputOnly {
		return TCPClose
	}
	return tcpStates[t][ev][cur]
}

// Default per-state TCP timeouts (tcp_timeouts in ip_vs_proto_tcp.c).
// ESTABLISHED and FIN_WAIT are the ones ipvsadm --set changes.
var defaultTCPTimeouts = [NumTCPStates]time.Duration{
	TCPNone:        2 * time.Second,
	TCPEstablished: 15 * time.Minute,
	TCPSynSent:     2 * time.Minute,
	TCPSynRecv:     1 * time.Minute,
	TCPFinWait:     2 * time.Minute,
	TCPTimeWait:    2 * time.Minute,
	TCPClose:       10 * time.Second,
	TCPCloseWait:   60 * time.Second,
	TCPLastAck:     30 * time.Second,
	TCPListen:      2 * time.Minute,
	TCPSynAck:      2 * time.Minute,
}

// DefaultTCPTimeout returns the kernel's default timeout of TCP state s.
func DefaultTCPTimeout(s State) time.Duration {
	if int(s) < NumTCPStates {
		return defaultTCPTimeouts[s]
	}
	return defaultTCPTimeouts[TCPNone]
}

// InitialTimeout is the timeout of a connection entry between its creation
// and its first state transition (ip_vs_conn_new sets 3 s).
const InitialTimeout = 3 * time.Second

// DeferredExpiry is how long an entry that still controls other entries
// (a persistence template with live connections) is kept when its timer
// fires: the kernel re-arms it with 60 s (ip_vs_conn_expire).
const DeferredExpiry = 60 * time.Second

// MaxTimeout bounds a timeout set with --set (the kernel keeps timeouts in
// jiffies in an int; ipvsadm accepts values up to that).
const MaxTimeout = time.Duration(1<<31-1) * time.Millisecond

// Filled returns t with every zero field taken from DefaultTimeouts.
func (t Timeouts) Filled() Timeouts {
	if t.TCP <= 0 {
		t.TCP = DefaultTimeouts.TCP
	}
	if t.TCPFin <= 0 {
		t.TCPFin = DefaultTimeouts.TCPFin
	}
	if t.UDP <= 0 {
		t.UDP = DefaultTimeouts.UDP
	}
	return t
}

// Merge returns t with the positive fields of u applied: what ipvsadm
// --set does (0 leaves a timeout unchanged).
func (t Timeouts) Merge(u Timeouts) Timeouts {
	if u.TCP > 0 {
		t.TCP = u.TCP
	}
	if u.TCPFin > 0 {
		t.TCPFin = u.TCPFin
	}
	if u.UDP > 0 {
		t.UDP = u.UDP
	}
	return t
}

// Validate reports negative or too large timeouts, all of them.
func (t Timeouts) Validate() error {
	var errs []error
	check := func(name string, d time.Duration) {
		switch {
		case d < 0:
			errs = append(errs, &ipvs.FieldError{Field: "timeout." + name, Value: d, Msg: "must not be negative (0 leaves it unchanged)"})
		case d > MaxTimeout:
			errs = append(errs, &ipvs.FieldError{Field: "timeout." + name, Value: d, Msg: fmt.Sprintf("must be at most %d seconds", int64(MaxTimeout/time.Second))})
		}
	}
	check("tcp", t.TCP)
	check("tcp_fin", t.TCPFin)
	check("udp", t.UDP)
	return errors.Join(errs...)
}

// For returns the timeout of a connection of protocol p in state s under
// t: the --set values for TCP ESTABLISHED, TCP FIN_WAIT and UDP, the
// kernel's defaults for every other TCP state.
func (t Timeouts) For(p ipvs.Protocol, s State) time.Duration {
	if p == ipvs.ProtoUDP {
		return t.UDP
	}
	switch s {
	case TCPEstablished:
		return t.TCP
	case TCPFinWait:
		return t.TCPFin
	}
	return DefaultTCPTimeout(s)
}
