package connsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

// Table is what the backup needs from a connection table. The engine
// implements it; connsynctest has a fake.
//
// Entries are identified as the kernel's backup looks them up: a
// connection (no FlagTemplate) by protocol, client address and port and
// virtual address and port (ip_vs_conn_in_get); a template by the same
// fields of the template (for a firewall-mark template, protocol 0 and
// the mark in Virtual's address; ip_vs_ct_in_get), and by its PE data when
// it has some.
type Table interface {
	// Lookup returns the entry c identifies, as the table has it.
	Lookup(c *Conn) (Conn, bool)
	// Install creates the entry c describes: bound to the destination
	// of its service that matches c.Dest and its forwarding method if
	// there is one, unbound (still forwarded to c.Dest) otherwise, and
	// counted in the destination's ActiveConns, InactConns or
	// PersistConns as FlagInactive and FlagTemplate say. It expires
	// after c.Timeout unless refreshed. Its SyncState is Reset(c.State,
	// pkts).
	Install(c Conn, pkts uint32) error
	// Update sets an existing entry's Flags, State, Timeout (re-arming
	// its timer) and, when c.Seq is set, its sequence options. When
	// FlagInactive changes on a connection, the table moves one count
	// between the destination's ActiveConns and InactConns; an unbound
	// entry is bound if its destination now exists. Its SyncState is
	// Reset(c.State, pkts).
	Update(c Conn, pkts uint32) error
	// Remove expires the entry c identifies now (ip_vs_conn_expire_now).
	Remove(c *Conn) error
	// Timeouts returns the current --set timeouts, for entries whose
	// message carries no timeout.
	Timeouts() conn.Timeouts
}

// Receiver receives sync datagrams. Receive blocks until one arrives or
// the receiver is closed.
type Receiver interface {
	Receive(buf []byte) (int, error)
	Close() error
}

// BackupStats are a backup's counters.
type BackupStats struct {
	Messages  uint64 // messages received
	Ignored   uint64 // messages of another syncid
	Malformed uint64 // messages (or their tails) dropped as malformed
	Installed uint64 // entries created
	Updated   uint64 // entries updated
	Replaced  uint64 // connections removed because the master moved them to another destination
	Skipped   uint64 // entries left out (protocol, state, PE, stale replacement)
	Failed    uint64 // entries the table refused
}

// Backup receives sync messages and installs their entries in a Table:
// the kernel's backup sync daemon.
type Backup struct {
	cfg    Config
	s      Settings
	table  Table
	log    *slog.Logger
	maxLen int

	lastHeard  atomic.Int64 // Unix ns of the last accepted message
	firstHeard atomic.Int64 // Unix ns of the first accepted message

	messages, ignored, malformed, installed, updated, replaced, skipped, failed atomic.Uint64
}

// NewBackup returns a backup for cfg (Role must be RoleBackup) that
// installs into t. mtu is the multicast interface's MTU, which sets the
// receive size when cfg.MaxLen is 0.
func NewBackup(cfg Config, s Settings, t Table, mtu int, log *slog.Logger) (*Backup, error) {
	cfg = cfg.WithDefaults()
	if cfg.Role != RoleBackup {
		return nil, fmt.Errorf("new sync backup: %w", &ipvs.FieldError{Field: "sync_daemon.state", Value: cfg.Role, Msg: "must be backup"})
	}
	if err := errors.Join(cfg.Validate(), s.Validate()); err != nil {
		return nil, fmt.Errorf("new sync backup: %w", err)
	}
	if t == nil {
		return nil, errors.New("new sync backup: no connection table")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Backup{cfg: cfg, s: s, table: t, log: log, maxLen: cfg.EffectiveMaxLen(mtu)}, nil
}

// MaxLen returns the receive size: longer datagrams are truncated and
// then fail the size check, as in the kernel.
func (b *Backup) MaxLen() int { return b.maxLen }

// LastHeard returns when the last message of our syncid arrived (zero if
// none has).
func (b *Backup) LastHeard() time.Time {
	ns := b.lastHeard.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// FirstHeard returns when the first message of our syncid arrived (zero
// if none has): the readiness gate counts a full sweep period from it.
func (b *Backup) FirstHeard() time.Time {
	ns := b.firstHeard.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Stats returns the counters.
func (b *Backup) Stats() BackupStats {
	return BackupStats{
		Messages: b.messages.Load(), Ignored: b.ignored.Load(), Malformed: b.malformed.Load(),
		Installed: b.installed.Load(), Updated: b.updated.Load(), Replaced: b.replaced.Load(),
		Skipped: b.skipped.Load(), Failed: b.failed.Load(),
	}
}

// Process handles one received datagram (ip_vs_process_message): it is
// decoded, ignored unless our SyncID is 0 or equals the message's, and
// each entry is installed or updated in the table. The entries before a
// malformed one are applied, as in the kernel. The error reports a
// malformed message and the entries the table refused; skipped entries
// are only counted.
func (b *Backup) Process(now time.Time, msg []byte) error {
	b.messages.Add(1)
	m, err := Decode(msg)
	if m == nil {
		b.malformed.Add(1)
		return err
	}
	if b.cfg.SyncID != 0 && m.SyncID != b.cfg.SyncID {
		b.ignored.Add(1)
		return nil
	}
	b.lastHeard.Store(now.UnixNano())
	b.firstHeard.CompareAndSwap(0, now.UnixNano())
	b.skipped.Add(uint64(m.Skipped))
	var errs []error
	if err != nil {
		b.malformed.Add(1)
		errs = append(errs, err)
	}
	for i := range m.Conns {
		if err := b.apply(m.Version, &m.Conns[i]); err != nil {
			b.failed.Add(1)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// knownPEs are the persistence engines govs has.
var knownPEs = map[string]bool{"sip": true}

// apply installs or updates one entry (ip_vs_proc_sync_conn and
// ip_vs_proc_conn).
func (b *Backup) apply(version uint8, in *Conn) error {
	c := *in
	if version == 0 {
		c.Flags = (c.Flags | FlagSync) &^ FlagHashed
	} else {
		c.Flags = c.Flags&FlagBackupMask | FlagSync
	}
	if !c.IsTemplate() {
		var n uint16
		switch c.Proto {
		case ipvs.ProtoTCP:
			n = conn.NumTCPStates
		case ipvs.ProtoUDP:
			n = 1
		default:
			// The kernel also syncs SCTP; govs's table cannot hold it yet.
			b.skip("unsupported protocol", &c)
			return nil
		}
		if c.State >= n {
			b.skip("invalid state", &c)
			return nil
		}
	}
	if len(c.PEData) > 0 {
		if c.PEName == "" {
			b.skip("PE data without a PE name", &c)
			return nil
		}
		if !knownPEs[c.PEName] {
			b.skip("unknown persistence engine", &c)
			return nil
		}
	}
	c.Timeout = b.timeout(&c)
	pkts := uint32(max(b.s.Threshold, 0))

	old, found := b.table.Lookup(&c)
	if found && !c.IsTemplate() && old.Dest != c.Dest {
		if c.Flags&FlagInactive != 0 {
			// The expiry message of a connection the master has since
			// replaced: ignore it.
			b.skip("stale message for a replaced connection", &c)
			return nil
		}
		if err := b.table.Remove(&old); err != nil {
			return fmt.Errorf("remove replaced connection %s -> %s: %w", c.Client, c.Virtual, err)
		}
		b.replaced.Add(1)
		found = false
	}
	if found {
		u := old
		u.Flags = c.Flags&FlagBackupUpdMask | old.Flags&^FlagBackupUpdMask
		u.State = c.State
		u.Timeout = c.Timeout
		if c.Seq != nil {
			u.Seq = c.Seq
		}
		if err := b.table.Update(u, pkts); err != nil {
			return fmt.Errorf("update synced entry %s -> %s: %w", c.Client, c.Virtual, err)
		}
		b.updated.Add(1)
		return nil
	}
	if !c.IsTemplate() {
		// Only templates keep PE data (ip_vs_proc_conn frees it otherwise).
		c.PEData, c.PEName = nil, ""
	}
	if err := b.table.Install(c, pkts); err != nil {
		return fmt.Errorf("install synced entry %s -> %s: %w", c.Client, c.Virtual, err)
	}
	b.installed.Add(1)
	return nil
}

// timeout is the entry's timeout: the message's, else the state's
// current timeout for a connection, else 3 minutes for a template.
func (b *Backup) timeout(c *Conn) time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	if c.IsTemplate() {
		return TemplateTimeout
	}
	t := b.table.Timeouts().Filled()
	return t.For(c.Proto, conn.State(c.State))
}

func (b *Backup) skip(why string, c *Conn) {
	b.skipped.Add(1)
	b.log.Debug("sync backup: entry skipped", "reason", why, "protocol", c.Proto, "state", c.State,
		"client", c.Client, "virtual", c.Virtual)
}

// Run receives from every receiver (one per sync thread) and processes
// the messages until ctx is done; it then closes the receivers. It
// returns the first receive error other than the close.
func (b *Backup) Run(ctx context.Context, rs ...Receiver) error {
	if len(rs) == 0 {
		return errors.New("sync backup: no receivers")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, b.maxLen)
			for {
				n, err := r.Receive(buf)
				if err != nil {
					if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
						once.Do(func() { first = fmt.Errorf("receive sync message: %w", err) })
					}
					cancel()
					return
				}
				if err := b.Process(time.Now(), buf[:n]); err != nil {
					b.log.Debug("sync backup: message", "err", err)
				}
			}
		}()
	}
	<-ctx.Done()
	for _, r := range rs {
		_ = r.Close()
	}
	wg.Wait()
	return first
}
