package engine

import (
	"net/netip"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

// Packet is the part of a packet the engine looks at.
type Packet struct {
	// Dir is DirIn for client-to-VIP packets, DirOut for NAT replies
	// (source is the realserver, destination the client).
	Dir   conn.Dir
	Proto ipvs.Protocol
	Src   netip.AddrPort
	Dst   netip.AddrPort
	// FWMark is the packet's firewall mark (0 if none).
	FWMark uint32
	// Flags are the TCP flags (TCP only).
	Flags conn.TCPFlags
	// Len is the packet's length in bytes (IP header included), for the
	// byte counters.
	Len int
}

// Action is what to do with a packet.
type Action uint8

// Actions.
const (
	// Pass: the packet belongs to no virtual service; hand it to the
	// normal stack untouched.
	Pass Action = iota
	// Forward: send the packet to Verdict.Dest by Verdict.Fwd (for
	// DirOut, rewrite the source back to the virtual address).
	Forward
	// Drop: the packet belongs to a service but cannot be forwarded (no
	// destination available, or a non-SYN packet for an unknown TCP
	// connection).
	Drop
)

func (a Action) String() string {
	switch a {
	case Forward:
		return "forward"
	case Drop:
		return "drop"
	}
	return "pass"
}

// Verdict is the engine's decision for one packet.
type Verdict struct {
	Action Action
	// New is true when this packet created the connection (it was
	// scheduled).
	New bool
	// Service is the virtual service the packet belongs to.
	Service ipvs.ServiceKey
	// Dest is the chosen realserver address and port; Fwd how to reach it.
	Dest netip.AddrPort
	Fwd  ipvs.FwdMethod
	// Virtual is the connection's virtual address (what the client
	// addressed), for rewriting DirOut packets.
	Virtual netip.AddrPort
	// State is the connection's state after this packet.
	State string
}

// Options configure an Engine.
type Options struct {
	// Timeouts are the initial --set timeouts (zero fields: defaults).
	Timeouts conn.Timeouts
	// ExpireNodestConn: when a destination is removed, drop its
	// connections (at the next Expire, or at their next packet, whichever
	// comes first) instead of letting them continue; and reschedule a new
	// connection (SYN) that reuses the address and port of a connection
	// whose destination has weight 0 (the kernel's expire_nodest_conn
	// sysctl).
	ExpireNodestConn bool
	// ExpireQuiescentTemplate: a persistence template whose destination has
	// weight 0 is expired at its next use, so the client is rescheduled
	// (the kernel's expire_quiescent_template sysctl).
	ExpireQuiescentTemplate bool
	// Seed seeds the random source of the twos scheduler; 0 picks one.
	Seed uint64
	// ConnTableSize is the number of connection entries to make room for
	// at the start (0: a small table that grows as needed).
	ConnTableSize int
}
