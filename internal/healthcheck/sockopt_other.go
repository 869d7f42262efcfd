//go:build !linux

package healthcheck

import (
	"errors"
	"syscall"
)

var errNotSupported = errors.New("fwmark and bind_if are not supported on this OS")

func (o ConnOptions) control() func(network, address string, c syscall.RawConn) error {
	if o.FWMark == 0 && o.BindIf == "" {
		return nil
	}
	return func(string, string, syscall.RawConn) error { return errNotSupported }
}
