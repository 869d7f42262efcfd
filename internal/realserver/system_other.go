//go:build !linux

package realserver

import (
	"fmt"
	"runtime"
)

// NewSystem fails: a realserver is set up with Linux's netlink, sysctls
// and BPF.
func NewSystem() (System, error) {
	return nil, fmt.Errorf("realserver setup on %s: %w (it needs Linux)", runtime.GOOS, ErrUnsupported)
}
