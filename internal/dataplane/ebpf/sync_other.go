//go:build !linux

package ebpf

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/dataplane"
)

// ErrSyncNoDest is returned for a synced entry whose service or
// destination this data plane does not have.
var ErrSyncNoDest = errors.New("no such virtual service or destination here")

// SyncWalk fails: eBPF forwarding needs Linux.
func (d *Dataplane) SyncWalk(func(c *connsync.Conn, inPkts uint64, left time.Duration)) error {
	return fmt.Errorf("ebpf connection sync on %s: %w (it needs Linux)", runtime.GOOS, dataplane.ErrUnsupported)
}

// SyncTable returns a table that refuses every entry: eBPF forwarding
// needs Linux.
func (d *Dataplane) SyncTable() connsync.Table { return unsupportedTable{} }

type unsupportedTable struct{}

func (unsupportedTable) Lookup(*connsync.Conn) (connsync.Conn, bool) { return connsync.Conn{}, false }
func (unsupportedTable) Install(connsync.Conn, uint32) error         { return dataplane.ErrUnsupported }
func (unsupportedTable) Update(connsync.Conn, uint32) error          { return dataplane.ErrUnsupported }
func (unsupportedTable) Remove(*connsync.Conn) error                 { return dataplane.ErrUnsupported }
func (unsupportedTable) Timeouts() conn.Timeouts                     { return conn.DefaultTimeouts }
