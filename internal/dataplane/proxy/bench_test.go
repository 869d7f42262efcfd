package proxy

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/ipvs"
)

// startSink is a realserver that reads and discards everything.
func startSink(tb testing.TB) netip.AddrPort {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
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
				defer c.Close()
				buf := make([]byte, 1<<20)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	return addrPort(ln.Addr())
}

// benchThroughput pushes data client -> proxy -> sink over one connection
// and reports bytes per second.
func benchThroughput(b *testing.B, vip netip.AddrPort) {
	c, err := net.DialTimeout("tcp", vip.String(), 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProxyTCPThroughputFakeEngine(b *testing.B) {
	e := newFakeEngine(startSink(b))
	e.norecord = true
	p := newProxy(e, nil)
	defer p.Close()
	vip := freePort(b, "tcp")
	if err := p.AddService(ipvs.Service{ServiceKey: ipvs.TCPService(vip), Scheduler: "rr"}); err != nil {
		b.Fatal(err)
	}
	benchThroughput(b, vip)
}

// BenchmarkLoopbackTCPThroughput is the baseline: the same transfer
// straight to the sink, without the proxy.
func BenchmarkLoopbackTCPThroughput(b *testing.B) {
	benchThroughput(b, startSink(b))
}

// BenchmarkProxyProtocolLookup is what each new connection or flow pays
// to read its destination's PROXY protocol setting from the engine, with
// 16 destinations in the service.
func BenchmarkProxyProtocolLookup(b *testing.B) {
	l := newLVS(b, tcpSvc(b, "wlc"))
	var last netip.AddrPort
	for i := range 16 {
		last = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 80)
		l.add(ipvs.Destination{Addr: last.Addr(), Port: 80, Fwd: ipvs.Masq, Weight: 1, ProxyProtocol: ipvs.ProxyProtocolV2})
	}
	b.ReportAllocs()
	for b.Loop() {
		if l.p.proxyProtocol(l.svc.ServiceKey, last) != ipvs.ProxyProtocolV2 {
			b.Fatal("wrong version")
		}
	}
}
