package connsync

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// UDPSender multicasts sync messages, one connected UDP socket per sync
// thread, set up as the kernel's make_send_sock sets its socket up.
type UDPSender struct {
	conns []*net.UDPConn
}

// Dial opens the master's sockets for cfg: for each sync thread a UDP
// socket whose multicasts leave by cfg.Interface with cfg.TTL, that does
// not loop its messages back, does not set DF (messages may be
// fragmented if the MTU shrinks), has SO_SNDBUF s.SockSize if set, is
// bound to the interface's first global IPv4 address (IPv4 groups) and is
// connected to cfg.Group, port cfg.Port+thread.
func Dial(cfg Config, s Settings) (*UDPSender, error) {
	cfg = cfg.WithDefaults()
	if err := errors.Join(cfg.Validate(), s.Validate()); err != nil {
		return nil, fmt.Errorf("dial sync group: %w", err)
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("dial sync group: mcast interface %s: %w", cfg.Interface, err)
	}
	v6 := cfg.Group.Is6()
	d := net.Dialer{Control: func(network, address string, rc syscall.RawConn) error {
		return control(rc, func(fd int) error {
			if v6 {
				return errors.Join(
					unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifi.Index),
					unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0),
					unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, int(cfg.TTL)),
					unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DONT),
					sockSize(fd, unix.SO_SNDBUF, s.SockSize),
				)
			}
			return errors.Join(
				unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(ifi.Index)}),
				unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0),
				unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, int(cfg.TTL)),
				unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT),
				sockSize(fd, unix.SO_SNDBUF, s.SockSize),
			)
		})
	}}
	network := "udp4"
	if v6 {
		network = "udp6"
	} else if src, ok := ifaceAddr4(ifi); ok {
		d.LocalAddr = &net.UDPAddr{IP: src.AsSlice()}
	}
	zone := ""
	if v6 && (cfg.Group.IsLinkLocalMulticast() || cfg.Group.IsInterfaceLocalMulticast()) {
		zone = cfg.Interface
	}
	snd := &UDPSender{}
	for id := range s.threads() {
		addr := net.JoinHostPort(cfg.Group.WithZone(zone).String(), strconv.Itoa(int(cfg.Port)+id))
		c, err := d.DialContext(context.Background(), network, addr)
		if err != nil {
			_ = snd.Close()
			return nil, fmt.Errorf("dial sync group %s on %s: %w", addr, cfg.Interface, err)
		}
		snd.conns = append(snd.conns, c.(*net.UDPConn))
	}
	return snd, nil
}

// Send sends msg on thread's socket.
func (s *UDPSender) Send(thread int, msg []byte) error {
	if thread < 0 || thread >= len(s.conns) {
		return fmt.Errorf("send sync message: no sync thread %d", thread)
	}
	_, err := s.conns[thread].Write(msg)
	return err
}

// Close closes the sockets.
func (s *UDPSender) Close() error {
	var errs []error
	for _, c := range s.conns {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// UDPReceiver receives sync messages on one sync thread's socket, set up
// as the kernel's make_receive_sock sets its socket up.
type UDPReceiver struct {
	conn *net.UDPConn
}

// Listen opens the backup's sockets for cfg, one per sync thread: a UDP
// socket with SO_REUSEADDR, SO_RCVBUF s.SockSize if set, bound to
// cfg.Interface and to cfg.Group, port cfg.Port+thread, that has joined
// the group on that interface.
func Listen(cfg Config, s Settings) ([]*UDPReceiver, error) {
	cfg = cfg.WithDefaults()
	if err := errors.Join(cfg.Validate(), s.Validate()); err != nil {
		return nil, fmt.Errorf("listen on sync group: %w", err)
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("listen on sync group: mcast interface %s: %w", cfg.Interface, err)
	}
	v6 := cfg.Group.Is6()
	lc := net.ListenConfig{Control: func(network, address string, rc syscall.RawConn) error {
		return control(rc, func(fd int) error {
			return errors.Join(
				unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1),
				sockSize(fd, unix.SO_RCVBUF, s.SockSize),
				unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, cfg.Interface),
			)
		})
	}}
	network, zone := "udp4", ""
	if v6 {
		network = "udp6"
		if cfg.Group.IsLinkLocalMulticast() || cfg.Group.IsInterfaceLocalMulticast() {
			zone = cfg.Interface
		}
	}
	var rs []*UDPReceiver
	closeAll := func() {
		for _, r := range rs {
			_ = r.Close()
		}
	}
	for id := range s.threads() {
		addr := net.JoinHostPort(cfg.Group.WithZone(zone).String(), strconv.Itoa(int(cfg.Port)+id))
		pc, err := lc.ListenPacket(context.Background(), network, addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("listen on sync group %s on %s: %w", addr, cfg.Interface, err)
		}
		c := pc.(*net.UDPConn)
		rs = append(rs, &UDPReceiver{conn: c})
		if err := join(c, cfg.Group, ifi.Index); err != nil {
			closeAll()
			return nil, fmt.Errorf("join sync group %s on %s: %w", cfg.Group, cfg.Interface, err)
		}
	}
	return rs, nil
}

// Receive reads one datagram into buf. A datagram longer than buf is
// truncated (and then fails the size check in Decode, as in the kernel).
func (r *UDPReceiver) Receive(buf []byte) (int, error) { return r.conn.Read(buf) }

// Close closes the socket, leaving the group.
func (r *UDPReceiver) Close() error { return r.conn.Close() }

// LocalAddr returns the socket's address.
func (r *UDPReceiver) LocalAddr() net.Addr { return r.conn.LocalAddr() }

func join(c *net.UDPConn, group netip.Addr, ifindex int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	return control(rc, func(fd int) error {
		if group.Is6() {
			return unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP,
				&unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(ifindex)})
		}
		return unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP,
			&unix.IPMreqn{Multiaddr: group.As4(), Ifindex: int32(ifindex)})
	})
}

func control(rc syscall.RawConn, f func(fd int) error) error {
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

func sockSize(fd, opt, size int) error {
	if size <= 0 {
		return nil
	}
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, size)
}

// ifaceAddr4 returns ifi's first IPv4 address of global scope, as
// inet_select_addr(dev, 0, RT_SCOPE_UNIVERSE) picks the source.
func ifaceAddr4(ifi *net.Interface) (netip.Addr, bool) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, false
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.Is4() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
			return ip, true
		}
	}
	return netip.Addr{}, false
}
