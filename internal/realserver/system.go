package realserver

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Errors callers can test for with errors.Is.
var (
	ErrNotRoot       = errors.New("must run as root")
	ErrNoDevice      = errors.New("no such device")
	ErrVIPElsewhere  = errors.New("VIP already on another interface")
	ErrDevAnswersARP = errors.New("device answers ARP")
	ErrNoIngress     = errors.New("no ingress device")
	ErrUnsupported   = errors.New("not supported on this OS")
)

// System is everything setup reads and changes on the host: the one
// place that touches the kernel, so that planning and reverting are
// tested against a fake (package realservertest). NewSystem returns the
// real one, for the calling thread's network namespace.
type System interface {
	// Root reports whether the caller may change the network.
	Root() bool
	// Link returns the named device; an unknown one wraps ErrNoDevice.
	Link(name string) (Link, error)
	// Addrs lists the addresses of every device.
	Addrs() ([]Addr, error)
	AddAddr(dev string, p netip.Prefix) error
	DelAddr(dev string, p netip.Prefix) error
	// Sysctl reads a sysctl; key is its path under /proc/sys
	// ("net/ipv4/conf/all/arp_ignore").
	Sysctl(key string) (string, error)
	SetSysctl(key, value string) error
	// Routes lists the main table's unicast routes of one family.
	Routes(v4 bool) ([]Route, error)
	// SetAdvMSS replaces the route identified by r.Key() with a copy
	// whose advmss metric is mss (0: none).
	SetAdvMSS(r RouteKey, mss int) error
	// Decap reports the decapsulator govsadm pinned for dev under dir:
	// its mode ("ipip", "gue:6080") or "" when none is attached.
	Decap(dir, dev string) (string, error)
	// AttachDecap attaches and pins a decapsulator for mode to dev,
	// replacing any govsadm pinned there before; DetachDecap removes it.
	AttachDecap(dir, dev, mode string) error
	DetachDecap(dir, dev string) error
}

// Link is a network device.
type Link struct {
	Name     string
	Index    int
	MTU      int
	NoARP    bool
	Loopback bool
}

// Addr is an address on a device.
type Addr struct {
	Dev    string
	Prefix netip.Prefix
}

// Route is a route of the main table.
type Route struct {
	RouteKey
	Gw     netip.Addr
	MTU    int // the route's mtu metric, 0 when unset
	AdvMSS int // the route's advmss metric, 0 when unset
}

// RouteKey identifies a route: the kernel's own key (table, destination,
// tos, metric) plus the device, which is what govsadm selects routes by.
type RouteKey struct {
	Dst      netip.Prefix `json:"dst"`
	Dev      string       `json:"dev"`
	Table    int          `json:"table"`
	Priority int          `json:"metric"`
	Tos      int          `json:"tos,omitempty"`
}

func (k RouteKey) String() string {
	dst := k.Dst.String()
	if k.Dst.Bits() == 0 && k.Dst.Addr().Is4() {
		dst = "default"
	}
	s := fmt.Sprintf("%s dev %s", dst, k.Dev)
	if k.Table != 254 && k.Table != 0 {
		s += fmt.Sprintf(" table %d", k.Table)
	}
	if k.Priority != 0 {
		s += fmt.Sprintf(" metric %d", k.Priority)
	}
	if k.Tos != 0 {
		s += fmt.Sprintf(" tos %d", k.Tos)
	}
	return s
}

// sysctlName shows a /proc/sys path the way sysctl(8) does: dots between
// components, a dot inside one (eth0.100) as a slash.
func sysctlName(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, ".", "/")
	}
	return strings.Join(parts, ".")
}

func confKey(family, dev, name string) string {
	return "net/" + family + "/conf/" + dev + "/" + name
}
