package ebpf

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
)

// The lblc/lblcr garbage collector's constants (ip_vs_lblc.c, as in
// package sched's hashCache).
const (
	lbCheckInterval = uint64(60 * time.Second)
	lbFullEvery     = 30
	lbMaxEntries    = 1024 * 16
	lbEntryTimeout  = uint64(6 * time.Minute)
	lbExpiration    = uint64(24 * time.Hour) // LBLC_EXPIRATION_NS in sched_hash.h
)

// resetSchedState gives a service's new scheduler a fresh start (the
// kernel's init_service): twos a new random seed, lblc and lblcr an empty
// per-address table.
func (t *tables) resetSchedState(e *svcEntry) error {
	if err := t.purgeLB(e.id); err != nil {
		return err
	}
	e.gcNext, e.gcCounter = 0, 1
	if e.svc.Scheduler != "twos" {
		return nil
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("seed twos: %w", err)
	}
	return t.seedTwos(e, binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:]))
}

// seedTwos sets the service's PCG state: the BPF twos then draws what
// rand.New(rand.NewPCG(hi, lo)) would, which is how the differential
// test shares the engine's random sequence (engine.Options.Seed s gives
// its n-th scheduler instance the PCG (s, n)).
func (t *tables) seedTwos(e *svcEntry, hi, lo uint64) error {
	if err := t.objs.TwosRng.Update(e.id, govsRngState{Hi: hi, Lo: lo}, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("seed twos of %s: %w", e.svc.ServiceKey, err)
	}
	return nil
}

// purgeLB removes the lblc/lblcr entries of service id.
func (t *tables) purgeLB(id uint32) error {
	return t.deleteLB(func(k *govsLblcKey, _ *govsLblcVal) bool { return k.SvcId == id })
}

// deleteLB deletes the lblc entries for which del returns true, and
// returns how many per service it deleted.
func (t *tables) deleteLB(del func(*govsLblcKey, *govsLblcVal) bool) error {
	var (
		k    govsLblcKey
		v    govsLblcVal
		gone []govsLblcKey
	)
	it := t.objs.Lblc.Iterate()
	for it.Next(&k, &v) {
		if del(&k, &v) {
			gone = append(gone, k)
		}
	}
	if err := it.Err(); err != nil && !errors.Is(err, ebpf.ErrIterationAborted) {
		return fmt.Errorf("iterate lblc: %w", err)
	}
	for _, k := range gone {
		if err := t.objs.Lblc.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete lblc entry: %w", err)
		}
	}
	return nil
}

// lbGC runs the kernel's lblc/lblcr garbage collection at monotonic time
// now for every service whose minute tick is due: every 30th tick a full
// check drops the entries unused for the expiration time (24 hours);
// between them, a service holding more than 16384 entries has those
// unused for 6 minutes dropped until it is back under (the kernel's
// partial check, whose bucket rover we do not reproduce: entries are
// visited in map order). The first tick is a minute after the service got
// its scheduler.
func (t *tables) lbGC(now uint64) error {
	type job struct {
		full bool
		goal int
	}
	due := map[uint32]*job{}
	var counts map[uint32]int
	for _, e := range t.svcs {
		if e.svc.Scheduler != "lblc" && e.svc.Scheduler != "lblcr" {
			continue
		}
		if e.gcNext == 0 {
			e.gcNext = now + lbCheckInterval
			continue
		}
		if now < e.gcNext {
			continue
		}
		e.gcNext = now + lbCheckInterval
		if e.gcCounter%lbFullEvery == 0 {
			e.gcCounter = 1
			due[e.id] = &job{full: true}
			continue
		}
		if counts == nil {
			var err error
			if counts, err = t.lbCounts(); err != nil {
				return err
			}
		}
		if n := counts[e.id]; n > lbMaxEntries {
			due[e.id] = &job{goal: min((n-lbMaxEntries)*4/3, lbMaxEntries/2)}
			continue
		}
		e.gcCounter++
	}
	if len(due) == 0 {
		return nil
	}
	return t.deleteLB(func(k *govsLblcKey, v *govsLblcVal) bool {
		j := due[k.SvcId]
		switch {
		case j == nil:
			return false
		case j.full:
			return now >= v.Lastuse+lbExpiration
		case j.goal > 0 && now >= v.Lastuse+lbEntryTimeout:
			j.goal--
			return true
		}
		return false
	})
}

func (t *tables) lbCounts() (map[uint32]int, error) {
	var (
		k govsLblcKey
		v govsLblcVal
	)
	counts := map[uint32]int{}
	it := t.objs.Lblc.Iterate()
	for it.Next(&k, &v) {
		counts[k.SvcId]++
	}
	if err := it.Err(); err != nil && !errors.Is(err, ebpf.ErrIterationAborted) {
		return nil, fmt.Errorf("iterate lblc: %w", err)
	}
	return counts, nil
}
