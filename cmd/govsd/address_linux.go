package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/config"
)

// addAddress adds a static_ipaddress with netlink; an address already
// present is fine. defDev is global_defs' default_interface, for entries
// without "dev".
func addAddress(a config.IPAddress, defDev string) error {
	dev := a.Dev
	if dev == "" {
		dev = defDev
	}
	if dev == "" {
		return errors.New(`no device: add "dev IFNAME", or default_interface to global_defs`)
	}
	link, err := netlink.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("find device %s: %w", dev, err)
	}
	addr, err := netlinkAddr(a)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(link, addr); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add %s to %s: %w", a.Prefix, dev, err)
	}
	return nil
}

// netlinkAddr turns a keepalived address entry into netlink's form, with
// its broadcast, scope, label and peer.
func netlinkAddr(a config.IPAddress) (*netlink.Addr, error) {
	ip := a.Prefix.Addr()
	addr := &netlink.Addr{
		IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(a.Prefix.Bits(), ip.BitLen())},
		Label: a.Label,
	}
	switch a.Brd {
	case "", "-":
	case "+": // the prefix's last address, as ip(8) computes it
		last := a.Prefix.Masked().Addr().As4()
		hostBits := 32 - a.Prefix.Bits()
		for i := 3; i >= 0 && hostBits > 0; i-- {
			n := min(hostBits, 8)
			last[i] |= byte(1<<n - 1)
			hostBits -= n
		}
		addr.Broadcast = net.IP(last[:])
	default:
		b := net.ParseIP(a.Brd)
		if b == nil {
			return nil, fmt.Errorf("broadcast %q is not an address", a.Brd)
		}
		addr.Broadcast = b
	}
	scope, err := parseScope(a.Scope)
	if err != nil {
		return nil, err
	}
	addr.Scope = scope
	if a.Peer.IsValid() {
		p := a.Peer.Addr()
		addr.Peer = &net.IPNet{IP: p.AsSlice(), Mask: net.CIDRMask(a.Peer.Bits(), p.BitLen())}
	}
	return addr, nil
}

// parseScope accepts ip(8)'s scope names and numbers.
func parseScope(s string) (int, error) {
	switch s {
	case "", "global", "universe":
		return unix.RT_SCOPE_UNIVERSE, nil
	case "site":
		return unix.RT_SCOPE_SITE, nil
	case "link":
		return unix.RT_SCOPE_LINK, nil
	case "host":
		return unix.RT_SCOPE_HOST, nil
	case "nowhere":
		return unix.RT_SCOPE_NOWHERE, nil
	}
	n, err := strconv.ParseUint(s, 0, 8)
	if err != nil {
		return 0, fmt.Errorf("scope %q: use global, site, link, host, nowhere or a number", s)
	}
	return int(n), nil
}
