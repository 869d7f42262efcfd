// Package vrrptest has fakes for testing code that uses package vrrp
// without sockets, root or real time: a manual Clock, a Network of fake
// Conns that deliver adverts between nodes, and recording Actions.
package vrrptest

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/govs/govs/internal/vrrp"
)

// Clock is a manual vrrp.Clock. Its timers fire when Advance passes
// their deadline.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*timer
}

// NewClock returns a clock set to a fixed instant.
func NewClock() *Clock {
	return &Clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// Now implements vrrp.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer implements vrrp.Clock.
func (c *Clock) NewTimer(d time.Duration) vrrp.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock forward by d and fires the timers due.
func (c *Clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// Set moves the clock to t (never backwards) and fires the timers due.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
	keep := c.timers[:0]
	for _, tm := range c.timers {
		if !tm.at.After(c.now) {
			tm.ch <- c.now
			continue
		}
		keep = append(keep, tm)
	}
	c.timers = keep
}

type timer struct {
	c  *Clock
	at time.Time
	ch chan time.Time
}

func (t *timer) C() <-chan time.Time { return t.ch }

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	i := slices.Index(t.c.timers, t)
	if i < 0 {
		return false
	}
	t.c.timers = slices.Delete(t.c.timers, i, i+1)
	return true
}

// Sent is an advert a Conn sent.
type Sent struct {
	At     time.Time
	Src    netip.Addr
	Dst    netip.Addr
	Advert vrrp.Advert
}

// Network connects fake Conns: an advert sent to a multicast group
// reaches every other attached conn, one sent to an address reaches the
// conn with that address. Delivery is immediate and in order.
type Network struct {
	mu    sync.Mutex
	clock *Clock
	conns []*Conn
	log   []Sent
	// TTL is the TTL receivers see (default 255).
	TTL int
}

// NewNetwork returns a network whose sends are stamped with clock.
func NewNetwork(clock *Clock) *Network { return &Network{clock: clock, TTL: vrrp.TTL} }

// Conn returns a new conn with address addr attached to the network.
func (nw *Network) Conn(addr netip.Addr) *Conn {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	c := &Conn{nw: nw, addr: addr, up: true, recv: make(chan *vrrp.Received, 1024)}
	nw.conns = append(nw.conns, c)
	return c
}

// Log returns every advert sent so far.
func (nw *Network) Log() []Sent {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return slices.Clone(nw.log)
}

// Conn is a fake vrrp.Conn on a Network.
type Conn struct {
	nw   *Network
	addr netip.Addr
	up   bool // guarded by nw.mu
	recv chan *vrrp.Received
}

// Send implements vrrp.Conn. The advert goes through Marshal and Decode,
// so the fake carries exactly what the wire would.
func (c *Conn) Send(a *vrrp.Advert, dst netip.Addr) error {
	b, err := a.Marshal(c.addr, dst)
	if err != nil {
		return err
	}
	d, err := vrrp.Decode(b, c.addr, dst)
	if err != nil {
		return fmt.Errorf("fake conn: own advert does not decode: %w", err)
	}
	nw := c.nw
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if !c.up {
		return nil // a cut cable loses packets silently
	}
	nw.log = append(nw.log, Sent{At: nw.clock.Now(), Src: c.addr, Dst: dst, Advert: *d})
	for _, o := range nw.conns {
		if o == c || !o.up || (!dst.IsMulticast() && o.addr != dst) {
			continue
		}
		o.recv <- &vrrp.Received{Advert: *d, Src: c.addr, Dst: dst, TTL: nw.TTL}
	}
	return nil
}

// Recv implements vrrp.Conn.
func (c *Conn) Recv() <-chan *vrrp.Received { return c.recv }

// LocalAddr implements vrrp.Conn.
func (c *Conn) LocalAddr() netip.Addr { return c.addr }

// Close implements vrrp.Conn.
func (c *Conn) Close() error { return nil }

// SetUp connects (true) or cuts (false) the conn from the network.
func (c *Conn) SetUp(up bool) {
	c.nw.mu.Lock()
	defer c.nw.mu.Unlock()
	c.up = up
}

// Inject delivers r to this conn as if it came from the network.
func (c *Conn) Inject(r *vrrp.Received) { c.recv <- r }

// Pending reports whether a received advert waits to be read.
func (c *Conn) Pending() bool { return len(c.recv) > 0 }

// Call is one recorded call of Actions.
type Call struct {
	At         time.Time
	Op         string // "add", "remove", "announce", "notify"
	Interface  string
	Prefixes   []netip.Prefix
	Addrs      []netip.Addr
	Repeat     int
	Transition vrrp.Transition
}

// Actions records the calls of a node.
type Actions struct {
	mu    sync.Mutex
	clock *Clock
	calls []Call
	vips  map[netip.Prefix]bool
}

// NewActions returns recording actions stamped with clock (may be nil).
func NewActions(clock *Clock) *Actions {
	return &Actions{clock: clock, vips: map[netip.Prefix]bool{}}
}

func (a *Actions) now() time.Time {
	if a.clock == nil {
		return time.Time{}
	}
	return a.clock.Now()
}

// AddAddresses implements vrrp.Actions.
func (a *Actions) AddAddresses(ifname string, addrs []netip.Prefix) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range addrs {
		a.vips[p] = true
	}
	a.calls = append(a.calls, Call{At: a.now(), Op: "add", Interface: ifname, Prefixes: slices.Clone(addrs)})
	return nil
}

// RemoveAddresses implements vrrp.Actions.
func (a *Actions) RemoveAddresses(ifname string, addrs []netip.Prefix) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range addrs {
		delete(a.vips, p)
	}
	a.calls = append(a.calls, Call{At: a.now(), Op: "remove", Interface: ifname, Prefixes: slices.Clone(addrs)})
	return nil
}

// Announce implements vrrp.Actions.
func (a *Actions) Announce(ifname string, addrs []netip.Addr, repeat int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, Call{At: a.now(), Op: "announce", Interface: ifname, Addrs: slices.Clone(addrs), Repeat: repeat})
	return nil
}

// Notify implements vrrp.Actions.
func (a *Actions) Notify(t vrrp.Transition) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, Call{At: a.now(), Op: "notify", Transition: t})
}

// Calls returns the recorded calls, optionally only those of op.
func (a *Actions) Calls(op string) []Call {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Call
	for _, c := range a.calls {
		if op == "" || c.Op == op {
			out = append(out, c)
		}
	}
	return out
}

// States returns the sequence of states notified.
func (a *Actions) States() []vrrp.State {
	var out []vrrp.State
	for _, c := range a.Calls("notify") {
		out = append(out, c.Transition.To)
	}
	return out
}

// HasVIP reports whether p is currently added.
func (a *Actions) HasVIP(p netip.Prefix) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.vips[p]
}
