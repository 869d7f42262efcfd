package keepalived

import (
	"context"
	"slices"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/healthcheck"
)

var (
	_ api.HealthReader = (*Manager)(nil)
	_ api.Reloader     = (*Manager)(nil)
)

// HealthStatus implements api.HealthReader: every configured service
// with its realservers' health, the sorry server, and what is draining.
func (m *Manager) HealthStatus(ctx context.Context) (api.HealthStatus, error) {
	var st api.HealthStatus
	err := m.do(ctx, func() { st = m.status() })
	return st, err
}

func (m *Manager) status() api.HealthStatus {
	st := api.HealthStatus{ConfigFile: m.opts.Path, LoadedAt: m.loadedAt, Services: []api.ServiceHealth{}}
	for _, k := range m.sortedServices() {
		s := m.services[k]
		sh := api.ServiceHealth{Service: k, RealServers: []api.RealServerHealth{}}
		if s.sc.Source != nil {
			sh.Source = s.sc.Source.Pos.String()
		}
		if s.policy != nil {
			sh.QuorumUp, sh.SorryActive = s.policy.QuorumUp(), s.policy.SorryActive()
		}
		for _, mb := range s.members {
			sh.RealServers = append(sh.RealServers, m.rsHealth(mb))
		}
		if s.sc.Sorry != nil {
			h := api.RealServerHealth{Addr: s.sc.Sorry.Addr, Port: s.sc.Sorry.Port, State: api.StateStandby, Weight: int(s.sc.Sorry.Weight)}
			if sh.SorryActive {
				h.State, h.Up = api.StateSorry, true
			}
			sh.RealServers = append(sh.RealServers, h)
		}
		st.Services = append(st.Services, sh)
	}
	for k, deadline := range m.svcDrains {
		st.Services = append(st.Services, api.ServiceHealth{Service: k, Draining: true, DrainDeadline: deadline, RealServers: []api.RealServerHealth{}})
	}
	for i := range st.Services {
		sh := &st.Services[i]
		for dk, deadline := range m.drains {
			if dk.svc == sh.Service {
				sh.RealServers = append(sh.RealServers, api.RealServerHealth{Addr: dk.dest.Addr, Port: dk.dest.Port,
					State: api.StateDraining, DrainDeadline: deadline, Reason: "removed from the configuration"})
			}
		}
	}
	slices.SortFunc(st.Services, func(a, b api.ServiceHealth) int { return cmpKey(a.Service, b.Service) })
	return st
}

func (m *Manager) rsHealth(mb member) api.RealServerHealth {
	h := api.RealServerHealth{Addr: mb.dest.Addr, Port: mb.dest.Port, State: api.StateUp, Up: true, Weight: int(mb.dest.Weight), Reason: "no checkers"}
	r := m.runners[mb.id]
	if r == nil || r.runner == nil {
		return h
	}
	rs := r.runner.Status()
	h.Up, h.Weight, h.LastCheck, h.Reason = rs.Up, rs.Weight, rs.LastCheck, r.reason
	if !rs.Up {
		h.State = api.StateDown
	}
	for _, c := range rs.Checkers {
		h.Checks += c.Checks
		h.Failures += c.Failures
		h.Checkers = append(h.Checkers, checkerHealth(c))
		if !c.Up && !h.Up && c.LastError != "" {
			h.Reason = c.Name + ": " + c.LastError
		}
	}
	if h.Reason == "" && !rs.LastCheck.IsZero() {
		h.Reason = "all checkers pass"
	}
	if h.Reason == "" {
		h.Reason = "not checked yet"
	}
	return h
}

func checkerHealth(c healthcheck.CheckerStatus) api.CheckerHealth {
	return api.CheckerHealth{Name: c.Name, Up: c.Up, LastCheck: c.LastCheck, LastError: c.LastError,
		Checks: c.Checks, Failures: c.Failures, ConsecutiveFailures: c.Consecutive}
}
