package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/ipvs"
)

// Name is the data plane's name, as given to govsd --dataplane.
const Name = "proxy"

// DefaultDialTimeout bounds the connection to a realserver. The kernel
// keeps a SYN_RECV entry for 60 s, but a client of a proxy waits on an
// accepted connection, so failing sooner is kinder.
const DefaultDialTimeout = 10 * time.Second

// ErrClosed is returned by the methods of a closed Proxy.
var ErrClosed = errors.New("proxy data plane is closed")

// engineAPI is what the proxy uses of *engine.Engine. It exists so the
// forwarding code reads as a client of a small interface; New takes the
// concrete engine, as the director shares its instance.
type engineAPI interface {
	Process(now time.Time, p engine.Packet) (engine.Verdict, error)
	Dest(k ipvs.ServiceKey, dk ipvs.DestKey) (ipvs.Destination, bool)
	Services(now time.Time) []ipvs.ServiceState
	Conns(now time.Time) []conn.Info
	Zero(k *ipvs.ServiceKey) error
	Timeouts() conn.Timeouts
}

// Option configures a Proxy.
type Option func(*options)

type options struct {
	dialTimeout time.Duration
}

// WithDialTimeout bounds how long a new TCP connection waits for its
// realserver to accept (default DefaultDialTimeout).
func WithDialTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.dialTimeout = d
		}
	}
}

// Proxy is the userspace data plane. It implements dataplane.Dataplane.
type Proxy struct {
	eng  engineAPI
	log  *slog.Logger
	opts options

	// ctx is cancelled by Close; it bounds dials.
	ctx    context.Context
	cancel context.CancelFunc

	pipes *pipePool

	mu     sync.Mutex
	closed bool
	tcp    map[ipvs.ServiceKey]*tcpService
	udp    map[ipvs.ServiceKey]*udpService
	conns  map[*tcpConn]struct{}
	// wg counts every goroutine the proxy started.
	wg sync.WaitGroup
}

var _ dataplane.Dataplane = (*Proxy)(nil)

func newProxy(eng engineAPI, log *slog.Logger, opts ...Option) *Proxy {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := options{dialTimeout: DefaultDialTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Proxy{
		eng:    eng,
		log:    log.With("dataplane", Name),
		opts:   o,
		ctx:    ctx,
		cancel: cancel,
		pipes:  newPipePool(),
		tcp:    make(map[ipvs.ServiceKey]*tcpService),
		udp:    make(map[ipvs.ServiceKey]*udpService),
		conns:  make(map[*tcpConn]struct{}),
	}
}

// Name returns "proxy".
func (p *Proxy) Name() string { return Name }

// CheckService refuses what a socket proxy cannot listen for: firewall
// marks, SCTP and port 0.
func (p *Proxy) CheckService(svc ipvs.Service) error {
	switch {
	case svc.IsFWMark():
		return fmt.Errorf("service %s: firewall-mark services match packets, and the proxy data plane can only listen on an address and port: %w; give the service as -t/-u addr:port, or run govsd --dataplane ebpf", svc.ServiceKey, dataplane.ErrUnsupported)
	case svc.Protocol == ipvs.ProtoSCTP:
		return fmt.Errorf("service %s: the proxy data plane forwards only TCP and UDP: SCTP is %w; run govsd --dataplane ebpf for SCTP", svc.ServiceKey, dataplane.ErrUnsupported)
	case svc.Protocol != ipvs.ProtoTCP && svc.Protocol != ipvs.ProtoUDP:
		return fmt.Errorf("service %s: protocol %s is %w", svc.ServiceKey, svc.Protocol, dataplane.ErrUnsupported)
	case svc.Port == 0:
		return fmt.Errorf("service %s: port 0 (all ports) needs a listener per port, which the proxy data plane does not have: %w; give one service per port, or run govsd --dataplane ebpf", svc.ServiceKey, dataplane.ErrUnsupported)
	}
	return nil
}

// CheckDest refuses every forwarding method but Masq (NAT): the proxy
// opens its own connection to the realserver, which is NAT by nature.
func (p *Proxy) CheckDest(_ ipvs.Service, d ipvs.Destination) error {
	return checkFwd(d)
}

func checkFwd(d ipvs.Destination) error {
	switch d.Fwd {
	case ipvs.Masq:
		return nil
	case ipvs.Route:
		return fmt.Errorf("destination %s uses Route (direct routing); the proxy data plane forwards only Masq (NAT): use -m, or run govsd --dataplane ebpf for Route/Tunnel: %w", d.AddrPort(), dataplane.ErrUnsupported)
	case ipvs.Tunnel:
		return fmt.Errorf("destination %s uses Tunnel (IP tunnelling); the proxy data plane forwards only Masq (NAT): use -m, or run govsd --dataplane ebpf for Route/Tunnel: %w", d.AddrPort(), dataplane.ErrUnsupported)
	case ipvs.Local:
		return fmt.Errorf("destination %s is Local (the director itself); the proxy data plane forwards only Masq (NAT): add the local server's address with -m instead: %w", d.AddrPort(), dataplane.ErrUnsupported)
	}
	return fmt.Errorf("destination %s: forwarding method %s is %w", d.AddrPort(), d.Fwd, dataplane.ErrUnsupported)
}

// AddService starts listening on the service's address.
func (p *Proxy) AddService(svc ipvs.Service) error {
	if err := p.CheckService(svc); err != nil {
		return err
	}
	k := svc.ServiceKey
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if p.tcp[k] != nil || p.udp[k] != nil {
		return fmt.Errorf("add service %s to the proxy: %w", k, ipvs.ErrServiceExists)
	}
	addr := netip.AddrPortFrom(k.Addr, k.Port)
	switch k.Protocol {
	case ipvs.ProtoTCP:
		s, err := p.listenTCP(k, addr)
		if err != nil {
			return err
		}
		p.tcp[k] = s
	case ipvs.ProtoUDP:
		s, err := p.listenUDP(svc, addr)
		if err != nil {
			return err
		}
		p.udp[k] = s
	}
	return nil
}

// EditService needs nothing of the proxy: scheduler, persistence and
// one-packet scheduling are the engine's (one-packet flows are keyed by
// destination, see udpFlow).
func (p *Proxy) EditService(svc ipvs.Service) error {
	if err := p.CheckService(svc); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if p.tcp[svc.ServiceKey] != nil || p.udp[svc.ServiceKey] != nil {
		return nil
	}
	return fmt.Errorf("edit service %s in the proxy: %w", svc.ServiceKey, ipvs.ErrNoService)
}

// DelService stops listening. As with the kernel, established TCP
// connections carry on for as long as the engine keeps their entries;
// UDP flows end, since their replies leave through the service's socket.
func (p *Proxy) DelService(k ipvs.ServiceKey) error {
	p.mu.Lock()
	t, u := p.tcp[k], p.udp[k]
	delete(p.tcp, k)
	delete(p.udp, k)
	closed := p.closed
	p.mu.Unlock()
	switch {
	case t != nil:
		t.close()
	case u != nil:
		u.close()
	case closed:
		return ErrClosed
	default:
		return fmt.Errorf("delete service %s from the proxy: %w", k, ipvs.ErrNoService)
	}
	return nil
}

// Flush deletes every service.
func (p *Proxy) Flush() error {
	p.mu.Lock()
	var keys []ipvs.ServiceKey
	for k := range p.tcp {
		keys = append(keys, k)
	}
	for k := range p.udp {
		keys = append(keys, k)
	}
	p.mu.Unlock()
	var errs []error
	for _, k := range keys {
		if err := p.DelService(k); err != nil && !errors.Is(err, ipvs.ErrNoService) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// AddDest checks the forwarding method; scheduling is the engine's.
func (p *Proxy) AddDest(k ipvs.ServiceKey, d ipvs.Destination) error {
	if err := p.hasService(k); err != nil {
		return fmt.Errorf("add destination %s to %s in the proxy: %w", d.AddrPort(), k, err)
	}
	return checkFwd(d)
}

// EditDest checks the forwarding method. A weight of 0 needs nothing
// here: the engine stops scheduling to the destination and existing
// connections keep their entries.
func (p *Proxy) EditDest(k ipvs.ServiceKey, d ipvs.Destination) error {
	if err := p.hasService(k); err != nil {
		return fmt.Errorf("edit destination %s of %s in the proxy: %w", d.AddrPort(), k, err)
	}
	return checkFwd(d)
}

// DelDest needs nothing of the proxy: connections to the destination
// continue while the engine keeps their entries (or are reset at their
// next chunk under expire_nodest_conn).
func (p *Proxy) DelDest(k ipvs.ServiceKey, _ ipvs.DestKey) error {
	return p.hasService(k)
}

func (p *Proxy) hasService(k ipvs.ServiceKey) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if p.tcp[k] == nil && p.udp[k] == nil {
		return ipvs.ErrNoService
	}
	return nil
}

// SetTimeouts re-arms the UDP flows' idle timers, which read the engine's
// current UDP timeout; the engine already holds the new values.
func (p *Proxy) SetTimeouts(conn.Timeouts) error {
	p.mu.Lock()
	us := make([]*udpService, 0, len(p.udp))
	for _, u := range p.udp {
		us = append(us, u)
	}
	p.mu.Unlock()
	for _, u := range us {
		u.rearm()
	}
	return nil
}

// Zero zeroes the engine's counters of one service, or of all.
func (p *Proxy) Zero(k *ipvs.ServiceKey) error {
	return p.eng.Zero(k)
}

// Services returns the engine's services with their live state.
func (p *Proxy) Services() ([]ipvs.ServiceState, error) {
	return p.eng.Services(time.Now()), nil
}

// Conns returns the engine's connection table.
func (p *Proxy) Conns() ([]conn.Info, error) {
	return p.eng.Conns(time.Now()), nil
}

// Health reports an error if the proxy is closed or a listener died.
func (p *Proxy) Health() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	var errs []error
	for _, s := range p.tcp {
		if err := s.err(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, s := range p.udp {
		if err := s.err(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close stops every listener, resets every connection the proxy is
// forwarding (the realservers and clients see a reset, as when a director
// goes away), waits for all its goroutines and releases its sockets. The
// engine's entries stay and expire on their timeouts.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.cancel()
	tcp, udp, conns := p.tcp, p.udp, p.conns
	p.tcp, p.udp, p.conns = nil, nil, nil
	p.mu.Unlock()

	for _, s := range tcp {
		s.close()
	}
	for _, s := range udp {
		s.close()
	}
	for c := range conns {
		c.abort()
	}
	p.wg.Wait()
	p.pipes.close()
	return nil
}

// isClosed reports whether Close has begun; packets are no longer
// reported to the engine from then on.
func (p *Proxy) isClosed() bool {
	return p.ctx.Err() != nil
}

// proxyProtocol returns the PROXY protocol version (0 none, 1 or 2) the
// destination at dest of service k is configured with. It is read from
// the engine, which holds the Destination the director gave it, when a
// TCP connection or UDP flow starts, so an edit (ipvsadm -e) applies to
// the next connection and never to one already under way, and the proxy
// keeps no copy that could disagree with the engine. A destination the
// engine no longer lists (removed while an old entry still points at it)
// gets none. It costs one engine.Dest call per new connection or flow,
// not per packet: a lock and two map lookups, no allocation
// (BenchmarkProxyProtocolLookup).
func (p *Proxy) proxyProtocol(k ipvs.ServiceKey, dest netip.AddrPort) uint8 {
	d, ok := p.eng.Dest(k, ipvs.DestKey{Addr: dest.Addr(), Port: dest.Port()})
	if !ok {
		return 0
	}
	return d.ProxyProtocol
}

// process hands one synthesized packet to the engine.
func (p *Proxy) process(pkt engine.Packet) (engine.Verdict, error) {
	return p.eng.Process(time.Now(), pkt)
}

// Header lengths used for the Len of synthesized packets: what the
// kernel's byte counters would add to each payload (IP header, and a TCP
// header with the timestamp option every Linux peer sends).
const (
	ip4HdrLen    = 20
	ip6HdrLen    = 40
	tcpHdrLen    = 32
	tcpSynHdrLen = 40 // MSS, SACK-permitted, timestamps, window scale
	udpHdrLen    = 8
)

func ipHdrLen(a netip.Addr) int {
	if a.Is4() {
		return ip4HdrLen
	}
	return ip6HdrLen
}

// addrPort returns a's address and port with IPv4-mapped addresses
// unmapped, so they match what the engine was configured with.
func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
