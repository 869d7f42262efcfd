package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/ipvs"
)

func (p *Path) init() error {
	p.open = p.openLinux
	return nil
}

// openLinux resolves the path to the realserver (route, interface,
// source address, neighbour entry) and opens the check's sockets: an
// AF_PACKET datagram socket with the probe's filter to receive (on the
// interface for DR; on all interfaces for TUN, whose answers may come
// back another way), an AF_PACKET raw socket to send frames on the
// segment, and for TUN a raw IP socket (IPIP, IPv6-in-IPv6) or a UDP
// socket (GUE) that sends the inner packet to the realserver as the
// kernel routes it.
func (p *Path) openLinux(pr *probe) (rt pathRoute, _ pathConn, err error) {
	rip := p.opts.ConnectIP
	var routes []netlink.Route
	if p.opts.Interface != "" {
		routes, err = netlink.RouteGetWithOptions(addrIP(rip), &netlink.RouteGetOptions{Oif: p.opts.Interface})
	} else {
		routes, err = netlink.RouteGet(addrIP(rip))
	}
	if err == nil && len(routes) == 0 {
		err = errors.New("no route")
	}
	if err != nil {
		return rt, nil, fmt.Errorf("route to realserver %s: %w", rip, err)
	}
	r := routes[0]
	ifi, err := net.InterfaceByIndex(r.LinkIndex)
	if err != nil {
		return rt, nil, fmt.Errorf("interface of the route to %s: %w", rip, err)
	}
	rt.ifname, rt.mac, rt.src = ifi.Name, ifi.HardwareAddr, p.opts.BindTo
	if !rt.src.IsValid() {
		if a, ok := netip.AddrFromSlice(r.Src); ok {
			rt.src = a.Unmap()
		}
	}
	if !rt.src.IsValid() || rt.src.Is4() != rip.Is4() {
		return rt, nil, fmt.Errorf("no source address for realserver %s on %s: add one or set bindto", rip, ifi.Name)
	}
	ether := len(ifi.HardwareAddr) == 6 && ifi.Flags&net.FlagLoopback == 0
	rt.onLink = ether && r.Gw == nil
	if p.opts.Method == ipvs.Route && !rt.onLink {
		if r.Gw != nil {
			return rt, nil, fmt.Errorf("%w: realserver %s is reached through gateway %s on %s: DR forwards to realservers on the director's segments only",
				ErrNotOnLink, rip, r.Gw, ifi.Name)
		}
		return rt, nil, fmt.Errorf("%w: interface %s has no Ethernet address: DR needs an Ethernet segment", ErrNotOnLink, ifi.Name)
	}
	if rt.onLink {
		rt.rsMAC = neighbour(r.LinkIndex, rip)
	}

	filter, err := pr.filter()
	if err != nil {
		return rt, nil, fmt.Errorf("assemble filter: %w", err)
	}
	c := &linuxPathConn{}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	rxIfi := ifi
	if p.opts.Method == ipvs.Tunnel {
		rxIfi = &net.Interface{Index: 0} // any
	}
	if c.rx, err = packet.Listen(rxIfi, packet.Datagram, unix.ETH_P_ALL, &packet.Config{Filter: filter}); err != nil {
		return rt, nil, fmt.Errorf("open packet socket on %s: %w", rxIfi.Name, err)
	}
	if rt.onLink {
		// Protocol 0: this socket sends and receives nothing.
		if c.tx, err = packet.Listen(ifi, packet.Raw, 0, nil); err != nil {
			return rt, nil, fmt.Errorf("open packet socket on %s: %w", ifi.Name, err)
		}
	}
	if p.opts.Method == ipvs.Tunnel {
		if c.tun, err = p.tunnel(rt.src); err != nil {
			return rt, nil, err
		}
	}
	return rt, c, nil
}

// neighbour is the realserver's MAC from the neighbour table, nil when
// there is no usable entry (the check then asks for it).
func neighbour(index int, ip netip.Addr) net.HardwareAddr {
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	ns, err := netlink.NeighList(index, fam)
	if err != nil {
		return nil
	}
	const usable = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE | netlink.NUD_PERMANENT
	for _, n := range ns {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == ip && len(n.HardwareAddr) == 6 && n.State&usable != 0 {
			return n.HardwareAddr
		}
	}
	return nil
}

// tunnel opens the socket that sends the inner packet to the realserver.
func (p *Path) tunnel(src netip.Addr) (tunnelConn, error) {
	rip := p.opts.ConnectIP
	ctx := context.Background()
	if p.opts.TunType == ipvs.TunGUE {
		d := net.Dialer{LocalAddr: &net.UDPAddr{IP: addrIP(src)}, Control: p.opts.control()}
		c, err := d.DialContext(ctx, "udp", netip.AddrPortFrom(rip, p.opts.TunPort).String())
		if err != nil {
			return nil, fmt.Errorf("open GUE socket to %s port %d: %w", rip, p.opts.TunPort, err)
		}
		return writerConn{c}, nil
	}
	network := "ip4:4"
	if rip.Is6() {
		network = "ip6:41"
	}
	lc := net.ListenConfig{Control: p.opts.control()}
	c, err := lc.ListenPacket(ctx, network, src.String())
	if err != nil {
		return nil, fmt.Errorf("open %s tunnel socket: %w", p.opts.TunType, err)
	}
	return packetWriter{c, &net.IPAddr{IP: addrIP(rip)}}, nil
}

type tunnelConn interface {
	io.Writer
	io.Closer
}

type writerConn struct{ net.Conn }

type packetWriter struct {
	net.PacketConn
	to net.Addr
}

func (w packetWriter) Write(b []byte) (int, error) { return w.WriteTo(b, w.to) }

// linuxPathConn is the sockets of one check.
type linuxPathConn struct {
	rx, tx *packet.Conn
	tun    tunnelConn
}

func (c *linuxPathConn) WriteFrame(f []byte) error {
	if c.tx == nil {
		return errors.New("the realserver is not on the director's segment")
	}
	_, err := c.tx.WriteTo(f, &packet.Addr{HardwareAddr: net.HardwareAddr(f[0:6])})
	return err
}

func (c *linuxPathConn) WriteTunnel(b []byte) error {
	if c.tun == nil {
		return errors.New("no tunnel socket")
	}
	_, err := c.tun.Write(b)
	return err
}

func (c *linuxPathConn) ReadPacket(b []byte) (int, net.HardwareAddr, error) {
	n, addr, err := c.rx.ReadFrom(b)
	var mac net.HardwareAddr
	if a, ok := addr.(*packet.Addr); ok && a != nil {
		mac = a.HardwareAddr
	}
	return n, mac, err
}

func (c *linuxPathConn) SetReadDeadline(t time.Time) error { return c.rx.SetReadDeadline(t) }

func (c *linuxPathConn) Close() error {
	var errs []error
	if c.rx != nil {
		errs = append(errs, c.rx.Close())
	}
	if c.tx != nil {
		errs = append(errs, c.tx.Close())
	}
	if c.tun != nil {
		errs = append(errs, c.tun.Close())
	}
	return errors.Join(errs...)
}
