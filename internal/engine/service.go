package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/sched"
	"github.com/govs/govs/internal/stats"
)

// TrashPeriod is how long a removed destination without connections is
// kept for revival before it is freed (the kernel's
// IP_VS_DEST_TRASH_PERIOD).
const TrashPeriod = 120 * time.Second

// ftpPort is the kernel's FTPPORT: persistence templates of a service on
// port 21 do not carry the port, so the data connections share them.
const ftpPort = 21

// Engine is an IPVS director's decision-making core: the service table,
// the schedulers, the connection table and the statistics.
type Engine struct {
	mu       sync.Mutex
	opts     Options
	timeouts conn.Timeouts

	services map[ipvs.ServiceKey]*service
	fwmarks  map[fwmKey]*service
	// nullsvc counts port-zero address services; while there are none,
	// the second service lookup of a new connection is skipped.
	nullsvc int

	conns *conn.Table
	// dests are the live destinations by id (conn.Entry.Dest); index 0
	// is unused. A destination keeps its id, and its slot here, while it
	// is in a service or in the trash.
	dests   []*dest
	freeIDs []uint32
	// trash holds removed destinations whose connections live on, by
	// service and destination key (one at most per pair: re-adding the
	// destination revives it).
	trash map[trashKey]*dest
	// nodestPending: a destination was removed and ExpireNodestConn is
	// set, so Expire must flush connections to removed destinations.
	nodestPending bool

	clock  stats.Clock
	rngSeq uint64

	// Connection sync (sync.go): the master's feed, and the SyncState
	// of each entry once sync is in use.
	syncFeed   SyncFeed
	syncStates map[conn.Key]*connsync.SyncState
}

type fwmKey struct {
	mark uint32
	fam  ipvs.Family
}

// service is a virtual service and its destination list.
type service struct {
	cfg ipvs.Service
	// list is the destination list, newest first. It is replaced, never
	// changed in place, because schedulers may keep the slice they saw.
	list   []*ipvs.Dest
	byDest map[*ipvs.Dest]*dest
	byKey  map[ipvs.DestKey]*dest
	sched  sched.Scheduler
	stats  ipvs.Counters
	est    stats.Estimator
}

// dest is a destination with what the engine keeps beside the
// scheduler-visible ipvs.Dest.
type dest struct {
	d  *ipvs.Dest
	id uint32
	// svc is the service the destination belongs (or last belonged) to;
	// svcKey its key, kept for trash revival after the service is gone.
	svc    *service
	svcKey ipvs.ServiceKey
	// refs counts the connection entries (and templates) bound to it.
	refs int
	est  stats.Estimator
	// Trash state: inTrash, and since when it has been idle (no refs).
	inTrash   bool
	idle      bool
	idleSince time.Time
}

// New returns an engine with no services.
func New(opts Options) *Engine {
	e := &Engine{
		opts:     opts,
		timeouts: conn.DefaultTimeouts.Merge(opts.Timeouts),
		services: make(map[ipvs.ServiceKey]*service),
		fwmarks:  make(map[fwmKey]*service),
		trash:    make(map[trashKey]*dest),
		conns:    conn.NewTable(opts.ConnTableSize),
		dests:    make([]*dest, 1),
	}
	e.conns.OnExpire = e.onExpire
	return e
}

// normKey puts k in the form the table uses: unmapped address, family
// filled in.
func normKey(k ipvs.ServiceKey) ipvs.ServiceKey {
	if !k.IsFWMark() {
		k.Addr = k.Addr.Unmap()
		if k.Family == ipvs.FamilyNone {
			k.Family = ipvs.FamilyOf(k.Addr)
		}
	}
	return k
}

// checkService applies defaults and every check that does not need the
// table: validation, protocol, persistence engine, scheduler.
func checkService(svc *ipvs.Service) (sched.New, error) {
	svc.ServiceKey = normKey(svc.ServiceKey)
	svc.SetDefaults()
	if err := svc.Validate(); err != nil {
		return nil, err
	}
	if err := conn.CheckProtocol(svc.Protocol); err != nil {
		return nil, err
	}
	if svc.PE != "" {
		return nil, fmt.Errorf("persistence engine %q is not supported yet; remove --pe (%w)", svc.PE, ipvs.ErrNoScheduler)
	}
	newSched, err := sched.Lookup(svc.Scheduler)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ipvs.ErrNoScheduler, err)
	}
	return newSched, nil
}

func (e *Engine) schedConfig() sched.Config {
	var cfg sched.Config
	if e.opts.Seed != 0 {
		e.rngSeq++
		cfg.Rand = rand.New(rand.NewPCG(e.opts.Seed, e.rngSeq))
	}
	return cfg
}

// AddService adds a virtual service (ipvsadm -A).
func (e *Engine) AddService(svc ipvs.Service) error {
	newSched, err := checkService(&svc)
	if err != nil {
		return fmt.Errorf("add service %s: %w", svc.ServiceKey, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	k := svc.ServiceKey
	if _, ok := e.services[k]; ok {
		return fmt.Errorf("add service %s: %w", k, ipvs.ErrServiceExists)
	}
	s := &service{
		cfg:    svc,
		byDest: make(map[*ipvs.Dest]*dest),
		byKey:  make(map[ipvs.DestKey]*dest),
		sched:  newSched(e.schedConfig(), nil),
	}
	e.services[k] = s
	if k.IsFWMark() {
		e.fwmarks[fwmKey{k.FWMark, k.Family}] = s
	} else if k.Port == 0 {
		e.nullsvc++
	}
	return nil
}

// EditService changes a service's scheduler, flags, persistence and
// one-packet settings (ipvsadm -E). A new scheduler is bound over the
// current destination list; the same scheduler keeps its state.
func (e *Engine) EditService(svc ipvs.Service) error {
	newSched, err := checkService(&svc)
	if err != nil {
		return fmt.Errorf("edit service %s: %w", svc.ServiceKey, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.services[svc.ServiceKey]
	if !ok {
		return fmt.Errorf("edit service %s: %w", svc.ServiceKey, ipvs.ErrNoService)
	}
	if svc.Scheduler != s.cfg.Scheduler {
		s.sched = newSched(e.schedConfig(), s.list)
	}
	s.cfg = svc
	return nil
}

// DelService removes a service (ipvsadm -D). Its destinations go to the
// trash; their connections live on until they expire.
func (e *Engine) DelService(k ipvs.ServiceKey) error {
	k = normKey(k)
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.services[k]
	if !ok {
		return fmt.Errorf("delete service %s: %w", k, ipvs.ErrNoService)
	}
	e.delService(s)
	return nil
}

// Flush removes every service (ipvsadm -C).
func (e *Engine) Flush() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.services {
		e.delService(s)
	}
}

func (e *Engine) delService(s *service) {
	k := s.cfg.ServiceKey
	delete(e.services, k)
	if k.IsFWMark() {
		delete(e.fwmarks, fwmKey{k.FWMark, k.Family})
	} else if k.Port == 0 {
		e.nullsvc--
	}
	// The kernel unlinks the destinations without calling the
	// scheduler's del_dest: the scheduler goes with the service.
	for _, d := range s.list {
		e.toTrash(d, s.byDest[d])
	}
	s.list = nil
	s.byDest = nil
	s.byKey = nil
}

// trashKey names a trashed destination: the service it was removed from
// and its own key.
type trashKey struct {
	svc  ipvs.ServiceKey
	dest ipvs.DestKey
}

func (e *Engine) toTrash(d *ipvs.Dest, dd *dest) {
	d.Available = false
	dd.inTrash = true
	dd.idle = false
	e.trash[trashKey{dd.svcKey, d.Key()}] = dd
	if e.opts.ExpireNodestConn {
		e.nodestPending = true
	}
}

// AddDest adds a destination to a service (ipvsadm -a), at the head of
// its list. A destination removed from this service (address, port and
// service match) that is still in the trash is revived with its
// connections and counters.
func (e *Engine) AddDest(k ipvs.ServiceKey, d ipvs.Destination) error {
	k = normKey(k)
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.services[k]
	if !ok {
		return fmt.Errorf("add destination %s to %s: %w", d.AddrPort(), k, ipvs.ErrNoService)
	}
	d.Normalize(&s.cfg)
	if err := d.Validate(&s.cfg); err != nil {
		return fmt.Errorf("add destination %s to %s: %w", d.AddrPort(), k, err)
	}
	dk := d.Key()
	if _, ok := s.byKey[dk]; ok {
		return fmt.Errorf("add destination %s to %s: %w", d.AddrPort(), k, ipvs.ErrDestExists)
	}
	dd := e.fromTrash(k, dk)
	if dd != nil {
		if dd.svc != s {
			// Revived into a new incarnation of the service: the kernel
			// zeroes the counters when a destination changes service.
			dd.d.Stats = ipvs.Counters{}
			dd.est.Reset(ipvs.Counters{})
			dd.svc = s
		}
	} else {
		dd = &dest{d: ipvs.NewDest(d), svc: s, svcKey: k}
		e.allocID(dd)
	}
	e.updateDest(s, dd, d, true)
	return nil
}

// fromTrash takes the destination dk of service k out of the trash.
func (e *Engine) fromTrash(k ipvs.ServiceKey, dk ipvs.DestKey) *dest {
	tk := trashKey{k, dk}
	dd, ok := e.trash[tk]
	if !ok {
		return nil
	}
	delete(e.trash, tk)
	dd.inTrash = false
	dd.idle = false
	return dd
}

func (e *Engine) allocID(dd *dest) {
	if n := len(e.freeIDs); n > 0 {
		dd.id = e.freeIDs[n-1]
		e.freeIDs = e.freeIDs[:n-1]
		e.dests[dd.id] = dd
		return
	}
	dd.id = uint32(len(e.dests))
	e.dests = append(e.dests, dd)
}

// updateDest is the kernel's __ip_vs_update_dest: apply the configuration
// ud to dd and link it into s (add) or tell the scheduler it changed.
func (e *Engine) updateDest(s *service, dd *dest, ud ipvs.Destination, add bool) {
	d := dd.d
	// Keep the last weight with the latest non-zero weight.
	if add || ud.Weight != 0 {
		d.LastWeight = ud.Weight
	}
	// Raising or removing the upper threshold clears the overload flag;
	// lowering it leaves the flag to the next connection.
	if ud.Upper == 0 || ud.Upper > d.Upper {
		d.Overloaded = false
	}
	d.Destination = ud
	d.Available = true
	if add {
		list := make([]*ipvs.Dest, 0, len(s.list)+1)
		list = append(list, d)
		s.list = append(list, s.list...)
		s.byDest[d] = dd
		s.byKey[d.Key()] = dd
		s.sched.AddDest(s.list, d)
		return
	}
	s.sched.UpdDest(s.list, d)
}

// EditDest changes a destination's weight, thresholds, forwarding method
// and tunnel settings (ipvsadm -e). Existing connections keep the
// forwarding method they were created with.
func (e *Engine) EditDest(k ipvs.ServiceKey, d ipvs.Destination) error {
	k = normKey(k)
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.services[k]
	if !ok {
		return fmt.Errorf("edit destination %s of %s: %w", d.AddrPort(), k, ipvs.ErrNoService)
	}
	d.Normalize(&s.cfg)
	if err := d.Validate(&s.cfg); err != nil {
		return fmt.Errorf("edit destination %s of %s: %w", d.AddrPort(), k, err)
	}
	dd, ok := s.byKey[d.Key()]
	if !ok {
		return fmt.Errorf("edit destination %s of %s: %w", d.AddrPort(), k, ipvs.ErrNoDest)
	}
	e.updateDest(s, dd, d, false)
	return nil
}

// DelDest removes a destination from a service (ipvsadm -d). It goes to
// the trash: its connections continue (unless ExpireNodestConn) and it
// can be revived by AddDest until it has been idle for TrashPeriod.
func (e *Engine) DelDest(k ipvs.ServiceKey, dk ipvs.DestKey) error {
	k = normKey(k)
	dk.Addr = dk.Addr.Unmap()
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.services[k]
	if !ok {
		return fmt.Errorf("delete destination %s from %s: %w", netip.AddrPortFrom(dk.Addr, dk.Port), k, ipvs.ErrNoService)
	}
	dd, ok := s.byKey[dk]
	if !ok {
		return fmt.Errorf("delete destination %s from %s: %w", netip.AddrPortFrom(dk.Addr, dk.Port), k, ipvs.ErrNoDest)
	}
	at := slices.Index(s.list, dd.d)
	list := make([]*ipvs.Dest, 0, len(s.list)-1)
	list = append(list, s.list[:at]...)
	s.list = append(list, s.list[at+1:]...)
	delete(s.byDest, dd.d)
	delete(s.byKey, dk)
	dd.d.Available = false
	s.sched.DelDest(s.list, dd.d, at)
	e.toTrash(dd.d, dd)
	return nil
}

// Zero zeroes the counters (and rates) of service k and its destinations,
// or of every service when k is nil (ipvsadm -Z).
func (e *Engine) Zero(k *ipvs.ServiceKey) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if k == nil {
		for _, s := range e.services {
			zeroService(s)
		}
		return nil
	}
	nk := normKey(*k)
	s, ok := e.services[nk]
	if !ok {
		return fmt.Errorf("zero service %s: %w", nk, ipvs.ErrNoService)
	}
	zeroService(s)
	return nil
}

func zeroService(s *service) {
	s.stats = ipvs.Counters{}
	s.est.Reset(s.stats)
	for _, d := range s.list {
		d.Stats = ipvs.Counters{}
		s.byDest[d].est.Reset(d.Stats)
	}
}

// SetTimeouts changes the positive fields of t (ipvsadm --set); zero and
// negative fields leave a timeout unchanged. Existing connections take a
// new timeout at their next state transition or packet.
func (e *Engine) SetTimeouts(t conn.Timeouts) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.timeouts = e.timeouts.Merge(t)
}

// Timeouts returns the current --set timeouts.
func (e *Engine) Timeouts() conn.Timeouts {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.timeouts
}

// errNoDest wraps a scheduler's failure for the verdict.
func errNoDest(k ipvs.ServiceKey, err error) error {
	if !errors.Is(err, sched.ErrNoDestination) {
		err = fmt.Errorf("%w: %w", sched.ErrNoDestination, err)
	}
	return fmt.Errorf("schedule new connection for %s: %w", k, err)
}
