package sched

// mh: Maglev hashing (net/netfilter/ipvs/ip_vs_mh.c, after section 3.4 of
// the Maglev paper, NSDI '16).
//
// The kernel keeps a lookup table of a prime number of slots (4093 with
// the default CONFIG_IP_VS_MH_TAB_INDEX=12). Every destination gets a
// permutation of the slots from two hashes of its address and port: a
// starting offset (hash1 mod size) and a skip (hash2 mod (size-1) + 1).
// Filling the table walks the destination list (newest first) in rounds;
// in each round a destination claims "turns" slots, each the next free
// slot of its permutation, until every slot is taken. Turns come from the
// destination's last non-zero weight (last_weight) divided by the gcd of
// all of them and shifted right so the largest fits in 6 bits; a
// destination whose last_weight is 0 (added with weight 0 and never
// raised) claims nothing. Because last_weight survives quiescing, setting
// a weight to 0 does not move any slot: flows hashed to the quiesced
// destination find it unavailable instead. The table is rebuilt on every
// add, delete and edit; a service with more destinations than slots keeps
// its old table (the kernel returns -EINVAL).
//
// A packet's source address (plus its source port with mh-port, for TCP,
// UDP and SCTP) picks a slot (see HashMH). The slot's destination is used
// if its weight is positive and it is not overloaded. Otherwise, without
// mh-fallback there is no destination; with it the kernel rehashes with
// offsets h, h+1, ... (mod size), h the first slot, and takes the first
// usable destination.

import (
	"math/bits"

	"github.com/govs/govs/internal/ipvs"
)

// MHTableSize is the number of mh lookup slots: primes[4] of ip_vs_mh.c,
// the kernel's default (CONFIG_IP_VS_MH_TAB_INDEX=12).
const MHTableSize = 4093

// mhTabBits is IP_VS_MH_TAB_BITS (CONFIG_IP_VS_MH_TAB_INDEX / 2): turns
// are shifted so the largest fits in this many bits.
const mhTabBits = 6

var mhNoDest = noDest("mh")

// MH is the mh scheduler of one service. Its Table is what the eBPF data
// plane copies.
type MH struct {
	lookup [MHTableSize]*ipvs.Dest
	// Scratch space of reassign, kept to spare the garbage collector.
	taken [MHTableSize]bool
	setup []mhSetup
}

// mhSetup is ip_vs_mh_dest_setup: one destination's permutation state.
type mhSetup struct {
	perm, skip uint32
	turns      int
}

func mhNew(_ Config, list []*ipvs.Dest) Scheduler {
	s := &MH{}
	s.reassign(list)
	return s
}

// mhLastWeight is the kernel's dest->last_weight: the weight, or, for a
// quiesced destination, the last non-zero weight it had.
func mhLastWeight(d *ipvs.Dest) int {
	if d.Weight != 0 {
		return int(d.Weight)
	}
	return int(d.LastWeight)
}

// mhDestHash is ip_vs_mh_hashkey of a destination with offset 0. The
// kernel folds the address by the service's family; a destination of the
// other family (tunnel only) is folded by its own here, which gives the
// same value for an IPv4 destination of an IPv6 service.
func mhDestHash(d *ipvs.Dest, key hashSipKey) uint32 {
	return hashSip13(uint32(d.Port)+hashFold(d.Addr), key)
}

// reassign is ip_vs_mh_gcd_weight, ip_vs_mh_shift_weight,
// ip_vs_mh_permutate and ip_vs_mh_populate.
func (s *MH) reassign(list []*ipvs.Dest) {
	if len(list) > MHTableSize {
		return
	}
	g, maxw := 0, 0
	for _, d := range list {
		lw := mhLastWeight(d)
		if lw > 0 {
			if g > 0 {
				g = mhGCD(lw, g)
			} else {
				g = lw
			}
		}
		maxw = max(maxw, lw)
	}
	if g < 1 {
		clear(s.lookup[:])
		return
	}
	shift := max(bits.Len(uint(maxw/g))-mhTabBits, 0)

	s.setup = s.setup[:0]
	for _, d := range list {
		lw := mhLastWeight(d)
		turns := (lw / g) >> shift
		if turns == 0 && lw != 0 {
			turns = 1
		}
		s.setup = append(s.setup, mhSetup{
			perm:  mhDestHash(d, hashMHKey1) % MHTableSize,
			skip:  mhDestHash(d, hashMHKey2)%(MHTableSize-1) + 1,
			turns: turns,
		})
	}

	clear(s.taken[:])
	n, count := 0, 0
	for {
		for i := 0; i < len(list); {
			ds := &s.setup[i]
			if ds.turns < 1 {
				i++
				continue
			}
			for s.taken[ds.perm] {
				ds.perm += ds.skip
				if ds.perm >= MHTableSize {
					ds.perm -= MHTableSize
				}
			}
			s.taken[ds.perm] = true
			s.lookup[ds.perm] = list[i]
			if n++; n == MHTableSize {
				return
			}
			if count++; count >= ds.turns {
				count = 0
				i++
			}
		}
	}
}

func mhGCD(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Table returns a copy of the lookup table: slot HashMH(f, flags, 0) holds
// the destination for flow f (nil when no destination has a weight).
func (s *MH) Table() []*ipvs.Dest {
	t := make([]*ipvs.Dest, MHTableSize)
	copy(t, s.lookup[:])
	return t
}

// Name implements Scheduler.
func (s *MH) Name() string { return "mh" }

// AddDest implements Scheduler.
func (s *MH) AddDest(list []*ipvs.Dest, _ *ipvs.Dest) { s.reassign(list) }

// DelDest implements Scheduler.
func (s *MH) DelDest(list []*ipvs.Dest, _ *ipvs.Dest, _ int) { s.reassign(list) }

// UpdDest implements Scheduler.
func (s *MH) UpdDest(list []*ipvs.Dest, _ *ipvs.Dest) { s.reassign(list) }

// mhUsable is is_unavailable negated, plus Available: the kernel does not
// test it because its table never holds a removed destination, except
// when a reassign failed (more destinations than slots); we would rather
// find no destination than pick a removed one.
func mhUsable(d *ipvs.Dest) bool {
	return hashUsable(d) && d.Available
}

// Schedule implements Scheduler.
func (s *MH) Schedule(svc Service, f Flow) (*ipvs.Dest, error) {
	h := HashMH(f, svc.Flags, 0)
	d := s.lookup[h]
	if d != nil && mhUsable(d) {
		return d, nil
	}
	if d == nil || svc.Flags&ipvs.SchedFallback == 0 {
		return nil, mhNoDest
	}
	for off := uint32(0); off < MHTableSize; off++ {
		d = s.lookup[HashMH(f, svc.Flags, (off+h)%MHTableSize)]
		if d == nil {
			break
		}
		if mhUsable(d) {
			return d, nil
		}
	}
	return nil, mhNoDest
}
