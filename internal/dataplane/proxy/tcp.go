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
	// No keep-alive at accept: it costs four setsockopt calls per
	// socket, and tcpConn arms it only on connections that live past
	// keepAliveAfter.
	lc := net.ListenConfig{Control: freebind, KeepAlive: -1}
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
	// eofs counts the directions that ended at their source's EOF.
	eofs int
}

// keepAliveAfter is how long a connection must live before its sockets
// get TCP keep-alive (Go's defaults: 15 s idle, 15 s interval, 9
// probes), so a peer that vanished is noticed. Setting it costs four
// setsockopt calls per socket, which most short connections never need:
// they end first. Probing starts at most this much later than it would
// with keep-alive set at accept and dial.
const keepAliveAfter = time.Second

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

	v, err := c.send(conn.DirIn, conn.SYN, tcpSynHdrLen, 0)
	switch {
	case err != nil || v.Action != engine.Forward:
		// No destination available (all quiescent or overloaded: the
		// engine's only error), or the service went away: the kernel
		// drops the SYN; a proxy that has already accepted can only
		// refuse with a reset. Debug, not more: a flood of these is a
		// flood of clients.
		p.log.Debug("no destination, resetting the client", "service", c.svc.String(), "client", c.cAddr, "action", v.Action.String(), "err", err)
		c.abort()
		return
	case v.Fwd != ipvs.Masq:
		// CheckDest keeps these out; a destination configured behind the
		// proxy's back cannot be served by opening a socket.
		p.log.Warn("destination is not Masq, resetting the client", "service", c.svc.String(), "client", c.cAddr, "dest", v.Dest, "fwd", v.Fwd.String())
		c.abort()
		return
	}
	c.mu.Lock()
	c.dest = v.Dest
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(p.ctx, p.opts.dialTimeout)
	// KeepAlive -1: see keepAliveAfter. Not Dialer.DialTCP: its zero
	// local address still binds (0.0.0.0:0), an extra system call that
	// also takes the ephemeral port for every destination.
	d := net.Dialer{KeepAlive: -1}
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
		p.log.Debug("realserver did not accept", "service", c.svc.String(), "client", c.cAddr, "dest", v.Dest, "err", err)
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
		p.log.Debug("write PROXY protocol header", "service", c.svc.String(), "client", c.cAddr, "dest", v.Dest, "err", err)
		c.resetBy(conn.DirOut)
		return
	}

	clientRaw, err1 := c.client.SyscallConn()
	serverRaw, err2 := server.SyscallConn()
	if err := errors.Join(err1, err2); err != nil {
		// Only a closed socket (Close under way) has none.
		c.abort()
		return
	}
	ka := time.AfterFunc(keepAliveAfter, func() { c.keepAlive(server) })
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.finish(conn.DirIn, p.pump(server, c.client, serverRaw, clientRaw, c.reporter(conn.DirIn)))
	}()
	c.finish(conn.DirOut, p.pump(c.client, server, clientRaw, serverRaw, c.reporter(conn.DirOut)))
	wg.Wait()
	ka.Stop()

	c.mu.Lock()
	aborted = c.aborted
	c.aborted = true // nothing is left to reset
	c.mu.Unlock()
	if !aborted {
		c.client.Close()
		server.Close()
	}
}

// keepAlive turns on TCP keep-alive on both sockets of a connection that
// has lived for keepAliveAfter. A socket closed meanwhile refuses, which
// is fine.
func (c *tcpConn) keepAlive(server *net.TCPConn) {
	ka := net.KeepAliveConfig{Enable: true}
	_ = c.client.SetKeepAliveConfig(ka)
	_ = server.SetKeepAliveConfig(ka)
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
		// EOF: this side's FIN, passed on as a half-close. When the
		// other direction has already ended the same way, run's Close
		// of both sockets sends this FIN (nothing is left unread on
		// either, so it is a FIN, not a RST), and the shutdown call is
		// saved.
		if last, ok := c.endedAtEOF(); ok {
			c.send(dir, conn.FIN|conn.ACK, tcpHdrLen, 0)
			if !last {
				dst.CloseWrite()
			}
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

// endedAtEOF records that one direction ended at its source's EOF. It
// returns false if the connection was aborted, and last set if the other
// direction had already ended at EOF.
func (c *tcpConn) endedAtEOF() (last, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.aborted {
		return false, false
	}
	c.eofs++
	return c.eofs == 2, true
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
