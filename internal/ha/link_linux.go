package ha

import (
	"context"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// linkUp is keepalived's view of an interface: administratively up and
// with carrier (operational state up, or unknown for devices that do not
// report one, such as lo and tun).
func linkUp(a *netlink.LinkAttrs) bool {
	if a.RawFlags&unix.IFF_UP == 0 {
		return false
	}
	return a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown
}

// watchLinks reports every interface's state, then every change, from
// netlink link notifications, until ctx ends.
func watchLinks(ctx context.Context, report func(ifname string, up bool)) error {
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{ListExisting: true}); err != nil {
		return fmt.Errorf("subscribe to link updates: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-ch:
			if !ok {
				return fmt.Errorf("link updates: subscription closed")
			}
			a := u.Link.Attrs()
			if u.Header.Type == unix.RTM_DELLINK {
				report(a.Name, false)
				continue
			}
			report(a.Name, linkUp(a))
		}
	}
}
