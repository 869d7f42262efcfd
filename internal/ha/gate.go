package ha

import (
	"log/slog"
	"sync"
	"time"

	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/director"
)

// Gate is the readiness gate of connsync's returning-master design: it
// holds VRRP preemption (vrrp.Config.PreemptGate) until the sync backup
// has learnt the current master's connections. It never holds a takeover
// from a silent master: the VRRP master down timer is not gated.
//
// The backup is ready when it has been receiving for SweepPeriod plus
// twice connsync.CheckPeriod since its first message (the master's sweep
// then announced every established connection at least once), or when
// nothing arrived for a whole SweepPeriod since it started (there is no
// master to learn from). Without a running backup daemon (no sync, or
// this director is the sync master) the gate is open. Once open it stays
// open until the backup is restarted.
type Gate struct {
	// Status reads the sync daemons' state (director.Director.SyncStatus).
	Status func() director.SyncStatus
	// SweepPeriod is the masters' sweep period.
	SweepPeriod time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	Log *slog.Logger

	mu     sync.Mutex
	readyF time.Time // BackupStarted of the backup run found ready
}

// Open reports whether preemption is allowed now.
func (g *Gate) Open() bool {
	if g.Status == nil {
		return true
	}
	st := g.Status()
	if !st.Backup {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.readyF.Equal(st.BackupStarted) {
		return true
	}
	now := time.Now()
	if g.Now != nil {
		now = g.Now()
	}
	var ready bool
	var why string
	if st.BackupFirstHeard.IsZero() {
		ready = now.Sub(st.BackupStarted) >= g.SweepPeriod
		why = "no sync master heard for a sweep period: nothing to learn"
	} else {
		ready = now.Sub(st.BackupFirstHeard) >= g.SweepPeriod+2*connsync.CheckPeriod
		why = "sync backup has heard a full sweep of the master's connections"
	}
	if ready {
		g.readyF = st.BackupStarted
		if g.Log != nil {
			g.Log.Info("readiness gate open: preemption allowed", "reason", why,
				"installed", st.BackupStats.Installed, "updated", st.BackupStats.Updated)
		}
	}
	return ready
}
