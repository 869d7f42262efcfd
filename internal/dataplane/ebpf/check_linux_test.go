package ebpf

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/ipvs"
)

// TestCheckDestRefuses: what BPF forwarding cannot do is refused before
// anything changes, with a message naming what can.
func TestCheckDestRefuses(t *testing.T) {
	svc := ipvs.Service{ServiceKey: ipvs.TCPService(netip.MustParseAddrPort("10.0.0.1:80")), Scheduler: "rr"}
	svc.SetDefaults()
	rip := netip.MustParseAddr("10.0.1.1")
	for _, tt := range []struct {
		name string
		d    ipvs.Destination
		want string
	}{
		{"proxy protocol", ipvs.Destination{Addr: rip, Port: 80, Fwd: ipvs.Masq, Weight: 1, ProxyProtocol: 2}, "use govsd --dataplane proxy"},
		{"gre", ipvs.Destination{Addr: rip, Port: 80, Fwd: ipvs.Tunnel, Weight: 1, TunType: ipvs.TunGRE}, "use ipip or gue"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := checkDest(svc, tt.d)
			if !errors.Is(err, dataplane.ErrUnsupported) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("checkDest = %v, want ErrUnsupported saying %q", err, tt.want)
			}
		})
	}
	if err := checkDest(svc, ipvs.Destination{Addr: rip, Port: 80, Fwd: ipvs.Route, Weight: 1}); err != nil {
		t.Fatalf("DR destination refused: %v", err)
	}
}
