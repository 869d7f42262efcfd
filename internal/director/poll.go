package director

import (
	"net/netip"
	"time"

	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/ipvs"
)

// Poller feeds a sync master from periodic reads of a connection table
// that counts packets itself (the eBPF data plane's conns map), applying
// the same rules as a per-packet feed: the kernel syncs an ESTABLISHED
// connection when its packet count modulo sync_period equals
// sync_threshold and any other syncable state at once when it is
// entered. Between two polls an entry's count moves from a to b; if a
// count in (a, b] matches the threshold rule the master sees the packet
// with that count, else, when the state changed, the packet with count b.
// So a connection is synced at most once per poll, at least as often as
// the rules say (for thresholds crossed), and a state change is never
// missed when it is visible at a poll. New templates are announced when
// first seen; the sweep refreshes them.
//
// A Poller is not safe for concurrent use: one goroutine calls Begin,
// Observe for each entry, then End.
type Poller struct {
	m    *connsync.Master
	s    connsync.Settings
	seen map[pollKey]*pollEntry
	gen  uint64
}

type pollKey struct {
	template bool
	proto    ipvs.Protocol
	client   netip.AddrPort
	virtual  netip.AddrPort
}

type pollEntry struct {
	st    connsync.SyncState
	pkts  uint64
	state uint16
	gen   uint64
}

// NewPoller returns a poller feeding m with the sync sysctls s.
func NewPoller(m *connsync.Master, s connsync.Settings) *Poller {
	return &Poller{m: m, s: s, seen: make(map[pollKey]*pollEntry)}
}

// Begin starts a poll.
func (p *Poller) Begin() { p.gen++ }

// Observe reports one live entry of the current poll with its incoming
// packet count.
func (p *Poller) Observe(now time.Time, c *connsync.Conn, inPkts uint64) {
	k := pollKey{template: c.IsTemplate(), proto: c.Proto, client: c.Client, virtual: c.Virtual}
	e := p.seen[k]
	if e == nil {
		e = &pollEntry{}
		p.seen[k] = e
		if c.IsTemplate() {
			e.gen = p.gen
			p.m.Announce(now, c)
			return
		}
	}
	e.gen = p.gen
	if c.IsTemplate() || (inPkts == e.pkts && c.State == e.state) {
		return
	}
	count, ok := p.crossed(e.pkts, inPkts)
	switch {
	case ok:
	case c.State != e.state || (p.s.RefreshPeriod > 0 && inPkts > e.pkts):
		count = max(inPkts, 1)
	default:
		count = 0
	}
	if count > 0 {
		e.st.InPkts = uint32(count - 1)
		p.m.Packet(now, &connsync.Update{Conn: *c, Sync: &e.st})
	}
	e.st.InPkts = uint32(inPkts)
	e.pkts, e.state = inPkts, c.State
}

// crossed returns the first packet count in (a, b] at which the kernel's
// threshold rule syncs an ESTABLISHED connection.
func (p *Poller) crossed(a, b uint64) (uint64, bool) {
	if b <= a {
		return 0, false
	}
	t, per := uint64(max(p.s.Threshold, 0)), uint64(max(p.s.Period, 0))
	if per == 0 {
		return t, a < t && t <= b
	}
	// The smallest n > a with n % per == t.
	n := a - a%per + t
	if n <= a {
		n += per
	}
	return n, n <= b
}

// End ends a poll: entries not seen in it are forgotten.
func (p *Poller) End() {
	for k, e := range p.seen {
		if e.gen != p.gen {
			delete(p.seen, k)
		}
	}
}

// Len returns the number of entries the poller tracks.
func (p *Poller) Len() int { return len(p.seen) }
