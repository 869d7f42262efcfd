package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"
)

// State is the state of a VRRP instance.
type State int32

// The states of RFC 5798 6.4 plus FAULT, keepalived's state for an
// instance whose interface or tracked object is down.
const (
	StateInit State = iota
	StateBackup
	StateMaster
	StateFault
)

func (s State) String() string {
	switch s {
	case StateInit:
		return "INIT"
	case StateBackup:
		return "BACKUP"
	case StateMaster:
		return "MASTER"
	case StateFault:
		return "FAULT"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// Conn sends and receives advertisements. The real one is a raw IP
// socket (Dial); tests use a fake.
type Conn interface {
	// Send sends a to dst, the multicast group or a unicast peer, from
	// LocalAddr with TTL/hop limit 255.
	Send(a *Advert, dst netip.Addr) error
	// Recv delivers the advertisements that decoded; it is closed when
	// the connection is.
	Recv() <-chan *Received
	// LocalAddr is the source address of adverts; the higher address
	// wins an election between equal priorities.
	LocalAddr() netip.Addr
	Close() error
}

// Actions are the side effects of state transitions. The real one uses
// netlink, ARP and NDP sockets and runs notify scripts (NewSystemActions);
// tests record the calls.
type Actions interface {
	// AddAddresses and RemoveAddresses add and remove the virtual
	// addresses on an interface; an address already there (or already
	// gone) is not an error.
	AddAddresses(ifname string, addrs []netip.Prefix) error
	RemoveAddresses(ifname string, addrs []netip.Prefix) error
	// Announce sends repeat gratuitous ARPs (IPv4) or unsolicited
	// neighbour advertisements (IPv6) for each address.
	Announce(ifname string, addrs []netip.Addr, repeat int) error
	// Notify reports a transition (notify_master, notify_backup,
	// notify_fault; To == StateInit is notify_stop). It must not block
	// the state machine for long.
	Notify(t Transition)
}

// Transition is a state change of an instance.
type Transition struct {
	Instance string
	From, To State
	// Priority is the effective priority after the transition.
	Priority uint8
}

// Clock is the time source of a Node; tests inject a fake one.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer of a Clock.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

type realClock struct{}

type realTimer struct{ t *time.Timer }

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }
func (t realTimer) C() <-chan time.Time          { return t.t.C }
func (t realTimer) Stop() bool                   { return t.t.Stop() }

// TrackKind tells a tracked interface from a tracked script.
type TrackKind int

// Kinds of tracked objects.
const (
	TrackInterface TrackKind = iota
	TrackScript
)

// Stats are counters of an instance.
type Stats struct {
	AdvertsSent          uint64
	AdvertsReceived      uint64
	PriorityZeroSent     uint64
	PriorityZeroReceived uint64
	BecameMaster         uint64
	ReleasedMaster       uint64
	// Dropped counts adverts for our VRID that failed a receive check.
	Dropped uint64
}

type stats struct {
	sent, received, zeroSent, zeroReceived, master, released, dropped atomic.Uint64
}

// Option configures a Node.
type Option func(*Node)

// WithClock sets the clock (default: the system clock).
func WithClock(c Clock) Option { return func(n *Node) { n.clock = c } }

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(n *Node) { n.log = l } }

// Node is one VRRP instance: the state machine of RFC 3768 / RFC 5798
// with keepalived's extensions (FAULT, tracking, preempt_delay,
// gratuitous ARP bursts). Run drives it; all its state is owned by the
// goroutine that calls Run.
type Node struct {
	cfg   Config
	conn  Conn
	act   Actions
	clock Clock
	log   *slog.Logger

	events chan func(now time.Time)
	shared atomic.Int32 // the State, for State()
	prioSh atomic.Uint32
	stats  stats

	st           State
	base, prio   uint8
	masterAdvInt time.Duration
	vips         []netip.Addr // announced in adverts
	allVIPs      []netip.Prefix
	authData     [authLen]byte
	authType     AuthType

	advertAt, downAt, preemptAt time.Time
	garpAt, lowerGarpAt         time.Time
	refreshAt                   time.Time
	masterAddr                  netip.Addr
	down                        map[trackKey]bool
	vipsSet                     bool
}

type trackKey struct {
	kind TrackKind
	name string
}

// New returns a node for cfg, which it defaults and validates.
func New(cfg Config, conn Conn, act Actions, opts ...Option) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, conn: conn, act: act, clock: realClock{}, log: slog.Default(),
		events: make(chan func(time.Time), 64),
		base:   cfg.Priority, prio: cfg.Priority,
		masterAdvInt: cfg.AdvertInt,
		down:         map[trackKey]bool{},
	}
	for _, o := range opts {
		o(n)
	}
	n.log = n.log.With("instance", cfg.Name, "vrid", cfg.VirtualRouterID)
	for _, p := range cfg.VirtualIPAddresses {
		n.vips = append(n.vips, p.Addr())
	}
	n.allVIPs = append(slices.Clone(cfg.VirtualIPAddresses), cfg.VirtualIPAddressesExcluded...)
	if cfg.AuthType == "PASS" {
		n.authType, n.authData = AuthPass, PassData(cfg.AuthPass)
	}
	n.prioSh.Store(uint32(n.prio))
	return n, nil
}

// State returns the current state; safe from any goroutine.
func (n *Node) State() State { return State(n.shared.Load()) }

// Priority returns the current effective priority; safe from any
// goroutine.
func (n *Node) Priority() uint8 { return uint8(n.prioSh.Load()) }

// Stats returns the counters; safe from any goroutine.
func (n *Node) Stats() Stats {
	s := &n.stats
	return Stats{
		AdvertsSent: s.sent.Load(), AdvertsReceived: s.received.Load(),
		PriorityZeroSent: s.zeroSent.Load(), PriorityZeroReceived: s.zeroReceived.Load(),
		BecameMaster: s.master.Load(), ReleasedMaster: s.released.Load(), Dropped: s.dropped.Load(),
	}
}

// SetTracked reports the state of a tracked interface or script (the
// primary interface counts as a tracked interface of weight 0 unless
// DontTrackPrimary). It may be called before Run; it blocks only if the
// node is far behind.
func (n *Node) SetTracked(kind TrackKind, name string, up bool) {
	n.events <- func(now time.Time) {
		k := trackKey{kind, name}
		if n.down[k] == !up {
			return
		}
		if up {
			delete(n.down, k)
		} else {
			n.down[k] = true
		}
		n.log.Info("tracked object changed", "kind", kind, "name", name, "up", up)
		n.recompute(now)
	}
}

// Follow moves the instance to MASTER or BACKUP because another instance
// of its vrrp_sync_group went there (keepalived's sync group rule: the
// instances of a group change state together). A BACKUP instance told
// MASTER takes over at once; a MASTER told BACKUP gives the addresses up
// and waits for a master down interval. Other states and an instance in
// INIT or FAULT are left alone (FAULT is shared through tracking). It
// may be called from any goroutine.
func (n *Node) Follow(s State) {
	n.events <- func(now time.Time) {
		switch {
		case s == StateMaster && n.st == StateBackup:
			n.log.Info("sync group: following to MASTER")
			n.becomeMaster(now)
		case s == StateBackup && n.st == StateMaster:
			n.log.Info("sync group: following to BACKUP")
			n.enterBackup(now, 3*n.masterAdvInt+n.skew())
		}
	}
}

// Run runs the instance until ctx is done, then leaves it: a master
// sends priority 0 (so that a backup takes over after its skew time)
// and removes its addresses. It returns nil after ctx ends, or the
// error that stopped it.
func (n *Node) Run(ctx context.Context) error {
	n.start(n.clock.Now())
	var err error
	for err == nil {
		err = n.runOnce(ctx)
	}
	n.shutdown(n.clock.Now())
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

var errConnClosed = errors.New("vrrp: connection closed")

// runOnce handles one event: an expired timer, a received advert or a
// tracking change. It blocks until one is there.
func (n *Node) runOnce(ctx context.Context) error {
	now := n.clock.Now()
	next := n.nextDeadline()
	if !next.IsZero() && !now.Before(next) {
		n.onTimers(now)
		return nil
	}
	var tc <-chan time.Time
	if !next.IsZero() {
		t := n.clock.NewTimer(next.Sub(now))
		defer t.Stop()
		tc = t.C()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case r, ok := <-n.conn.Recv():
		if !ok {
			return errConnClosed
		}
		n.onAdvert(n.clock.Now(), r)
	case ev := <-n.events:
		ev(n.clock.Now())
	case <-tc:
		n.onTimers(n.clock.Now())
	}
	return nil
}

// start enters the first state (RFC 5798 6.4.1, keepalived's init).
func (n *Node) start(now time.Time) {
	n.drainEvents(now)
	n.recompute(now)
	if n.st == StateFault {
		return
	}
	switch {
	case n.base == PriorityOwner && n.mayPreempt():
		n.becomeMaster(now)
	case n.cfg.State == "MASTER":
		// keepalived: a configured MASTER waits one advert interval for
		// a better master instead of three.
		n.enterBackup(now, n.masterAdvInt+n.skewFor(1))
	default:
		n.enterBackup(now, 3*n.masterAdvInt+n.skew())
	}
}

func (n *Node) drainEvents(now time.Time) {
	for {
		select {
		case ev := <-n.events:
			ev(now)
		default:
			return
		}
	}
}

func (n *Node) shutdown(now time.Time) {
	n.drainEvents(now)
	from := n.st
	if n.st == StateMaster {
		n.send(PriorityStop)
	}
	n.removeVIPs()
	n.setState(StateInit)
	n.clearTimers()
	n.act.Notify(Transition{Instance: n.cfg.Name, From: from, To: StateInit, Priority: n.prio})
}

// mayPreempt reports whether the preempt gate (if any) is open.
func (n *Node) mayPreempt() bool { return n.cfg.PreemptGate == nil || n.cfg.PreemptGate() }

// skew is the Skew_Time for the effective priority: (256-prio)/256 s in
// v2, (256-prio)*Master_Adver_Interval/256 in v3.
func (n *Node) skew() time.Duration { return n.skewFor(256 - int(n.prio)) }

func (n *Node) skewFor(k int) time.Duration {
	if n.cfg.Version == 2 {
		return time.Duration(k) * time.Second / 256
	}
	return time.Duration(k) * n.masterAdvInt / 256
}

// MasterDownInterval is 3 * advert interval + skew for priority prio,
// the time a backup of that priority waits for a silent master.
func MasterDownInterval(version int, advertInt time.Duration, prio uint8) time.Duration {
	k := 256 - time.Duration(prio)
	if version == 2 {
		return 3*advertInt + k*time.Second/256
	}
	return 3*advertInt + k*advertInt/256
}

func (n *Node) nextDeadline() time.Time {
	var next time.Time
	for _, t := range []time.Time{n.advertAt, n.downAt, n.garpAt, n.lowerGarpAt, n.refreshAt} {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

func (n *Node) clearTimers() {
	n.advertAt, n.downAt, n.preemptAt = time.Time{}, time.Time{}, time.Time{}
	n.garpAt, n.lowerGarpAt, n.refreshAt = time.Time{}, time.Time{}, time.Time{}
}

func due(t, now time.Time) bool { return !t.IsZero() && !now.Before(t) }

func (n *Node) onTimers(now time.Time) {
	g := n.cfg.Garp
	if due(n.downAt, now) && n.st == StateBackup {
		n.log.Info("master down timer expired", "master", n.masterAddr)
		n.becomeMaster(now)
	}
	if n.st != StateMaster {
		return
	}
	if due(n.advertAt, now) {
		n.send(n.prio)
		n.advertAt = now.Add(n.cfg.AdvertInt)
	}
	if due(n.garpAt, now) {
		n.garpAt = time.Time{}
		n.announce(g.MasterRepeat)
	}
	if due(n.lowerGarpAt, now) {
		n.lowerGarpAt = time.Time{}
		n.announce(g.LowerPrioRepeat)
	}
	if due(n.refreshAt, now) {
		n.refreshAt = now.Add(g.MasterRefresh)
		n.announce(g.MasterRefreshRepeat)
	}
}

// recompute derives the effective priority and FAULT from the tracked
// objects and moves in or out of FAULT.
func (n *Node) recompute(now time.Time) {
	fault := !n.cfg.DontTrackPrimary && n.down[trackKey{TrackInterface, n.cfg.Interface}]
	prio := int(n.base)
	apply := func(kind TrackKind, ts []Track) {
		for _, t := range ts {
			up := !n.down[trackKey{kind, t.Name}]
			if t.Reverse {
				up = !up
			}
			switch {
			case t.Weight == 0 && !up:
				fault = true
			case t.Weight > 0 && up, t.Weight < 0 && !up:
				prio += t.Weight
			}
		}
	}
	apply(TrackInterface, n.cfg.TrackInterface)
	apply(TrackScript, n.cfg.TrackScript)
	if n.base != PriorityOwner {
		prio = max(1, min(prio, PriorityOwner-1))
	}
	if uint8(prio) != n.prio {
		n.log.Info("effective priority changed", "from", n.prio, "to", prio)
		n.prio = uint8(prio)
		n.prioSh.Store(uint32(prio))
	}
	switch {
	case fault && n.st != StateFault:
		n.enterFault()
	case !fault && n.st == StateFault:
		n.masterAdvInt = n.cfg.AdvertInt
		if n.base == PriorityOwner {
			n.becomeMaster(now)
		} else {
			n.enterBackup(now, 3*n.masterAdvInt+n.skew())
		}
	}
}

func (n *Node) setState(s State) {
	n.st = s
	n.shared.Store(int32(s))
}

func (n *Node) transition(from State) {
	n.log.Info("entering state", "from", from, "to", n.st, "priority", n.prio)
	n.act.Notify(Transition{Instance: n.cfg.Name, From: from, To: n.st, Priority: n.prio})
}

func (n *Node) becomeMaster(now time.Time) {
	from := n.st
	n.setState(StateMaster)
	n.clearTimers()
	n.masterAdvInt = n.cfg.AdvertInt
	n.masterAddr = n.conn.LocalAddr()
	n.stats.master.Add(1)
	n.send(n.prio)
	n.advertAt = now.Add(n.cfg.AdvertInt)
	if len(n.allVIPs) > 0 {
		if err := n.act.AddAddresses(n.cfg.Interface, n.allVIPs); err != nil {
			n.log.Error("add virtual addresses", "err", err)
		}
		n.vipsSet = true
	}
	g := n.cfg.Garp
	n.announce(g.MasterRepeat)
	if g.MasterDelay > 0 {
		n.garpAt = now.Add(g.MasterDelay)
	}
	if g.MasterRefresh > 0 {
		n.refreshAt = now.Add(g.MasterRefresh)
	}
	n.transition(from)
}

// enterBackup moves to BACKUP with the master down timer set to wait.
func (n *Node) enterBackup(now time.Time, wait time.Duration) {
	from := n.st
	if from == StateMaster {
		n.stats.released.Add(1)
	}
	n.removeVIPs()
	n.setState(StateBackup)
	n.clearTimers()
	n.downAt = now.Add(wait)
	n.transition(from)
}

func (n *Node) enterFault() {
	from := n.st
	if from == StateMaster {
		n.send(PriorityStop)
		n.stats.released.Add(1)
	}
	n.removeVIPs()
	n.setState(StateFault)
	n.clearTimers()
	n.transition(from)
}

func (n *Node) removeVIPs() {
	if !n.vipsSet {
		return
	}
	n.vipsSet = false
	if err := n.act.RemoveAddresses(n.cfg.Interface, n.allVIPs); err != nil {
		n.log.Error("remove virtual addresses", "err", err)
	}
}

func (n *Node) announce(repeat int) {
	if repeat <= 0 || len(n.allVIPs) == 0 {
		return
	}
	addrs := make([]netip.Addr, len(n.allVIPs))
	for i, p := range n.allVIPs {
		addrs[i] = p.Addr()
	}
	if err := n.act.Announce(n.cfg.Interface, addrs, repeat); err != nil {
		n.log.Warn("announce virtual addresses", "err", err)
	}
}

// send sends an advert with priority prio to the group or to each
// unicast peer.
func (n *Node) send(prio uint8) {
	a := &Advert{
		Version: n.cfg.Version, VRID: n.cfg.VirtualRouterID, Priority: prio,
		AdvertInt: n.cfg.AdvertInt, Addresses: n.vips,
		AuthType: n.authType, AuthData: n.authData,
	}
	dsts := n.cfg.UnicastPeer
	if len(dsts) == 0 {
		dsts = []netip.Addr{Group4}
		if n.cfg.Is6() {
			dsts[0] = Group6
		}
	}
	for _, dst := range dsts {
		if err := n.conn.Send(a, dst); err != nil {
			n.log.Warn("send advert", "dst", dst, "err", err)
			continue
		}
		n.stats.sent.Add(1)
		if prio == PriorityStop {
			n.stats.zeroSent.Add(1)
		}
	}
}

var errOtherVRID = errors.New("vrrp: other VRID")

// check applies the receive checks of RFC 3768 7.1 / RFC 5798 7.1, with
// keepalived's choices where the RFCs leave one.
func (n *Node) check(r *Received) error {
	c := &n.cfg
	if r.VRID != c.VirtualRouterID {
		return errOtherVRID
	}
	unicast := len(c.UnicastPeer) > 0
	if !unicast && r.TTL != TTL {
		return fmt.Errorf("%w: %d from %v", ErrTTL, r.TTL, r.Src)
	}
	if r.Version != c.Version {
		return fmt.Errorf("%w: %d from %v, want %d", ErrVersion, r.Version, r.Src, c.Version)
	}
	if r.Src.Is6() != c.Is6() {
		return fmt.Errorf("%w: %v", ErrFamily, r.Src)
	}
	if r.Src == n.conn.LocalAddr() {
		return fmt.Errorf("%w: advert from our own address %v", ErrAddresses, r.Src)
	}
	if c.Version == 2 {
		if r.AuthType != n.authType || (n.authType == AuthPass && r.AuthData != n.authData) {
			return fmt.Errorf("%w: %v from %v", ErrAuth, r.AuthType, r.Src)
		}
		if r.AdvertInt != c.AdvertInt {
			return fmt.Errorf("%w: %v from %v, ours %v", ErrAdvertInt, r.AdvertInt, r.Src, c.AdvertInt)
		}
	}
	if len(r.Addresses) != len(n.vips) {
		return fmt.Errorf("%w: %d from %v, we have %d", ErrAddresses, len(r.Addresses), r.Src, len(n.vips))
	}
	if !c.SkipCheckAdvAddr {
		for _, v := range n.vips {
			if !slices.Contains(r.Addresses, v) {
				return fmt.Errorf("%w: %v missing in advert from %v", ErrAddresses, v, r.Src)
			}
		}
	}
	if unicast && c.CheckUnicastSrc && !slices.Contains(c.UnicastPeer, r.Src) {
		return fmt.Errorf("%w: %v is not a unicast_peer", ErrAddresses, r.Src)
	}
	return nil
}

func (n *Node) onAdvert(now time.Time, r *Received) {
	if err := n.check(r); err != nil {
		if !errors.Is(err, errOtherVRID) {
			n.stats.dropped.Add(1)
			n.log.Debug("advert dropped", "err", err)
		}
		return
	}
	n.stats.received.Add(1)
	if r.Priority == PriorityStop {
		n.stats.zeroReceived.Add(1)
	}
	switch n.st {
	case StateBackup:
		n.backupRx(now, r)
	case StateMaster:
		n.masterRx(now, r)
	}
	// INIT and FAULT ignore adverts.
}

func (n *Node) backupRx(now time.Time, r *Received) {
	if r.Priority == PriorityStop {
		// The master left: take over after the skew time only.
		n.downAt = now.Add(n.skew())
		return
	}
	delaying := n.cfg.PreemptDelay > 0 && (n.preemptAt.IsZero() || now.Before(n.preemptAt))
	if n.cfg.NoPreempt || r.Priority >= n.prio || delaying || !n.mayPreempt() {
		if n.cfg.Version == 3 {
			n.masterAdvInt = r.AdvertInt
		}
		n.downAt = now.Add(3*n.masterAdvInt + n.skew())
		n.masterAddr = r.Src
		if n.cfg.PreemptDelay > 0 {
			switch {
			case r.Priority >= n.prio:
				n.preemptAt = time.Time{}
			case n.preemptAt.IsZero():
				n.log.Info("lower priority master, preempting after delay", "master", r.Src, "delay", n.cfg.PreemptDelay)
				n.preemptAt = now.Add(n.cfg.PreemptDelay)
			}
		}
		return
	}
	// A lower priority master and we may preempt: ignore it, so that
	// the master down timer runs out and we take over.
	n.log.Debug("ignoring lower priority advert", "from", r.Src, "priority", r.Priority)
}

func (n *Node) masterRx(now time.Time, r *Received) {
	if r.Priority == PriorityStop {
		// Another master left: assert ourselves at once.
		n.send(n.prio)
		n.advertAt = now.Add(n.cfg.AdvertInt)
		return
	}
	cmp := r.Src.Compare(n.conn.LocalAddr())
	if r.Priority == n.prio && n.base == PriorityOwner {
		n.log.Error("configuration error: another router is also the address owner (priority 255); lowering ours to 254", "other", r.Src)
		n.base = PriorityOwner - 1
		n.recompute(now)
	}
	if r.Priority < n.prio || (r.Priority == n.prio && cmp < 0) {
		// A lower priority master: answer at once so that it yields
		// (keepalived does so unless lower_prio_no_advert), and refresh
		// the neighbours' caches.
		n.send(n.prio)
		n.advertAt = now.Add(n.cfg.AdvertInt)
		g := n.cfg.Garp
		n.announce(g.LowerPrioRepeat)
		if g.LowerPrioDelay > 0 && g.LowerPrioRepeat > 0 {
			n.lowerGarpAt = now.Add(g.LowerPrioDelay)
		}
		return
	}
	n.log.Info("higher priority master", "master", r.Src, "priority", r.Priority)
	if n.cfg.Version == 3 {
		n.masterAdvInt = r.AdvertInt
	}
	n.masterAddr = r.Src
	n.enterBackup(now, 3*n.masterAdvInt+n.skew())
}
