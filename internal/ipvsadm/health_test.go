package ipvsadm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/api/apitest"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/ipvsadm"
)

// healthDirector is a fake director that also reports health.
type healthDirector struct {
	*apitest.Director
	hs api.HealthStatus
}

func (h healthDirector) HealthStatus(context.Context) (api.HealthStatus, error) { return h.hs, nil }

func TestJSONListingHealth(t *testing.T) {
	k := ipvs.TCPService(netip.MustParseAddrPort("10.0.0.1:80"))
	f := apitest.New()
	f.Put(ipvs.ServiceState{Service: ipvs.Service{ServiceKey: k, Scheduler: "rr"}, Dests: []ipvs.DestState{
		{Destination: ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Fwd: ipvs.Masq, Weight: 1}},
		{Destination: ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.3"), Port: 80, Fwd: ipvs.Masq, Weight: 0}},
	}})
	last := time.Unix(1700000000, 0).UTC()
	d := healthDirector{f, api.HealthStatus{Services: []api.ServiceHealth{{Service: k, RealServers: []api.RealServerHealth{
		{Addr: netip.MustParseAddr("10.0.0.3"), Port: 80, State: api.StateDown, LastCheck: last, Reason: "HTTP_GET /: connection refused"},
	}}}}}
	for _, argv := range [][]string{{"govsadm", "-L", "-n", "--json"}, {"govsadm", "-L", "-n", "-t", "10.0.0.1:80", "--json"}} {
		var out, errb bytes.Buffer
		code := ipvsadm.Main(context.Background(), argv, ipvsadm.Env{Stdout: &out, Stderr: &errb, Dial: func(string) api.Director { return d }})
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", argv, code, errb.String())
		}
		var svc struct {
			Dests []struct {
				Addr   string                `json:"addr"`
				Weight int                   `json:"weight"`
				Health *api.RealServerHealth `json:"health"`
			} `json:"dests"`
		}
		if len(argv) == 4 {
			var l struct {
				Services []json.RawMessage `json:"services"`
			}
			if err := json.Unmarshal(out.Bytes(), &l); err != nil || len(l.Services) != 1 {
				t.Fatalf("listing %s: %v", out.String(), err)
			}
			json.Unmarshal(l.Services[0], &svc)
		} else if err := json.Unmarshal(out.Bytes(), &svc); err != nil {
			t.Fatal(err)
		}
		if len(svc.Dests) != 2 {
			t.Fatalf("%v: %s", argv, out.String())
		}
		for _, d := range svc.Dests {
			switch d.Addr {
			case "10.0.0.2":
				if d.Health != nil || d.Weight != 1 {
					t.Errorf("unchecked dest = %+v", d)
				}
			case "10.0.0.3":
				if d.Health == nil || d.Health.State != "down" || !d.Health.LastCheck.Equal(last) || d.Health.Reason == "" {
					t.Errorf("checked dest = %+v", d)
				}
			}
		}
	}
}
