package healthcheck

import (
	"context"
	"log/slog"
	"os/exec"
	"syscall"
	"time"
)

// ExecNotifier runs notification scripts as keepalived's notify_exec
// does: in the background, without waiting for them, each in its own
// process group, killed after Timeout.
type ExecNotifier struct {
	Logger  *slog.Logger  // nil: discard
	Timeout time.Duration // 0: 30 s
}

// Notify starts n.Script, if any.
func (x *ExecNotifier) Notify(n Notification) {
	log := x.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if n.Script == "" {
		return
	}
	argv, err := SplitCommand(n.Script)
	if err != nil || len(argv) == 0 {
		log.Error("notify script", "kind", n.Kind.String(), "script", n.Script, "err", err)
		return
	}
	timeout := x.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		cancel()
		log.Error("notify script", "kind", n.Kind.String(), "script", n.Script, "err", err)
		return
	}
	go func() {
		defer cancel()
		if err := cmd.Wait(); err != nil {
			log.Warn("notify script failed", "kind", n.Kind.String(), "script", n.Script, "err", err)
		}
	}()
}
