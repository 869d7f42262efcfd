package healthcheck

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func connTo(t *testing.T, addr net.Addr) ConnOptions {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		t.Fatal(err)
	}
	return ConnOptions{ConnectIP: ap.Addr(), ConnectPort: ap.Port(), Timeout: 2 * time.Second}
}

// closedPort returns a loopback TCP/UDP port nothing listens on.
func closedPort(t *testing.T, network string) ConnOptions {
	t.Helper()
	var addr net.Addr
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = c.LocalAddr()
		c.Close()
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = l.Addr()
		l.Close()
	}
	return connTo(t, addr)
}

func mustUp(t *testing.T, r Result) {
	t.Helper()
	if !r.Up {
		t.Fatalf("check down, want up: %v", r)
	}
}

func mustDown(t *testing.T, r Result, want error) {
	t.Helper()
	if r.Up {
		t.Fatalf("check up, want down: %v", r)
	}
	if want != nil && !errors.Is(r.Err, want) {
		t.Fatalf("err = %v, want %v", r.Err, want)
	}
}

func TestTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	c, err := NewTCP(TCPOptions{connTo(t, l.Addr())})
	if err != nil {
		t.Fatal(err)
	}
	mustUp(t, c.Check(context.Background()))

	opts := connTo(t, l.Addr())
	opts.BindTo = loopback
	c, err = NewTCP(TCPOptions{opts})
	if err != nil {
		t.Fatal(err)
	}
	mustUp(t, c.Check(context.Background()))

	c, _ = NewTCP(TCPOptions{closedPort(t, "tcp")})
	mustDown(t, c.Check(context.Background()), nil)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, _ = NewTCP(TCPOptions{connTo(t, l.Addr())})
	mustDown(t, c.Check(ctx), nil)
}

func TestConnOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    ConnOptions
		ok   bool
	}{
		{"ok", ConnOptions{ConnectIP: loopback, ConnectPort: 80}, true},
		{"no ip", ConnOptions{ConnectPort: 80}, false},
		{"no port", ConnOptions{ConnectIP: loopback}, false},
		{"family", ConnOptions{ConnectIP: loopback, ConnectPort: 80, BindTo: netip.MustParseAddr("::1")}, false},
		{"negative timeout", ConnOptions{ConnectIP: loopback, ConnectPort: 80, Timeout: -1}, false},
	}
	for _, tt := range tests {
		_, err := NewTCP(TCPOptions{tt.o})
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v is not ErrConfig", tt.name, err)
		}
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
