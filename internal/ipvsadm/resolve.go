package ipvsadm

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Resolver turns names into addresses and ports and back, as ipvsadm does
// with gethostbyname, getservbyname, gethostbyaddr and getservbyport.
// Tests pass a fake; [SystemResolver] asks the system.
type Resolver interface {
	// LookupHost returns the first IPv4 address of a host name
	// (gethostbyname: ipvsadm resolves names to IPv4 only).
	LookupHost(ctx context.Context, name string) (netip.Addr, bool)
	// LookupPort returns the port of a service name for proto "tcp",
	// "udp" or "sctp" (getservbyname).
	LookupPort(ctx context.Context, proto, name string) (uint16, bool)
	// HostName returns the name of an address (gethostbyaddr).
	HostName(ctx context.Context, addr netip.Addr) (string, bool)
	// PortName returns the service name of a port (getservbyport).
	PortName(ctx context.Context, proto string, port uint16) (string, bool)
}

// SystemResolver resolves with the system's resolver (net.LookupHost,
// net.LookupPort, net.LookupAddr) and reads the services file for port
// names, which Go's net package does not offer.
type SystemResolver struct {
	// ServicesFile is the services database, /etc/services when empty.
	ServicesFile string
	// Timeout bounds each DNS lookup; 5 s when zero.
	Timeout time.Duration

	once     sync.Once
	services map[string]string // "80/tcp" -> "http"
}

var _ Resolver = (*SystemResolver)(nil)

func (r *SystemResolver) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	t := r.Timeout
	if t == 0 {
		t = 5 * time.Second
	}
	return context.WithTimeout(ctx, t)
}

// LookupHost implements [Resolver].
func (r *SystemResolver) LookupHost(ctx context.Context, name string) (netip.Addr, bool) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, name)
	if err != nil {
		return netip.Addr{}, false
	}
	for _, s := range addrs {
		if a, err := netip.ParseAddr(s); err == nil && a.Unmap().Is4() {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// LookupPort implements [Resolver].
func (r *SystemResolver) LookupPort(ctx context.Context, proto, name string) (uint16, bool) {
	if name == "" {
		return 0, false
	}
	if proto == "sctp" {
		r.load()
		for k, v := range r.services {
			if v == name && strings.HasSuffix(k, "/sctp") {
				p, err := strconv.ParseUint(strings.TrimSuffix(k, "/sctp"), 10, 16)
				return uint16(p), err == nil
			}
		}
		return 0, false
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	p, err := net.DefaultResolver.LookupPort(ctx, proto, name)
	if err != nil || p < 0 || p > 65535 {
		return 0, false
	}
	return uint16(p), true
}

// HostName implements [Resolver].
func (r *SystemResolver) HostName(ctx context.Context, addr netip.Addr) (string, bool) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	names, err := net.DefaultResolver.LookupAddr(ctx, addr.String())
	if err != nil || len(names) == 0 {
		return "", false
	}
	return strings.TrimSuffix(names[0], "."), true
}

// PortName implements [Resolver].
func (r *SystemResolver) PortName(_ context.Context, proto string, port uint16) (string, bool) {
	r.load()
	n, ok := r.services[strconv.Itoa(int(port))+"/"+proto]
	return n, ok
}

func (r *SystemResolver) load() {
	r.once.Do(func() {
		r.services = map[string]string{}
		path := r.ServicesFile
		if path == "" {
			path = "/etc/services"
		}
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line, _, _ := strings.Cut(sc.Text(), "#")
			fs := strings.Fields(line)
			if len(fs) < 2 {
				continue
			}
			// The first entry of a port wins, as getservbyport's does.
			if _, dup := r.services[fs[1]]; !dup {
				r.services[fs[1]] = fs[0]
			}
		}
	})
}

// NumericResolver resolves nothing: every name lookup fails and every
// address and port prints as a number.
type NumericResolver struct{}

// LookupHost implements [Resolver].
func (NumericResolver) LookupHost(context.Context, string) (netip.Addr, bool) {
	return netip.Addr{}, false
}

// LookupPort implements [Resolver].
func (NumericResolver) LookupPort(context.Context, string, string) (uint16, bool) { return 0, false }

// HostName implements [Resolver].
func (NumericResolver) HostName(context.Context, netip.Addr) (string, bool) { return "", false }

// PortName implements [Resolver].
func (NumericResolver) PortName(context.Context, string, uint16) (string, bool) { return "", false }
