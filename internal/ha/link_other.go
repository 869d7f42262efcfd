//go:build !linux

package ha

import (
	"context"
	"fmt"
	"runtime"

	"github.com/govs/govs/internal/vrrp"
)

// watchLinks fails: interface tracking uses netlink.
func watchLinks(ctx context.Context, report func(ifname string, up bool)) error {
	return fmt.Errorf("track interfaces on %s: %w", runtime.GOOS, vrrp.ErrUnsupported)
}
