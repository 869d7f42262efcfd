package keepalived

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/healthcheck"
	"github.com/govs/govs/internal/ipvs"
)

// Load reads and checks the keepalived configuration at path: what
// config.Load and config.Check find, and the checkers govs cannot build
// (a missing SSL certificate, a FILE_CHECK without its track_file, ...).
// It is `govsd -t`. Every error is "file:line: message" and wraps
// config.ErrInvalid.
func Load(path string, opts ...config.Option) (*config.Config, []config.Warning, error) {
	cfg, warns, err := config.Load(path, opts...)
	if err != nil {
		return nil, warns, err
	}
	if err := Validate(cfg); err != nil {
		return nil, warns, err
	}
	return cfg, warns, nil
}

// Validate checks that cfg converts to IPVS services and that every
// checker can be built.
func Validate(cfg *config.Config) error {
	svcs, err := cfg.IPVS()
	if err != nil {
		return err
	}
	_, err = plan(cfg, svcs)
	return err
}

// rsPlan is one real_server block resolved for every service it is in.
type rsPlan struct {
	id      string
	fp      string
	rs      *config.RealServer
	weight  int32
	targets []drainKey
	plans   []Plan
}

// plan resolves the realservers' checkers of svcs; a real_server of a
// group is planned once, with a target in each service of the group.
func plan(cfg *config.Config, svcs []config.ServiceConfig) (map[string]*rsPlan, error) {
	out := map[string]*rsPlan{}
	var errs []error
	for i := range svcs {
		sc := &svcs[i]
		vs := sc.Source
		for j := range vs.RealServers {
			rs := &vs.RealServers[j]
			port := destPort(rs, &sc.Service, sc.Service.Port)
			target := drainKey{sc.Service.ServiceKey, ipvs.DestKey{Addr: rs.Addr.Unmap(), Port: port}}
			id := rsID(vs, rs)
			if p, ok := out[id]; ok {
				p.targets = append(p.targets, target)
				continue
			}
			plans, err := PlanCheckers(cfg, vs, rs, port)
			if err != nil {
				errs = append(errs, err)
			}
			out[id] = &rsPlan{id: id, fp: checkerInputs(cfg, vs, rs), rs: rs, weight: rs.Weight, targets: []drainKey{target}, plans: plans}
		}
	}
	return out, errors.Join(errs...)
}

// Reload re-reads the configuration file and applies the difference. A
// configuration with errors is refused: the error lists them all and the
// running configuration stays.
func (m *Manager) Reload(ctx context.Context) (api.ReloadResult, error) {
	if m.opts.Path == "" {
		return api.ReloadResult{}, api.ErrNoConfig
	}
	cfg, warns, err := Load(m.opts.Path, m.opts.LoadOptions...)
	res := api.ReloadResult{ConfigFile: m.opts.Path}
	for _, w := range warns {
		m.log.Warn("config: "+w.Msg, "pos", w.Pos.String())
		res.Warnings = append(res.Warnings, w.String())
	}
	if err != nil {
		m.log.Error("reload refused: the configuration has errors; the running one stays", "file", m.opts.Path, "err", err)
		return res, fmt.Errorf("reload %s refused, the running configuration stays: %w", m.opts.Path, err)
	}
	r, err := m.Apply(ctx, cfg)
	r.ConfigFile, r.Warnings = res.ConfigFile, res.Warnings
	return r, err
}

// Apply makes cfg the running configuration: the difference from the
// running one is applied (config.Diff), realservers whose checkers did
// not change keep their runners, removed realservers and services are
// drained. It refuses a configuration Validate refuses, changing nothing.
func (m *Manager) Apply(ctx context.Context, cfg *config.Config) (api.ReloadResult, error) {
	var res api.ReloadResult
	var err error
	if derr := m.do(ctx, func() { res, err = m.apply1(ctx, cfg) }); derr != nil {
		return res, derr
	}
	return res, err
}

func (m *Manager) apply1(ctx context.Context, cfg *config.Config) (api.ReloadResult, error) {
	var res api.ReloadResult
	svcs, err := cfg.IPVS()
	if err != nil {
		return res, err
	}
	plans, err := plan(cfg, svcs)
	if err != nil {
		return res, err
	}
	ch := config.Diff(m.svcs, svcs)
	note := func(format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		res.Changes = append(res.Changes, s)
		m.log.Info("reload: " + s)
	}

	// Build every new runner first: a checker that cannot be built
	// refuses the configuration before anything changed.
	runners := map[string]*rsRunner{}
	var fresh []*rsRunner
	for id, p := range plans {
		if old := m.runners[id]; old != nil && old.fp == p.fp {
			old.targets = p.targets
			if old.weight != p.weight && old.runner != nil {
				old.runner.SetWeight(p.weight)
			}
			old.weight = p.weight
			runners[id] = old
			if old.runner != nil {
				res.CheckersKept++
			}
			continue
		}
		r, err := m.newRunner(p)
		if err != nil {
			for _, f := range fresh {
				f.cancel()
			}
			return api.ReloadResult{}, err
		}
		runners[id] = r
		fresh = append(fresh, r)
	}

	// Services: add, edit; a service that comes back while draining is
	// kept and edited.
	var errs []error
	for _, s := range ch.AddServices {
		if _, draining := m.svcDrains[s.ServiceKey]; draining {
			delete(m.svcDrains, s.ServiceKey)
			note("keep draining service %s: it is configured again", s.ServiceKey)
			if err := m.dir.EditService(ctx, s); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		err := m.dir.AddService(ctx, s)
		if errors.Is(err, ipvs.ErrServiceExists) {
			err = m.dir.EditService(ctx, s)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("add service %s: %w", s.ServiceKey, err))
			continue
		}
		note("add service %s", s.ServiceKey)
	}
	for _, e := range ch.EditServices {
		if err := m.dir.EditService(ctx, e.New); err != nil {
			errs = append(errs, fmt.Errorf("edit service %s: %w", e.New.ServiceKey, err))
			continue
		}
		note("edit service %s (%v)", e.New.ServiceKey, e.Fields)
	}

	// Runners: stop the replaced and removed ones, start the new ones.
	for id, old := range m.runners {
		if runners[id] != old {
			old.cancel()
			if old.runner != nil {
				res.CheckersStopped++
			}
		}
	}
	m.runners = runners
	for _, r := range fresh {
		if r.runner != nil {
			res.CheckersStarted++
			m.startRunner(r)
		}
	}

	// Destinations that came back while draining are the policy's again.
	for _, d := range ch.AddDests {
		delete(m.drains, drainKey{d.Service, d.Dest.Key()})
	}
	for _, d := range ch.AddDests {
		note("add destination %s to %s", d.Dest.AddrPort(), d.Service)
	}
	for _, d := range ch.EditDests {
		note("edit destination %s of %s (%v)", d.New.AddrPort(), d.Service, d.Fields)
	}

	// Policies: a service whose policy inputs did not change keeps its
	// policy (and its table entries untouched); others get a new one,
	// initialised from the runners' current states.
	services := map[ipvs.ServiceKey]*service{}
	for i := range svcs {
		sc := svcs[i]
		k := sc.Service.ServiceKey
		pc, members := m.policyConfig(&sc, runners)
		fp := policyFingerprint(&sc, members, runners)
		if old := m.services[k]; old != nil && old.policyFP == fp {
			old.sc, old.members = sc, members
			services[k] = old
			continue
		}
		s := &service{sc: sc, members: members, policyFP: fp, gate: &gateNotifier{next: m.opts.Notifier}}
		p, err := healthcheck.NewPolicy(pc, s.gate)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.policy = p
		services[k] = s
		m.initPolicy(ctx, s, m.services[k])
	}

	// Removed destinations (and a sorry server no longer configured)
	// drain: weight 0 until their connections end.
	now := m.opts.Now()
	for _, d := range ch.RemoveDests {
		m.drainDest(ctx, d.Service, d.Dest.Key(), now)
		note("drain destination %s of %s", d.Dest.AddrPort(), d.Service)
	}
	for k, old := range m.services {
		if s := services[k]; s != nil && old.sc.Sorry != nil && (s.sc.Sorry == nil || s.sc.Sorry.Key() != old.sc.Sorry.Key()) {
			if !containsDest(s.sc.Dests, old.sc.Sorry.Key()) {
				m.drainDest(ctx, k, old.sc.Sorry.Key(), now)
				note("drain sorry server %s of %s", old.sc.Sorry.AddrPort(), k)
			}
		}
	}
	for _, s := range ch.RemoveServices {
		m.drainService(ctx, s.ServiceKey, now)
		note("drain service %s", s.ServiceKey)
	}
	m.services = services
	m.cfg, m.svcs, m.loadedAt = cfg, svcs, now
	return res, errors.Join(errs...)
}

func containsDest(ds []ipvs.Destination, k ipvs.DestKey) bool {
	for _, d := range ds {
		if d.Key() == k {
			return true
		}
	}
	return false
}

// newRunner builds the runner of p; it is started by startRunner.
func (m *Manager) newRunner(p *rsPlan) (*rsRunner, error) {
	r := &rsRunner{id: p.id, fp: p.fp, weight: p.weight, targets: p.targets, cancel: func() {}}
	if len(p.plans) == 0 {
		return r, nil
	}
	first := p.targets[0]
	spec := healthcheck.RealServerSpec{Service: first.svc,
		Dest: ipvs.Destination{Addr: first.dest.Addr, Port: first.dest.Port, Weight: p.weight}}
	for _, pl := range p.plans {
		c, err := m.opts.NewChecker(first.svc, first.dest, pl)
		if err != nil {
			return nil, err
		}
		spec.Checkers = append(spec.Checkers, healthcheck.CheckerSpec{Name: pl.Name, Checker: c, Timing: pl.Timing, Alpha: pl.Alpha})
	}
	run, err := healthcheck.NewRunner(spec, healthcheck.RunnerOptions{
		Clock: m.opts.Clock, Logger: m.log, Rand: m.opts.Rand,
		OnEvent: func(e healthcheck.Event) { m.onEvent(r, e) },
	})
	if err != nil {
		return nil, err
	}
	r.runner = run
	return r, nil
}

func (m *Manager) startRunner(r *rsRunner) {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	m.runWG.Go(func() { r.runner.Run(ctx) })
}

// policyConfig is keepalived's virtual_server health settings for sc; a
// realserver starts from its runner's effective weight.
func (m *Manager) policyConfig(sc *config.ServiceConfig, runners map[string]*rsRunner) (healthcheck.PolicyConfig, []member) {
	vs := sc.Source
	pc := healthcheck.PolicyConfig{
		Service:     sc.Service.ServiceKey,
		Quorum:      int(vs.Quorum),
		Hysteresis:  int(vs.Hysteresis),
		QuorumUp:    scriptOf(vs.QuorumUp),
		QuorumDown:  scriptOf(vs.QuorumDown),
		SorryServer: sc.Sorry,
		Omega:       vs.Omega,
	}
	if vs.SorryServer != nil {
		pc.SorryInhibit = vs.SorryServer.Inhibit
	}
	var members []member
	for j := range vs.RealServers {
		rs := &vs.RealServers[j]
		port := destPort(rs, &sc.Service, sc.Service.Port)
		dk := ipvs.DestKey{Addr: rs.Addr.Unmap(), Port: port}
		var dest ipvs.Destination
		for _, d := range sc.Dests {
			if d.Key() == dk {
				dest = d
			}
		}
		if !dest.Addr.IsValid() {
			continue
		}
		id := rsID(vs, rs)
		members = append(members, member{id: id, dest: dest, rs: rs})
		d := dest
		if r := runners[id]; r != nil && r.runner != nil {
			d.Weight = int32(r.runner.Weight())
		}
		pc.RealServers = append(pc.RealServers, healthcheck.PolicyRealServer{
			Dest: d, InhibitOnFailure: rs.InhibitOnFailure,
			NotifyUp: scriptOf(rs.NotifyUp), NotifyDown: scriptOf(rs.NotifyDown),
		})
	}
	return pc, members
}

// policyFingerprint is what a policy is built from: the service's health
// settings, its realservers as configured, and their runners.
func policyFingerprint(sc *config.ServiceConfig, members []member, runners map[string]*rsRunner) string {
	vs := sc.Source
	type rsIn struct {
		Dest    ipvs.Destination
		Inhibit bool
		Up, Dn  *config.Script
		Runner  string
	}
	in := struct {
		Quorum, Hysteresis uint32
		QUp, QDown         *config.Script
		Sorry              *ipvs.Destination
		SorryInhibit       bool
		Omega              bool
		RS                 []rsIn
	}{Quorum: vs.Quorum, Hysteresis: vs.Hysteresis, QUp: vs.QuorumUp, QDown: vs.QuorumDown, Sorry: sc.Sorry, Omega: vs.Omega}
	if vs.SorryServer != nil {
		in.SorryInhibit = vs.SorryServer.Inhibit
	}
	for _, mb := range members {
		r := runners[mb.id]
		in.RS = append(in.RS, rsIn{Dest: mb.dest, Inhibit: mb.rs.InhibitOnFailure, Up: mb.rs.NotifyUp, Dn: mb.rs.NotifyDown,
			Runner: fmt.Sprintf("%p", r)})
	}
	return fingerprint(in)
}

func scriptOf(s *config.Script) string {
	if s == nil {
		return ""
	}
	return s.Command
}

// initPolicy runs a new policy's Init with the runners' current states
// and applies it. Destinations of the service the policy leaves out (a
// realserver that is down) are taken out of the table. With old (the
// policy it replaces on a reload), quorum notifications are sent only if
// the quorum state changed.
func (m *Manager) initPolicy(ctx context.Context, s *service, old *service) {
	up := map[ipvs.DestKey]bool{}
	for _, mb := range s.members {
		if r := m.runners[mb.id]; r != nil && r.runner != nil {
			up[mb.dest.Key()] = r.runner.Up()
		}
	}
	s.gate.muted = old != nil
	acts := s.policy.Init(up)
	s.gate.muted = false
	if old != nil {
		if old.policy == nil || old.policy.QuorumUp() != s.policy.QuorumUp() {
			for _, n := range s.gate.held {
				s.gate.next.Notify(n)
			}
		}
		s.gate.held = nil
	}
	mentioned := map[ipvs.DestKey]bool{}
	for _, a := range acts {
		mentioned[a.Dest.Key()] = true
	}
	k := s.sc.Service.ServiceKey
	keys := make([]ipvs.DestKey, 0, len(s.members)+1)
	for _, mb := range s.members {
		keys = append(keys, mb.dest.Key())
	}
	if s.sc.Sorry != nil {
		keys = append(keys, s.sc.Sorry.Key())
	}
	for _, dk := range keys {
		if !mentioned[dk] {
			acts = append(acts, healthcheck.Action{Kind: healthcheck.DelDest, Service: k, Dest: ipvs.Destination{Addr: dk.Addr, Port: dk.Port}, Reason: "not up after reload"})
		}
	}
	m.apply(ctx, acts)
	wasQ, wasS := false, false
	if old != nil && old.policy != nil {
		wasQ, wasS = old.policy.QuorumUp(), old.policy.SorryActive()
	}
	m.logQuorum(s, wasQ, wasS)
}

// drainDest sets a removed destination's weight to 0 and remembers it
// until its connections end or the drain timeout passes.
func (m *Manager) drainDest(ctx context.Context, k ipvs.ServiceKey, dk ipvs.DestKey, now time.Time) {
	cur, ok := m.table(ctx, k)[dk]
	if !ok {
		return
	}
	if cur.Weight != 0 {
		cur.Weight = 0
		if err := m.dir.EditDest(ctx, k, cur); err != nil {
			m.log.Error("drain destination: set weight 0", "service", k.String(), "dest", netip.AddrPortFrom(dk.Addr, dk.Port).String(), "err", err)
		}
	}
	if _, ok := m.drains[drainKey{k, dk}]; !ok {
		m.drains[drainKey{k, dk}] = now.Add(m.opts.DrainTimeout)
	}
}

// drainService quiesces every destination of a removed service and
// remembers it until its connections end or the drain timeout passes.
func (m *Manager) drainService(ctx context.Context, k ipvs.ServiceKey, now time.Time) {
	for dk, d := range m.table(ctx, k) {
		delete(m.drains, drainKey{k, dk})
		if d.Weight == 0 {
			continue
		}
		d.Weight = 0
		if err := m.dir.EditDest(ctx, k, d); err != nil {
			m.log.Error("drain service: set weight 0", "service", k.String(), "dest", d.AddrPort().String(), "err", err)
		}
	}
	if _, ok := m.svcDrains[k]; !ok {
		m.svcDrains[k] = now.Add(m.opts.DrainTimeout)
	}
}

// checkDrains deletes the draining destinations and services whose
// connections ended (ActiveConn + InActConn == 0) or whose time is up.
func (m *Manager) checkDrains(ctx context.Context) {
	if len(m.drains) == 0 && len(m.svcDrains) == 0 {
		return
	}
	all, err := m.dir.Services(ctx)
	if err != nil {
		m.log.Warn("count connections of draining realservers", "err", err)
		return
	}
	now := m.opts.Now()
	states := map[ipvs.ServiceKey]ipvs.ServiceState{}
	for _, s := range all {
		states[s.ServiceKey] = s
	}
	for dk, deadline := range m.drains {
		st, ok := states[dk.svc]
		if !ok {
			delete(m.drains, dk)
			continue
		}
		var conns uint64
		found := false
		for _, d := range st.Dests {
			if d.Key() == dk.dest {
				found = true
				conns = uint64(d.ActiveConns) + uint64(d.InactConns)
			}
		}
		if !found {
			delete(m.drains, dk)
			continue
		}
		if conns > 0 && now.Before(deadline) {
			continue
		}
		addr := netip.AddrPortFrom(dk.dest.Addr, dk.dest.Port).String()
		if err := m.dir.DelDest(ctx, dk.svc, dk.dest); err != nil && !errors.Is(err, ipvs.ErrNoDest) {
			m.log.Error("delete drained destination", "service", dk.svc.String(), "dest", addr, "err", err)
			continue
		}
		delete(m.drains, dk)
		if conns > 0 {
			m.log.Warn("drain timeout: destination deleted with connections left", "service", dk.svc.String(), "dest", addr, "connections", conns)
		} else {
			m.log.Info("destination drained and deleted", "service", dk.svc.String(), "dest", addr)
		}
	}
	for k, deadline := range m.svcDrains {
		st, ok := states[k]
		if !ok {
			delete(m.svcDrains, k)
			continue
		}
		var conns uint64
		for _, d := range st.Dests {
			conns += uint64(d.ActiveConns) + uint64(d.InactConns)
		}
		if conns > 0 && now.Before(deadline) {
			continue
		}
		if err := m.dir.DelService(ctx, k); err != nil && !errors.Is(err, ipvs.ErrNoService) {
			m.log.Error("delete drained service", "service", k.String(), "err", err)
			continue
		}
		delete(m.svcDrains, k)
		if conns > 0 {
			m.log.Warn("drain timeout: service deleted with connections left", "service", k.String(), "connections", conns)
		} else {
			m.log.Info("service drained and deleted", "service", k.String())
		}
	}
}
