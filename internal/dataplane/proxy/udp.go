package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/ipvs"
)

// maxDatagram is the largest UDP payload.
const maxDatagram = 65535

// udpService is the socket of one UDP virtual service and its flows.
type udpService struct {
	p     *Proxy
	key   ipvs.ServiceKey
	vip   netip.AddrPort
	ipHdr int
	pc    *net.UDPConn
	done  chan struct{}

	mu      sync.Mutex
	closed  bool
	flows   map[flowKey]*udpFlow
	lastErr error
}

// flowKey names a flow: a client and the destination the engine chose
// for it. With one-packet scheduling a client has a flow per destination
// its datagrams were sent to, so every reply finds its way back.
type flowKey struct {
	client, dest netip.AddrPort
}

// udpFlow is a connected socket to a realserver for one client.
type udpFlow struct {
	s     *udpService
	key   flowKey
	up    *net.UDPConn
	hdr   []byte       // PROXY protocol v2 header, or nil
	last  atomic.Int64 // unix nanoseconds of the last datagram either way
	timer *time.Timer  // idle timer; set and fired under s.mu
}

// listenUDP binds k's socket and starts its read loop. p.mu is held.
func (p *Proxy) listenUDP(svc ipvs.Service, vip netip.AddrPort) (*udpService, error) {
	lc := net.ListenConfig{Control: freebind}
	pc, err := lc.ListenPacket(p.ctx, "udp", vip.String())
	if err != nil {
		return nil, fmt.Errorf("listen for service %s: %w", svc.ServiceKey, err)
	}
	s := &udpService{
		p:     p,
		key:   svc.ServiceKey,
		vip:   vip,
		ipHdr: ipHdrLen(vip.Addr()),
		pc:    pc.(*net.UDPConn),
		done:  make(chan struct{}),
		flows: make(map[flowKey]*udpFlow),
	}
	p.wg.Add(1)
	go s.serve()
	return s, nil
}

func (s *udpService) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastErr != nil {
		return fmt.Errorf("service %s: %w", s.key, s.lastErr)
	}
	return nil
}

// close closes the service's socket and every flow.
func (s *udpService) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	flows := s.flows
	s.flows = nil
	s.mu.Unlock()
	s.pc.Close()
	for _, f := range flows {
		f.timer.Stop()
		f.up.Close()
	}
}

// rearm makes every flow's idle timer look at the current UDP timeout
// now, so a shorter timeout (ipvsadm --set) applies to existing flows.
func (s *udpService) rearm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.flows {
		f.timer.Reset(0)
	}
}

// serve reads client datagrams until the socket is closed. Headroom in
// front of the payload lets a PROXY protocol header be put before it
// without copying the datagram.
func (s *udpService) serve() {
	p := s.p
	defer p.wg.Done()
	buf := make([]byte, proxyV2MaxLen+maxDatagram)
	var pause time.Duration
	for {
		n, client, err := s.pc.ReadFromUDPAddrPort(buf[proxyV2MaxLen:])
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.mu.Lock()
			s.lastErr = err
			s.mu.Unlock()
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			p.log.Warn("receive failed", "service", s.key.String(), "err", err, "retry_in", pause)
			select {
			case <-s.done:
				return
			case <-time.After(pause):
			}
			continue
		}
		if pause != 0 {
			pause = 0
			s.mu.Lock()
			s.lastErr = nil
			s.mu.Unlock()
		}
		client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
		v, err := p.process(engine.Packet{
			Dir: conn.DirIn, Proto: ipvs.ProtoUDP, Src: client, Dst: s.vip,
			Len: s.ipHdr + udpHdrLen + n,
		})
		if err != nil || v.Action != engine.Forward || v.Fwd != ipvs.Masq {
			// No destination available (the engine's only error):
			// dropped, as the kernel drops it.
			p.log.Debug("datagram dropped", "service", s.key.String(), "client", client, "action", v.Action.String(), "err", err)
			continue
		}
		f, err := s.flow(client, v.Dest)
		if err != nil {
			p.log.Warn("open flow", "service", s.key.String(), "client", client, "dest", v.Dest, "err", err)
			continue
		}
		f.touch()
		start := proxyV2MaxLen - len(f.hdr)
		copy(buf[start:], f.hdr)
		// A send error is the realserver's earlier ICMP unreachable
		// (ECONNREFUSED) or a full queue: the datagram is lost, as on
		// the wire.
		_, _ = f.up.Write(buf[start : proxyV2MaxLen+n])
	}
}

// udpTimeout is the engine's current UDP timeout.
func (p *Proxy) udpTimeout() time.Duration {
	if t := p.eng.Timeouts().UDP; t > 0 {
		return t
	}
	return conn.DefaultTimeouts.UDP
}

// flow returns the flow of client to dest, opening it if needed.
func (s *udpService) flow(client, dest netip.AddrPort) (*udpFlow, error) {
	k := flowKey{client: client, dest: dest}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.flows[k]; f != nil {
		return f, nil
	}
	if s.closed {
		return nil, net.ErrClosed
	}
	p := s.p
	var hdr []byte
	switch ver := p.proxyProtocol(s.key, dest); ver {
	case 0:
	case ipvs.ProxyProtocolV1:
		// Destination.Validate refuses this for a UDP service; an engine
		// configured behind the director's back gets a warning.
		p.log.Warn("PROXY protocol version 1 has no UDP form; sending no header", "service", s.key.String(), "dest", dest)
	default:
		h, err := proxyHeader(int(ver), ipvs.ProtoUDP, client, s.vip)
		if err != nil {
			return nil, err
		}
		hdr = h
	}
	up, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dest))
	if err != nil {
		return nil, fmt.Errorf("open socket to %s: %w", dest, err)
	}
	f := &udpFlow{s: s, key: k, up: up, hdr: hdr}
	f.touch()
	f.timer = time.AfterFunc(p.udpTimeout(), f.expire)
	s.flows[k] = f
	p.wg.Add(1)
	go f.relay()
	return f, nil
}

func (f *udpFlow) touch() { f.last.Store(time.Now().UnixNano()) }

// expire closes the flow if it has been idle for the UDP timeout, or
// waits for the rest of it.
func (f *udpFlow) expire() {
	s := f.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flows[f.key] != f {
		return // closed with the service
	}
	to := s.p.udpTimeout()
	if idle := time.Since(time.Unix(0, f.last.Load())); idle < to {
		f.timer.Reset(to - idle)
		return
	}
	delete(s.flows, f.key)
	f.up.Close()
}

// relay sends the realserver's replies to the client from the service's
// socket, so they come from the VIP.
func (f *udpFlow) relay() {
	s := f.s
	p := s.p
	defer p.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, err := f.up.Read(buf)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				// ICMP port unreachable for an earlier datagram: the
				// kernel would relay the ICMP; a socket can only go on.
				continue
			}
			if !errors.Is(err, net.ErrClosed) {
				p.log.Debug("flow ended", "service", s.key.String(), "client", f.key.client, "dest", f.key.dest, "err", err)
				s.mu.Lock()
				if s.flows[f.key] == f {
					delete(s.flows, f.key)
					f.timer.Stop()
				}
				s.mu.Unlock()
				f.up.Close()
			}
			return
		}
		v, err := p.process(engine.Packet{
			Dir: conn.DirOut, Proto: ipvs.ProtoUDP, Src: f.key.dest, Dst: f.key.client,
			Len: s.ipHdr + udpHdrLen + n,
		})
		// Drop: the engine wants the flow's traffic stopped (its
		// destination was removed under expire_nodest_conn). Pass (no
		// entry: one-packet scheduling, or the entry expired a moment
		// before this flow) still belongs to a flow the proxy holds.
		if err == nil && v.Action == engine.Drop {
			continue
		}
		f.touch()
		_, _ = s.pc.WriteToUDPAddrPort(buf[:n], f.key.client)
	}
}
