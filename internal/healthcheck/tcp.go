package healthcheck

import (
	"context"
	"time"
)

// TCPOptions configure a TCP_CHECK: the check passes when a TCP
// connection to connect_ip:connect_port is established within
// connect_timeout; the connection is closed at once.
type TCPOptions struct {
	ConnOptions
}

// TCP is keepalived's TCP_CHECK.
type TCP struct{ opts TCPOptions }

// NewTCP returns a TCP_CHECK checker.
func NewTCP(opts TCPOptions) (*TCP, error) {
	if err := opts.validate("TCP_CHECK", true); err != nil {
		return nil, err
	}
	return &TCP{opts: opts}, nil
}

// Check connects and closes.
func (t *TCP) Check(ctx context.Context) Result {
	start := time.Now()
	c, err := t.opts.dial(ctx, "tcp")
	if err != nil {
		return down(start, err)
	}
	c.Close()
	return up(start, "connected to "+t.opts.target().String())
}
