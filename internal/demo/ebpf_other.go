//go:build !linux

package demo

import (
	"context"
	"errors"
	"io"
)

// RunEBPF is the eBPF demo; it needs Linux (network namespaces, BPF).
func RunEBPF(ctx context.Context, out io.Writer, mode string, requests int) error {
	return errors.New("the eBPF demo is not supported on this OS: it needs Linux network namespaces and BPF")
}
