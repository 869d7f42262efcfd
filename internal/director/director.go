package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/ipvs"
)

// Version is the IPVS version the director reports (ipvsadm's header).
const Version = "1.2.1"

// ConnTabSize is the connection hash table size the director reports
// ("size=4096"), the kernel's default.
const ConnTabSize = 4096

// Config configures a Director.
type Config struct {
	// Engine is the configuration truth; for the proxy data plane it is
	// the same engine the proxy forwards with.
	Engine *engine.Engine
	// Dataplane forwards the packets.
	Dataplane dataplane.Dataplane
	// Log gets one record per change (nil: discard).
	Log *slog.Logger
	// Version is govsd's own version, for Info.
	Version string
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Sync configures the connection sync daemons (sync.go).
	Sync SyncOptions
}

// Director is govsd's control plane: an [api.Director] over an engine
// and a data plane. It is safe for concurrent use; changes are applied one
// at a time.
type Director struct {
	eng     *engine.Engine
	dp      dataplane.Dataplane
	log     *slog.Logger
	version string
	now     func() time.Time

	// mu serialises changes, so the engine and the data plane see them
	// in the same order and a rollback undoes exactly one change.
	mu sync.Mutex
	// svcs are the services' settings as the engine holds them, by key,
	// under mu: adding a destination needs them, and reading them from the
	// engine copies the whole service with its destinations and rates,
	// which at 10 destinations costs more than the rest of the change.
	svcs map[ipvs.ServiceKey]ipvs.Service

	// sync are the connection sync daemons, under their own lock.
	sync syncDaemons
}

var _ api.Director = (*Director)(nil)

// New returns a director over cfg.Engine and cfg.Dataplane. The two must
// start out agreeing (both empty, as govsd starts them).
func New(cfg Config) (*Director, error) {
	if cfg.Engine == nil {
		return nil, errors.New("new director: no engine")
	}
	if cfg.Dataplane == nil {
		return nil, errors.New("new director: no data plane")
	}
	d := &Director{eng: cfg.Engine, dp: cfg.Dataplane, log: cfg.Log, version: cfg.Version, now: cfg.Now,
		svcs: map[ipvs.ServiceKey]ipvs.Service{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	d.sync.opts = cfg.Sync.withDefaults()
	if err := d.adopt(); err != nil {
		return nil, err
	}
	return d, nil
}

// adopt loads what the data plane already forwards into the engine, so
// that the two agree from the start: a data plane that kept forwarding
// across a govsd restart (ebpf pins its maps) holds the services of the
// previous run. Nothing is mirrored back. Destinations are added oldest
// first, so the engine's list order (newest first) is the data plane's.
func (d *Director) adopt() error {
	svcs, err := d.dp.Services()
	if err != nil {
		return fmt.Errorf("read the services the %s data plane already forwards: %w", d.dp.Name(), err)
	}
	for _, s := range svcs {
		if err := d.eng.AddService(s.Service); err != nil {
			return fmt.Errorf("adopt service %s from the %s data plane: %w", s.ServiceKey, d.dp.Name(), err)
		}
		st, err := d.eng.Service(d.now(), s.ServiceKey)
		if err != nil {
			return fmt.Errorf("adopt service %s from the %s data plane: read it back from the engine: %w", s.ServiceKey, d.dp.Name(), err)
		}
		d.svcs[st.ServiceKey] = st.Service
		for i := len(s.Dests) - 1; i >= 0; i-- {
			if err := d.eng.AddDest(s.ServiceKey, s.Dests[i].Destination); err != nil {
				return fmt.Errorf("adopt destination %s of %s from the %s data plane: %w", s.Dests[i].AddrPort(), s.ServiceKey, d.dp.Name(), err)
			}
		}
		d.log.Info("adopted service from the data plane", "service", s.ServiceKey.String(), "dests", len(s.Dests))
	}
	return nil
}

// Health reports the data plane's health; nil is healthy.
func (d *Director) Health() error { return d.dp.Health() }

// DataplaneName returns the data plane's name.
func (d *Director) DataplaneName() string { return d.dp.Name() }

// normService puts svc in the form the engine stores it (unmapped
// address, family from the address, ipvsadm's defaults), so that the data
// plane's check sees what the engine will hold.
func normService(svc ipvs.Service) ipvs.Service {
	if !svc.IsFWMark() {
		svc.Addr = svc.Addr.Unmap()
		if svc.Family == ipvs.FamilyNone {
			svc.Family = ipvs.FamilyOf(svc.Addr)
		}
	}
	svc.SetDefaults()
	return svc
}

// serviceConfig returns the settings of service k as the engine holds
// them, or the engine's error for a service it does not have. The caller
// holds d.mu.
func (d *Director) serviceConfig(k ipvs.ServiceKey) (ipvs.Service, error) {
	if !k.IsFWMark() {
		k.Addr = k.Addr.Unmap()
		if k.Family == ipvs.FamilyNone {
			k.Family = ipvs.FamilyOf(k.Addr)
		}
	}
	if svc, ok := d.svcs[k]; ok {
		return svc, nil
	}
	st, err := d.eng.Service(d.now(), k)
	return st.Service, err
}

// findDest returns the destination dk of st.
func findDest(st ipvs.ServiceState, dk ipvs.DestKey) (ipvs.Destination, bool) {
	i := slices.IndexFunc(st.Dests, func(x ipvs.DestState) bool { return x.Key() == dk })
	if i < 0 {
		return ipvs.Destination{}, false
	}
	return st.Dests[i].Destination, true
}

// Info implements [api.Director].
func (d *Director) Info(ctx context.Context) (api.Info, error) {
	return api.Info{
		Version:     Version,
		ConnTabSize: ConnTabSize,
		NumServices: len(d.eng.Services(d.now())),
		Dataplane:   d.dp.Name(),
		GovsVersion: d.version,
	}, nil
}

// AddService implements [api.Director]: the data plane checks, the engine
// adds, the data plane mirrors; if the data plane fails, the engine's
// service is removed again.
func (d *Director) AddService(ctx context.Context, svc ipvs.Service) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addService(svc)
}

// addService is AddService; the caller holds d.mu.
func (d *Director) addService(svc ipvs.Service) error {
	svc = normService(svc)
	k := svc.ServiceKey
	if err := d.dp.CheckService(svc); err != nil {
		return fmt.Errorf("add service %s: %w", k, err)
	}
	if err := d.eng.AddService(svc); err != nil {
		return err
	}
	st, err := d.eng.Service(d.now(), k)
	if err != nil {
		return d.rollback(fmt.Errorf("add service %s: read it back from the engine: %w", k, err),
			func() error { return d.eng.DelService(k) })
	}
	if err := d.dp.AddService(st.Service); err != nil {
		return d.rollback(fmt.Errorf("add service %s to the %s data plane: %w", k, d.dp.Name(), err),
			func() error { return d.eng.DelService(k) })
	}
	d.svcs[st.ServiceKey] = st.Service
	if d.logChanges() {
		d.log.Info("service added", "service", k.String(), "scheduler", st.Scheduler,
			"persistent", st.Persistent, "timeout", st.Timeout, "netmask", st.Netmask, "one_packet", st.OnePacket)
	}
	return nil
}

// EditService implements [api.Director]; a data plane failure restores
// the engine's previous settings.
func (d *Director) EditService(ctx context.Context, svc ipvs.Service) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.editService(svc)
}

// editService is EditService; the caller holds d.mu.
func (d *Director) editService(svc ipvs.Service) error {
	svc = normService(svc)
	k := svc.ServiceKey
	old, err := d.eng.Service(d.now(), k)
	if err != nil {
		return fmt.Errorf("edit service: %w", err)
	}
	if err := d.dp.CheckService(svc); err != nil {
		return fmt.Errorf("edit service %s: %w", k, err)
	}
	if err := d.eng.EditService(svc); err != nil {
		return err
	}
	undo := func() error { return d.eng.EditService(old.Service) }
	st, err := d.eng.Service(d.now(), k)
	if err != nil {
		return d.rollback(fmt.Errorf("edit service %s: read it back from the engine: %w", k, err), undo)
	}
	if err := d.dp.EditService(st.Service); err != nil {
		return d.rollback(fmt.Errorf("edit service %s in the %s data plane: %w", k, d.dp.Name(), err), undo)
	}
	d.svcs[st.ServiceKey] = st.Service
	if d.logChanges() {
		d.log.Info("service edited", "service", k.String(), "scheduler", st.Scheduler,
			"persistent", st.Persistent, "timeout", st.Timeout, "netmask", st.Netmask, "one_packet", st.OnePacket)
	}
	return nil
}

// DelService implements [api.Director]. Deletions go to the data plane
// first and to the engine second: undoing a deletion in the engine would
// lose the service's counters and connections, while a data plane that
// refuses a deletion leaves nothing to undo.
func (d *Director) DelService(ctx context.Context, k ipvs.ServiceKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.delServiceKey(k)
}

// delServiceKey is DelService; the caller holds d.mu.
func (d *Director) delServiceKey(k ipvs.ServiceKey) error {
	st, err := d.eng.Service(d.now(), k)
	if err != nil {
		return fmt.Errorf("delete service: %w", err)
	}
	return d.delService(st)
}

// delService removes st (as the engine holds it) from the data plane, then
// from the engine. The caller holds d.mu.
func (d *Director) delService(st ipvs.ServiceState) error {
	k := st.ServiceKey
	if err := d.dp.DelService(k); err != nil {
		return fmt.Errorf("delete service %s from the %s data plane: %w", k, d.dp.Name(), err)
	}
	if err := d.eng.DelService(k); err != nil {
		// Cannot happen while d.mu is held; put the data plane back so
		// that the two agree.
		return d.rollback(err, func() error { return d.restoreDataplane(st) })
	}
	delete(d.svcs, k)
	if d.logChanges() {
		d.log.Info("service deleted", "service", k.String(), "dests", len(st.Dests))
	}
	return nil
}

// restoreDataplane adds st back to the data plane, destinations in the
// order they were added (st lists them newest first).
func (d *Director) restoreDataplane(st ipvs.ServiceState) error {
	if err := d.dp.AddService(st.Service); err != nil {
		return err
	}
	for i := len(st.Dests) - 1; i >= 0; i-- {
		if err := d.dp.AddDest(st.ServiceKey, st.Dests[i].Destination); err != nil {
			return err
		}
	}
	return nil
}

// Flush implements [api.Director]: every service is deleted in turn, each
// from the data plane and then the engine, so a failure stops with the two
// still agreeing; last, the data plane is flushed of anything it held
// beyond the engine (an ebpf data plane's pinned state from an earlier
// run).
func (d *Director) Flush(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.flush()
}

// flush is Flush; the caller holds d.mu.
func (d *Director) flush() error {
	svcs := d.eng.Services(d.now())
	for _, st := range svcs {
		if err := d.delService(st); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
	}
	if err := d.dp.Flush(); err != nil {
		return fmt.Errorf("flush the %s data plane: %w", d.dp.Name(), err)
	}
	d.eng.Flush()
	clear(d.svcs)
	d.log.Info("services flushed", "services", len(svcs))
	return nil
}

// AddDest implements [api.Director]; a data plane failure removes the
// destination from the engine again.
func (d *Director) AddDest(ctx context.Context, k ipvs.ServiceKey, dest ipvs.Destination) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addDest(k, dest)
}

// addDest is AddDest; the caller holds d.mu.
func (d *Director) addDest(k ipvs.ServiceKey, dest ipvs.Destination) error {
	svc, err := d.serviceConfig(k)
	if err != nil {
		return fmt.Errorf("add destination %s: %w", dest.AddrPort(), err)
	}
	k = svc.ServiceKey
	dest.Normalize(&svc)
	if err := d.dp.CheckDest(svc, dest); err != nil {
		return fmt.Errorf("add destination %s to %s: %w", dest.AddrPort(), k, err)
	}
	if err := d.eng.AddDest(k, dest); err != nil {
		return err
	}
	undo := func() error { return d.eng.DelDest(k, dest.Key()) }
	stored, err := d.storedDest(k, dest.Key())
	if err != nil {
		return d.rollback(err, undo)
	}
	if err := d.dp.AddDest(k, stored); err != nil {
		return d.rollback(fmt.Errorf("add destination %s to %s in the %s data plane: %w", dest.AddrPort(), k, d.dp.Name(), err), undo)
	}
	if d.logChanges() {
		d.log.Info("destination added", "service", k.String(), "dest", stored.AddrPort().String(),
			"fwd", stored.Fwd.String(), "weight", stored.Weight, "upper", stored.Upper, "lower", stored.Lower)
	}
	return nil
}

// storedDest reads destination dk of service k back from the engine.
func (d *Director) storedDest(k ipvs.ServiceKey, dk ipvs.DestKey) (ipvs.Destination, error) {
	v, ok := d.eng.Dest(k, dk)
	if !ok {
		return ipvs.Destination{}, fmt.Errorf("read destination %v of %s back from the engine: %w", dk, k, ipvs.ErrNoDest)
	}
	return v, nil
}

// logChanges reports whether the change records are logged: at 100,000
// changes in a batch, building records nobody reads costs as much as some
// of the changes.
func (d *Director) logChanges() bool { return d.log.Enabled(context.Background(), slog.LevelInfo) }

// EditDest implements [api.Director]; a data plane failure restores the
// engine's previous settings of the destination.
func (d *Director) EditDest(ctx context.Context, k ipvs.ServiceKey, dest ipvs.Destination) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.editDest(k, dest)
}

// editDest is EditDest; the caller holds d.mu.
func (d *Director) editDest(k ipvs.ServiceKey, dest ipvs.Destination) error {
	st, err := d.eng.Service(d.now(), k)
	if err != nil {
		return fmt.Errorf("edit destination %s: %w", dest.AddrPort(), err)
	}
	k = st.ServiceKey
	dest.Normalize(&st.Service)
	old, ok := findDest(st, dest.Key())
	if !ok {
		return fmt.Errorf("edit destination %s of %s: %w", dest.AddrPort(), k, ipvs.ErrNoDest)
	}
	if err := d.dp.CheckDest(st.Service, dest); err != nil {
		return fmt.Errorf("edit destination %s of %s: %w", dest.AddrPort(), k, err)
	}
	if err := d.eng.EditDest(k, dest); err != nil {
		return err
	}
	undo := func() error { return d.eng.EditDest(k, old) }
	stored, err := d.storedDest(k, dest.Key())
	if err != nil {
		return d.rollback(err, undo)
	}
	if err := d.dp.EditDest(k, stored); err != nil {
		return d.rollback(fmt.Errorf("edit destination %s of %s in the %s data plane: %w", dest.AddrPort(), k, d.dp.Name(), err), undo)
	}
	if d.logChanges() {
		d.log.Info("destination edited", "service", k.String(), "dest", stored.AddrPort().String(),
			"fwd", stored.Fwd.String(), "weight", stored.Weight, "upper", stored.Upper, "lower", stored.Lower)
	}
	return nil
}

// DelDest implements [api.Director]: data plane first, as for services
// (the engine keeps a removed destination's connections in its trash;
// undoing the removal would move it to the head of the list).
func (d *Director) DelDest(ctx context.Context, k ipvs.ServiceKey, dk ipvs.DestKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.delDest(k, dk)
}

// delDest is DelDest; the caller holds d.mu.
func (d *Director) delDest(k ipvs.ServiceKey, dk ipvs.DestKey) error {
	st, err := d.eng.Service(d.now(), k)
	if err != nil {
		return fmt.Errorf("delete destination %s: %w", dk.Addr, err)
	}
	k = st.ServiceKey
	dk.Addr = dk.Addr.Unmap()
	old, ok := findDest(st, dk)
	if !ok {
		return fmt.Errorf("delete destination %v from %s: %w", dk, k, ipvs.ErrNoDest)
	}
	if err := d.dp.DelDest(k, dk); err != nil {
		return fmt.Errorf("delete destination %s from %s in the %s data plane: %w", old.AddrPort(), k, d.dp.Name(), err)
	}
	if err := d.eng.DelDest(k, dk); err != nil {
		return d.rollback(err, func() error { return d.dp.AddDest(k, old) })
	}
	if d.logChanges() {
		d.log.Info("destination deleted", "service", k.String(), "dest", old.AddrPort().String())
	}
	return nil
}

// Zero implements [api.Director]. Counters are not configuration: a data
// plane failure here leaves the engine's zeroed, and is reported.
func (d *Director) Zero(ctx context.Context, k *ipvs.ServiceKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if k != nil {
		st, err := d.eng.Service(d.now(), *k)
		if err != nil {
			return fmt.Errorf("zero counters: %w", err)
		}
		k = &st.ServiceKey
	}
	if err := d.eng.Zero(k); err != nil {
		return err
	}
	if err := d.dp.Zero(k); err != nil {
		return fmt.Errorf("zero counters in the %s data plane: %w", d.dp.Name(), err)
	}
	if k == nil {
		d.log.Info("counters zeroed", "service", "all")
	} else {
		d.log.Info("counters zeroed", "service", k.String())
	}
	return nil
}

// Services implements [api.Director] from the data plane, which knows
// the live counters.
func (d *Director) Services(ctx context.Context) ([]ipvs.ServiceState, error) {
	v, err := d.dp.Services()
	if err != nil {
		return nil, fmt.Errorf("read services from the %s data plane: %w", d.dp.Name(), err)
	}
	return v, nil
}

// Service implements [api.Director] from the data plane.
func (d *Director) Service(ctx context.Context, k ipvs.ServiceKey) (ipvs.ServiceState, error) {
	st, err := d.eng.Service(d.now(), k)
	if err != nil {
		return ipvs.ServiceState{}, err
	}
	all, err := d.Services(ctx)
	if err != nil {
		return ipvs.ServiceState{}, err
	}
	for _, s := range all {
		if s.ServiceKey == st.ServiceKey {
			return s, nil
		}
	}
	return ipvs.ServiceState{}, fmt.Errorf("service %s is configured but the %s data plane does not report it", st.ServiceKey, d.dp.Name())
}

// Conns implements [api.Director] from the data plane.
func (d *Director) Conns(ctx context.Context) ([]conn.Info, error) {
	v, err := d.dp.Conns()
	if err != nil {
		return nil, fmt.Errorf("read connections from the %s data plane: %w", d.dp.Name(), err)
	}
	return v, nil
}

// Timeouts implements [api.Director].
func (d *Director) Timeouts(ctx context.Context) (conn.Timeouts, error) {
	return d.eng.Timeouts(), nil
}

// SetTimeouts implements [api.Director]; a data plane failure restores
// the engine's previous timeouts.
func (d *Director) SetTimeouts(ctx context.Context, t conn.Timeouts) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.setTimeouts(t)
}

// setTimeouts is SetTimeouts; the caller holds d.mu.
func (d *Director) setTimeouts(t conn.Timeouts) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("set timeouts: %w", err)
	}
	old := d.eng.Timeouts()
	d.eng.SetTimeouts(t)
	if err := d.dp.SetTimeouts(t); err != nil {
		return d.rollback(fmt.Errorf("set timeouts in the %s data plane: %w", d.dp.Name(), err),
			func() error { d.eng.SetTimeouts(old); return nil })
	}
	now := d.eng.Timeouts()
	d.log.Info("timeouts set", "tcp", now.TCP, "tcpfin", now.TCPFin, "udp", now.UDP)
	return nil
}

// Apply implements [api.Director]: the ops are applied in order under one
// hold of the lock, each exactly as its single-change method applies it
// (the data plane's check, the engine, the data plane's mirror, and the
// engine's rollback when the mirror fails). The first op that fails stops
// the batch with a [*api.BatchError]; the ops before it stay applied.
func (d *Director) Apply(ctx context.Context, ops []api.Op) (api.BatchResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, op := range ops {
		err := ctx.Err()
		if err == nil {
			err = d.applyOp(op)
		}
		if err != nil {
			return api.BatchResult{Applied: i}, &api.BatchError{Index: i, Op: op.Op, Err: err}
		}
	}
	return api.BatchResult{Applied: len(ops)}, nil
}

// applyOp applies one op of a batch; the caller holds d.mu.
func (d *Director) applyOp(op api.Op) error {
	if err := op.Check(); err != nil {
		return err
	}
	switch op.Op {
	case api.OpAddService:
		return d.addService(*op.Service)
	case api.OpEditService:
		return d.editService(*op.Service)
	case api.OpDelService:
		return d.delServiceKey(op.ServiceKey())
	case api.OpAddDest:
		return d.addDest(op.ServiceKey(), op.Dest)
	case api.OpEditDest:
		return d.editDest(op.ServiceKey(), op.Dest)
	case api.OpDelDest:
		return d.delDest(op.ServiceKey(), op.Dest.Key())
	case api.OpFlush:
		return d.flush()
	case api.OpSetTimeouts:
		return d.setTimeouts(*op.Timeouts)
	}
	return nil // Check refused everything else
}

// rollback undoes a change after err and returns err. If the undo fails
// too, the engine and the data plane disagree: that is logged, and
// joined to the error so the caller sees it.
func (d *Director) rollback(err error, undo func() error) error {
	if uerr := undo(); uerr != nil {
		d.log.Error("rollback failed: the engine and the data plane disagree; restart govsd to resynchronise",
			"err", err, "rollback_err", uerr)
		return errors.Join(err, fmt.Errorf("roll back: %w (the engine and the data plane now disagree: restart govsd)", uerr))
	}
	// The error itself is the caller's to report.
	d.log.Warn("change rolled back in the engine after a data plane failure", "dataplane", d.dp.Name())
	return err
}
