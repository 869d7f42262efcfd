// Package sched holds the 14 IPVS schedulers in pure Go, each with the
// semantics of the kernel's net/netfilter/ipvs/ip_vs_<name>.c: rr, wrr, lc,
// wlc, sed, nq, lblc, lblcr, dh, sh, fo, ovf, mh and twos.
//
// A Scheduler is bound to one virtual service. The service owns the
// destination list in the kernel's order (new destinations are inserted at
// the head, index 0) and tells the scheduler of every change through
// AddDest, DelDest and UpdDest, exactly where the kernel calls the
// scheduler's add_dest, del_dest and upd_dest hooks. Schedule picks a
// destination for the first packet of a new connection.
//
// Schedulers do no I/O and keep no global state. Where the kernel hashes
// (dh, sh, mh, lblc, lblcr) the hash is a documented, stable function of
// the packet and the configuration, so that every director with the same
// configuration picks the same destination for the same flow. Randomness
// (twos) comes from Config.Rand.
//
// Schedulers are not safe for concurrent use: the caller (package engine)
// serialises all calls for a service.
package sched

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sort"
	"time"

	"github.com/govs/govs/internal/ipvs"
)

// ErrNoDestination is returned by Schedule when no destination can take a
// new connection (all quiescent, overloaded, or none configured). The
// kernel logs "<NAME>: no destination available" and drops the packet (or
// sends it to the director's own stack, see the engine).
var ErrNoDestination = errors.New("no destination available")

// ErrUnknown is returned by Lookup for a name that is not a scheduler.
var ErrUnknown = errors.New("unknown scheduler")

// Flow is what a scheduler may look at in the first packet of a
// connection.
type Flow struct {
	Proto   ipvs.Protocol
	Src     netip.Addr
	SrcPort uint16
	Dst     netip.Addr
	DstPort uint16
}

// Service is the scheduler's view of its virtual service at the time of a
// decision.
type Service struct {
	// Dests is the destination list, newest first (the kernel's
	// svc->destinations order).
	Dests []*ipvs.Dest
	// Flags are the service's scheduler flags (-b), read at every
	// decision as the kernel does: they can change with ipvsadm -E.
	Flags ipvs.SchedFlags
	// Now is the current time, for schedulers that keep state that
	// expires (lblc, lblcr).
	Now time.Time
}

// Config configures a scheduler instance.
type Config struct {
	// Rand is the random source of twos. Nil means a source seeded from
	// the runtime's random generator.
	Rand *rand.Rand
	// Expiration is how long lblc/lblcr keep per-address state that is not
	// used (the kernel's lblc_expiration / lblcr_expiration sysctls,
	// default 24 hours). Zero means the default.
	Expiration time.Duration
}

// Scheduler picks a destination for new connections of one service.
type Scheduler interface {
	// Name returns the scheduler's name as ipvsadm prints it ("wrr").
	Name() string
	// AddDest is called after d was inserted at the head of list
	// (list[0] == d).
	AddDest(list []*ipvs.Dest, d *ipvs.Dest)
	// DelDest is called after d, which was at index at, was removed from
	// the list; list is the list without d.
	DelDest(list []*ipvs.Dest, d *ipvs.Dest, at int)
	// UpdDest is called after d's configuration (weight, thresholds,
	// forwarding) was edited in place.
	UpdDest(list []*ipvs.Dest, d *ipvs.Dest)
	// Schedule returns the destination for a new connection, or an error
	// wrapping ErrNoDestination.
	Schedule(svc Service, f Flow) (*ipvs.Dest, error)
}

// New constructs a scheduler for a service whose current destination list
// is list (the kernel's init_service).
type New func(cfg Config, list []*ipvs.Dest) Scheduler

// Lookup returns the constructor of the named scheduler.
func Lookup(name string) (New, error) {
	n, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("%w %q: use one of %v", ErrUnknown, name, Names())
	}
	return n, nil
}

// Names returns every scheduler name, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// noDest returns the error for a scheduler that found no destination, named
// the way the kernel's ip_vs_scheduler_err names it.
func noDest(name string) error {
	return fmt.Errorf("%s: %w", name, ErrNoDestination)
}

// usable reports whether d may take a new connection: not quiescent
// (weight > 0) and not overloaded. Most schedulers use exactly this test.
func usable(d *ipvs.Dest) bool {
	return d.Weight > 0 && !d.Overloaded
}
