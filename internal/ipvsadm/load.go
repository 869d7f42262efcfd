package ipvsadm

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/govs/govs/internal/api"
)

// Restore applies rules in ipvsadm -S format (what -R reads) to d, for
// govsd's --rules and its embedded demo configuration. Unlike -R, which
// reports a refused command and goes on, Restore stops at the first line
// that does not parse or that d refuses, and names the file and line.
// Only table commands are allowed: a listing or a daemon command in a
// rules file is an error. The commands go to d in batches of
// [DefaultBatchSize] ([api.Director.Apply]); a refused command is named by
// its own line, and the lines before it are applied, as one call a line
// would leave them.
func Restore(ctx context.Context, r io.Reader, name string, d api.Director) error {
	return restore(ctx, r, name, d, DefaultBatchSize)
}

// restore is Restore with batches of size table commands: they go to d
// through Apply, and the first one d refuses ends the restore, named by
// its line.
func restore(ctx context.Context, r io.Reader, name string, d api.Director, size int) error {
	p := &Parser{Prog: "govsd", Resolver: NumericResolver{}}
	lines := newRestoreLines(r)
	b := newBatch(d, size)
	var refused error
	send := func() error {
		b.flush(ctx, func(_ Cmd, line int, err error) bool {
			refused = fmt.Errorf("%s:%d: %w", name, line, err)
			return false
		})
		return refused
	}
	for {
		words, ok := lines.next()
		if !ok {
			return send()
		}
		at := fmt.Sprintf("%s:%d", name, lines.line)
		cmd, err := p.Parse(ctx, words)
		if err != nil {
			if err := send(); err != nil {
				return err
			}
			var ee *ExitError
			if errors.As(err, &ee) {
				return fmt.Errorf("%s: %s", at, firstLine(ee.Msg))
			}
			return fmt.Errorf("%s: %w", at, err)
		}
		op, ok := opOf(cmd)
		if !ok || !isTableCmd(cmd.Cmd) {
			if err := send(); err != nil {
				return err
			}
			return fmt.Errorf("%s: only table commands (-A -E -D -a -e -d -C --set) belong in a rules file, not %s", at, cmd.Cmd)
		}
		if b.add(op, cmd.Cmd, lines.line) {
			if err := send(); err != nil {
				return err
			}
		}
	}
}

// apply runs one command that changes the director's table or daemons.
func apply(ctx context.Context, d api.Director, cmd *Command) error {
	switch cmd.Cmd {
	case CmdFlush:
		return d.Flush(ctx)
	case CmdAdd:
		return d.AddService(ctx, cmd.Service)
	case CmdEdit:
		return d.EditService(ctx, cmd.Service)
	case CmdDel:
		return d.DelService(ctx, cmd.Service.ServiceKey)
	case CmdZero:
		return d.Zero(ctx, cmd.Key())
	case CmdAddDest:
		return d.AddDest(ctx, cmd.Service.ServiceKey, cmd.Dest)
	case CmdEditDest:
		return d.EditDest(ctx, cmd.Service.ServiceKey, cmd.Dest)
	case CmdDelDest:
		return d.DelDest(ctx, cmd.Service.ServiceKey, cmd.Dest.Key())
	case CmdTimeout:
		return d.SetTimeouts(ctx, cmd.Timeouts)
	case CmdStartDaemon:
		return d.StartDaemon(ctx, cmd.Daemon)
	case CmdStopDaemon:
		return d.StopDaemon(ctx, cmd.Daemon.State)
	}
	return fmt.Errorf("%s is not a table command", cmd.Cmd)
}

// isTableCmd reports whether cmd belongs in a rules file.
func isTableCmd(c Cmd) bool {
	switch c {
	case CmdFlush, CmdAdd, CmdEdit, CmdDel, CmdAddDest, CmdEditDest, CmdDelDest, CmdTimeout:
		return true
	}
	return false
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
