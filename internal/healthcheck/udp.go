package healthcheck

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"
)

// DefaultUDPMaxReplyLength is keepalived's max_reply_length.
const DefaultUDPMaxReplyLength = 255

// UDPOptions configure a UDP_CHECK.
type UDPOptions struct {
	ConnOptions
	// Payload is sent as the datagram; nil sends 16 random bytes.
	Payload []byte
	// RequireReply is require_reply: a reply must arrive within the
	// timeout, its length within [MinReplyLength, MaxReplyLength].
	RequireReply bool
	// Reply, if set, must match the reply over the shorter of the two,
	// on the bits set in ReplyMask (nil mask: every bit). An X digit in
	// keepalived's hex string is a zero mask nibble.
	Reply, ReplyMask []byte
	MinReplyLength   int
	// MaxReplyLength; 0 means DefaultUDPMaxReplyLength.
	MaxReplyLength int
}

// UDP is keepalived's UDP_CHECK. It sends one datagram on a connected
// socket. An ICMP error (port, host or net unreachable), which the kernel
// reports on the connected socket, fails the check. Without
// require_reply, silence until the timeout passes the check; with it, a
// fitting reply is needed.
type UDP struct{ opts UDPOptions }

// NewUDP returns a UDP_CHECK checker.
func NewUDP(opts UDPOptions) (*UDP, error) {
	var errs []error
	if err := opts.validate("UDP_CHECK", true); err != nil {
		errs = append(errs, err)
	}
	if opts.MaxReplyLength == 0 {
		opts.MaxReplyLength = DefaultUDPMaxReplyLength
	}
	if opts.MinReplyLength < 0 || opts.MinReplyLength > opts.MaxReplyLength {
		errs = append(errs, fmt.Errorf("%w: UDP_CHECK: min_reply_length %d must be between 0 and max_reply_length %d", ErrConfig, opts.MinReplyLength, opts.MaxReplyLength))
	}
	if opts.ReplyMask != nil && len(opts.ReplyMask) != len(opts.Reply) {
		errs = append(errs, fmt.Errorf("%w: UDP_CHECK: reply mask has %d bytes, reply %d", ErrConfig, len(opts.ReplyMask), len(opts.Reply)))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &UDP{opts: opts}, nil
}

// Check sends the payload and waits.
func (u *UDP) Check(ctx context.Context) Result {
	start := time.Now()
	payload := u.opts.Payload
	if payload == nil {
		payload = make([]byte, 16)
		rand.Read(payload)
	}
	conn, err := u.opts.dial(ctx, "udp")
	if err != nil {
		return down(start, err)
	}
	defer conn.Close()
	conn.SetDeadline(deadline(ctx, u.opts.timeout()))
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.Write(payload); err != nil {
		return down(start, classify(fmt.Errorf("send: %w", err)))
	}
	buf := make([]byte, 65536)
	n, err := conn.Read(buf)
	if err != nil {
		err = classify(fmt.Errorf("read reply: %w", err))
		if errors.Is(err, ErrTimeout) && !u.opts.RequireReply && ctx.Err() == nil {
			return up(start, "no ICMP error")
		}
		return down(start, err)
	}
	if !u.opts.RequireReply {
		return up(start, fmt.Sprintf("reply of %d bytes", n))
	}
	if err := u.matchReply(buf[:n]); err != nil {
		return down(start, err)
	}
	return up(start, fmt.Sprintf("reply of %d bytes", n))
}

func (u *UDP) matchReply(b []byte) error {
	if len(b) < u.opts.MinReplyLength || len(b) > u.opts.MaxReplyLength {
		return fmt.Errorf("%w: reply of %d bytes, want %d-%d", ErrUnexpected, len(b), u.opts.MinReplyLength, u.opts.MaxReplyLength)
	}
	for i := 0; i < len(b) && i < len(u.opts.Reply); i++ {
		mask := byte(0xff)
		if u.opts.ReplyMask != nil {
			mask = u.opts.ReplyMask[i]
		}
		if b[i]&mask != u.opts.Reply[i]&mask {
			return fmt.Errorf("%w: reply byte %d is %#02x, want %#02x (mask %#02x)", ErrUnexpected, i, b[i], u.opts.Reply[i], mask)
		}
	}
	return nil
}
