// Package connsynctest has fakes of the sync daemon's interfaces: a
// recording Sender, a Receiver fed by the test, and an in-memory Table.
package connsynctest

import (
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/ipvs"
)

// Sent is one message a Sender was given.
type Sent struct {
	Thread int
	Msg    []byte
}

// Sender records what it is asked to send, and forwards each message to
// To if set. Err, if set, is returned instead.
type Sender struct {
	mu   sync.Mutex
	sent []Sent
	Err  error
	To   *Receiver
}

// Send implements connsync.Sender.
func (s *Sender) Send(thread int, msg []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return s.Err
	}
	s.sent = append(s.sent, Sent{Thread: thread, Msg: slices.Clone(msg)})
	if s.To != nil {
		s.To.Deliver(msg)
	}
	return nil
}

// Close implements connsync.Sender.
func (s *Sender) Close() error { return nil }

// Sent returns the messages sent so far.
func (s *Sender) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// Receiver hands out the messages Deliver gives it.
type Receiver struct {
	ch   chan []byte
	once sync.Once
	done chan struct{}
}

// NewReceiver returns a Receiver that buffers up to 1024 messages.
func NewReceiver() *Receiver {
	return &Receiver{ch: make(chan []byte, 1024), done: make(chan struct{})}
}

// Deliver queues a copy of msg for Receive.
func (r *Receiver) Deliver(msg []byte) {
	select {
	case r.ch <- slices.Clone(msg):
	case <-r.done:
	}
}

// Receive implements connsync.Receiver: it truncates to len(buf) as a
// datagram socket does.
func (r *Receiver) Receive(buf []byte) (int, error) {
	select {
	case m := <-r.ch:
		return copy(buf, m), nil
	case <-r.done:
		return 0, net.ErrClosed
	}
}

// Close implements connsync.Receiver.
func (r *Receiver) Close() error {
	r.once.Do(func() { close(r.done) })
	return nil
}

// Key identifies an entry the way the kernel's backup looks it up.
type Key struct {
	Template bool
	Proto    ipvs.Protocol
	Client   netip.AddrPort
	Virtual  netip.AddrPort
	PEData   string
}

// KeyOf returns c's key.
func KeyOf(c *connsync.Conn) Key {
	k := Key{Template: c.IsTemplate(), Proto: c.Proto, Client: c.Client, Virtual: c.Virtual}
	if k.Template {
		k.PEData = string(c.PEData)
	}
	return k
}

// Entry is an installed entry with the packet count its SyncState was
// reset to.
type Entry struct {
	Conn connsync.Conn
	Pkts uint32
}

// Op is one call the Table saw.
type Op struct {
	Op   string // "install", "update", "remove"
	Conn connsync.Conn
}

// Table is an in-memory connsync.Table.
type Table struct {
	mu      sync.Mutex
	entries map[Key]Entry
	ops     []Op
	// T are the timeouts Timeouts returns (conn.DefaultTimeouts if zero).
	T conn.Timeouts
	// Err, if set, is returned by Install and Update.
	Err error
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{entries: map[Key]Entry{}} }

// Lookup implements connsync.Table.
func (t *Table) Lookup(c *connsync.Conn) (connsync.Conn, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[KeyOf(c)]
	return e.Conn, ok
}

// Install implements connsync.Table.
func (t *Table) Install(c connsync.Conn, pkts uint32) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.Err != nil {
		return t.Err
	}
	t.entries[KeyOf(&c)] = Entry{Conn: c, Pkts: pkts}
	t.ops = append(t.ops, Op{"install", c})
	return nil
}

// Update implements connsync.Table.
func (t *Table) Update(c connsync.Conn, pkts uint32) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.Err != nil {
		return t.Err
	}
	t.entries[KeyOf(&c)] = Entry{Conn: c, Pkts: pkts}
	t.ops = append(t.ops, Op{"update", c})
	return nil
}

// Remove implements connsync.Table.
func (t *Table) Remove(c *connsync.Conn) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.entries, KeyOf(c))
	t.ops = append(t.ops, Op{"remove", *c})
	return nil
}

// Timeouts implements connsync.Table.
func (t *Table) Timeouts() conn.Timeouts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.T.Filled()
}

// Get returns the entry c identifies.
func (t *Table) Get(c *connsync.Conn) (Entry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[KeyOf(c)]
	return e, ok
}

// Len returns the number of entries.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

// Ops returns the calls seen so far.
func (t *Table) Ops() []Op {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.ops)
}
