package ipvsadm

import (
	"fmt"
	"strings"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

// Format are ipvsadm's listing format flags (FMT_*).
type Format uint16

// Format flags.
const (
	FmtNumeric Format = 1 << iota
	FmtRule
	FmtStats
	FmtRate
	FmtThresholds
	FmtPersistentConn
	FmtNoSort
	FmtExact
	FmtTunInfo
)

// Command is one parsed ipvsadm command line: which command, which
// options were given, and the service, destination, timeouts or daemon it
// carries, with ipvsadm's defaults applied.
type Command struct {
	Cmd Cmd
	// Opts are the options given, by table column.
	Opts OptSet
	// Format are the listing flags (-n, --stats, ...).
	Format Format

	// HasService is true when a virtual service (-t, -u, --sctp-service,
	// -f) was given; Service then holds its key, and for -A and -E every
	// attribute (scheduler wlc unless -s, netmask /32 or /128 unless -M).
	HasService bool
	Service    ipvs.Service
	// Dest is the realserver of -a, -e and -d (weight 1 unless -w,
	// forwarding -g unless -m or -i, ProxyProtocol from govsadm's
	// --proxy-protocol, else 0).
	Dest ipvs.Destination
	// Timeouts are --set's tcp, tcpfin and udp; 0 leaves one unchanged.
	Timeouts conn.Timeouts
	// Daemon is --start-daemon's or --stop-daemon's state and options.
	Daemon api.SyncDaemon

	// JSON asks for a listing as JSON (govsadm's --json).
	JSON bool
	// Socket is govsadm's --socket, "" when not given.
	Socket string
}

// Key returns the service key, or nil when no service was given.
func (c *Command) Key() *ipvs.ServiceKey {
	if !c.HasService {
		return nil
	}
	k := c.Service.ServiceKey
	return &k
}

// String renders c as the ipvsadm command line that means the same, for
// logs and test failure messages.
func (c *Command) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", c.Cmd)
	if c.HasService {
		fmt.Fprintf(&b, " %s", c.Service.ServiceKey)
	}
	switch c.Cmd {
	case CmdAdd, CmdEdit:
		fmt.Fprintf(&b, " sched=%s flags=%#x persistent=%t timeout=%d netmask=%d ops=%t pe=%q",
			c.Service.Scheduler, uint32(c.Service.SchedFlags), c.Service.Persistent,
			c.Service.Timeout, c.Service.Netmask, c.Service.OnePacket, c.Service.PE)
	case CmdAddDest, CmdEditDest, CmdDelDest:
		d := c.Dest
		fmt.Fprintf(&b, " dest=%s fwd=%s weight=%d x=%d y=%d tun=%s/%d/%d",
			d.AddrPort(), d.Fwd, d.Weight, d.Upper, d.Lower, d.TunType, d.TunPort, d.TunFlags)
		if d.ProxyProtocol != 0 {
			fmt.Fprintf(&b, " proxy-protocol=%d", d.ProxyProtocol)
		}
	case CmdTimeout:
		fmt.Fprintf(&b, " %s", c.Timeouts)
	case CmdStartDaemon, CmdStopDaemon:
		fmt.Fprintf(&b, " %+v", c.Daemon)
	}
	return b.String()
}
