package conn

import (
	"iter"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/govs/govs/internal/ipvs"
)

// Sizes of the table's building blocks.
const (
	chunkBits = 12 // entries are allocated 4096 at a time
	chunkSize = 1 << chunkBits
	chunkMask = chunkSize - 1

	minBuckets = 1 << 10

	// The timing wheel: wheelSlots slots of SlotWidth each, so an entry
	// within wheelSlots*SlotWidth (about 68 minutes) of its deadline sits
	// in its own slot; a later one is looked at once per revolution and
	// re-queued (lazy re-check).
	wheelBits  = 12
	wheelSlots = 1 << wheelBits
	wheelMask  = wheelSlots - 1
)

// SlotWidth is the granularity of the expiry wheel. Expiry itself is
// exact (an entry is gone once now reaches its deadline); the width only
// decides how entries are grouped.
const SlotWidth = time.Second

// Params describe a new entry.
type Params struct {
	// Key is the entry's in-direction key (MakeKey, TemplateKey,
	// FWMarkTemplateKey).
	Key Key
	// Dest is the realserver address and port.
	Dest netip.AddrPort
	// Fwd is the forwarding method. A NAT (Masq) connection is also
	// indexed by its reply key, so that Table.LookupOut finds it.
	Fwd    ipvs.FwdMethod
	FWMark uint32
	// Flags are the initial flags (FlagTemplate, FlagNoOutput,
	// FlagInactive, FlagOnePacket).
	Flags Flags
	State State
	// Timeout is the initial timeout (InitialTimeout for a connection,
	// the service's persistence timeout for a template).
	Timeout time.Duration
	// DestID is stored in Entry.Dest.
	DestID uint32
}

// Table is the connection table: entries indexed by their in-direction key
// and (NAT connections) by their out-direction key, with expiry on a
// timing wheel driven by the times the caller passes in.
//
// Entries live in chunks of 4096 that are allocated as the table grows
// and never freed; expired entries go to a free list and are reused, so
// lookups, inserts and refreshes do not allocate once the table has
// reached its working size. The hash indexes are chained hash tables of
// entry indices that double when the table outgrows them.
//
// A Table is not safe for concurrent use; the engine serialises access.
type Table struct {
	chunks [][]Entry
	free   int32 // head of the free list (linked through wNext)
	n      int   // live entries
	cap    int32 // entries allocated

	seed hashSeed
	// heads are the two indexes' buckets (idxIn, idxOut).
	heads [2][]int32
	mask  uint64

	// epoch is the time 0 of the nanosecond clock; set by the first call
	// that passes a time.
	epoch    time.Time
	epochSet bool
	wheel    [wheelSlots]int32
	cursor   int64 // slots before cursor have been processed
	// aside collects, during Expire, entries whose deadline passed while
	// they controlled others.
	aside []int32

	// OnExpire is called for every entry the table frees, after it was
	// unlinked and its controller released, before its memory is
	// reused. The engine uses it to release destination counters.
	OnExpire func(e *Entry)
}

// NewTable returns an empty table with room for about hint entries
// before it first grows its indexes.
func NewTable(hint int) *Table {
	t := &Table{}
	for i := range t.seed {
		t.seed[i] = rand.Uint64() | 1
	}
	nb := minBuckets
	for nb < hint {
		nb <<= 1
	}
	t.heads = [2][]int32{make([]int32, nb), make([]int32, nb)}
	t.mask = uint64(nb - 1)
	for int(t.cap) < hint {
		t.addChunk()
	}
	return t
}

// Len returns the number of entries, templates included.
func (t *Table) Len() int { return t.n }

func (t *Table) at(i int32) *Entry {
	i--
	return &t.chunks[i>>chunkBits][i&chunkMask]
}

func (t *Table) addChunk() {
	c := make([]Entry, chunkSize)
	base := t.cap
	t.chunks = append(t.chunks, c)
	// Push in reverse so that entries are handed out in index order.
	for j := chunkSize - 1; j >= 0; j-- {
		e := &c[j]
		e.self = base + int32(j) + 1
		e.wNext = t.free
		t.free = e.self
	}
	t.cap += chunkSize
}

// nanos converts now to the table's clock.
func (t *Table) nanos(now time.Time) int64 {
	if !t.epochSet {
		t.epoch = now
		t.epochSet = true
		t.cursor = 0
	}
	return int64(now.Sub(t.epoch))
}

// slotOf returns the absolute wheel slot of a deadline.
func slotOf(ns int64) int64 {
	w := int64(SlotWidth)
	if ns < 0 {
		return (ns - w + 1) / w
	}
	return ns / w
}

// Insert adds a new entry and arms its timer with p.Timeout from now. It
// does not check for an existing entry with the same key: the newest entry
// of a key is the one lookups find.
func (t *Table) Insert(p Params, now time.Time) *Entry {
	ns := t.nanos(now)
	if t.free == 0 {
		t.addChunk()
	}
	e := t.at(t.free)
	t.free = e.wNext
	self := e.self
	*e = Entry{
		key:     p.Key,
		daddr:   p.Dest.Addr().As16(),
		dport:   p.Dest.Port(),
		Fwd:     p.Fwd,
		Flags:   p.Flags,
		State:   p.State,
		FWMark:  p.FWMark,
		Timeout: p.Timeout,
		Dest:    p.DestID,
		self:    self,
		tflags:  tLive,
	}
	t.n++
	if t.n > len(t.heads[idxIn]) {
		t.grow()
	}
	t.link(e, idxIn, uint32(t.seed.hash(&e.key)))
	if p.Fwd == ipvs.Masq && p.Flags&FlagTemplate == 0 {
		k := e.outKey()
		t.link(e, idxOut, uint32(t.seed.hash(&k)))
	}
	e.expires = ns + int64(e.Timeout)
	t.queue(e)
	return e
}

// outKey is the key of a NAT connection's replies: realserver -> client.
func (e *Entry) outKey() Key {
	return Key{
		Proto:   e.key.Proto,
		SrcPort: e.dport,
		DstPort: e.key.SrcPort,
		Src:     e.daddr,
		Dst:     e.key.Src,
	}
}

// link puts e into index i under hash h.
func (t *Table) link(e *Entry, i int, h uint32) {
	e.chain(i).h = h
	t.push(e, i)
	e.tflags |= tInHashed << i
}

// push puts e at the head of its bucket in index i.
func (t *Table) push(e *Entry, i int) {
	c := e.chain(i)
	b := uint64(c.h) & t.mask
	c.prev = 0
	c.next = t.heads[i][b]
	if c.next != 0 {
		t.at(c.next).chain(i).prev = e.self
	}
	t.heads[i][b] = e.self
}

// unlink takes e out of index i, if it is in it.
func (t *Table) unlink(e *Entry, i int) {
	bit := tInHashed << i
	if e.tflags&bit == 0 {
		return
	}
	c := e.chain(i)
	if c.prev != 0 {
		t.at(c.prev).chain(i).next = c.next
	} else {
		t.heads[i][uint64(c.h)&t.mask] = c.next
	}
	if c.next != 0 {
		t.at(c.next).chain(i).prev = c.prev
	}
	c.next, c.prev = 0, 0
	e.tflags &^= bit
}

// grow doubles both indexes and rehashes every hashed entry.
func (t *Table) grow() {
	nb := len(t.heads[idxIn]) * 2
	t.heads = [2][]int32{make([]int32, nb), make([]int32, nb)}
	t.mask = uint64(nb - 1)
	for _, c := range t.chunks {
		for j := range c {
			e := &c[j]
			if e.tflags&tLive == 0 {
				continue
			}
			for i := range t.heads {
				if e.tflags&(tInHashed<<i) != 0 {
					t.push(e, i)
				}
			}
		}
	}
}

// Lookup returns the entry with in-direction key k, or nil. An entry whose
// deadline has passed is expired on the spot (so lookups are exact however
// seldom Expire runs) and not returned, unless it still controls other
// entries: then, as in the kernel, its life is extended.
func (t *Table) Lookup(k Key, now time.Time) *Entry {
	h := uint32(t.seed.hash(&k))
	for i := t.heads[idxIn][uint64(h)&t.mask]; i != 0; {
		e := t.at(i)
		if e.in.h == h && e.key == k {
			return t.check(e, now)
		}
		i = e.in.next
	}
	return nil
}

// LookupOut returns the NAT connection whose replies have key k (source
// the realserver, destination the client), or nil.
func (t *Table) LookupOut(k Key, now time.Time) *Entry {
	h := uint32(t.seed.hash(&k))
	for i := t.heads[idxOut][uint64(h)&t.mask]; i != 0; {
		e := t.at(i)
		if e.out.h == h && e.outKey() == k {
			return t.check(e, now)
		}
		i = e.out.next
	}
	return nil
}

// check expires e if its deadline has passed and returns what is left.
func (t *Table) check(e *Entry, now time.Time) *Entry {
	if e.expires > t.nanos(now) {
		return e
	}
	if t.expire(e, now) {
		return nil
	}
	return e
}

// Touch re-arms e's timer: it now expires Timeout after now. This is the
// per-packet refresh; it is O(1) and usually only stores the deadline (the
// entry stays in its wheel slot and is re-queued when that slot comes up).
func (t *Table) Touch(e *Entry, now time.Time) {
	e.expires = t.nanos(now) + int64(e.Timeout)
	s := slotOf(e.expires)
	if s < t.cursor {
		s = t.cursor
	}
	if s < e.slot {
		// The deadline moved before the slot the entry waits in: move it.
		t.dequeue(e)
		t.queue(e)
	}
}

// Deadline returns when e expires.
func (t *Table) Deadline(e *Entry) time.Time {
	return t.epoch.Add(time.Duration(e.expires))
}

// queue puts e in the wheel slot of its deadline (or the current slot if
// the deadline is past).
func (t *Table) queue(e *Entry) {
	s := slotOf(e.expires)
	if s < t.cursor {
		s = t.cursor
	}
	e.slot = s
	idx := s & wheelMask
	e.wPrev = 0
	e.wNext = t.wheel[idx]
	if e.wNext != 0 {
		t.at(e.wNext).wPrev = e.self
	}
	t.wheel[idx] = e.self
}

func (t *Table) dequeue(e *Entry) {
	if e.wPrev != 0 {
		t.at(e.wPrev).wNext = e.wNext
	} else {
		t.wheel[e.slot&wheelMask] = e.wNext
	}
	if e.wNext != 0 {
		t.at(e.wNext).wPrev = e.wPrev
	}
	e.wNext, e.wPrev = 0, 0
}

// SetControl makes tpl the controller of e (the kernel's
// ip_vs_control_add): tpl does not expire while it controls entries.
func (t *Table) SetControl(e, tpl *Entry) {
	if e.control != 0 {
		t.at(e.control).nControl--
	}
	e.control = tpl.self
	tpl.nControl++
}

// Controller returns the entry that controls e, or nil.
func (t *Table) Controller(e *Entry) *Entry {
	if e.control == 0 {
		return nil
	}
	return t.at(e.control)
}

// Unhash removes e from the indexes, so lookups no longer find it, but
// keeps it (and its control links) until its timer fires: what the kernel
// does to a template whose destination became unusable.
func (t *Table) Unhash(e *Entry) {
	t.unlink(e, idxIn)
	t.unlink(e, idxOut)
}

// ExpireNow expires e at once, as if its timer fired now: it is freed and
// true is returned, unless it still controls entries, in which case its
// timer is re-armed for DeferredExpiry and false is returned. If
// dropController is set and e's controller controls nothing once e is
// gone, the controller is expired too (the kernel's ip_vs_conn_del of a
// controlled connection and its flush of destination-less connections).
func (t *Table) ExpireNow(e *Entry, now time.Time, dropController bool) bool {
	ct := t.Controller(e)
	if !t.expire(e, now) {
		return false
	}
	if dropController && ct != nil && ct.nControl == 0 {
		t.expire(ct, now)
	}
	return true
}

// expire runs the kernel's ip_vs_conn_expire for e at now: if e controls
// entries its timer is re-armed for DeferredExpiry, else it is unlinked,
// its controller released, OnExpire called and its memory freed.
func (t *Table) expire(e *Entry, now time.Time) bool {
	ns := t.nanos(now)
	if e.nControl > 0 {
		e.Timeout = DeferredExpiry
		t.dequeue(e)
		e.expires = ns + int64(DeferredExpiry)
		t.queue(e)
		return false
	}
	t.dequeue(e)
	t.free1(e, ns)
	return true
}

// free1 unlinks and frees an entry that is out of the wheel; ns is when
// it expired.
func (t *Table) free1(e *Entry, ns int64) {
	t.unlink(e, idxIn)
	t.unlink(e, idxOut)
	if e.control != 0 {
		ct := t.at(e.control)
		ct.nControl--
		ct.released = max(ct.released, ns)
		e.control = 0
	}
	if t.OnExpire != nil {
		t.OnExpire(e)
	}
	self := e.self
	*e = Entry{self: self, wNext: t.free}
	t.free = self
	t.n--
}

// Expire frees every entry whose deadline is at or before now and returns
// how many it freed. Its cost is proportional to the entries it frees or
// re-queues, not to the size of the table.
//
// However long ago the last call was, the outcome is what the kernel's
// timers would have produced had each fired at its deadline: an entry
// that still controlled others when its deadline came is re-armed every
// DeferredExpiry from that deadline, and freed at the first of those
// ticks that finds it controlling nothing.
func (t *Table) Expire(now time.Time) int {
	ns := t.nanos(now)
	target := slotOf(ns)
	from := t.cursor
	if target > from {
		t.cursor = target
	}
	n := 0
	if target-from >= wheelSlots {
		from = target - wheelSlots + 1
	}
	for s := from; s <= target; s++ {
		n += t.runSlot(s&wheelMask, ns)
	}
	// Entries that controlled others at their deadline: now that every
	// due entry is gone, replay their re-arming.
	const tick = int64(DeferredExpiry)
	for _, i := range t.aside {
		e := t.at(i)
		d0 := e.expires
		e.Timeout = DeferredExpiry
		if e.nControl > 0 {
			e.expires = d0 + ((ns-d0)/tick+1)*tick
			t.queue(e)
			continue
		}
		// The first tick after the last controlled entry went (a tick at
		// the same instant still saw it); the deadline itself if that
		// entry was gone before it.
		fire := d0
		if e.released >= d0 {
			fire = d0 + ((e.released-d0)/tick+1)*tick
		}
		if fire > ns {
			e.expires = fire
			t.queue(e)
			continue
		}
		e.expires = fire
		t.free1(e, fire)
		n++
	}
	t.aside = t.aside[:0]
	return n
}

// runSlot detaches one wheel slot and frees, re-queues or sets aside its
// entries.
func (t *Table) runSlot(idx int64, ns int64) int {
	i := t.wheel[idx]
	t.wheel[idx] = 0
	n := 0
	for i != 0 {
		e := t.at(i)
		i = e.wNext
		e.wNext, e.wPrev = 0, 0
		switch {
		case e.expires > ns:
			t.queue(e)
		case e.nControl > 0:
			t.aside = append(t.aside, e.self)
		default:
			t.free1(e, e.expires)
			n++
		}
	}
	return n
}

// All yields every entry of the table, in no particular order. The caller
// must not insert or expire entries while it iterates.
func (t *Table) All() iter.Seq[*Entry] {
	return func(yield func(*Entry) bool) {
		for _, c := range t.chunks {
			for j := range c {
				e := &c[j]
				if e.tflags&tLive != 0 && !yield(e) {
					return
				}
			}
		}
	}
}

// Flush frees every entry (templates included), calling OnExpire for each.
func (t *Table) Flush() {
	for _, c := range t.chunks {
		for j := range c {
			e := &c[j]
			if e.tflags&tLive != 0 {
				e.nControl = 0
				e.control = 0
				t.dequeue(e)
				t.free1(e, e.expires)
			}
		}
	}
}
