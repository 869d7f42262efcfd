package main

import (
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/netns"
)

func TestNetnsStaticAddress(t *testing.T) {
	netns.RequireRoot(t)
	ns := netns.New(t, "staticip")
	a := config.IPAddress{Prefix: netip.MustParsePrefix("10.9.8.7/24"), Dev: "lo", Brd: "+", Scope: "host", Label: "lo:vip"}
	ns.MustDo(func() error {
		if err := addAddress(a, ""); err != nil {
			return err
		}
		// Present already: not an error (a restarted govsd).
		if err := addAddress(a, ""); err != nil {
			return err
		}
		link, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, got := range addrs {
			if got.IP.String() == "10.9.8.7" {
				if got.Label != "lo:vip" || got.Scope != unix.RT_SCOPE_HOST || got.Broadcast.String() != "10.9.8.255" {
					t.Errorf("address = %+v, want label lo:vip, scope host, broadcast 10.9.8.255", got)
				}
				return nil
			}
		}
		t.Errorf("10.9.8.7/24 not on lo: %v", addrs)
		return nil
	})
	if err := addAddress(config.IPAddress{Prefix: netip.MustParsePrefix("10.9.8.8/32")}, ""); err == nil {
		t.Error("an address without a device was accepted")
	}
}

func TestParseScope(t *testing.T) {
	for in, want := range map[string]int{"": unix.RT_SCOPE_UNIVERSE, "host": unix.RT_SCOPE_HOST, "link": unix.RT_SCOPE_LINK, "200": 200} {
		if got, err := parseScope(in); err != nil || got != want {
			t.Errorf("parseScope(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseScope("galaxy"); err == nil {
		t.Error("unknown scope accepted")
	}
}
