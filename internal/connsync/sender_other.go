//go:build !linux

package connsync

import (
	"fmt"
	"net"
)

// UDPSender multicasts sync messages (Linux only).
type UDPSender struct{}

// Dial fails with ErrNotSupported outside Linux.
func Dial(cfg Config, s Settings) (*UDPSender, error) {
	return nil, fmt.Errorf("dial sync group: %w", ErrNotSupported)
}

// Send fails with ErrNotSupported.
func (s *UDPSender) Send(thread int, msg []byte) error { return ErrNotSupported }

// Close does nothing.
func (s *UDPSender) Close() error { return nil }

// UDPReceiver receives sync messages (Linux only).
type UDPReceiver struct{}

// Listen fails with ErrNotSupported outside Linux.
func Listen(cfg Config, s Settings) ([]*UDPReceiver, error) {
	return nil, fmt.Errorf("listen on sync group: %w", ErrNotSupported)
}

// Receive fails with ErrNotSupported.
func (r *UDPReceiver) Receive(buf []byte) (int, error) { return 0, ErrNotSupported }

// Close does nothing.
func (r *UDPReceiver) Close() error { return nil }

// LocalAddr returns nil.
func (r *UDPReceiver) LocalAddr() net.Addr { return nil }
