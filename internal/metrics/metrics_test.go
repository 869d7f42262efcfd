package metrics_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/metrics"
)

type fakeSource struct {
	svcs      []ipvs.ServiceState
	svcsErr   error
	health    error
	dataplane string
}

func (f *fakeSource) Info(context.Context) (api.Info, error) {
	return api.Info{Dataplane: f.dataplane}, nil
}

func (f *fakeSource) Services(context.Context) ([]ipvs.ServiceState, error) {
	return f.svcs, f.svcsErr
}

func (f *fakeSource) Health() error { return f.health }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func state() []ipvs.ServiceState {
	return []ipvs.ServiceState{
		{
			Service: ipvs.Service{ServiceKey: ipvs.TCPService(netip.MustParseAddrPort("10.0.0.1:80")), Scheduler: "wrr"},
			Stats:   ipvs.Counters{Conns: 10, InPkts: 100, OutPkts: 90, InBytes: 1000, OutBytes: 9000},
			Rates:   ipvs.Rates{CPS: 1, InPPS: 2, OutPPS: 3, InBPS: 4, OutBPS: 5},
			Dests: []ipvs.DestState{
				{
					Destination: ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.3"), Port: 8080, Fwd: ipvs.Masq, Weight: 2},
					ActiveConns: 3, InactConns: 1, PersistConns: 2, Overloaded: true,
					Stats: ipvs.Counters{Conns: 6, InPkts: 60}, Rates: ipvs.Rates{CPS: 1},
				},
				{
					Destination: ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Fwd: ipvs.Route, Weight: 0},
					ActiveConns: 1, InactConns: 4,
					Stats: ipvs.Counters{Conns: 4, InPkts: 40},
				},
			},
		},
		{
			// An IPv4 and an IPv6 service with the same mark are two services.
			Service: ipvs.Service{ServiceKey: ipvs.FWMarkService(7, ipvs.IPv4), Scheduler: "sh"},
		},
		{
			Service: ipvs.Service{ServiceKey: ipvs.FWMarkService(7, ipvs.IPv6), Scheduler: "mh"},
			Dests:   []ipvs.DestState{{Destination: ipvs.Destination{Addr: netip.MustParseAddr("2001:db8::2"), Fwd: ipvs.Tunnel, Weight: 5}}},
		},
	}
}

func TestCollector(t *testing.T) {
	src := &fakeSource{svcs: state(), dataplane: "proxy"}
	c := metrics.NewCollector(src, quiet())

	const want = `
# HELP govs_dataplane_up Whether the data plane forwards (1) or reports a failure (0).
# TYPE govs_dataplane_up gauge
govs_dataplane_up{dataplane="proxy"} 1
# HELP govs_destination_active_connections Connections in an active state (TCP ESTABLISHED): ipvsadm ActiveConn.
# TYPE govs_destination_active_connections gauge
govs_destination_active_connections{family="ipv4",forward="masq",fwmark="",port="80",protocol="tcp",realserver="10.0.0.3",realserver_port="8080",vip="10.0.0.1"} 3
govs_destination_active_connections{family="ipv4",forward="route",fwmark="",port="80",protocol="tcp",realserver="10.0.0.2",realserver_port="80",vip="10.0.0.1"} 1
govs_destination_active_connections{family="ipv6",forward="tunnel",fwmark="7",port="",protocol="",realserver="2001:db8::2",realserver_port="0",vip=""} 0
# HELP govs_destination_connections_total Connections scheduled.
# TYPE govs_destination_connections_total counter
govs_destination_connections_total{family="ipv4",forward="masq",fwmark="",port="80",protocol="tcp",realserver="10.0.0.3",realserver_port="8080",vip="10.0.0.1"} 6
govs_destination_connections_total{family="ipv4",forward="route",fwmark="",port="80",protocol="tcp",realserver="10.0.0.2",realserver_port="80",vip="10.0.0.1"} 4
govs_destination_connections_total{family="ipv6",forward="tunnel",fwmark="7",port="",protocol="",realserver="2001:db8::2",realserver_port="0",vip=""} 0
# HELP govs_destination_overloaded Whether the destination reached its upper connection threshold and takes no new connections (1).
# TYPE govs_destination_overloaded gauge
govs_destination_overloaded{family="ipv4",forward="masq",fwmark="",port="80",protocol="tcp",realserver="10.0.0.3",realserver_port="8080",vip="10.0.0.1"} 1
govs_destination_overloaded{family="ipv4",forward="route",fwmark="",port="80",protocol="tcp",realserver="10.0.0.2",realserver_port="80",vip="10.0.0.1"} 0
govs_destination_overloaded{family="ipv6",forward="tunnel",fwmark="7",port="",protocol="",realserver="2001:db8::2",realserver_port="0",vip=""} 0
# HELP govs_destination_weight The destination's weight; 0 is quiescent (no new connections).
# TYPE govs_destination_weight gauge
govs_destination_weight{family="ipv4",forward="masq",fwmark="",port="80",protocol="tcp",realserver="10.0.0.3",realserver_port="8080",vip="10.0.0.1"} 2
govs_destination_weight{family="ipv4",forward="route",fwmark="",port="80",protocol="tcp",realserver="10.0.0.2",realserver_port="80",vip="10.0.0.1"} 0
govs_destination_weight{family="ipv6",forward="tunnel",fwmark="7",port="",protocol="",realserver="2001:db8::2",realserver_port="0",vip=""} 5
# HELP govs_service_active_connections Connections in an active state (TCP ESTABLISHED), over all destinations.
# TYPE govs_service_active_connections gauge
govs_service_active_connections{family="ipv4",fwmark="",port="80",protocol="tcp",vip="10.0.0.1"} 4
govs_service_active_connections{family="ipv4",fwmark="7",port="",protocol="",vip=""} 0
govs_service_active_connections{family="ipv6",fwmark="7",port="",protocol="",vip=""} 0
# HELP govs_service_connections_per_second Estimated new connections per second (ipvsadm CPS).
# TYPE govs_service_connections_per_second gauge
govs_service_connections_per_second{family="ipv4",fwmark="",port="80",protocol="tcp",vip="10.0.0.1"} 1
govs_service_connections_per_second{family="ipv4",fwmark="7",port="",protocol="",vip=""} 0
govs_service_connections_per_second{family="ipv6",fwmark="7",port="",protocol="",vip=""} 0
# HELP govs_service_connections_total Connections scheduled.
# TYPE govs_service_connections_total counter
govs_service_connections_total{family="ipv4",fwmark="",port="80",protocol="tcp",vip="10.0.0.1"} 10
govs_service_connections_total{family="ipv4",fwmark="7",port="",protocol="",vip=""} 0
govs_service_connections_total{family="ipv6",fwmark="7",port="",protocol="",vip=""} 0
# HELP govs_service_inactive_connections Connections in any other state, over all destinations.
# TYPE govs_service_inactive_connections gauge
govs_service_inactive_connections{family="ipv4",fwmark="",port="80",protocol="tcp",vip="10.0.0.1"} 5
govs_service_inactive_connections{family="ipv4",fwmark="7",port="",protocol="",vip=""} 0
govs_service_inactive_connections{family="ipv6",fwmark="7",port="",protocol="",vip=""} 0
# HELP govs_service_info A virtual service, with its scheduler; always 1.
# TYPE govs_service_info gauge
govs_service_info{family="ipv4",fwmark="",port="80",protocol="tcp",scheduler="wrr",vip="10.0.0.1"} 1
govs_service_info{family="ipv4",fwmark="7",port="",protocol="",scheduler="sh",vip=""} 1
govs_service_info{family="ipv6",fwmark="7",port="",protocol="",scheduler="mh",vip=""} 1
# HELP govs_service_out_bytes_per_second Estimated outgoing bytes per second (ipvsadm OutBPS).
# TYPE govs_service_out_bytes_per_second gauge
govs_service_out_bytes_per_second{family="ipv4",fwmark="",port="80",protocol="tcp",vip="10.0.0.1"} 5
govs_service_out_bytes_per_second{family="ipv4",fwmark="7",port="",protocol="",vip=""} 0
govs_service_out_bytes_per_second{family="ipv6",fwmark="7",port="",protocol="",vip=""} 0
# HELP govs_service_out_bytes_total Bytes from realservers to clients (NAT only).
# TYPE govs_service_out_bytes_total counter
govs_service_out_bytes_total{family="ipv4",fwmark="",port="80",protocol="tcp",vip="10.0.0.1"} 9000
govs_service_out_bytes_total{family="ipv4",fwmark="7",port="",protocol="",vip=""} 0
govs_service_out_bytes_total{family="ipv6",fwmark="7",port="",protocol="",vip=""} 0
# HELP govs_service_persistent_connections Persistence templates, over all destinations.
# TYPE govs_service_persistent_connections gauge
govs_service_persistent_connections{family="ipv4",fwmark="",port="80",protocol="tcp",vip="10.0.0.1"} 2
govs_service_persistent_connections{family="ipv4",fwmark="7",port="",protocol="",vip=""} 0
govs_service_persistent_connections{family="ipv6",fwmark="7",port="",protocol="",vip=""} 0
`
	names := []string{
		"govs_dataplane_up", "govs_destination_active_connections", "govs_destination_connections_total",
		"govs_destination_overloaded", "govs_destination_weight", "govs_service_active_connections",
		"govs_service_connections_per_second", "govs_service_connections_total", "govs_service_inactive_connections",
		"govs_service_info", "govs_service_out_bytes_per_second", "govs_service_out_bytes_total",
		"govs_service_persistent_connections",
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	// 1 up + per service (3): info, destinations, 10 stats, 3 sums = 15;
	// per destination (3): 10 stats, 3 conns, weight, overloaded = 15.
	if n := testutil.CollectAndCount(c); n != 1+3*15+3*15 {
		t.Errorf("collected %d metrics, want %d", n, 1+3*15+3*15)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) != 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

func TestCollectorUnhealthy(t *testing.T) {
	src := &fakeSource{dataplane: "ebpf", health: errors.New("tc program detached")}
	c := metrics.NewCollector(src, quiet())
	const want = `
# HELP govs_dataplane_up Whether the data plane forwards (1) or reports a failure (0).
# TYPE govs_dataplane_up gauge
govs_dataplane_up{dataplane="ebpf"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "govs_dataplane_up"); err != nil {
		t.Error(err)
	}
}

func TestHandler(t *testing.T) {
	src := &fakeSource{svcs: state(), dataplane: "proxy"}
	h, err := metrics.Handler(metrics.NewCollector(src, quiet()), quiet())
	if err != nil {
		t.Fatal(err)
	}
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Code, rec.Body.String()
	}
	code, body := get()
	for _, s := range []string{
		`govs_service_in_bytes_total{family="ipv4",fwmark="",port="80",protocol="tcp",vip="10.0.0.1"} 1000`,
		`govs_destination_in_packets_total{family="ipv4",forward="masq",fwmark="",port="80",protocol="tcp",realserver="10.0.0.3",realserver_port="8080",vip="10.0.0.1"} 60`,
		"go_goroutines",
	} {
		if !strings.Contains(body, s) {
			t.Errorf("status %d: /metrics lacks %s", code, s)
		}
	}

	// A failed read still serves the rest, not an empty table.
	src.svcsErr = errors.New("map lookup failed")
	code, body = get()
	if code != 200 || !strings.Contains(body, "govs_dataplane_up") || strings.Contains(body, "govs_service_info") {
		t.Errorf("after a failed read: status %d, body:\n%s", code, body)
	}
}
