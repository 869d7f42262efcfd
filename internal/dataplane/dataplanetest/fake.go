package dataplanetest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/ipvs"
)

// ErrInjected is what [Fake.FailNext] and [Fake.Fail] make methods return
// when no other error is given.
var ErrInjected = errors.New("injected data plane failure")

// Call is one recorded call: the method's name and its arguments.
type Call struct {
	Method string
	Args   []any
}

func (c Call) String() string { return fmt.Sprintf("%s%v", c.Method, c.Args) }

// Fake is an in-memory recording data plane. Create it with [New]; it is
// safe for concurrent use.
type Fake struct {
	name string

	mu sync.Mutex
	// services are by key, each with the sequence number that orders
	// them as they were added: lookups are O(1) at any table size.
	services map[ipvs.ServiceKey]*entry
	seq      uint64
	conns    []conn.Info
	timeouts conn.Timeouts
	health   error
	closed   bool
	calls    []Call
	fail     map[string]error // method -> error, every call
	failNext map[string]error // method -> error, the next call only
	unsup    map[ipvs.FwdMethod]bool
}

var _ dataplane.Dataplane = (*Fake)(nil)

// entry is a service and when it was added.
type entry struct {
	seq uint64
	st  ipvs.ServiceState
}

// New returns an empty fake data plane called name ("fake" if empty).
func New(name string) *Fake {
	if name == "" {
		name = "fake"
	}
	return &Fake{
		name:     name,
		services: map[ipvs.ServiceKey]*entry{},
		timeouts: conn.DefaultTimeouts,
		fail:     map[string]error{},
		failNext: map[string]error{},
		unsup:    map[ipvs.FwdMethod]bool{},
	}
}

// Fail makes every later call of method ("AddService", "Services", ...)
// return err (ErrInjected if err is nil) until [Fake.Heal].
func (f *Fake) Fail(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		err = ErrInjected
	}
	f.fail[method] = err
}

// FailNext makes only the next call of method return err (ErrInjected if
// err is nil).
func (f *Fake) FailNext(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		err = ErrInjected
	}
	f.failNext[method] = err
}

// Heal clears every injected failure.
func (f *Fake) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.fail)
	clear(f.failNext)
}

// Unsupported makes CheckDest refuse destinations with forwarding method
// m, with an error wrapping [dataplane.ErrUnsupported].
func (f *Fake) Unsupported(m ipvs.FwdMethod) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unsup[m] = true
}

// SetHealth sets what Health returns.
func (f *Fake) SetHealth(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.health = err
}

// SetStats sets the counters and rates of service k (and of its
// destinations, by key) as Services will report them.
func (f *Fake) SetStats(k ipvs.ServiceKey, stats ipvs.Counters, rates ipvs.Rates, dests map[ipvs.DestKey]ipvs.DestState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.services[k]
	if e == nil {
		return fmt.Errorf("set stats of %s: %w", k, ipvs.ErrNoService)
	}
	s := &e.st
	s.Stats, s.Rates = stats, rates
	for j := range s.Dests {
		if ds, ok := dests[s.Dests[j].Key()]; ok {
			cfg := s.Dests[j].Destination
			s.Dests[j] = ds
			s.Dests[j].Destination = cfg
		}
	}
	return nil
}

// SetConns sets the connection table Conns returns.
func (f *Fake) SetConns(c []conn.Info) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns = slices.Clone(c)
}

// Calls returns the calls made so far, in order.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// ChangeCalls returns the calls that change state (everything but Name,
// the checks and the reads), in order.
func (f *Fake) ChangeCalls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Call
	for _, c := range f.calls {
		switch c.Method {
		case "Name", "CheckService", "CheckDest", "Services", "Conns", "Health":
		default:
			out = append(out, c)
		}
	}
	return out
}

// ResetCalls forgets the recorded calls.
func (f *Fake) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

// Config returns the services and destinations the fake holds, without
// counters: what a control plane mirrored into it.
func (f *Fake) Config() []ipvs.ServiceState {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]ipvs.ServiceState, 0, len(f.services))
	for _, e := range f.ordered() {
		c := ipvs.ServiceState{Service: e.st.Service}
		for _, d := range e.st.Dests {
			c.Dests = append(c.Dests, ipvs.DestState{Destination: d.Destination})
		}
		out = append(out, c)
	}
	return out
}

// ordered returns the services in the order they were added. The caller
// holds f.mu.
func (f *Fake) ordered() []*entry {
	out := make([]*entry, 0, len(f.services))
	for _, e := range f.services {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *entry) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// Timeouts returns the timeouts the fake was set to.
func (f *Fake) Timeouts() conn.Timeouts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.timeouts
}

// Closed reports whether Close was called.
func (f *Fake) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// begin records a call and returns its injected error, if any. The caller
// holds f.mu.
func (f *Fake) begin(method string, args ...any) error {
	f.calls = append(f.calls, Call{Method: method, Args: args})
	if err, ok := f.failNext[method]; ok {
		delete(f.failNext, method)
		return fmt.Errorf("fake %s: %w", method, err)
	}
	if err, ok := f.fail[method]; ok {
		return fmt.Errorf("fake %s: %w", method, err)
	}
	if f.closed {
		return fmt.Errorf("fake %s: data plane is closed", method)
	}
	return nil
}

// find returns service k, nil if there is none. The caller holds f.mu.
func (f *Fake) find(k ipvs.ServiceKey) *ipvs.ServiceState {
	if e := f.services[k]; e != nil {
		return &e.st
	}
	return nil
}

func findDest(s *ipvs.ServiceState, k ipvs.DestKey) int {
	return slices.IndexFunc(s.Dests, func(d ipvs.DestState) bool { return d.Key() == k })
}

// Name implements [dataplane.Dataplane].
func (f *Fake) Name() string { return f.name }

// CheckService implements [dataplane.Dataplane].
func (f *Fake) CheckService(svc ipvs.Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.begin("CheckService", svc)
}

// CheckDest implements [dataplane.Dataplane].
func (f *Fake) CheckDest(svc ipvs.Service, d ipvs.Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("CheckDest", svc, d); err != nil {
		return err
	}
	if f.unsup[d.Fwd] {
		return fmt.Errorf("forwarding method %s: %w by the %s data plane", d.Fwd, dataplane.ErrUnsupported, f.name)
	}
	return nil
}

// AddService implements [dataplane.Dataplane].
func (f *Fake) AddService(svc ipvs.Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("AddService", svc); err != nil {
		return err
	}
	if f.find(svc.ServiceKey) != nil {
		return fmt.Errorf("fake AddService %s: %w", svc.ServiceKey, ipvs.ErrServiceExists)
	}
	f.seq++
	f.services[svc.ServiceKey] = &entry{seq: f.seq, st: ipvs.ServiceState{Service: svc}}
	return nil
}

// EditService implements [dataplane.Dataplane].
func (f *Fake) EditService(svc ipvs.Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("EditService", svc); err != nil {
		return err
	}
	s := f.find(svc.ServiceKey)
	if s == nil {
		return fmt.Errorf("fake EditService %s: %w", svc.ServiceKey, ipvs.ErrNoService)
	}
	s.Service = svc
	return nil
}

// DelService implements [dataplane.Dataplane].
func (f *Fake) DelService(k ipvs.ServiceKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("DelService", k); err != nil {
		return err
	}
	if f.find(k) == nil {
		return fmt.Errorf("fake DelService %s: %w", k, ipvs.ErrNoService)
	}
	delete(f.services, k)
	return nil
}

// AddDest implements [dataplane.Dataplane].
func (f *Fake) AddDest(k ipvs.ServiceKey, d ipvs.Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("AddDest", k, d); err != nil {
		return err
	}
	s := f.find(k)
	if s == nil {
		return fmt.Errorf("fake AddDest to %s: %w", k, ipvs.ErrNoService)
	}
	if findDest(s, d.Key()) >= 0 {
		return fmt.Errorf("fake AddDest %s to %s: %w", d.AddrPort(), k, ipvs.ErrDestExists)
	}
	s.Dests = slices.Insert(s.Dests, 0, ipvs.DestState{Destination: d})
	return nil
}

// EditDest implements [dataplane.Dataplane].
func (f *Fake) EditDest(k ipvs.ServiceKey, d ipvs.Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("EditDest", k, d); err != nil {
		return err
	}
	s := f.find(k)
	if s == nil {
		return fmt.Errorf("fake EditDest of %s: %w", k, ipvs.ErrNoService)
	}
	j := findDest(s, d.Key())
	if j < 0 {
		return fmt.Errorf("fake EditDest %s of %s: %w", d.AddrPort(), k, ipvs.ErrNoDest)
	}
	s.Dests[j].Destination = d
	return nil
}

// DelDest implements [dataplane.Dataplane].
func (f *Fake) DelDest(k ipvs.ServiceKey, dk ipvs.DestKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("DelDest", k, dk); err != nil {
		return err
	}
	s := f.find(k)
	if s == nil {
		return fmt.Errorf("fake DelDest of %s: %w", k, ipvs.ErrNoService)
	}
	j := findDest(s, dk)
	if j < 0 {
		return fmt.Errorf("fake DelDest %v of %s: %w", dk, k, ipvs.ErrNoDest)
	}
	s.Dests = slices.Delete(s.Dests, j, j+1)
	return nil
}

// Flush implements [dataplane.Dataplane].
func (f *Fake) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("Flush"); err != nil {
		return err
	}
	clear(f.services)
	return nil
}

// SetTimeouts implements [dataplane.Dataplane]: non-zero fields change.
func (f *Fake) SetTimeouts(t conn.Timeouts) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("SetTimeouts", t); err != nil {
		return err
	}
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

// Zero implements [dataplane.Dataplane].
func (f *Fake) Zero(k *ipvs.ServiceKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var arg any
	if k != nil {
		arg = *k
	}
	if err := f.begin("Zero", arg); err != nil {
		return err
	}
	zero := func(s *ipvs.ServiceState) {
		s.Stats, s.Rates = ipvs.Counters{}, ipvs.Rates{}
		for j := range s.Dests {
			s.Dests[j].Stats, s.Dests[j].Rates = ipvs.Counters{}, ipvs.Rates{}
		}
	}
	if k == nil {
		for _, e := range f.services {
			zero(&e.st)
		}
		return nil
	}
	s := f.find(*k)
	if s == nil {
		return fmt.Errorf("fake Zero %s: %w", *k, ipvs.ErrNoService)
	}
	zero(s)
	return nil
}

// Services implements [dataplane.Dataplane].
func (f *Fake) Services() ([]ipvs.ServiceState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("Services"); err != nil {
		return nil, err
	}
	out := make([]ipvs.ServiceState, 0, len(f.services))
	for _, e := range f.ordered() {
		s := e.st
		s.Dests = slices.Clone(s.Dests)
		out = append(out, s)
	}
	return out, nil
}

// Conns implements [dataplane.Dataplane].
func (f *Fake) Conns() ([]conn.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("Conns"); err != nil {
		return nil, err
	}
	return slices.Clone(f.conns), nil
}

// Health implements [dataplane.Dataplane].
func (f *Fake) Health() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("Health"); err != nil {
		return err
	}
	return f.health
}

// Close implements [dataplane.Dataplane].
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("Close"); err != nil {
		return err
	}
	f.closed = true
	return nil
}
