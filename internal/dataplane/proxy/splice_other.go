//go:build !linux

package proxy

import (
	"net"
	"syscall"
)

// pipePool is empty where there is no splice(2).
type pipePool struct{}

func newPipePool() *pipePool { return &pipePool{} }
func (*pipePool) close()     {}

// pump forwards src to dst through a user-space buffer: splice(2) is
// Linux only.
func (p *Proxy) pump(dst, src *net.TCPConn, _, _ syscall.RawConn, report func(n int) bool) pumpResult {
	return copyBuffered(dst, src, report)
}
