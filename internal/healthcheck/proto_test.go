package healthcheck

import (
	"bufio"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// smtpServer serves one scripted dialogue per connection and records
// the lines it received.
func smtpServer(t *testing.T, banner string, replies map[string]string) (net.Addr, func() []string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var mu sync.Mutex
	var got []string
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte(banner))
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					mu.Lock()
					got = append(got, strings.TrimRight(line, "\r\n"))
					mu.Unlock()
					verb := strings.Fields(line)[0]
					c.Write([]byte(replies[verb]))
					if verb == "QUIT" {
						return
					}
				}
			}()
		}
	}()
	return l.Addr(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

func TestSMTP(t *testing.T) {
	good := map[string]string{"HELO": "250-mx.example.org\r\n250 PIPELINING\r\n", "QUIT": "221 bye\r\n"}
	addr, lines := smtpServer(t, "220-mx.example.org ESMTP\r\n220 ready\r\n", good)
	c, err := NewSMTP(SMTPOptions{ConnOptions: connTo(t, addr), HeloName: "director.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	mustUp(t, c.Check(context.Background()))
	if got := lines(); len(got) != 2 || got[0] != "HELO director.example.org" || got[1] != "QUIT" {
		t.Fatalf("server got %q", got)
	}

	addr, _ = smtpServer(t, "554 go away\r\n", good)
	c, _ = NewSMTP(SMTPOptions{ConnOptions: connTo(t, addr)})
	mustDown(t, c.Check(context.Background()), ErrUnexpected)

	addr, _ = smtpServer(t, "220 ready\r\n", map[string]string{"HELO": "500 what\r\n"})
	c, _ = NewSMTP(SMTPOptions{ConnOptions: connTo(t, addr)})
	mustDown(t, c.Check(context.Background()), ErrUnexpected)

	// A server that never sends its banner times out.
	addr, _ = smtpServer(t, "", nil)
	o := connTo(t, addr)
	o.Timeout = 200 * time.Millisecond
	c, _ = NewSMTP(SMTPOptions{ConnOptions: o})
	mustDown(t, c.Check(context.Background()), ErrTimeout)

	c, _ = NewSMTP(SMTPOptions{ConnOptions: closedPort(t, "tcp")})
	mustDown(t, c.Check(context.Background()), nil)
}

// dnsServer answers queries on loopback UDP: first any junk datagrams,
// then a response with rcode.
func dnsServer(t *testing.T, rcode dnsmessage.RCode, junk bool) (net.Addr, func() []dnsmessage.Question) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	var mu sync.Mutex
	var qs []dnsmessage.Question
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var m dnsmessage.Message
			if err := m.Unpack(buf[:n]); err != nil || len(m.Questions) != 1 || !m.RecursionDesired {
				continue
			}
			mu.Lock()
			qs = append(qs, m.Questions[0])
			mu.Unlock()
			if junk {
				pc.WriteTo([]byte{1, 2, 3}, from)
				other := dnsmessage.Message{Header: dnsmessage.Header{ID: m.ID + 1, Response: true}}
				b, _ := other.Pack()
				pc.WriteTo(b, from)
				notResp := dnsmessage.Message{Header: dnsmessage.Header{ID: m.ID}}
				b, _ = notResp.Pack()
				pc.WriteTo(b, from)
			}
			resp := dnsmessage.Message{Header: dnsmessage.Header{ID: m.ID, Response: true, RCode: rcode}, Questions: m.Questions}
			if rcode == dnsmessage.RCodeSuccess && m.Questions[0].Type == dnsmessage.TypeA {
				resp.Answers = []dnsmessage.Resource{{Header: dnsmessage.ResourceHeader{Name: m.Questions[0].Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
					Body: &dnsmessage.AResource{A: [4]byte{192, 0, 2, 1}}}}
			}
			b, _ := resp.Pack()
			pc.WriteTo(b, from)
		}
	}()
	return pc.LocalAddr(), func() []dnsmessage.Question {
		mu.Lock()
		defer mu.Unlock()
		return append([]dnsmessage.Question(nil), qs...)
	}
}

func TestDNS(t *testing.T) {
	addr, qs := dnsServer(t, dnsmessage.RCodeSuccess, false)
	c, err := NewDNS(DNSOptions{ConnOptions: connTo(t, addr)})
	if err != nil {
		t.Fatal(err)
	}
	mustUp(t, c.Check(context.Background()))
	if q := qs(); len(q) != 1 || q[0].Type != dnsmessage.TypeSOA || q[0].Name.String() != "." {
		t.Fatalf("default query %v, want SOA .", q)
	}
	c, _ = NewDNS(DNSOptions{ConnOptions: connTo(t, addr), Type: "a", Name: "www.example.org"})
	mustUp(t, c.Check(context.Background()))
	if q := qs(); q[1].Type != dnsmessage.TypeA || q[1].Name.String() != "www.example.org." {
		t.Fatalf("query %v, want A www.example.org.", q[1])
	}

	addr, _ = dnsServer(t, dnsmessage.RCodeSuccess, true)
	c, _ = NewDNS(DNSOptions{ConnOptions: connTo(t, addr)})
	mustUp(t, c.Check(context.Background()))

	addr, _ = dnsServer(t, dnsmessage.RCodeRefused, false)
	c, _ = NewDNS(DNSOptions{ConnOptions: connTo(t, addr)})
	mustDown(t, c.Check(context.Background()), ErrUnexpected)

	o := closedPort(t, "udp")
	c, _ = NewDNS(DNSOptions{ConnOptions: o})
	mustDown(t, c.Check(context.Background()), nil)

	for _, bad := range []DNSOptions{{Type: "PTR"}, {Name: "a..b"}, {Name: ".a"}} {
		bad.ConnOptions = o
		if _, err := NewDNS(bad); err == nil {
			t.Errorf("NewDNS(%+v) succeeded", bad)
		}
	}
}

func TestUDP(t *testing.T) {
	echo, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo(append([]byte("OK"), buf[:n]...), from)
		}
	}()
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	short := func(o ConnOptions) ConnOptions { o.Timeout = 300 * time.Millisecond; return o }
	tests := []struct {
		name string
		opts UDPOptions
		up   bool
		err  error
	}{
		{"echo", UDPOptions{ConnOptions: connTo(t, echo.LocalAddr()), Payload: []byte("ping")}, true, nil},
		{"echo require", UDPOptions{ConnOptions: connTo(t, echo.LocalAddr()), Payload: []byte("ping"), RequireReply: true}, true, nil},
		{"echo pattern", UDPOptions{ConnOptions: connTo(t, echo.LocalAddr()), Payload: []byte("ping"), RequireReply: true, Reply: []byte("OKp")}, true, nil},
		{"echo pattern mask", UDPOptions{ConnOptions: connTo(t, echo.LocalAddr()), Payload: []byte("ping"), RequireReply: true, Reply: []byte{'O', 0x40}, ReplyMask: []byte{0xff, 0xf0}}, true, nil},
		{"echo pattern wrong", UDPOptions{ConnOptions: connTo(t, echo.LocalAddr()), Payload: []byte("ping"), RequireReply: true, Reply: []byte("NO")}, false, ErrUnexpected},
		{"echo too long", UDPOptions{ConnOptions: connTo(t, echo.LocalAddr()), Payload: []byte("ping"), RequireReply: true, MaxReplyLength: 4}, false, ErrUnexpected},
		{"echo too short", UDPOptions{ConnOptions: connTo(t, echo.LocalAddr()), Payload: []byte("ping"), RequireReply: true, MinReplyLength: 10}, false, ErrUnexpected},
		{"silent", UDPOptions{ConnOptions: short(connTo(t, silent.LocalAddr()))}, true, nil},
		{"silent require", UDPOptions{ConnOptions: short(connTo(t, silent.LocalAddr())), RequireReply: true}, false, ErrTimeout},
		{"port unreachable", UDPOptions{ConnOptions: short(closedPort(t, "udp"))}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewUDP(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			r := c.Check(context.Background())
			if tt.up {
				mustUp(t, r)
			} else {
				mustDown(t, r, tt.err)
			}
		})
	}
}
