package ipvsadm

import (
	"context"
	"errors"

	"github.com/govs/govs/internal/api"
)

// DefaultBatchSize is how many table commands -R and [Restore] send to
// the director in one [api.Director.Apply]: one request instead of one
// per line, with a body of a few hundred kilobytes.
const DefaultBatchSize = 1000

// opOf returns the batch op of a table command, false for a command
// that is not one (zero, daemons, listings).
func opOf(cmd *Command) (api.Op, bool) {
	switch cmd.Cmd {
	case CmdFlush:
		return api.FlushOp(), true
	case CmdAdd:
		return api.AddServiceOp(cmd.Service), true
	case CmdEdit:
		return api.EditServiceOp(cmd.Service), true
	case CmdDel:
		return api.DelServiceOp(cmd.Service.ServiceKey), true
	case CmdAddDest:
		return api.AddDestOp(cmd.Service.ServiceKey, cmd.Dest), true
	case CmdEditDest:
		return api.EditDestOp(cmd.Service.ServiceKey, cmd.Dest), true
	case CmdDelDest:
		return api.DelDestOp(cmd.Service.ServiceKey, cmd.Dest.Key()), true
	case CmdTimeout:
		return api.SetTimeoutsOp(cmd.Timeouts), true
	}
	return api.Op{}, false
}

// batch collects table commands and applies them through one Apply per
// size commands, keeping the meaning of running them one by one: when
// the director stops at a command, that command's error is handed to
// failed and the rest is sent again from the command after it.
type batch struct {
	d    api.Director
	size int
	ops  []api.Op
	// cmds and lines are each op's command and input line, for messages.
	cmds  []Cmd
	lines []int
	// each is set once the director turns out to have no batch call (a
	// govsd older than POST /v1/batch): the ops then go one by one.
	each bool
}

func newBatch(d api.Director, size int) *batch {
	if size <= 0 {
		size = DefaultBatchSize
	}
	size = min(size, api.MaxBatchOps)
	return &batch{d: d, size: size}
}

// add queues op; it reports whether the batch is full and should be sent.
func (b *batch) add(op api.Op, cmd Cmd, line int) bool {
	b.ops = append(b.ops, op)
	b.cmds = append(b.cmds, cmd)
	b.lines = append(b.lines, line)
	return len(b.ops) >= b.size
}

// flush applies the queued ops. failed is called, in order, for each op
// the director refuses; returning false from it stops the flush there (and
// drops the ops after it). ok reports whether the last op applied was
// applied without error, for -R's exit code (true when nothing was queued).
func (b *batch) flush(ctx context.Context, failed func(cmd Cmd, line int, err error) bool) (ok bool) {
	ok = true
	ops, cmds, lines := b.ops, b.cmds, b.lines
	defer func() { b.ops, b.cmds, b.lines = b.ops[:0], b.cmds[:0], b.lines[:0] }()
	for len(ops) > 0 {
		i, err := b.apply(ctx, ops)
		if err == nil {
			return true
		}
		ok = i != len(ops)-1
		if !failed(cmds[i], lines[i], err) {
			return false
		}
		ops, cmds, lines = ops[i+1:], cmds[i+1:], lines[i+1:]
	}
	return ok
}

// apply sends ops and returns the index and error of the op that failed,
// or a nil error when all were applied. An error that names no op (the
// request itself failed) is taken as the first op's, as it would have
// been had that op been sent alone.
func (b *batch) apply(ctx context.Context, ops []api.Op) (int, error) {
	var err error
	if !b.each {
		_, err = b.d.Apply(ctx, ops)
		if noBatchCall(err) {
			b.each = true
		}
	}
	if b.each {
		_, err = api.ApplyEach(ctx, b.d, ops)
	}
	if err == nil {
		return 0, nil
	}
	var be *api.BatchError
	if errors.As(err, &be) && be.Index >= 0 && be.Index < len(ops) {
		return be.Index, be.Err
	}
	return 0, err
}

// noBatchCall reports whether err is a govsd that has no POST /v1/batch.
func noBatchCall(err error) bool {
	var be *api.BatchError
	if errors.As(err, &be) {
		return false
	}
	var ae *api.Error
	return errors.As(err, &ae) && (ae.Code == api.CodeNotFound || ae.Code == api.CodeMethodNotAllowed)
}
