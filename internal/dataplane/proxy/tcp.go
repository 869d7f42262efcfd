package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/ipvs"
)

// tcpService is the listener of one TCP virtual service.
type tcpService struct {
	p    *Proxy
	key  ipvs.ServiceKey
	vip  netip.AddrPort
	ln   *net.TCPListener
	done chan struct{}

	mu      sync.Mutex
	lastErr error // the last accept error, until an accept succeeds
}

// listenTCP listens for k and starts its accept loop. p.mu is held.
func (p *Proxy) listenTCP(k ipvs.ServiceKey, vip netip.AddrPort) (*tcpService, error) {
	lc := net.ListenConfig{Control: freebind}
	ln, err := lc.Listen(p.ctx, "tcp", vip.String())
	if err != nil {
		return nil, fmt.Errorf("listen for service %s: %w", k, err)
	}
	s := &tcpService{p: p, key: k, vip: vip, ln: ln.(*net.TCPListener), done: make(chan struct{})}
	p.wg.Add(1)
	go s.serve()
	return s, nil
}

func (s *tcpService) close() {
	close(s.done)
	s.ln.Close()
}

func (s *tcpService) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastErr != nil {
		return fmt.Errorf("service %s: %w", s.key, s.lastErr)
	}
	return nil
}

// serve accepts until the listener is closed. Accept errors (out of file
// descriptors, mostly) are retried with a growing pause, as net/http's
// server does, and reported by Health meanwhile.
func (s *tcpService) serve() {
	defer s.p.wg.Done()
	var pause time.Duration
	for {
		c, err := s.ln.AcceptTCP()
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
			s.p.log.Warn("accept failed", "service", s.key.String(), "err", err, "retry_in", pause)
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
		s.p.startTCP(s, c)
	}
}

// tcpConn is one proxied TCP connection: the client's socket, the
// realserver's, and the addresses of the engine's entry.
type tcpConn struct {
	p      *Proxy
	svc    ipvs.ServiceKey
	client *net.TCPConn
	cAddr  netip.AddrPort // client
	vAddr  netip.AddrPort // virtual service
	ipHdr  int

	mu      sync.Mutex
	server  *net.TCPConn
	dest    netip.AddrPort // realserver; set before server
	aborted bool
}

// startTCP registers c and starts its goroutine.
func (p *Proxy) startTCP(s *tcpService, c *net.TCPConn) {
	tc := &tcpConn{
		p:      p,
		svc:    s.key,
		client: c,
		cAddr:  addrPort(c.RemoteAddr()),
		vAddr:  s.vip,
		ipHdr:  ipHdrLen(s.vip.Addr()),
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		resetTCP(c)
		return
	}
	p.conns[tc] = struct{}{}
	p.wg.Add(1)
	p.mu.Unlock()
	go tc.run()
}

func (p *Proxy) forget(c *tcpConn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// send hands the engine one synthesized packet of this connection with
// payload bytes of data.
func (c *tcpConn) send(dir conn.Dir, flags conn.TCPFlags, hdr, payload int) (engine.Verdict, error) {
	pkt := engine.Packet{Dir: dir, Proto: ipvs.ProtoTCP, Flags: flags, Len: c.ipHdr + hdr + payload}
	if dir == conn.DirIn {
		pkt.Src, pkt.Dst = c.cAddr, c.vAddr
	} else {
		pkt.Src, pkt.Dst = c.dest, c.cAddr
	}
	return c.p.process(pkt)
}

// run drives the connection from the client's SYN to its end.
func (c *tcpConn) run() {
	p := c.p
	defer p.wg.Done()
	defer p.forget(c)
	log := p.log.With("service", c.svc.String(), "client", c.cAddr)

	v, err := c.send(conn.DirIn, conn.SYN, tcpSynHdrLen, 0)
	switch {
	case err != nil || v.Action != engine.Forward:
		// No destination available (all quiescent or overloaded: the
		// engine's only error), or the service went away: the kernel
		// drops the SYN; a proxy that has already accepted can only
		// refuse with a reset. Debug, not more: a flood of these is a
		// flood of clients.
		log.Debug("no destination, resetting the client", "action", v.Action.String(), "err", err)
		c.abort()
		return
	case v.Fwd != ipvs.Masq:
		// CheckDest keeps these out; a destination configured behind the
		// proxy's back cannot be served by opening a socket.
		log.Warn("destination is not Masq, resetting the client", "dest", v.Dest, "fwd", v.Fwd.String())
		c.abort()
		return
	}
	c.mu.Lock()
	c.dest = v.Dest
	c.mu.Unlock()
	log = log.With("dest", v.Dest)

	ctx, cancel := context.WithTimeout(p.ctx, p.opts.dialTimeout)
	var d net.Dialer
	sc, err := d.DialContext(ctx, "tcp", v.Dest.String())
	cancel()
	if err != nil {
		if p.isClosed() {
			c.abort()
			return
		}
		// The realserver's RST (or silence): the entry goes to CLOSE and
		// the client is reset, as it would be through a NAT director.
		c.send(conn.DirOut, conn.RST, tcpHdrLen, 0)
		log.Debug("realserver did not accept", "err", err)
		c.abort()
		return
	}
	server := sc.(*net.TCPConn)
	c.mu.Lock()
	c.server = server
	aborted := c.aborted
	c.mu.Unlock()
	if aborted {
		resetTCP(server)
		return
	}
	c.send(conn.DirOut, conn.SYN|conn.ACK, tcpSynHdrLen, 0)
	c.send(conn.DirIn, conn.ACK, tcpHdrLen, 0)

	if err := c.writeProxyHeader(server, v.Dest); err != nil {
		log.Debug("write PROXY protocol header", "err", err)
		c.resetBy(conn.DirOut)
		return
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.finish(conn.DirIn, p.pump(server, c.client, c.reporter(conn.DirIn)))
	}()
	c.finish(conn.DirOut, p.pump(c.client, server, c.reporter(conn.DirOut)))
	wg.Wait()

	c.mu.Lock()
	aborted = c.aborted
	c.aborted = true // nothing is left to reset
	c.mu.Unlock()
	if !aborted {
		c.client.Close()
		server.Close()
	}
}

// writeProxyHeader sends the PROXY protocol header the destination is
// configured with, if any, before the first byte of the client's.
func (c *tcpConn) writeProxyHeader(server *net.TCPConn, dest netip.AddrPort) error {
	ver := c.p.proxyProtocol(c.svc, dest)
	if ver == 0 {
		return nil
	}
	hdr, err := proxyHeader(int(ver), ipvs.ProtoTCP, c.cAddr, c.vAddr)
	if err != nil {
		return err
	}
	_, err = server.Write(hdr)
	return err
}

// reporter returns pump's report function for one direction: every chunk
// is one ACK packet carrying the chunk, and an engine that no longer
// forwards the connection stops it.
func (c *tcpConn) reporter(dir conn.Dir) func(n int) bool {
	return func(n int) bool {
		v, err := c.send(dir, conn.ACK, tcpHdrLen, n)
		if err != nil {
			c.p.log.Warn("engine refused a packet", "service", c.svc.String(), "client", c.cAddr, "dir", dir.String(), "err", err)
			return false
		}
		return v.Action == engine.Forward
	}
}

// finish handles the end of one direction of the copy.
func (c *tcpConn) finish(dir conn.Dir, res pumpResult) {
	dst := c.serverConn()
	if dir == conn.DirOut {
		dst = c.client
	}
	switch {
	case res.refused:
		// The engine dropped the packet: its entry expired, or the
		// destination is gone under expire_nodest_conn.
		c.abort()
	case res.readErr == nil && res.writeErr == nil:
		// EOF: this side's FIN, passed on as a half-close.
		if !c.isAborted() {
			c.send(dir, conn.FIN|conn.ACK, tcpHdrLen, 0)
			dst.CloseWrite()
		}
	case c.isAborted() || errors.Is(res.readErr, net.ErrClosed) || errors.Is(res.writeErr, net.ErrClosed):
		// The other direction, or Close, ended the connection.
	case res.readErr != nil:
		// The source reset (or failed): its RST.
		c.resetBy(dir)
	default:
		// Writing failed: the destination reset.
		c.resetBy(opposite(dir))
	}
}

func opposite(d conn.Dir) conn.Dir {
	if d == conn.DirIn {
		return conn.DirOut
	}
	return conn.DirIn
}

func (c *tcpConn) serverConn() *net.TCPConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.server
}

func (c *tcpConn) isAborted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.aborted
}

// resetBy ends the connection because the side that sends in dir reset
// it: the engine sees that RST, and the other side is reset too. Only the
// first of the two directions to notice reports it.
func (c *tcpConn) resetBy(dir conn.Dir) {
	server, ok := c.markAborted()
	if !ok {
		return
	}
	if !c.p.isClosed() {
		c.send(dir, conn.RST, tcpHdrLen, 0)
	}
	c.resetSockets(server)
}

// abort resets both sockets, once; it tells the engine nothing.
func (c *tcpConn) abort() {
	if server, ok := c.markAborted(); ok {
		c.resetSockets(server)
	}
}

// markAborted sets aborted and returns the server socket, or false if
// the connection was already aborted.
func (c *tcpConn) markAborted() (*net.TCPConn, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.aborted {
		return nil, false
	}
	c.aborted = true
	return c.server, true
}

func (c *tcpConn) resetSockets(server *net.TCPConn) {
	resetTCP(c.client)
	if server != nil {
		resetTCP(server)
	}
}

// resetTCP closes c with a RST rather than a FIN (SO_LINGER 0), so the
// peer knows the stream was cut, not finished.
func resetTCP(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}
