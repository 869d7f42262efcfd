package healthcheck

import (
	"fmt"
	"syscall"
)

// control sets SO_MARK (fwmark) and SO_BINDTODEVICE (bind_if) on checker
// sockets, as keepalived does; both need CAP_NET_ADMIN / CAP_NET_RAW.
func (o ConnOptions) control() func(network, address string, c syscall.RawConn) error {
	if o.FWMark == 0 && o.BindIf == "" {
		return nil
	}
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if o.FWMark != 0 {
				if e := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, int(o.FWMark)); e != nil {
					serr = fmt.Errorf("set fwmark %d: %w", o.FWMark, e)
					return
				}
			}
			if o.BindIf != "" {
				if e := syscall.BindToDevice(int(fd), o.BindIf); e != nil {
					serr = fmt.Errorf("bind to interface %s: %w", o.BindIf, e)
				}
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}
