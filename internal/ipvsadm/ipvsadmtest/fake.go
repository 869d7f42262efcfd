// Package ipvsadmtest has an in-memory [api.Director] for tests of the
// ipvsadm command line: it keeps services and destinations with the
// kernel's rules (errors as ipvs's sentinels, destinations newest first)
// and records every call.
package ipvsadmtest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

// Schedulers are the scheduler names the fake knows.
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "sed", "nq", "lblc", "lblcr", "dh", "sh", "fo", "ovf", "mh", "twos"}

// Director is the fake. The zero value is not ready; use [New].
type Director struct {
	mu       sync.Mutex
	info     api.Info
	svcs     []ipvs.ServiceState // in insertion order
	conns    []conn.Info
	timeouts conn.Timeouts
	daemons  []api.SyncDaemon
	calls    []string

	// InfoErr, when set, is what Info returns (an unreachable govsd).
	InfoErr error
}

var _ api.Director = (*Director)(nil)

// New returns an empty fake with the kernel's defaults.
func New() *Director {
	return &Director{
		info:     api.Info{Version: "1.2.1", ConnTabSize: 4096, Dataplane: "fake"},
		timeouts: conn.DefaultTimeouts,
	}
}

// Calls returns the calls made so far, one line each.
func (f *Director) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Put stores s as it is (live counters included), replacing the service
// with its key: tests use it to set up listings.
func (f *Director) Put(s ipvs.ServiceState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := f.find(s.ServiceKey); i >= 0 {
		f.svcs[i] = s
		return
	}
	f.svcs = append(f.svcs, s)
}

// SetConns sets the connection table.
func (f *Director) SetConns(cs []conn.Info) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns = slices.Clone(cs)
}

func (f *Director) call(format string, a ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, a...))
}

func (f *Director) find(k ipvs.ServiceKey) int {
	for i := range f.svcs {
		if f.svcs[i].ServiceKey == k {
			return i
		}
	}
	return -1
}

func knownSched(s *ipvs.Service) bool {
	return slices.Contains(Schedulers, s.Scheduler) && (s.PE == "" || s.PE == "sip")
}

// Info implements api.Director.
func (f *Director) Info(context.Context) (api.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.InfoErr != nil {
		return api.Info{}, f.InfoErr
	}
	i := f.info
	i.NumServices = len(f.svcs)
	return i, nil
}

// AddService implements api.Director.
func (f *Director) AddService(_ context.Context, svc ipvs.Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("AddService %s", svc.ServiceKey)
	svc.SetDefaults()
	if err := svc.Validate(); err != nil {
		return fmt.Errorf("add service %s: %w", svc.ServiceKey, err)
	}
	if f.find(svc.ServiceKey) >= 0 {
		return fmt.Errorf("add service %s: %w", svc.ServiceKey, ipvs.ErrServiceExists)
	}
	if !knownSched(&svc) {
		return fmt.Errorf("add service %s: %w", svc.ServiceKey, ipvs.ErrNoScheduler)
	}
	f.svcs = append(f.svcs, ipvs.ServiceState{Service: svc})
	return nil
}

// EditService implements api.Director.
func (f *Director) EditService(_ context.Context, svc ipvs.Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("EditService %s", svc.ServiceKey)
	svc.SetDefaults()
	if err := svc.Validate(); err != nil {
		return fmt.Errorf("edit service %s: %w", svc.ServiceKey, err)
	}
	i := f.find(svc.ServiceKey)
	if i < 0 {
		return fmt.Errorf("edit service %s: %w", svc.ServiceKey, ipvs.ErrNoService)
	}
	if !knownSched(&svc) {
		return fmt.Errorf("edit service %s: %w", svc.ServiceKey, ipvs.ErrNoScheduler)
	}
	f.svcs[i].Service = svc
	return nil
}

// DelService implements api.Director.
func (f *Director) DelService(_ context.Context, k ipvs.ServiceKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("DelService %s", k)
	i := f.find(k)
	if i < 0 {
		return fmt.Errorf("delete service %s: %w", k, ipvs.ErrNoService)
	}
	f.svcs = slices.Delete(f.svcs, i, i+1)
	return nil
}

// Flush implements api.Director.
func (f *Director) Flush(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("Flush")
	f.svcs = nil
	return nil
}

func findDest(s *ipvs.ServiceState, k ipvs.DestKey) int {
	for i := range s.Dests {
		if s.Dests[i].Key() == k {
			return i
		}
	}
	return -1
}

// AddDest implements api.Director.
func (f *Director) AddDest(_ context.Context, k ipvs.ServiceKey, d ipvs.Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("AddDest %s %s", k, d.AddrPort())
	i := f.find(k)
	if i < 0 {
		return fmt.Errorf("add destination to %s: %w", k, ipvs.ErrNoService)
	}
	s := &f.svcs[i]
	d.Normalize(&s.Service)
	if err := d.Validate(&s.Service); err != nil {
		return fmt.Errorf("add destination %s: %w", d.AddrPort(), err)
	}
	if findDest(s, d.Key()) >= 0 {
		return fmt.Errorf("add destination %s: %w", d.AddrPort(), ipvs.ErrDestExists)
	}
	// The kernel adds at the head of the list.
	s.Dests = slices.Insert(s.Dests, 0, ipvs.DestState{Destination: d})
	return nil
}

// EditDest implements api.Director.
func (f *Director) EditDest(_ context.Context, k ipvs.ServiceKey, d ipvs.Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("EditDest %s %s", k, d.AddrPort())
	i := f.find(k)
	if i < 0 {
		return fmt.Errorf("edit destination of %s: %w", k, ipvs.ErrNoService)
	}
	s := &f.svcs[i]
	d.Normalize(&s.Service)
	if err := d.Validate(&s.Service); err != nil {
		return fmt.Errorf("edit destination %s: %w", d.AddrPort(), err)
	}
	j := findDest(s, d.Key())
	if j < 0 {
		return fmt.Errorf("edit destination %s: %w", d.AddrPort(), ipvs.ErrNoDest)
	}
	s.Dests[j].Destination = d
	return nil
}

// DelDest implements api.Director.
func (f *Director) DelDest(_ context.Context, k ipvs.ServiceKey, d ipvs.DestKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("DelDest %s %s", k, d.Addr)
	i := f.find(k)
	if i < 0 {
		return fmt.Errorf("delete destination of %s: %w", k, ipvs.ErrNoService)
	}
	s := &f.svcs[i]
	j := findDest(s, d)
	if j < 0 {
		return fmt.Errorf("delete destination %s: %w", d.Addr, ipvs.ErrNoDest)
	}
	s.Dests = slices.Delete(s.Dests, j, j+1)
	return nil
}

// Zero implements api.Director.
func (f *Director) Zero(_ context.Context, k *ipvs.ServiceKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	zero := func(s *ipvs.ServiceState) {
		s.Stats = ipvs.Counters{}
		for i := range s.Dests {
			s.Dests[i].Stats = ipvs.Counters{}
		}
	}
	if k == nil {
		f.call("Zero all")
		for i := range f.svcs {
			zero(&f.svcs[i])
		}
		return nil
	}
	f.call("Zero %s", *k)
	i := f.find(*k)
	if i < 0 {
		return fmt.Errorf("zero %s: %w", *k, ipvs.ErrNoService)
	}
	zero(&f.svcs[i])
	return nil
}

func clone(s ipvs.ServiceState) ipvs.ServiceState {
	s.Dests = slices.Clone(s.Dests)
	return s
}

// Services implements api.Director.
func (f *Director) Services(context.Context) ([]ipvs.ServiceState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]ipvs.ServiceState, len(f.svcs))
	for i := range f.svcs {
		out[i] = clone(f.svcs[i])
	}
	return out, nil
}

// Service implements api.Director.
func (f *Director) Service(_ context.Context, k ipvs.ServiceKey) (ipvs.ServiceState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.find(k)
	if i < 0 {
		return ipvs.ServiceState{}, fmt.Errorf("get service %s: %w", k, ipvs.ErrNoService)
	}
	return clone(f.svcs[i]), nil
}

// Conns implements api.Director.
func (f *Director) Conns(context.Context) ([]conn.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.conns), nil
}

// Timeouts implements api.Director.
func (f *Director) Timeouts(context.Context) (conn.Timeouts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.timeouts, nil
}

// SetTimeouts implements api.Director.
func (f *Director) SetTimeouts(_ context.Context, t conn.Timeouts) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("SetTimeouts %s", t)
	if t.TCP != 0 {
		f.timeouts.TCP = t.TCP
	}
	if t.TCPFin != 0 {
		f.timeouts.TCPFin = t.TCPFin
	}
	if t.UDP != 0 {
		f.timeouts.UDP = t.UDP
	}
	return nil
}

// StartDaemon implements api.Director.
func (f *Director) StartDaemon(_ context.Context, d api.SyncDaemon) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("StartDaemon %s", d.State)
	for _, x := range f.daemons {
		if x.State == d.State {
			return fmt.Errorf("start %s sync daemon: %w", d.State, ipvs.ErrDaemonRunning)
		}
	}
	f.daemons = append(f.daemons, d)
	return nil
}

// StopDaemon implements api.Director.
func (f *Director) StopDaemon(_ context.Context, state string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("StopDaemon %s", state)
	for i, x := range f.daemons {
		if x.State == state {
			f.daemons = slices.Delete(f.daemons, i, i+1)
			return nil
		}
	}
	return fmt.Errorf("stop %s sync daemon: %w", state, ipvs.ErrNoDaemon)
}

// Daemons implements api.Director.
func (f *Director) Daemons(context.Context) ([]api.SyncDaemon, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.daemons), nil
}
