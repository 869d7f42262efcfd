package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// RawConn is the Conn of a real interface: a raw IP socket of protocol
// 112 bound to the interface, joined to the VRRP group, sending with
// TTL/hop limit 255 and reading the TTL and destination of what it
// receives.
type RawConn struct {
	ifi   *net.Interface
	src   netip.Addr
	v4    *ipv4.RawConn
	v6    *ipv6.PacketConn
	recv  chan *Received
	log   *slog.Logger
	close sync.Once
	done  chan struct{}
}

// Dial opens a raw VRRP socket on cfg.Interface.
func Dial(cfg ConnConfig) (*RawConn, error) {
	c := &RawConn{recv: make(chan *Received, 64), done: make(chan struct{}), log: cfg.Logger}
	if c.log == nil {
		c.log = slog.Default()
	}
	err := inNetns(cfg.NetnsPath, func() error { return c.open(cfg) })
	if err != nil {
		return nil, fmt.Errorf("open vrrp socket on %s: %w", cfg.Interface, err)
	}
	go c.readLoop()
	return c, nil
}

func (c *RawConn) open(cfg ConnConfig) error {
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return err
	}
	c.ifi = ifi
	c.src = cfg.Src
	if !c.src.IsValid() {
		if c.src, err = interfaceSource(ifi, cfg.IPv6); err != nil {
			return err
		}
	}
	network, laddr := "ip4:112", "0.0.0.0"
	if cfg.IPv6 {
		network, laddr = "ip6:112", "::"
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifi.Name)
			if serr == nil && !cfg.IPv6 {
				// Only the groups this socket joined, not every group
				// any socket on the host joined.
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0)
			}
		})
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(context.Background(), network, laddr)
	if err != nil {
		return err
	}
	if err := c.setup(pc, cfg); err != nil {
		pc.Close()
		return err
	}
	return nil
}

func (c *RawConn) setup(pc net.PacketConn, cfg ConnConfig) error {
	group := cfg.Group
	if cfg.IPv6 {
		if !group.IsValid() {
			group = Group6
		}
		p := ipv6.NewPacketConn(pc)
		c.v6 = p
		// The kernel fills in and verifies the checksum at offset 6, with
		// the pseudo-header of the addresses it really uses.
		steps := []error{
			p.SetChecksum(true, 6),
			p.SetMulticastHopLimit(TTL),
			p.SetHopLimit(TTL),
			p.SetMulticastLoopback(false),
			p.SetMulticastInterface(c.ifi),
			p.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true),
		}
		if !cfg.Unicast {
			steps = append(steps, p.JoinGroup(c.ifi, &net.IPAddr{IP: group.AsSlice()}))
		}
		return errors.Join(steps...)
	}
	if !group.IsValid() {
		group = Group4
	}
	r, err := ipv4.NewRawConn(pc)
	if err != nil {
		return err
	}
	c.v4 = r
	steps := []error{
		r.SetMulticastTTL(TTL),
		r.SetMulticastLoopback(false),
		r.SetMulticastInterface(c.ifi),
		r.SetControlMessage(ipv4.FlagInterface, true),
	}
	if !cfg.Unicast {
		steps = append(steps, r.JoinGroup(c.ifi, &net.IPAddr{IP: group.AsSlice()}))
	}
	return errors.Join(steps...)
}

// interfaceSource picks the primary IPv4 address, or the link-local IPv6
// address, of ifi. An IPv6 link-local address may still be tentative
// (duplicate address detection): wait for it a little.
func interfaceSource(ifi *net.Interface, v6 bool) (netip.Addr, error) {
	link, err := netlink.LinkByIndex(ifi.Index)
	if err != nil {
		return netip.Addr{}, err
	}
	family := netlink.FAMILY_V4
	if v6 {
		family = netlink.FAMILY_V6
	}
	for try := 0; ; try++ {
		addrs, err := netlink.AddrList(link, family)
		if err != nil {
			return netip.Addr{}, err
		}
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			if v6 && (!ip.IsLinkLocalUnicast() || a.Flags&unix.IFA_F_TENTATIVE != 0) {
				continue
			}
			if !v6 && a.Flags&unix.IFA_F_SECONDARY != 0 {
				continue
			}
			return ip, nil
		}
		if !v6 || try >= 50 {
			return netip.Addr{}, fmt.Errorf("no usable %s address on %s: set unicast_src_ip or mcast_src_ip", map[bool]string{false: "IPv4", true: "link-local IPv6"}[v6], ifi.Name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Send implements Conn.
func (c *RawConn) Send(a *Advert, dst netip.Addr) error {
	b, err := a.Marshal(c.src, dst)
	if err != nil {
		return err
	}
	if c.v6 != nil {
		b[6], b[7] = 0, 0 // the kernel computes it
		cm := &ipv6.ControlMessage{HopLimit: TTL, Src: c.src.AsSlice(), IfIndex: c.ifi.Index}
		_, err = c.v6.WriteTo(b, cm, &net.IPAddr{IP: dst.AsSlice(), Zone: c.ifi.Name})
	} else {
		h := &ipv4.Header{
			Version: ipv4.Version, Len: ipv4.HeaderLen, TOS: 0xc0, // network control
			TotalLen: ipv4.HeaderLen + len(b), TTL: TTL, Protocol: ProtocolNumber,
			Src: c.src.AsSlice(), Dst: dst.AsSlice(),
		}
		err = c.v4.WriteTo(h, b, nil)
	}
	if err != nil {
		return fmt.Errorf("send advert to %v: %w", dst, err)
	}
	return nil
}

func (c *RawConn) readLoop() {
	defer close(c.recv)
	buf := make([]byte, 65536)
	for {
		r, err := c.read(buf)
		if err != nil {
			select {
			case <-c.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			c.log.Debug("vrrp packet dropped", "interface", c.ifi.Name, "err", err)
			continue
		}
		select {
		case c.recv <- r:
		case <-c.done:
			return
		}
	}
}

func (c *RawConn) read(buf []byte) (*Received, error) {
	if c.v6 != nil {
		n, cm, src, err := c.v6.ReadFrom(buf)
		if err != nil {
			return nil, err
		}
		r := &Received{TTL: -1}
		if ia, ok := src.(*net.IPAddr); ok {
			r.Src, _ = netip.AddrFromSlice(ia.IP)
		}
		if cm != nil {
			r.TTL, r.IfIndex = cm.HopLimit, cm.IfIndex
			r.Dst, _ = netip.AddrFromSlice(cm.Dst)
		}
		a, err := Decode(buf[:n], r.Src, r.Dst)
		if err != nil {
			return nil, fmt.Errorf("from %v: %w", r.Src, err)
		}
		r.Advert = *a
		return r, nil
	}
	h, p, cm, err := c.v4.ReadFrom(buf)
	if err != nil {
		return nil, err
	}
	r := &Received{TTL: h.TTL}
	r.Src, _ = netip.AddrFromSlice(h.Src.To4())
	r.Dst, _ = netip.AddrFromSlice(h.Dst.To4())
	if cm != nil {
		r.IfIndex = cm.IfIndex
	}
	if h.Protocol != ProtocolNumber {
		return nil, fmt.Errorf("from %v: %w: %d", r.Src, ErrProtocol, h.Protocol)
	}
	if h.TotalLen != h.Len+len(p) {
		return nil, fmt.Errorf("from %v: %w: IP total length %d, have %d", r.Src, ErrLength, h.TotalLen, h.Len+len(p))
	}
	a, err := Decode(p, r.Src, r.Dst)
	if err != nil {
		return nil, fmt.Errorf("from %v: %w", r.Src, err)
	}
	r.Advert = *a
	return r, nil
}

// Recv implements Conn.
func (c *RawConn) Recv() <-chan *Received { return c.recv }

// LocalAddr implements Conn.
func (c *RawConn) LocalAddr() netip.Addr { return c.src }

// Close implements Conn.
func (c *RawConn) Close() error {
	var err error
	c.close.Do(func() {
		close(c.done)
		if c.v6 != nil {
			err = c.v6.Close()
		} else {
			err = c.v4.Close()
		}
	})
	return err
}

// inNetns runs f with the calling thread in the network namespace at
// path ("" runs f as is). Sockets f opens stay in that namespace.
func inNetns(path string, f func() error) error {
	if path == "" {
		return f()
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer ns.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns %s: %w", path, err)
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: it is in the wrong namespace and the
		// runtime will discard it when the goroutine ends.
		return errors.Join(ferr, fmt.Errorf("restore netns: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}
