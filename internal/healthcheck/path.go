package healthcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/govs/govs/internal/ipvs"
)

// Errors of the VIP path check. A down Result's Err wraps one of them (or
// ErrTimeout) so callers can tell the failures of the LVS-mini-HOWTO
// apart.
var (
	// ErrARPProblem: the realserver answers ARP requests (IPv4) or
	// neighbour solicitations (IPv6) for the VIP, so it would take the
	// VIP's traffic from the director: the HOWTO's "arp problem".
	ErrARPProblem = errors.New("realserver answers ARP for the VIP")
	// ErrRefused: the realserver answered the SYN to the VIP with a RST:
	// nothing listens on VIP:port (a service bound to the RIP only).
	ErrRefused = errors.New("connection refused")
	// ErrUnreachable: an ICMP error came back for the SYN (for a tunnel:
	// the realserver does not decapsulate).
	ErrUnreachable = errors.New("unreachable")
	// ErrNotOnLink: a DR realserver is not on a segment of the director
	// (the route to it goes through a gateway), or the interface has no
	// Ethernet address.
	ErrNotOnLink = errors.New("realserver not on the director's segment")
	// ErrNotSupported: the path check needs Linux (AF_PACKET sockets).
	ErrNotSupported = errors.New("not supported on this OS")
)

// pathARPGrace is how long a path check keeps listening for answers to
// its ARP request after the realserver answered the SYN. The request goes
// out before the SYN and a realserver handles both in order, so its ARP
// reply comes first; the grace covers reordering between the sockets.
const pathARPGrace = 25 * time.Millisecond

// PathOptions configure a VIP path check (govs's check_via_vip): instead
// of connecting to the RIP, the check sends a TCP SYN to VIP:port the way
// the director forwards the VIP's traffic, so it fails for a realserver
// that would drop or refuse real traffic even though the RIP answers.
//
// ConnectIP is the realserver (RIP) and ConnectPort the port at the VIP;
// BindTo, when set, is the director's address the SYN comes from and the
// realserver answers to (default: the source of the route to the RIP);
// Timeout is connect_timeout. BindPort and FWMark are not used: the
// source port is random and DR frames bypass routing.
type PathOptions struct {
	ConnOptions
	// VIP is the virtual server's address.
	VIP netip.Addr
	// Method is ipvs.Route (DR) or ipvs.Tunnel (TUN).
	Method ipvs.FwdMethod
	// TunType and TunPort are the tunnel of a TUN realserver: IPIP
	// (IPv6-in-IPv6 for IPv6) or GUE on TunPort.
	TunType ipvs.TunnelType
	TunPort uint16
	// Interface is the director's interface towards the realserver
	// (check_via_vip_interface); empty: the interface of the route to
	// the RIP.
	Interface string
}

func (o PathOptions) validate() error {
	const kind = "check_via_vip"
	errs := []error{o.ConnOptions.validate(kind, true)}
	switch {
	case !o.VIP.IsValid():
		errs = append(errs, fmt.Errorf("%w: %s: the VIP is required", ErrConfig, kind))
	case o.ConnectIP.IsValid() && o.VIP.Unmap().Is4() != o.ConnectIP.Unmap().Is4():
		// IPVS tunnels may mix families; the check would need a source
		// address of the VIP's family besides the route's: not done.
		errs = append(errs, fmt.Errorf("%w: %s: VIP %s and realserver %s are of different families", ErrConfig, kind, o.VIP, o.ConnectIP))
	}
	switch o.Method {
	case ipvs.Route:
	case ipvs.Tunnel:
		switch {
		case o.TunType == ipvs.TunGUE && o.TunPort == 0:
			errs = append(errs, fmt.Errorf("%w: %s: a GUE tunnel needs its port", ErrConfig, kind))
		case o.TunType != ipvs.TunIPIP && o.TunType != ipvs.TunGUE:
			errs = append(errs, fmt.Errorf("%w: %s: %s tunnels are not supported: use ipip or gue", ErrConfig, kind, o.TunType))
		}
	default:
		errs = append(errs, fmt.Errorf("%w: %s: forwarding method %s has no path to check: only DR and TUN", ErrConfig, kind, o.Method))
	}
	return errors.Join(errs...)
}

// Path is the VIP path check. Linux only: elsewhere NewPath fails with
// ErrNotSupported.
type Path struct {
	opts PathOptions
	// open resolves the path and opens its sockets (path_linux.go).
	open func(p *probe) (pathRoute, pathConn, error)
}

// NewPath returns a VIP path checker.
func NewPath(opts PathOptions) (*Path, error) {
	opts.VIP, opts.ConnectIP, opts.BindTo = opts.VIP.Unmap(), opts.ConnectIP.Unmap(), opts.BindTo.Unmap()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	p := &Path{opts: opts}
	if err := p.init(); err != nil {
		return nil, err
	}
	return p, nil
}

// pathRoute is the director's side of the path, resolved per check.
type pathRoute struct {
	ifname string
	mac    net.HardwareAddr // the director's interface
	src    netip.Addr       // the director's address the realserver answers
	// onLink: the realserver is on the interface's segment, so the check
	// can ask who answers for the VIP (and DR can send to it).
	onLink bool
	// rsMAC is the realserver's MAC from the neighbour table; nil: ask.
	rsMAC net.HardwareAddr
}

// pathConn is the sockets of one check.
type pathConn interface {
	// WriteFrame sends a whole Ethernet frame out of the director's
	// interface.
	WriteFrame(frame []byte) error
	// WriteTunnel sends payload (the inner packet, after a GUE header for
	// GUE) through the tunnel socket to the realserver.
	WriteTunnel(payload []byte) error
	// ReadPacket reads the next packet the probe's filter let through,
	// from its network header on, and its link-layer source.
	ReadPacket(b []byte) (int, net.HardwareAddr, error)
	SetReadDeadline(t time.Time) error
	Close() error
}

// Check sends the SYN along the forwarding path and waits for the answer.
func (p *Path) Check(ctx context.Context) Result {
	start := time.Now()
	pr := p.newProbe()
	rt, conn, err := p.open(pr)
	if err != nil {
		return down(start, err)
	}
	defer conn.Close()
	pr.src = netip.AddrPortFrom(rt.src, pr.src.Port())
	return p.run(ctx, start, conn, rt, pr)
}

func (p *Path) newProbe() *probe {
	sport := uint16(32768 + rand.IntN(61000-32768))
	if sport == p.opts.ConnectPort {
		sport++
	}
	pr := &probe{
		src:  netip.AddrPortFrom(p.opts.BindTo, sport),
		dst:  netip.AddrPortFrom(p.opts.VIP, p.opts.ConnectPort),
		seq:  rand.Uint32(),
		ipID: uint16(rand.Uint32()),
	}
	if p.opts.Method == ipvs.Tunnel && p.opts.TunType == ipvs.TunGUE {
		pr.tunPort = p.opts.TunPort
	}
	return pr
}

// where names the path in messages.
func (p *Path) where(rt pathRoute) string {
	s := "realserver " + p.opts.ConnectIP.String()
	if rt.rsMAC != nil {
		s += " (" + rt.rsMAC.String() + ")"
	}
	return s + " via " + rt.ifname
}

// run is the check once the sockets are open: resolve the realserver's
// MAC if needed, ask who has the VIP, send the SYN, read the answers.
func (p *Path) run(ctx context.Context, start time.Time, conn pathConn, rt pathRoute, pr *probe) Result {
	timeout := p.opts.timeout()
	dl := deadline(ctx, timeout)
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()
	if err := conn.SetReadDeadline(dl); err != nil {
		return down(start, fmt.Errorf("set deadline: %w", err))
	}
	buf := make([]byte, 2048)
	vip, rip := p.opts.VIP, p.opts.ConnectIP
	arp := "ARP"
	if vip.Is6() {
		arp = "neighbour solicitations"
	}

	if rt.onLink && rt.rsMAC == nil {
		if err := conn.WriteFrame(solicit(rt.mac, rt.src, rip)); err != nil {
			return down(start, fmt.Errorf("ask for %s on %s: %w", rip, rt.ifname, err))
		}
		for rt.rsMAC == nil {
			n, from, err := conn.ReadPacket(buf)
			if err != nil {
				return down(start, p.readErr(ctx, err, fmt.Sprintf("realserver %s does not answer %s on %s", rip, arp, rt.ifname), timeout))
			}
			if r := pr.classify(buf[:n], from); r.kind == replyNeighbor && r.from == rip {
				rt.rsMAC = r.mac
			}
		}
	}

	if rt.onLink {
		if err := conn.WriteFrame(solicit(rt.mac, rt.src, vip)); err != nil {
			return down(start, fmt.Errorf("ask for the VIP %s on %s: %w", vip, rt.ifname, err))
		}
	}
	syn := pr.syn()
	if err := p.send(conn, rt, syn); err != nil {
		return down(start, fmt.Errorf("send SYN to %s via %s: %w", pr.dst, rip, err))
	}

	// Read until the SYN's answer and, on the segment, whether the
	// realserver answers for the VIP: after the first of the two, wait
	// pathARPGrace for the other (an ARP answer after the SYN-ACK; the
	// SYN-ACK after an ARP answer, to reset the half-open connection).
	var verdict *Result
	var arpProblem, grace bool
	for verdict == nil || !arpProblem {
		n, from, err := conn.ReadPacket(buf)
		if err != nil {
			if verdict != nil || arpProblem {
				break // the grace is over
			}
			return down(start, p.readErr(ctx, err, p.noAnswer(rt, pr), timeout))
		}
		r := pr.classify(buf[:n], from)
		switch r.kind {
		case replyNeighbor:
			if r.from != vip || rt.rsMAC == nil || !bytes.Equal(r.mac, rt.rsMAC) || arpProblem {
				continue
			}
			arpProblem = true
		case replySYNACK:
			if verdict != nil {
				continue
			}
			if err := p.send(conn, rt, pr.rst()); err != nil {
				return down(start, fmt.Errorf("send RST to %s via %s: %w", pr.dst, rip, err))
			}
			res := up(start, fmt.Sprintf("SYN-ACK from %s through %s", pr.dst, p.where(rt)))
			verdict = &res
		case replyRST:
			if verdict != nil {
				continue
			}
			res := down(start, fmt.Errorf("%w: %s answered RST for %s: nothing listens on the VIP (a service bound to the RIP only?)", ErrRefused, p.where(rt), pr.dst))
			verdict = &res
		case replyICMP:
			if verdict != nil {
				continue
			}
			res := down(start, fmt.Errorf("%w: %s for the SYN to %s through %s%s", ErrUnreachable, icmpName(r), pr.dst, p.where(rt), p.icmpHint(r)))
			verdict = &res
		default:
			continue
		}
		if verdict != nil && (!rt.onLink || rt.rsMAC == nil) {
			break
		}
		if !grace {
			grace = true
			if err := conn.SetReadDeadline(minTime(time.Now().Add(pathARPGrace), dl)); err != nil {
				break
			}
		}
	}
	if arpProblem {
		what := "answers ARP for the VIP"
		if vip.Is6() {
			what = "answers neighbour solicitations for the VIP"
		}
		return down(start, fmt.Errorf("%w: realserver %s (%s) %s %s on %s: it would take the VIP's traffic from the director; "+
			"put the VIP on lo and set arp_ignore=1, arp_announce=2 (govsadm realserver setup)",
			ErrARPProblem, rt.rsMAC, rip, what, vip, rt.ifname))
	}
	verdict.Duration = time.Since(start)
	return *verdict
}

func (p *Path) send(conn pathConn, rt pathRoute, pkt []byte) error {
	if p.opts.Method == ipvs.Tunnel {
		if p.opts.TunType == ipvs.TunGUE {
			pkt = gue(pkt)
		}
		return conn.WriteTunnel(pkt)
	}
	return conn.WriteFrame(ethernet(rt.rsMAC, rt.mac, etherTypeOf(p.opts.VIP), pkt))
}

// noAnswer says what silence means for the method.
func (p *Path) noAnswer(rt pathRoute, pr *probe) string {
	if p.opts.Method == ipvs.Tunnel {
		return fmt.Sprintf("no answer from %s through the %s tunnel to %s: does the realserver decapsulate "+
			"(govsadm realserver setup --mode tun) and hold the VIP?", pr.dst, p.opts.TunType, p.where(rt))
	}
	return fmt.Sprintf("no answer from %s through %s: the realserver does not accept the VIP (is it on lo?)", pr.dst, p.where(rt))
}

func (p *Path) icmpHint(r reply) string {
	if p.opts.Method != ipvs.Tunnel {
		return ""
	}
	if (!r.v6 && r.icmpType == 3 && (r.icmpCode == 2 || r.icmpCode == 3)) || (r.v6 && (r.icmpType == 4 || (r.icmpType == 1 && r.icmpCode == 4))) {
		return fmt.Sprintf(": the realserver does not decapsulate %s (govsadm realserver setup --mode tun)", p.opts.TunType)
	}
	return ""
}

func icmpName(r reply) string {
	switch {
	case !r.v6 && r.icmpType == 3:
		names := map[uint8]string{0: "net unreachable", 1: "host unreachable", 2: "protocol unreachable", 3: "port unreachable",
			9: "net prohibited", 10: "host prohibited", 13: "administratively prohibited"}
		if n, ok := names[r.icmpCode]; ok {
			return fmt.Sprintf("ICMP %s from %s", n, r.from)
		}
	case !r.v6 && r.icmpType == 11:
		return "ICMP time exceeded from " + r.from.String()
	case r.v6 && r.icmpType == 1:
		names := map[uint8]string{0: "no route", 1: "administratively prohibited", 3: "address unreachable", 4: "port unreachable"}
		if n, ok := names[r.icmpCode]; ok {
			return fmt.Sprintf("ICMPv6 %s from %s", n, r.from)
		}
	case r.v6 && r.icmpType == 4:
		return "ICMPv6 parameter problem (unknown next header) from " + r.from.String()
	}
	return fmt.Sprintf("ICMP type %d code %d from %s", r.icmpType, r.icmpCode, r.from)
}

// readErr turns a read error into the check's: a deadline is a timeout
// (or the context's end), anything else a socket error.
func (p *Path) readErr(ctx context.Context, err error, what string, timeout time.Duration) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %s: %w", ErrTimeout, what, ctx.Err())
		}
		return fmt.Errorf("%w: %s within %s", ErrTimeout, what, timeout)
	}
	return fmt.Errorf("read: %w", err)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
