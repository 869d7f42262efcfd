package vrrp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// SystemActions are the real Actions: virtual addresses through netlink,
// gratuitous ARP through a packet socket, unsolicited neighbour
// advertisements through an ICMPv6 socket, notify scripts through
// /bin/sh.
type SystemActions struct {
	cfg     SystemActionsConfig
	h       *netlink.Handle
	scripts *scriptRunner
	log     *slog.Logger
}

// NewSystemActions returns the real Actions.
func NewSystemActions(cfg SystemActionsConfig) (*SystemActions, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ns := netns.None()
	if cfg.NetnsPath != "" {
		var err error
		if ns, err = netns.GetFromPath(cfg.NetnsPath); err != nil {
			return nil, fmt.Errorf("open netns %s: %w", cfg.NetnsPath, err)
		}
		defer ns.Close()
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	return &SystemActions{cfg: cfg, h: h, log: log,
		scripts: newScriptRunner(cfg.Notify, cfg.ScriptTimeout, log)}, nil
}

// Close releases the netlink handle and stops the script runner.
func (s *SystemActions) Close() error {
	s.scripts.close()
	s.h.Close()
	return nil
}

func prefixAddr(p netip.Prefix) *netlink.Addr {
	ip := p.Addr()
	a := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(p.Bits(), ip.BitLen())}}
	if ip.Is6() {
		a.Flags = unix.IFA_F_NODAD // as keepalived: the VIP moves, it is not a duplicate
	}
	return a
}

// AddAddresses implements Actions.
func (s *SystemActions) AddAddresses(ifname string, addrs []netip.Prefix) error {
	link, err := s.h.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("add virtual addresses: find %s: %w", ifname, err)
	}
	var errs []error
	for _, p := range addrs {
		if err := s.h.AddrAdd(link, prefixAddr(p)); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("add %v to %s: %w", p, ifname, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveAddresses implements Actions.
func (s *SystemActions) RemoveAddresses(ifname string, addrs []netip.Prefix) error {
	link, err := s.h.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("remove virtual addresses: find %s: %w", ifname, err)
	}
	var errs []error
	for _, p := range addrs {
		err := s.h.AddrDel(link, prefixAddr(p))
		if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove %v from %s: %w", p, ifname, err))
		}
	}
	return errors.Join(errs...)
}

// Announce implements Actions: repeat rounds of a gratuitous ARP request
// (sender and target the address, to the broadcast address) per IPv4
// address and an unsolicited neighbour advertisement (override set, to
// all nodes) per IPv6 address.
func (s *SystemActions) Announce(ifname string, addrs []netip.Addr, repeat int) error {
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	var errs []error
	if len(v4) > 0 {
		errs = append(errs, s.garp(ifname, v4, repeat))
	}
	if len(v6) > 0 {
		errs = append(errs, s.unsolicitedNA(ifname, v6, repeat))
	}
	return errors.Join(errs...)
}

func (s *SystemActions) garp(ifname string, addrs []netip.Addr, repeat int) error {
	var c *arp.Client
	var ifi *net.Interface
	err := inNetns(s.cfg.NetnsPath, func() error {
		var err error
		if ifi, err = net.InterfaceByName(ifname); err != nil {
			return err
		}
		p, err := packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeARP), nil)
		if err != nil {
			return err
		}
		if c, err = arp.New(ifi, p); err != nil {
			p.Close()
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("gratuitous ARP on %s: %w", ifname, err)
	}
	send := func() error {
		defer c.Close()
		for i := range repeat {
			for _, a := range addrs {
				pkt, err := arp.NewPacket(arp.OperationRequest, ifi.HardwareAddr, a, ethernet.Broadcast, a)
				if err != nil {
					return err
				}
				if err := c.WriteTo(pkt, ethernet.Broadcast); err != nil {
					return fmt.Errorf("gratuitous ARP for %v on %s: %w", a, ifname, err)
				}
				if s.cfg.Garp.Interval > 0 && (i < repeat-1 || a != addrs[len(addrs)-1]) {
					time.Sleep(s.cfg.Garp.Interval)
				}
			}
		}
		return nil
	}
	if s.cfg.Garp.Interval > 0 {
		go func() {
			if err := send(); err != nil {
				s.log.Warn("announce", "err", err)
			}
		}()
		return nil
	}
	return send()
}

func (s *SystemActions) unsolicitedNA(ifname string, addrs []netip.Addr, repeat int) error {
	var c *ndp.Conn
	var ifi *net.Interface
	err := inNetns(s.cfg.NetnsPath, func() error {
		var err error
		if ifi, err = net.InterfaceByName(ifname); err != nil {
			return err
		}
		c, _, err = ndp.Listen(ifi, ndp.LinkLocal)
		return err
	})
	if err != nil {
		return fmt.Errorf("unsolicited NA on %s: %w", ifname, err)
	}
	allNodes := netip.MustParseAddr("ff02::1")
	send := func() error {
		defer c.Close()
		for i := range repeat {
			for _, a := range addrs {
				m := &ndp.NeighborAdvertisement{
					Override: true, TargetAddress: a,
					Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: ifi.HardwareAddr}},
				}
				if err := c.WriteTo(m, nil, allNodes); err != nil {
					return fmt.Errorf("unsolicited NA for %v on %s: %w", a, ifname, err)
				}
				if s.cfg.Garp.NAInterval > 0 && (i < repeat-1 || a != addrs[len(addrs)-1]) {
					time.Sleep(s.cfg.Garp.NAInterval)
				}
			}
		}
		return nil
	}
	if s.cfg.Garp.NAInterval > 0 {
		go func() {
			if err := send(); err != nil {
				s.log.Warn("announce", "err", err)
			}
		}()
		return nil
	}
	return send()
}

// Notify implements Actions.
func (s *SystemActions) Notify(t Transition) {
	s.scripts.notify(t)
	if s.cfg.OnTransition != nil {
		s.cfg.OnTransition(t)
	}
}
