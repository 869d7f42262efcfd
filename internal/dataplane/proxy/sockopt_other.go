//go:build !linux

package proxy

import "syscall"

// freebind does nothing where IP_FREEBIND does not exist: the VIP must be
// on the host before its service is added.
func freebind(string, string, syscall.RawConn) error { return nil }
