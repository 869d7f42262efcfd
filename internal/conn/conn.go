package conn

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/govs/govs/internal/ipvs"
)

// Dir is the direction a packet travels relative to the connection.
type Dir uint8

// Directions, as the kernel's TCP table is indexed.
const (
	// DirIn is client to server (the packet arrived for the VIP).
	DirIn Dir = iota
	// DirOut is server to client (a NAT reply passing the director).
	DirOut
)

func (d Dir) String() string {
	if d == DirOut {
		return "out"
	}
	return "in"
}

// TCPFlags are the TCP header flags the state machine looks at.
type TCPFlags uint8

// TCP flag bits, with their values in the TCP header.
const (
	FIN TCPFlags = 0x01
	SYN TCPFlags = 0x02
	RST TCPFlags = 0x04
	ACK TCPFlags = 0x10
)

// Timeouts are the three timeouts ipvsadm --set changes. A zero field
// means "leave unchanged" when setting.
type Timeouts struct {
	TCP    time.Duration `json:"tcp"`     // ESTABLISHED
	TCPFin time.Duration `json:"tcp_fin"` // FIN_WAIT
	UDP    time.Duration `json:"udp"`
}

// DefaultTimeouts are the kernel's defaults: 900 120 300 seconds.
var DefaultTimeouts = Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}

// String renders t as ipvsadm --list --timeout does.
func (t Timeouts) String() string {
	return fmt.Sprintf("Timeout (tcp tcpfin udp): %d %d %d",
		int64(t.TCP/time.Second), int64(t.TCPFin/time.Second), int64(t.UDP/time.Second))
}

// Info is a snapshot of one connection or persistence template, what
// ipvsadm -Lc prints.
type Info struct {
	Proto ipvs.Protocol `json:"protocol"`
	// Template is true for a persistence template (ipvsadm prints its
	// protocol as "IP" for a firewall-mark template, state NONE).
	Template bool `json:"template,omitempty"`
	// FWMark is the service's firewall mark, for templates of fwmark
	// services.
	FWMark  uint32         `json:"fwmark,omitempty"`
	Client  netip.AddrPort `json:"client"`
	Virtual netip.AddrPort `json:"virtual"`
	Dest    netip.AddrPort `json:"dest"`
	State   string         `json:"state"`
	// Expires is the time left until the entry expires.
	Expires time.Duration  `json:"expires"`
	Fwd     ipvs.FwdMethod `json:"fwd"`
	// InPkts etc. are per-connection counters when the data plane keeps them.
	InPkts  uint64 `json:"inpkts,omitempty"`
	OutPkts uint64 `json:"outpkts,omitempty"`
}
