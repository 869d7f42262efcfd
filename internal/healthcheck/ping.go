package healthcheck

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// ErrPingNotPermitted: neither an unprivileged ICMP ("ping") socket nor a
// raw socket could be opened.
var ErrPingNotPermitted = errors.New("no ICMP socket permitted: run as root (CAP_NET_RAW) or allow this group in net.ipv4.ping_group_range")

// PingOptions configure a PING_CHECK. ConnectIP is pinged; ConnectPort
// is ignored; BindTo sets the source address.
type PingOptions struct {
	ConnOptions
}

// Ping is keepalived's PING_CHECK: one ICMP echo request, which passes
// when the matching echo reply arrives within connect_timeout. It uses an
// unprivileged ICMP socket where net.ipv4.ping_group_range allows one,
// else a raw socket (root).
type Ping struct {
	opts PingOptions
	seq  atomic.Uint32
}

// NewPing returns a PING_CHECK checker.
func NewPing(opts PingOptions) (*Ping, error) {
	if err := opts.validate("PING_CHECK", false); err != nil {
		return nil, err
	}
	return &Ping{opts: opts}, nil
}

type icmpConn struct {
	*icmp.PacketConn
	raw   bool
	proto int
}

func listenICMP(dst, src netip.Addr) (*icmpConn, error) {
	v6 := dst.Is6()
	laddr := "0.0.0.0"
	udp, raw, proto := "udp4", "ip4:icmp", 1
	if v6 {
		laddr, udp, raw, proto = "::", "udp6", "ip6:ipv6-icmp", 58
	}
	if src.IsValid() {
		laddr = src.Unmap().String()
	}
	c, uerr := icmp.ListenPacket(udp, laddr)
	if uerr == nil {
		return &icmpConn{PacketConn: c, proto: proto}, nil
	}
	c, rerr := icmp.ListenPacket(raw, laddr)
	if rerr == nil {
		return &icmpConn{PacketConn: c, raw: true, proto: proto}, nil
	}
	return nil, fmt.Errorf("%w (unprivileged: %v; raw: %v)", ErrPingNotPermitted, uerr, rerr)
}

// Check sends one echo request and waits for its reply.
func (p *Ping) Check(ctx context.Context) Result {
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return down(start, err)
	}
	dst := p.opts.ConnectIP.Unmap()
	c, err := listenICMP(dst, p.opts.BindTo)
	if err != nil {
		return down(start, err)
	}
	defer c.Close()
	c.SetDeadline(deadline(ctx, p.opts.timeout()))
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	seq := int(p.seq.Add(1) & 0xffff)
	var idb [2]byte
	rand.Read(idb[:])
	id := int(idb[0])<<8 | int(idb[1])
	data := make([]byte, 16)
	copy(data, "govs-ping")
	rand.Read(data[9:])
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if dst.Is6() {
		typ = ipv6.ICMPTypeEchoRequest
	}
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: data}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return down(start, fmt.Errorf("build echo request: %w", err))
	}
	var to net.Addr = &net.UDPAddr{IP: dst.AsSlice()}
	if c.raw {
		to = &net.IPAddr{IP: dst.AsSlice()}
	}
	if _, err := c.WriteTo(b, to); err != nil {
		return down(start, classify(fmt.Errorf("send echo request to %s: %w", dst, err)))
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return down(start, classify(fmt.Errorf("wait for echo reply from %s: %w", dst, err)))
		}
		if !sameIP(from, dst) {
			continue
		}
		m, err := icmp.ParseMessage(c.proto, buf[:n])
		if err != nil {
			continue
		}
		if m.Type != ipv4.ICMPTypeEchoReply && m.Type != ipv6.ICMPTypeEchoReply {
			continue
		}
		e, ok := m.Body.(*icmp.Echo)
		// An unprivileged socket's kernel rewrites the ID; it matches
		// replies to the socket itself.
		if !ok || e.Seq != seq || !bytes.Equal(e.Data, data) || (c.raw && e.ID != id) {
			continue
		}
		return up(start, "echo reply from "+dst.String())
	}
}

func sameIP(a net.Addr, want netip.Addr) bool {
	var ip net.IP
	switch v := a.(type) {
	case *net.UDPAddr:
		ip = v.IP
	case *net.IPAddr:
		ip = v.IP
	default:
		return false
	}
	got, ok := netip.AddrFromSlice(ip)
	return ok && got.Unmap() == want
}
