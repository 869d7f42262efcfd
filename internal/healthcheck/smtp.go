package healthcheck

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// SMTPOptions configure an SMTP_CHECK.
type SMTPOptions struct {
	ConnOptions
	// HeloName is helo_name; empty means the local host name.
	HeloName string
}

// SMTP is keepalived's SMTP_CHECK: connect, expect a 220 banner, send
// HELO and expect 250, send QUIT and expect 221. Multi-line replies
// ("250-...") are read to their last line.
type SMTP struct {
	opts SMTPOptions
	helo string
}

// NewSMTP returns an SMTP_CHECK checker.
func NewSMTP(opts SMTPOptions) (*SMTP, error) {
	if err := opts.validate("SMTP_CHECK", true); err != nil {
		return nil, err
	}
	helo := opts.HeloName
	if helo == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		helo = h
	}
	if strings.ContainsAny(helo, "\r\n") {
		return nil, fmt.Errorf("%w: SMTP_CHECK: helo_name %q contains a line break", ErrConfig, helo)
	}
	return &SMTP{opts: opts, helo: helo}, nil
}

// Check runs the SMTP dialogue.
func (s *SMTP) Check(ctx context.Context) Result {
	start := time.Now()
	conn, err := s.opts.dial(ctx, "tcp")
	if err != nil {
		return down(start, err)
	}
	defer conn.Close()
	conn.SetDeadline(deadline(ctx, s.opts.timeout()))
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	r := bufio.NewReader(conn)
	steps := []struct {
		send string
		want int
		what string
	}{
		{"", 220, "banner"},
		{"HELO " + s.helo + "\r\n", 250, "HELO"},
		{"QUIT\r\n", 221, "QUIT"},
	}
	for _, st := range steps {
		if st.send != "" {
			if _, err := conn.Write([]byte(st.send)); err != nil {
				return down(start, classify(fmt.Errorf("send %s: %w", st.what, err)))
			}
		}
		code, line, err := readSMTPReply(r)
		if err != nil {
			return down(start, classify(fmt.Errorf("read %s reply: %w", st.what, err)))
		}
		if code != st.want {
			return down(start, fmt.Errorf("%w: %s reply %q, want %d", ErrUnexpected, st.what, line, st.want))
		}
	}
	return up(start, "SMTP 221")
}

// readSMTPReply reads one reply, following "NNN-" continuation lines, and
// returns the code of the last line.
func readSMTPReply(r *bufio.Reader) (int, string, error) {
	for n := 0; n < 100; n++ {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, line, err
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 3 {
			return 0, line, fmt.Errorf("%w: short reply line %q", ErrUnexpected, line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil {
			return 0, line, fmt.Errorf("%w: reply line %q has no code", ErrUnexpected, line)
		}
		if len(line) > 3 && line[3] == '-' {
			continue
		}
		return code, line, nil
	}
	return 0, "", fmt.Errorf("%w: reply longer than 100 lines", ErrUnexpected)
}
