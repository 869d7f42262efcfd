package connsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

// Sender sends finished sync messages. Thread is the sync thread the
// message belongs to (0..Settings.Ports-1); a real sender sends it to
// the group on port Config.Port+thread.
type Sender interface {
	Send(thread int, msg []byte) error
	Close() error
}

// SyncState is the master's bookkeeping for one connection or template:
// the kernel's in_pkts, old_state and sync_endtime. The connection table
// keeps one with every entry (the zero value for a new one) and hands it
// to [Master.Packet] by pointer, under the lock that guards the entry.
type SyncState struct {
	// InPkts counts the entry's incoming packets for the threshold
	// check; for a template, the syncs of the connections it controls.
	InPkts uint32
	// OldState is the state the entry had when it was last synced.
	OldState uint16
	// endTime is the expiry (Unix nanoseconds) announced by the last
	// sync; retries counts refreshes resent since.
	endTime int64
	retries uint8
}

// Reset is what a backup does to an entry it installs or updates from a
// sync message (ip_vs_proc_conn): the packet count restarts at pkts (the
// sync threshold) and the state counts as synced.
func (s *SyncState) Reset(state uint16, pkts uint32) {
	s.InPkts = pkts
	s.OldState = state
}

// Update is one incoming packet of a connection, as the data path hands
// it to the master (ip_vs_in's call of ip_vs_sync_conn).
type Update struct {
	// Conn is the connection as it is after the packet: state, flags
	// and timeout current.
	Conn Conn
	// Sync is the entry's SyncState.
	Sync *SyncState
	// Control is the entry that controls this one (its persistence
	// template), itself with its Control, or nil.
	Control *Update
}

// MasterStats are a master's counters.
type MasterStats struct {
	Conns      uint64 // entries put into messages
	Messages   uint64 // messages sent
	Dropped    uint64 // messages dropped because the queue was full
	SendErrors uint64 // messages the sender failed to send
	Invalid    uint64 // updates that could not be encoded
}

// Master decides which connection updates are synced, batches them into
// messages and sends them: the kernel's master sync daemon. Packet,
// Announce and Tick may be called from any goroutine.
type Master struct {
	cfg    Config
	s      Settings
	log    *slog.Logger
	maxLen int

	mu    sync.Mutex
	bufs  []*Builder
	first []time.Time // when each thread's current message got its first entry
	queue [][]queued
	wake  chan struct{}

	conns, messages, dropped, sendErrors, invalid atomic.Uint64
}

type queued struct{ msg []byte }

// NewMaster returns a master for cfg (Role must be RoleMaster) with the
// sync sysctls s.
func NewMaster(cfg Config, s Settings, log *slog.Logger) (*Master, error) {
	cfg = cfg.WithDefaults()
	if cfg.Role != RoleMaster {
		return nil, fmt.Errorf("new sync master: %w", &ipvs.FieldError{Field: "sync_daemon.state", Value: cfg.Role, Msg: "must be master"})
	}
	if err := errors.Join(cfg.Validate(), s.Validate()); err != nil {
		return nil, fmt.Errorf("new sync master: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Master{cfg: cfg, s: s, log: log, maxLen: cfg.EffectiveMaxLen(0), wake: make(chan struct{}, 1)}
	n := s.threads()
	m.bufs = make([]*Builder, n)
	m.first = make([]time.Time, n)
	m.queue = make([][]queued, n)
	for i := range m.bufs {
		m.bufs[i] = NewBuilder(cfg.SyncID, m.maxLen)
	}
	return m, nil
}

// MaxLen returns the message size limit in use.
func (m *Master) MaxLen() int { return m.maxLen }

// Stats returns the counters.
func (m *Master) Stats() MasterStats {
	return MasterStats{
		Conns: m.conns.Load(), Messages: m.messages.Load(), Dropped: m.dropped.Load(),
		SendErrors: m.sendErrors.Load(), Invalid: m.invalid.Load(),
	}
}

// Packet accounts one incoming packet of u's connection and syncs it, and
// then its controlling template, when the kernel's rules say so
// (ip_vs_in, ip_vs_sync_conn):
//
//   - the packet count is the entry's InPkts after this packet (a
//     one-packet connection counts as Threshold and is never synced
//     itself);
//   - a TCP connection is synced only in ESTABLISHED, FIN_WAIT,
//     CLOSE_WAIT, TIME_WAIT and CLOSE; entering one of these other than
//     ESTABLISHED is synced at once, and ESTABLISHED (new or not) when
//     the count modulo Period equals Threshold; SCTP likewise with its
//     states; UDP and other single-state protocols by the count only;
//   - with Period 0 a connection is synced once, when the count equals
//     Threshold, and then only on state changes;
//   - with RefreshPeriod set, a sync is suppressed while the entry's
//     expiry moved by less than RefreshPeriod (and less than half its
//     timeout, at least 10 s) since the last one, except for up to
//     Retries resends RefreshPeriod/8 apart; with Period 0 the refresh
//     alone decides;
//   - then the controlling template, if any, is considered with its
//     own InPkts incremented; templates skip the Period check, so with
//     the defaults a template is re-sent with every packet of its
//     connections that reaches this point (the kernel's behaviour; set
//     RefreshPeriod to reduce it);
//   - with PersistMode, connections under a template are not synced,
//     only the template.
func (m *Master) Packet(now time.Time, u *Update) {
	var pkts int
	if u.Conn.Flags&FlagOnePacket != 0 {
		pkts = m.s.Threshold
	} else {
		u.Sync.InPkts++
		pkts = int(u.Sync.InPkts)
	}
	for cur := u; cur != nil; cur = cur.Control {
		if cur.Conn.Flags&FlagOnePacket == 0 && m.needed(now, cur, pkts) {
			m.add(now, &cur.Conn)
		}
		if ctl := cur.Control; ctl != nil {
			if ctl.Conn.IsTemplate() {
				ctl.Sync.InPkts++
				pkts = int(ctl.Sync.InPkts)
			} else {
				pkts = m.s.Threshold
			}
		}
	}
}

// Announce puts c into the next message regardless of the rules: for a
// table sweep that lets a returning director learn connections that see
// no traffic (see the package documentation).
func (m *Master) Announce(now time.Time, c *Conn) {
	m.add(now, c)
}

// tcpSyncStates and sctpSyncStates are the states in which a connection
// is synced at all.
const (
	tcpSyncStates = 1<<conn.TCPEstablished | 1<<conn.TCPFinWait | 1<<conn.TCPClose |
		1<<conn.TCPCloseWait | 1<<conn.TCPTimeWait
	sctpSyncStates = 1<<SCTPEstablished | 1<<SCTPShutdownSent | 1<<SCTPShutdownReceived |
		1<<SCTPShutdownAckSent | 1<<SCTPClosed
)

// SCTP states (IP_VS_SCTP_S_*) the sync rules name.
const (
	SCTPEstablished      = 7
	SCTPShutdownSent     = 8
	SCTPShutdownReceived = 9
	SCTPShutdownAckSent  = 10
	SCTPClosed           = 12
	numSCTPStates        = 13
)

// needed is ip_vs_sync_conn_needed: whether u's entry is synced now with
// packet count pkts; it records the sync in u.Sync when it is.
func (m *Master) needed(now time.Time, u *Update, pkts int) bool {
	c, st := &u.Conn, u.Sync
	force := false
	state := c.State
	switch {
	case c.IsTemplate():
	case m.s.PersistMode && inPersistence(u):
		return false
	case c.Proto == ipvs.ProtoTCP || c.Proto == ipvs.ProtoSCTP:
		var est uint16 = uint16(conn.TCPEstablished)
		var set uint32 = tcpSyncStates
		if c.Proto == ipvs.ProtoSCTP {
			est, set = SCTPEstablished, sctpSyncStates
		}
		if state >= 32 || set&(1<<state) == 0 {
			return false
		}
		force = state != st.OldState
		if force && state != est {
			return m.record(now, c, st, 0)
		}
	}
	retries := uint8(0)
	if rp := m.s.RefreshPeriod; rp > 0 {
		n := now.UnixNano() + int64(c.Timeout)
		diff := n - st.endTime
		if diff < 0 {
			diff = -diff
		}
		minDiff := max(int64(c.Timeout)/2, int64(10*time.Second))
		if diff < min(int64(rp), minDiff) {
			if int(st.retries) >= m.s.Retries {
				return false
			}
			if now.UnixNano() < st.endTime-int64(c.Timeout)+int64(rp/8) {
				return false
			}
			retries = st.retries + 1
		}
	}
	if m.s.Period > 0 {
		if !c.IsTemplate() && pkts%m.s.Period != m.s.Threshold {
			return false
		}
	} else if m.s.RefreshPeriod == 0 && pkts != m.s.Threshold {
		return false
	}
	return m.record(now, c, st, retries)
}

func (m *Master) record(now time.Time, c *Conn, st *SyncState, retries uint8) bool {
	st.OldState = c.State
	st.endTime = now.UnixNano() + int64(c.Timeout)
	st.retries = retries
	return true
}

// inPersistence reports whether a template controls u, directly or not.
func inPersistence(u *Update) bool {
	for c := u.Control; c != nil; c = c.Control {
		if c.Conn.IsTemplate() {
			return true
		}
	}
	return false
}

// thread picks the sync thread of c: stable for an entry, spread over
// the threads (the kernel uses the entry's address).
func (m *Master) thread(c *Conn) int {
	if len(m.bufs) == 1 {
		return 0
	}
	a := c.Client.Addr().As16()
	h := uint32(2166136261)
	for _, x := range a {
		h = (h ^ uint32(x)) * 16777619
	}
	h = (h ^ uint32(c.Client.Port())) * 16777619
	return int(h>>16) & (len(m.bufs) - 1)
}

// add puts c into its thread's current message; a message it does not
// fit into is queued first.
func (m *Master) add(now time.Time, c *Conn) {
	// Connections carry their timeout in whole seconds.
	cc := *c
	cc.Timeout = cc.Timeout.Truncate(time.Second)
	cc.Flags &^= FlagHashed
	if err := cc.Check(); err != nil {
		m.invalid.Add(1)
		m.log.Debug("sync: cannot encode connection", "client", c.Client, "virtual", c.Virtual, "err", err)
		return
	}
	id := m.thread(&cc)
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.bufs[id]
	if !b.Fits(&cc) {
		m.enqueueLocked(id, b.Take())
	}
	if b.Len() == 0 {
		m.first[id] = now
	}
	_ = b.Add(&cc) // checked above
	m.conns.Add(1)
}

// enqueueLocked queues a finished message, or drops it when the queue
// is full (sb_queue_tail).
func (m *Master) enqueueLocked(id int, msg []byte) {
	if msg == nil {
		return
	}
	if len(m.queue[id]) >= m.s.QLenMax {
		m.dropped.Add(1)
		return
	}
	m.queue[id] = append(m.queue[id], queued{msg})
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Tick queues every current message that has waited FlushTime or longer
// since its first entry (the kernel never delays an entry by more than
// 2 seconds). Run calls it every CheckPeriod.
func (m *Master) Tick(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, b := range m.bufs {
		if b.Len() > 0 && now.Sub(m.first[id]) >= FlushTime {
			m.enqueueLocked(id, b.Take())
		}
	}
}

// Flush queues every current message at once, whatever its age.
func (m *Master) Flush() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, b := range m.bufs {
		m.enqueueLocked(id, b.Take())
	}
}

// Pending returns the number of queued messages.
func (m *Master) Pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, q := range m.queue {
		n += len(q)
	}
	return n
}

// SendQueued sends every queued message through s, in order per thread.
// A message that fails is counted and dropped, as the kernel drops it;
// the first error is returned.
func (m *Master) SendQueued(s Sender) error {
	m.mu.Lock()
	q := m.queue
	m.queue = make([][]queued, len(q))
	m.mu.Unlock()
	var first error
	for id, msgs := range q {
		for _, e := range msgs {
			if err := s.Send(id, e.msg); err != nil {
				m.sendErrors.Add(1)
				if first == nil {
					first = fmt.Errorf("send sync message on thread %d: %w", id, err)
				}
				continue
			}
			m.messages.Add(1)
		}
	}
	return first
}

// Run sends queued messages through s as they are queued and flushes
// partly filled ones every CheckPeriod, until ctx is done. Messages still
// queued then are discarded, as the kernel discards them when the master
// daemon stops. Run does not close s.
func (m *Master) Run(ctx context.Context, s Sender) error {
	t := time.NewTicker(CheckPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			m.discard()
			return nil
		case <-m.wake:
		case now := <-t.C:
			m.Tick(now)
		}
		if err := m.SendQueued(s); err != nil {
			m.log.Warn("sync master: send failed", "interface", m.cfg.Interface, "err", err)
		}
	}
}

func (m *Master) discard() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, b := range m.bufs {
		b.Take()
		m.queue[id] = nil
	}
}
