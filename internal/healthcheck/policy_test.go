package healthcheck_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/govs/govs/internal/healthcheck"
	"github.com/govs/govs/internal/healthcheck/healthchecktest"
	"github.com/govs/govs/internal/ipvs"
)

var sorry = ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.99"), Port: 80, Weight: 1}

// step is one input to the policy: "init", "down rs1", "up rs2",
// "weight rs1 0", "shutdown"; want lists the actions as "add 10.0.0.1 5"
// and the notifications as "!quorum_down" / "!notify_up 10.0.0.1".
type step struct {
	do   string
	want string
}

func dest(name string) ipvs.Destination {
	switch name {
	case "rs1":
		return rs1
	case "rs2":
		return rs2
	case "rs3":
		return rs3
	}
	panic(name)
}

func runPolicy(t *testing.T, cfg healthcheck.PolicyConfig, initUp map[string]bool, steps []step) {
	t.Helper()
	rec := &healthchecktest.Recorder{}
	cfg.Service = svc
	p, err := healthcheck.NewPolicy(cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range steps {
		f := strings.Fields(s.do)
		var acts []healthcheck.Action
		switch f[0] {
		case "init":
			up := map[ipvs.DestKey]bool{}
			for n, u := range initUp {
				d := dest(n)
				up[d.Key()] = u
			}
			acts = p.Init(up)
		case "up", "down":
			d := dest(f[1])
			acts = p.SetState(d.Key(), f[0] == "up", len(f) > 2 && f[2] == "initial")
		case "weight":
			var w int
			fmt.Sscan(f[2], &w)
			d := dest(f[1])
			acts = p.SetWeight(d.Key(), w)
		case "shutdown":
			acts = p.Shutdown()
		}
		var got []string
		for _, a := range acts {
			if a.Service != svc {
				t.Fatalf("action for %s", a.Service)
			}
			got = append(got, fmt.Sprintf("%s %s %d", a.Kind, a.Dest.Addr, a.Dest.Weight))
		}
		for _, n := range rec.Take() {
			s := "!" + n.Kind.String()
			if n.Dest.Addr.IsValid() {
				s += " " + n.Dest.Addr.String()
			}
			if n.Script != "" {
				s += " [" + n.Script + "]"
			}
			got = append(got, s)
		}
		if g := strings.Join(got, ", "); g != s.want {
			t.Fatalf("step %d %q:\n got  %s\n want %s", i+1, s.do, g, s.want)
		}
	}
}

func rsList(inhibit bool, ds ...ipvs.Destination) []healthcheck.PolicyRealServer {
	var out []healthcheck.PolicyRealServer
	for _, d := range ds {
		out = append(out, healthcheck.PolicyRealServer{Dest: d, InhibitOnFailure: inhibit})
	}
	return out
}

func TestPolicy(t *testing.T) {
	tests := []struct {
		name   string
		cfg    healthcheck.PolicyConfig
		initUp map[string]bool
		steps  []step
	}{
		{
			name: "remove and add back",
			cfg:  healthcheck.PolicyConfig{Quorum: 1, RealServers: []healthcheck.PolicyRealServer{{Dest: rs1, NotifyUp: "/up.sh", NotifyDown: "/down.sh"}, {Dest: rs2}}},
			steps: []step{
				{"init", "add 10.0.0.1 5, add 10.0.0.2 3, !quorum_up"},
				{"down rs1", "delete 10.0.0.1 5, !notify_down 10.0.0.1 [/down.sh]"},
				{"down rs1", ""},
				{"up rs1", "add 10.0.0.1 5, !notify_up 10.0.0.1 [/up.sh]"},
			},
		},
		{
			name: "inhibit_on_failure sets weight 0",
			cfg:  healthcheck.PolicyConfig{Quorum: 1, RealServers: rsList(true, rs1, rs2)},
			steps: []step{
				{"init", "add 10.0.0.1 5, add 10.0.0.2 3, !quorum_up"},
				{"down rs1", "edit 10.0.0.1 0, !notify_down 10.0.0.1"},
				{"up rs1", "edit 10.0.0.1 5, !notify_up 10.0.0.1"},
			},
		},
		{
			name:   "alpha: failed inhibited server added with weight 0",
			cfg:    healthcheck.PolicyConfig{Quorum: 1, RealServers: rsList(true, rs1, rs2)},
			initUp: map[string]bool{"rs1": false},
			steps: []step{
				{"init", "add 10.0.0.1 0, add 10.0.0.2 3, !quorum_up"},
				{"down rs1 initial", "!notify_down 10.0.0.1"},
				{"up rs1", "edit 10.0.0.1 5, !notify_up 10.0.0.1"},
			},
		},
		{
			name:   "alpha: failed server not added",
			cfg:    healthcheck.PolicyConfig{Quorum: 1, RealServers: rsList(false, rs1, rs2)},
			initUp: map[string]bool{"rs1": false, "rs2": false},
			steps: []step{
				{"init", ""},
				{"up rs2", "add 10.0.0.2 3, !notify_up 10.0.0.2, !quorum_up"},
			},
		},
		{
			name: "sorry server when all are down",
			cfg:  healthcheck.PolicyConfig{Quorum: 1, QuorumUp: "/qup", QuorumDown: "/qdown", SorryServer: &sorry, RealServers: rsList(false, rs1, rs2)},
			steps: []step{
				{"init", "add 10.0.0.1 5, add 10.0.0.2 3, !quorum_up [/qup]"},
				{"down rs1", "delete 10.0.0.1 5, !notify_down 10.0.0.1"},
				{"down rs2", "delete 10.0.0.2 3, add 10.0.0.99 1, !notify_down 10.0.0.2, !quorum_down [/qdown]"},
				{"up rs2", "delete 10.0.0.99 1, add 10.0.0.2 3, !notify_up 10.0.0.2, !quorum_up [/qup]"},
			},
		},
		{
			name: "quorum with hysteresis and sorry server",
			// Gain at 6+1=7, lose below 6-1=5.
			cfg: healthcheck.PolicyConfig{Quorum: 6, Hysteresis: 1, SorryServer: &sorry, RealServers: rsList(false, rs1, rs2, rs3)},
			steps: []step{
				{"init", "add 10.0.0.1 5, add 10.0.0.2 3, add 10.0.0.3 1, !quorum_up"},                  // 9 >= 7
				{"down rs2", "delete 10.0.0.2 3, !notify_down 10.0.0.2"},                                // 6: kept (>= 5)
				{"down rs3", "delete 10.0.0.3 1, !notify_down 10.0.0.3"},                                // 5: kept
				{"down rs1", "delete 10.0.0.1 5, add 10.0.0.99 1, !notify_down 10.0.0.1, !quorum_down"}, // 0
				{"up rs1", "!notify_up 10.0.0.1"},                                                       // 5 < 7: sorry stays, rs1 not added
				{"up rs3", "!notify_up 10.0.0.3"},                                                       // 6 < 7
				{"up rs2", "delete 10.0.0.99 1, add 10.0.0.1 5, add 10.0.0.2 3, add 10.0.0.3 1, !notify_up 10.0.0.2, !quorum_up"},
			},
		},
		{
			name: "quorum without sorry server only notifies",
			cfg:  healthcheck.PolicyConfig{Quorum: 5, RealServers: rsList(false, rs1, rs2)},
			steps: []step{
				{"init", "add 10.0.0.1 5, add 10.0.0.2 3, !quorum_up"},
				{"down rs1", "delete 10.0.0.1 5, !notify_down 10.0.0.1, !quorum_down"},
				{"up rs1", "add 10.0.0.1 5, !notify_up 10.0.0.1, !quorum_up"},
			},
		},
		{
			name:   "start with quorum down adds the sorry server",
			cfg:    healthcheck.PolicyConfig{Quorum: 1, SorryServer: &sorry, RealServers: rsList(false, rs1)},
			initUp: map[string]bool{"rs1": false},
			steps:  []step{{"init", "add 10.0.0.99 1, !quorum_down"}},
		},
		{
			name: "sorry_server_inhibit",
			cfg:  healthcheck.PolicyConfig{Quorum: 1, SorryServer: &sorry, SorryInhibit: true, RealServers: rsList(false, rs1)},
			steps: []step{
				{"init", "add 10.0.0.1 5, add 10.0.0.99 0, !quorum_up"},
				{"down rs1", "delete 10.0.0.1 5, edit 10.0.0.99 1, !notify_down 10.0.0.1, !quorum_down"},
				{"up rs1", "edit 10.0.0.99 0, add 10.0.0.1 5, !notify_up 10.0.0.1, !quorum_up"},
			},
		},
		{
			name: "inhibited servers with sorry server",
			cfg:  healthcheck.PolicyConfig{Quorum: 4, SorryServer: &sorry, RealServers: rsList(true, rs1, rs2)},
			steps: []step{
				{"init", "add 10.0.0.1 5, add 10.0.0.2 3, !quorum_up"},
				{"down rs1", "edit 10.0.0.1 0, edit 10.0.0.2 0, add 10.0.0.99 1, !notify_down 10.0.0.1, !quorum_down"},
				{"up rs1", "delete 10.0.0.99 1, edit 10.0.0.1 5, edit 10.0.0.2 3, !notify_up 10.0.0.1, !quorum_up"},
			},
		},
		{
			name: "dynamic weight edits and can lose the quorum",
			cfg:  healthcheck.PolicyConfig{Quorum: 4, RealServers: rsList(false, rs1)},
			steps: []step{
				{"init", "add 10.0.0.1 5, !quorum_up"},
				{"weight rs1 5", ""},
				{"weight rs1 8", "edit 10.0.0.1 8"},
				{"weight rs1 -2", "edit 10.0.0.1 0, !quorum_down"},
				{"weight rs1 4", "edit 10.0.0.1 4, !quorum_up"},
			},
		},
		{
			name: "shutdown with omega",
			cfg:  healthcheck.PolicyConfig{Quorum: 1, Omega: true, QuorumDown: "/qdown", RealServers: rsList(true, rs1, rs2)},
			steps: []step{
				{"init", "add 10.0.0.1 5, add 10.0.0.2 3, !quorum_up"},
				{"down rs2", "edit 10.0.0.2 0, !notify_down 10.0.0.2"},
				{"shutdown", "delete 10.0.0.1 5, delete 10.0.0.2 3, !notify_down 10.0.0.1, !quorum_down [/qdown]"},
			},
		},
		{
			name: "shutdown without omega",
			cfg:  healthcheck.PolicyConfig{Quorum: 1, RealServers: rsList(false, rs1)},
			steps: []step{
				{"init", "add 10.0.0.1 5, !quorum_up"},
				{"shutdown", "delete 10.0.0.1 5"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runPolicy(t, tt.cfg, tt.initUp, tt.steps) })
	}
}

func TestPolicyEvents(t *testing.T) {
	rec := &healthchecktest.Recorder{}
	p, err := healthcheck.NewPolicy(healthcheck.PolicyConfig{Service: svc, Quorum: 1, RealServers: rsList(false, rs1)}, rec)
	if err != nil {
		t.Fatal(err)
	}
	p.Init(nil)
	acts := p.HandleEvent(healthcheck.Event{Kind: healthcheck.EventDown, Dest: rs1.Key(), Up: false, Weight: 5})
	if len(acts) != 1 || acts[0].Kind != healthcheck.DelDest || p.QuorumUp() {
		t.Fatalf("down event: %v quorum %v", acts, p.QuorumUp())
	}
	acts = p.HandleEvent(healthcheck.Event{Kind: healthcheck.EventUp, Dest: rs1.Key(), Up: true, Weight: 7})
	if len(acts) != 1 || acts[0].Kind != healthcheck.AddDest || acts[0].Dest.Weight != 7 {
		t.Fatalf("up event with a new weight: %v", acts)
	}
	if _, err := healthcheck.NewPolicy(healthcheck.PolicyConfig{Quorum: -1, RealServers: rsList(false, rs1, rs1)}, nil); err == nil {
		t.Fatal("bad config accepted")
	}
}
