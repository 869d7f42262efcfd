package apitest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

// Call is one recorded method call.
type Call struct {
	Method string
	// Args are the arguments after the context.
	Args []any
}

// Director is an in-memory [api.Director]. The zero value is not ready:
// use [New].
type Director struct {
	mu       sync.Mutex
	info     api.Info
	services []ipvs.ServiceState // in the order they were added
	conns    []conn.Info
	timeouts conn.Timeouts
	daemons  []api.SyncDaemon
	fail     map[string]error
	calls    []Call
}

var _ api.Director = (*Director)(nil)

// New returns an empty fake director with the kernel's default timeouts.
func New() *Director {
	return &Director{
		info:     api.Info{Version: "1.2.1", ConnTabSize: 4096, Dataplane: "fake", GovsVersion: "test"},
		timeouts: conn.DefaultTimeouts,
		fail:     map[string]error{},
	}
}

// Fail makes every later call of method (e.g. "AddService") return err;
// a nil err clears it.
func (d *Director) Fail(method string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		delete(d.fail, method)
		return
	}
	d.fail[method] = err
}

// Calls returns the calls made so far.
func (d *Director) Calls() []Call {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.calls)
}

// SetState replaces the services (with their counters and rates) and the
// connection table.
func (d *Director) SetState(services []ipvs.ServiceState, conns []conn.Info) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.services = slices.Clone(services)
	d.conns = slices.Clone(conns)
}

// Put stores s as it is (live counters included), replacing the service
// with its key or appending it: tests use it to set up listings.
func (d *Director) Put(s ipvs.ServiceState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if i := d.find(s.ServiceKey); i >= 0 {
		d.services[i] = s
		return
	}
	d.services = append(d.services, s)
}

// SetConns replaces the connection table.
func (d *Director) SetConns(cs []conn.Info) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.conns = slices.Clone(cs)
}

// begin records a call and returns the error it was told to fail with.
// The caller holds d.mu.
func (d *Director) begin(method string, args ...any) error {
	d.calls = append(d.calls, Call{Method: method, Args: args})
	return d.fail[method]
}

func (d *Director) find(k ipvs.ServiceKey) int {
	return slices.IndexFunc(d.services, func(s ipvs.ServiceState) bool { return s.ServiceKey == k })
}

// Info implements [api.Director].
func (d *Director) Info(ctx context.Context) (api.Info, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("Info"); err != nil {
		return api.Info{}, err
	}
	v := d.info
	v.NumServices = len(d.services)
	return v, nil
}

// AddService implements [api.Director].
func (d *Director) AddService(ctx context.Context, svc ipvs.Service) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("AddService", svc); err != nil {
		return err
	}
	if d.find(svc.ServiceKey) >= 0 {
		return fmt.Errorf("add service %s: %w", svc.ServiceKey, ipvs.ErrServiceExists)
	}
	d.services = append(d.services, ipvs.ServiceState{Service: svc})
	return nil
}

// EditService implements [api.Director].
func (d *Director) EditService(ctx context.Context, svc ipvs.Service) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("EditService", svc); err != nil {
		return err
	}
	i := d.find(svc.ServiceKey)
	if i < 0 {
		return fmt.Errorf("edit service %s: %w", svc.ServiceKey, ipvs.ErrNoService)
	}
	d.services[i].Service = svc
	return nil
}

// DelService implements [api.Director].
func (d *Director) DelService(ctx context.Context, k ipvs.ServiceKey) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("DelService", k); err != nil {
		return err
	}
	i := d.find(k)
	if i < 0 {
		return fmt.Errorf("delete service %s: %w", k, ipvs.ErrNoService)
	}
	d.services = slices.Delete(d.services, i, i+1)
	return nil
}

// Flush implements [api.Director].
func (d *Director) Flush(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("Flush"); err != nil {
		return err
	}
	d.services = nil
	return nil
}

// AddDest implements [api.Director].
func (d *Director) AddDest(ctx context.Context, k ipvs.ServiceKey, dest ipvs.Destination) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("AddDest", k, dest); err != nil {
		return err
	}
	i := d.find(k)
	if i < 0 {
		return fmt.Errorf("add destination to %s: %w", k, ipvs.ErrNoService)
	}
	s := &d.services[i]
	if slices.ContainsFunc(s.Dests, func(x ipvs.DestState) bool { return x.Key() == dest.Key() }) {
		return fmt.Errorf("add destination %s to %s: %w", dest.AddrPort(), k, ipvs.ErrDestExists)
	}
	// Newest first, as the kernel's list.
	s.Dests = slices.Insert(s.Dests, 0, ipvs.DestState{Destination: dest})
	return nil
}

// EditDest implements [api.Director].
func (d *Director) EditDest(ctx context.Context, k ipvs.ServiceKey, dest ipvs.Destination) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("EditDest", k, dest); err != nil {
		return err
	}
	i := d.find(k)
	if i < 0 {
		return fmt.Errorf("edit destination of %s: %w", k, ipvs.ErrNoService)
	}
	s := &d.services[i]
	j := slices.IndexFunc(s.Dests, func(x ipvs.DestState) bool { return x.Key() == dest.Key() })
	if j < 0 {
		return fmt.Errorf("edit destination %s of %s: %w", dest.AddrPort(), k, ipvs.ErrNoDest)
	}
	s.Dests[j].Destination = dest
	return nil
}

// DelDest implements [api.Director].
func (d *Director) DelDest(ctx context.Context, k ipvs.ServiceKey, dk ipvs.DestKey) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("DelDest", k, dk); err != nil {
		return err
	}
	i := d.find(k)
	if i < 0 {
		return fmt.Errorf("delete destination of %s: %w", k, ipvs.ErrNoService)
	}
	s := &d.services[i]
	j := slices.IndexFunc(s.Dests, func(x ipvs.DestState) bool { return x.Key() == dk })
	if j < 0 {
		return fmt.Errorf("delete destination %v of %s: %w", dk, k, ipvs.ErrNoDest)
	}
	s.Dests = slices.Delete(s.Dests, j, j+1)
	return nil
}

// Zero implements [api.Director].
func (d *Director) Zero(ctx context.Context, k *ipvs.ServiceKey) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var arg any
	if k != nil {
		arg = *k
	}
	if err := d.begin("Zero", arg); err != nil {
		return err
	}
	zero := func(s *ipvs.ServiceState) {
		s.Stats, s.Rates = ipvs.Counters{}, ipvs.Rates{}
		for j := range s.Dests {
			s.Dests[j].Stats, s.Dests[j].Rates = ipvs.Counters{}, ipvs.Rates{}
		}
	}
	if k == nil {
		for i := range d.services {
			zero(&d.services[i])
		}
		return nil
	}
	i := d.find(*k)
	if i < 0 {
		return fmt.Errorf("zero %s: %w", *k, ipvs.ErrNoService)
	}
	zero(&d.services[i])
	return nil
}

// Services implements [api.Director].
func (d *Director) Services(ctx context.Context) ([]ipvs.ServiceState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("Services"); err != nil {
		return nil, err
	}
	out := make([]ipvs.ServiceState, len(d.services))
	for i, s := range d.services {
		s.Dests = slices.Clone(s.Dests)
		out[i] = s
	}
	return out, nil
}

// Service implements [api.Director].
func (d *Director) Service(ctx context.Context, k ipvs.ServiceKey) (ipvs.ServiceState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("Service", k); err != nil {
		return ipvs.ServiceState{}, err
	}
	i := d.find(k)
	if i < 0 {
		return ipvs.ServiceState{}, fmt.Errorf("service %s: %w", k, ipvs.ErrNoService)
	}
	s := d.services[i]
	s.Dests = slices.Clone(s.Dests)
	return s, nil
}

// Conns implements [api.Director].
func (d *Director) Conns(ctx context.Context) ([]conn.Info, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("Conns"); err != nil {
		return nil, err
	}
	return slices.Clone(d.conns), nil
}

// Timeouts implements [api.Director].
func (d *Director) Timeouts(ctx context.Context) (conn.Timeouts, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("Timeouts"); err != nil {
		return conn.Timeouts{}, err
	}
	return d.timeouts, nil
}

// SetTimeouts implements [api.Director]: non-zero fields change.
func (d *Director) SetTimeouts(ctx context.Context, t conn.Timeouts) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("SetTimeouts", t); err != nil {
		return err
	}
	if t.TCP != 0 {
		d.timeouts.TCP = t.TCP
	}
	if t.TCPFin != 0 {
		d.timeouts.TCPFin = t.TCPFin
	}
	if t.UDP != 0 {
		d.timeouts.UDP = t.UDP
	}
	return nil
}

// Apply implements [api.Director] through the single-change methods, one
// op at a time: each op is recorded (and fails, with [Director.Fail]) as
// its own method, and Apply itself is not recorded.
func (d *Director) Apply(ctx context.Context, ops []api.Op) (api.BatchResult, error) {
	return api.ApplyEach(ctx, d, ops)
}

// StartDaemon implements [api.Director].
func (d *Director) StartDaemon(ctx context.Context, sd api.SyncDaemon) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("StartDaemon", sd); err != nil {
		return err
	}
	if slices.ContainsFunc(d.daemons, func(x api.SyncDaemon) bool { return x.State == sd.State }) {
		return fmt.Errorf("start %s daemon: %w", sd.State, ipvs.ErrDaemonRunning)
	}
	d.daemons = append(d.daemons, sd)
	return nil
}

// StopDaemon implements [api.Director].
func (d *Director) StopDaemon(ctx context.Context, state string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("StopDaemon", state); err != nil {
		return err
	}
	i := slices.IndexFunc(d.daemons, func(x api.SyncDaemon) bool { return x.State == state })
	if i < 0 {
		return fmt.Errorf("stop %s daemon: %w", state, ipvs.ErrNoDaemon)
	}
	d.daemons = slices.Delete(d.daemons, i, i+1)
	return nil
}

// Daemons implements [api.Director].
func (d *Director) Daemons(ctx context.Context) ([]api.SyncDaemon, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("Daemons"); err != nil {
		return nil, err
	}
	return slices.Clone(d.daemons), nil
}
