//go:build !linux

package vrrp

import (
	"fmt"
	"net/netip"
)

// RawConn is the raw socket Conn; only Linux has one.
type RawConn struct{}

// Dial fails: raw VRRP sockets are implemented for Linux only.
func Dial(cfg ConnConfig) (*RawConn, error) {
	return nil, fmt.Errorf("open vrrp socket on %s: %w", cfg.Interface, ErrUnsupported)
}

// Send implements Conn.
func (*RawConn) Send(*Advert, netip.Addr) error { return ErrUnsupported }

// Recv implements Conn.
func (*RawConn) Recv() <-chan *Received { return nil }

// LocalAddr implements Conn.
func (*RawConn) LocalAddr() netip.Addr { return netip.Addr{} }

// Close implements Conn.
func (*RawConn) Close() error { return nil }

// SystemActions are the real Actions; only Linux has them.
type SystemActions struct{}

// NewSystemActions fails: address management is implemented for Linux
// only.
func NewSystemActions(SystemActionsConfig) (*SystemActions, error) {
	return nil, fmt.Errorf("vrrp actions: %w", ErrUnsupported)
}

// Close implements io.Closer.
func (*SystemActions) Close() error { return nil }

// AddAddresses implements Actions.
func (*SystemActions) AddAddresses(string, []netip.Prefix) error { return ErrUnsupported }

// RemoveAddresses implements Actions.
func (*SystemActions) RemoveAddresses(string, []netip.Prefix) error { return ErrUnsupported }

// Announce implements Actions.
func (*SystemActions) Announce(string, []netip.Addr, int) error { return ErrUnsupported }

// Notify implements Actions.
func (*SystemActions) Notify(Transition) {}

var _ = newScriptRunner // used by the Linux actions
