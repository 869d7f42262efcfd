package keepalived_test

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/healthcheck"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/keepalived"
)

// TestPlanCheckersViaVIP: with check_via_vip, a TCP_CHECK of a DR or TUN
// real server becomes the VIP path check, an HTTP_GET gets one next to
// it, a checker aimed at another host stays as it is.
func TestPlanCheckersViaVIP(t *testing.T) {
	a := netip.MustParseAddr
	conn := healthcheck.ConnOptions{ConnectIP: a("10.2.0.11"), ConnectPort: 80, Timeout: 5 * time.Second}
	timing := healthcheck.Timing{DelayLoop: 60 * time.Second, Retry: 1, DelayBeforeRetry: time.Second, Warmup: 60 * time.Second}
	tests := []struct {
		name, kind, checkers string
		want                 []keepalived.Plan
	}{
		{"DR TCP_CHECK", "DR", "TCP_CHECK {\n}\n", []keepalived.Plan{{Kind: config.TCPCheck, Name: "TCP_CHECK via VIP", Timing: timing,
			Options: healthcheck.PathOptions{ConnOptions: conn, VIP: a("10.1.0.100"), Method: ipvs.Route, Interface: "d0"}}}},
		{"TUN GUE", "TUN type gue port 6080", "TCP_CHECK {\n}\n", []keepalived.Plan{{Kind: config.TCPCheck, Name: "TCP_CHECK via VIP", Timing: timing,
			Options: healthcheck.PathOptions{ConnOptions: conn, VIP: a("10.1.0.100"), Method: ipvs.Tunnel, TunType: ipvs.TunGUE, TunPort: 6080, Interface: "d0"}}}},
		{"HTTP_GET", "DR", "HTTP_GET {\nurl {\npath /\n}\n}\n", []keepalived.Plan{
			{Kind: config.HTTPGet, Name: "HTTP_GET /", Timing: healthcheck.Timing{DelayLoop: 60 * time.Second, Retry: 1, DelayBeforeRetry: 3 * time.Second, Warmup: 60 * time.Second},
				Options: healthcheck.HTTPOptions{ConnOptions: conn, URLs: []healthcheck.URL{{Path: "/", StatusCodes: []healthcheck.StatusRange{{Min: 200, Max: 299}}}}}},
			{Kind: config.HTTPGet, Name: "HTTP_GET / via VIP", Timing: healthcheck.Timing{DelayLoop: 60 * time.Second, Retry: 1, DelayBeforeRetry: 3 * time.Second, Warmup: 60 * time.Second},
				Options: healthcheck.PathOptions{ConnOptions: conn, VIP: a("10.1.0.100"), Method: ipvs.Route, Interface: "d0"}}}},
		{"other host", "DR", "TCP_CHECK {\nconnect_ip 10.9.0.1\n}\n", []keepalived.Plan{{Kind: config.TCPCheck, Name: "TCP_CHECK", Timing: timing,
			Options: healthcheck.TCPOptions{ConnOptions: healthcheck.ConnOptions{ConnectIP: a("10.9.0.1"), ConnectPort: 80, Timeout: 5 * time.Second}}}}},
		{"PING_CHECK", "DR", "PING_CHECK {\n}\n", []keepalived.Plan{{Kind: config.PingCheck, Name: "PING_CHECK", Timing: timing,
			Options: healthcheck.PingOptions{ConnOptions: healthcheck.ConnOptions{ConnectIP: a("10.2.0.11"), Timeout: 5 * time.Second}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "virtual_server 10.1.0.100 80 {\nprotocol TCP\nlb_kind " + tt.kind + "\ncheck_via_vip\ncheck_via_vip_interface d0\nreal_server 10.2.0.11 80 {\n" + tt.checkers + "}\n}\n"
			cfg, _, err := config.Parse("k.conf", strings.NewReader(src))
			if err != nil {
				t.Fatal(err)
			}
			vs := &cfg.VirtualServers[0]
			got, err := keepalived.PlanCheckers(cfg, vs, &vs.RealServers[0], 80)
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				got[i].Pos = config.Pos{}
				if _, err := got[i].New(); err != nil {
					t.Errorf("New: %v", err)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("plans =\n %#v\nwant\n %#v", got, tt.want)
			}
		})
	}
}
