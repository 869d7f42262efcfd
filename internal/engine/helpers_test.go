package engine

import (
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

var t0 = time.Unix(1_700_000_000, 0)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
func addr(s string) netip.Addr   { return netip.MustParseAddr(s) }

type harness struct {
	t   testing.TB
	e   *Engine
	now time.Time
}

func newHarness(t testing.TB, opts Options) *harness {
	t.Helper()
	return &harness{t: t, e: New(opts), now: t0}
}

func tcpSvc(vip string, sched string) ipvs.Service {
	return ipvs.Service{ServiceKey: ipvs.TCPService(ap(vip)), Scheduler: sched}
}

func udpSvc(vip string, sched string) ipvs.Service {
	return ipvs.Service{ServiceKey: ipvs.UDPService(ap(vip)), Scheduler: sched}
}

func (h *harness) addService(svc ipvs.Service) ipvs.ServiceKey {
	h.t.Helper()
	if err := h.e.AddService(svc); err != nil {
		h.t.Fatalf("AddService(%s): %v", svc.ServiceKey, err)
	}
	svc.SetDefaults()
	return svc.ServiceKey
}

func (h *harness) addDest(k ipvs.ServiceKey, rip string, fwd ipvs.FwdMethod, weight int32) {
	h.t.Helper()
	a := ap(rip)
	if err := h.e.AddDest(k, ipvs.Destination{Addr: a.Addr(), Port: a.Port(), Fwd: fwd, Weight: weight}); err != nil {
		h.t.Fatalf("AddDest(%s, %s): %v", k, rip, err)
	}
}

func (h *harness) advance(d time.Duration) {
	h.now = h.now.Add(d)
	h.e.Expire(h.now)
}

// in sends a client-to-VIP packet.
func (h *harness) in(proto ipvs.Protocol, src, dst string, flags conn.TCPFlags) Verdict {
	h.t.Helper()
	v, err := h.e.Process(h.now, Packet{Dir: conn.DirIn, Proto: proto, Src: ap(src), Dst: ap(dst), Flags: flags, Len: 60})
	if err != nil && v.Action != Drop {
		h.t.Fatalf("Process: %v with action %s", err, v.Action)
	}
	checkInvariants(h.t, h.e)
	return v
}

// out sends a realserver-to-client packet.
func (h *harness) out(proto ipvs.Protocol, src, dst string, flags conn.TCPFlags) Verdict {
	h.t.Helper()
	v, err := h.e.Process(h.now, Packet{Dir: conn.DirOut, Proto: proto, Src: ap(src), Dst: ap(dst), Flags: flags, Len: 100})
	if err != nil {
		h.t.Fatalf("Process out: %v", err)
	}
	checkInvariants(h.t, h.e)
	return v
}

func (h *harness) svc(k ipvs.ServiceKey) ipvs.ServiceState {
	h.t.Helper()
	s, err := h.e.Service(h.now, k)
	if err != nil {
		h.t.Fatalf("Service(%s): %v", k, err)
	}
	return s
}

// dest returns the state of destination rip of service k (and whether it
// is listed).
func (h *harness) dest(k ipvs.ServiceKey, rip string) (ipvs.DestState, bool) {
	h.t.Helper()
	a := ap(rip)
	for _, d := range h.svc(k).Dests {
		if d.Addr == a.Addr() && d.Port == a.Port() {
			return d, true
		}
	}
	return ipvs.DestState{}, false
}

type counts struct{ active, inact, persist uint32 }

func (h *harness) counts(k ipvs.ServiceKey, rip string) counts {
	h.t.Helper()
	d, ok := h.dest(k, rip)
	if !ok {
		h.t.Fatalf("destination %s not in %s", rip, k)
	}
	return counts{d.ActiveConns, d.InactConns, d.PersistConns}
}

// checkInvariants: every live destination's counters equal what its
// entries say, and none is negative.
func checkInvariants(t testing.TB, e *Engine) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	type tally struct{ active, inact, persist, refs int32 }
	got := map[uint32]*tally{}
	for c := range e.conns.All() {
		tl := got[c.Dest]
		if tl == nil {
			tl = &tally{}
			got[c.Dest] = tl
		}
		tl.refs++
		switch {
		case c.IsTemplate():
			tl.persist++
		case c.Active():
			tl.active++
			if c.State != conn.TCPEstablished {
				t.Fatalf("active connection in state %s", c.State.TCPString())
			}
		default:
			tl.inact++
		}
		if e.dests[c.Dest] == nil {
			t.Fatalf("entry %v refers to freed destination %d", c.Key(), c.Dest)
		}
	}
	for id, dd := range e.dests {
		if dd == nil {
			continue
		}
		tl := got[uint32(id)]
		if tl == nil {
			tl = &tally{}
		}
		d := dd.d
		if d.ActiveConns < 0 || d.InactConns < 0 || d.PersistConns < 0 {
			t.Fatalf("dest %s: negative counters %d/%d/%d", d.AddrPort(), d.ActiveConns, d.InactConns, d.PersistConns)
		}
		if d.ActiveConns != tl.active || d.InactConns != tl.inact || d.PersistConns != tl.persist || int32(dd.refs) != tl.refs {
			t.Fatalf("dest %s: counters active %d inact %d persist %d refs %d, entries say %d %d %d %d",
				d.AddrPort(), d.ActiveConns, d.InactConns, d.PersistConns, dd.refs, tl.active, tl.inact, tl.persist, tl.refs)
		}
	}
}
