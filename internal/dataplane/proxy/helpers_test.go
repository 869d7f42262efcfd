package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// loopback is the only address the tests use (besides ::1).
var loopback = netip.MustParseAddr("127.0.0.1")

// freePort returns a port on 127.0.0.1 that was free a moment ago, for a
// virtual service: the proxy must bind the service's own address.
func freePort(t testing.TB, network string) netip.AddrPort {
	t.Helper()
	switch network {
	case "udp":
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return addrPort(pc.LocalAddr())
	default:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return addrPort(ln.Addr())
	}
}

// proxyInfo is what a backend read in a PROXY protocol header.
type proxyInfo struct {
	ver      int
	src, dst netip.AddrPort
}

// readProxyHeader parses a PROXY protocol v1 or v2 header (haproxy's
// proxy-protocol.txt) at the start of r.
func readProxyHeader(r *bufio.Reader) (proxyInfo, error) {
	sig, err := r.Peek(12)
	if err != nil {
		return proxyInfo{}, err
	}
	if bytes.Equal(sig, proxyV2Sig[:]) {
		hdr := make([]byte, 16)
		if _, err := io.ReadFull(r, hdr); err != nil {
			return proxyInfo{}, err
		}
		body := make([]byte, binary.BigEndian.Uint16(hdr[14:]))
		if _, err := io.ReadFull(r, body); err != nil {
			return proxyInfo{}, err
		}
		return parseProxyV2(append(hdr, body...))
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return proxyInfo{}, err
	}
	return parseProxyV1(line)
}

func parseProxyV1(line string) (proxyInfo, error) {
	if !strings.HasSuffix(line, "\r\n") || len(line) > 107 {
		return proxyInfo{}, fmt.Errorf("v1 line %q: no CRLF or too long", line)
	}
	f := strings.Split(strings.TrimSuffix(line, "\r\n"), " ")
	if len(f) != 6 || f[0] != "PROXY" || (f[1] != "TCP4" && f[1] != "TCP6") {
		return proxyInfo{}, fmt.Errorf("v1 line %q: bad fields", line)
	}
	src, err1 := netip.ParseAddr(f[2])
	dst, err2 := netip.ParseAddr(f[3])
	sp, err3 := strconv.ParseUint(f[4], 10, 16)
	dp, err4 := strconv.ParseUint(f[5], 10, 16)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return proxyInfo{}, fmt.Errorf("v1 line %q: %w", line, err)
	}
	if (f[1] == "TCP4") != src.Is4() || src.Is4() != dst.Is4() {
		return proxyInfo{}, fmt.Errorf("v1 line %q: family mismatch", line)
	}
	return proxyInfo{ver: 1, src: netip.AddrPortFrom(src, uint16(sp)), dst: netip.AddrPortFrom(dst, uint16(dp))}, nil
}

// parseProxyV2 parses a whole v2 header; it returns the header's length
// in the error-free case through the info's addresses only.
func parseProxyV2(b []byte) (proxyInfo, error) {
	if len(b) < 16 || !bytes.Equal(b[:12], proxyV2Sig[:]) {
		return proxyInfo{}, errors.New("v2: no signature")
	}
	if b[12] != 0x21 {
		return proxyInfo{}, fmt.Errorf("v2: version/command %#x", b[12])
	}
	n := int(binary.BigEndian.Uint16(b[14:]))
	if len(b) < 16+n {
		return proxyInfo{}, errors.New("v2: short")
	}
	a := b[16 : 16+n]
	switch b[13] >> 4 {
	case 1:
		if n < 12 {
			return proxyInfo{}, errors.New("v2: short inet")
		}
		return proxyInfo{ver: 2,
			src: netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[0:4])), binary.BigEndian.Uint16(a[8:])),
			dst: netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[4:8])), binary.BigEndian.Uint16(a[10:]))}, nil
	case 2:
		if n < 36 {
			return proxyInfo{}, errors.New("v2: short inet6")
		}
		return proxyInfo{ver: 2,
			src: netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[0:16])), binary.BigEndian.Uint16(a[32:])),
			dst: netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[16:32])), binary.BigEndian.Uint16(a[34:]))}, nil
	}
	return proxyInfo{}, fmt.Errorf("v2: family %#x", b[13])
}

// backend is a realserver: it greets every connection with its name and a
// newline, then echoes until the client's EOF, then closes. With proxy
// set it first reads a PROXY protocol header.
type backend struct {
	name  string
	addr  netip.AddrPort
	proxy bool

	mu      sync.Mutex
	headers []proxyInfo
	conns   int
}

func startBackend(t testing.TB, name string, proxy bool) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: name, addr: addrPort(ln.Addr()), proxy: proxy}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				b.serve(c.(*net.TCPConn))
			}()
		}
	}()
	return b
}

func (b *backend) serve(c *net.TCPConn) {
	defer c.Close()
	r := bufio.NewReader(c)
	if b.proxy {
		h, err := readProxyHeader(r)
		if err != nil {
			return
		}
		b.mu.Lock()
		b.headers = append(b.headers, h)
		b.mu.Unlock()
	}
	b.mu.Lock()
	b.conns++
	b.mu.Unlock()
	if _, err := io.WriteString(c, b.name+"\n"); err != nil {
		return
	}
	io.Copy(c, r)
	c.CloseWrite()
}

func (b *backend) seen() ([]proxyInfo, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]proxyInfo(nil), b.headers...), b.conns
}

// udpBackend answers every datagram with "name:payload"; with proxy set
// it strips and records a PROXY v2 header first.
type udpBackend struct {
	name  string
	addr  netip.AddrPort
	proxy bool

	mu      sync.Mutex
	headers []proxyInfo
}

func startUDPBackend(t testing.TB, name string, proxy bool) *udpBackend {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &udpBackend{name: name, addr: addrPort(pc.LocalAddr()), proxy: proxy}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			msg := buf[:n]
			if proxy {
				h, err := parseProxyV2(msg)
				if err != nil {
					continue
				}
				b.mu.Lock()
				b.headers = append(b.headers, h)
				b.mu.Unlock()
				msg = msg[16+int(binary.BigEndian.Uint16(msg[14:])):]
			}
			pc.WriteTo(append([]byte(name+":"), msg...), from)
		}
	}()
	return b
}

// dialVIP connects to a service and returns the connection and the
// realserver's greeting.
func dialVIP(t testing.TB, vip netip.AddrPort) (*net.TCPConn, *bufio.Reader, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", vip.String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", vip, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read greeting from %s: %v", vip, err)
	}
	return c.(*net.TCPConn), r, strings.TrimSuffix(line, "\n")
}

// roundTrip connects, reads the greeting, sends msg, half-closes, reads
// the echo to EOF and returns the realserver's name.
func roundTrip(t testing.TB, vip netip.AddrPort, msg string) string {
	t.Helper()
	c, r, name := dialVIP(t, vip)
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	c.CloseWrite()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if string(got) != msg {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
	c.Close()
	return name
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
