//go:build !linux

package healthcheck

import "fmt"

// init fails: the path check sends Ethernet frames and reads what comes
// back on AF_PACKET sockets, which only Linux has.
func (p *Path) init() error {
	return fmt.Errorf("check_via_vip to %s via %s: %w (AF_PACKET sockets are Linux only)", p.opts.VIP, p.opts.ConnectIP, ErrNotSupported)
}
