//go:build !linux

package ebpf

import (
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/govs/govs/internal/dataplane"
)

// DefaultPinPath is where maps and links are pinned.
const DefaultPinPath = "/sys/fs/bpf/govs"

// Options configure the eBPF data plane (see the Linux build).
type Options struct {
	Interfaces      []string
	XDP             bool
	PinPath         string
	MaxConns        uint32
	MaxServices     uint32
	MaxDests        uint32
	MaxHashServices uint32
	SweepInterval   time.Duration
	MarkRules       []MarkRule
}

// Dataplane is the eBPF data plane; it exists only on Linux.
type Dataplane struct{ dataplane.Dataplane }

// New fails: eBPF forwarding needs Linux.
func New(Options, *slog.Logger) (*Dataplane, error) {
	return nil, fmt.Errorf("ebpf data plane on %s: %w (it needs Linux)", runtime.GOOS, dataplane.ErrUnsupported)
}

// Remove fails: eBPF forwarding needs Linux.
func Remove(string) error {
	return fmt.Errorf("ebpf data plane on %s: %w (it needs Linux)", runtime.GOOS, dataplane.ErrUnsupported)
}
