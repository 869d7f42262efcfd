package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultMiscTimeout is used when MiscOptions.Timeout is 0. keepalived's
// default is the checker's delay_loop (60 s unless set); pass that.
const DefaultMiscTimeout = 60 * time.Second

// miscGrace is how long a script has between SIGTERM and SIGKILL, as in
// keepalived.
const miscGrace = 2 * time.Second

// MiscOptions configure a MISC_CHECK.
type MiscOptions struct {
	// Path is misc_path: the program and its arguments, split like
	// keepalived does (spaces separate, '...' and "..." quote, \ escapes).
	// It is executed directly, not through a shell.
	Path string
	// Timeout is misc_timeout.
	Timeout time.Duration
	// Dynamic is misc_dynamic: exit status 2..255 passes and sets the
	// weight to status-2; 0 passes with the configured weight; 1 fails.
	Dynamic bool
	// User and Group run the script under another identity (needs root).
	User, Group string
}

// Misc is keepalived's MISC_CHECK. The script runs in its own process
// group; on timeout the group gets SIGTERM, then SIGKILL after 2 s, so
// children it started die with it.
type Misc struct {
	opts MiscOptions
	argv []string
	cred *syscall.Credential
}

// NewMisc returns a MISC_CHECK checker.
func NewMisc(opts MiscOptions) (*Misc, error) {
	argv, err := SplitCommand(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: MISC_CHECK misc_path: %w", ErrConfig, err)
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("%w: MISC_CHECK needs misc_path", ErrConfig)
	}
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("%w: MISC_CHECK misc_timeout %s is negative", ErrConfig, opts.Timeout)
	}
	m := &Misc{opts: opts, argv: argv}
	if opts.User != "" {
		cred, err := lookupCred(opts.User, opts.Group)
		if err != nil {
			return nil, fmt.Errorf("%w: MISC_CHECK user: %w", ErrConfig, err)
		}
		m.cred = cred
	}
	return m, nil
}

func lookupCred(name, group string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	gidStr := u.Gid
	if group = strings.TrimPrefix(group, ":"); group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, err
		}
		gidStr = g.Gid
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(gidStr, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %s: non-numeric uid or gid", name)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// Check runs the script once.
func (m *Misc) Check(ctx context.Context) Result {
	start := time.Now()
	timeout := m.opts.Timeout
	if timeout == 0 {
		timeout = DefaultMiscTimeout
	}
	cmd := exec.Command(m.argv[0], m.argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: m.cred}
	if err := cmd.Start(); err != nil {
		return down(start, fmt.Errorf("run %s: %w", m.argv[0], err))
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var werr error
	timedOut := false
	select {
	case werr = <-done:
	case <-timer.C:
		timedOut = true
	case <-ctx.Done():
		timedOut = true
	}
	if timedOut {
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case werr = <-done:
		case <-time.After(miscGrace):
			syscall.Kill(-pgid, syscall.SIGKILL)
			werr = <-done
		}
	}
	// Whatever the script left behind in its group goes too.
	syscall.Kill(-pgid, syscall.SIGKILL)

	if timedOut {
		return down(start, fmt.Errorf("%w: %s ran longer than %s and was killed", ErrTimeout, m.argv[0], timeout))
	}
	status := 0
	if werr != nil {
		var ee *exec.ExitError
		if !errors.As(werr, &ee) {
			return down(start, fmt.Errorf("wait for %s: %w", m.argv[0], werr))
		}
		ws, _ := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return down(start, fmt.Errorf("%w: %s killed by signal %s", ErrUnexpected, m.argv[0], ws.Signal()))
		}
		status = ee.ExitCode()
	}
	return m.judge(start, status)
}

func (m *Misc) judge(start time.Time, status int) Result {
	switch {
	case status == 0:
		return up(start, "exit 0")
	case m.opts.Dynamic && status >= 2 && status <= 255:
		r := up(start, "exit "+strconv.Itoa(status))
		w := status - 2
		r.Weight = &w
		return r
	}
	return down(start, fmt.Errorf("%w: %s exited with status %d", ErrUnexpected, m.argv[0], status))
}

// SplitCommand splits a keepalived script line into arguments: blanks
// separate, single and double quotes group (the quotes are removed), and
// a backslash escapes the next character.
func SplitCommand(s string) ([]string, error) {
	var (
		args  []string
		cur   strings.Builder
		inArg bool
		quote rune
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == '\\' && quote != '\'':
			if i+1 >= len(rs) {
				return nil, errors.New("trailing backslash")
			}
			i++
			cur.WriteRune(rs[i])
			inArg = true
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case c == '\'' || c == '"':
			quote = c
			inArg = true
		case c == ' ' || c == '\t' || c == '\n':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(c)
			inArg = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args, nil
}
