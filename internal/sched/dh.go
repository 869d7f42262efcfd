package sched

// dh: destination hashing (net/netfilter/ipvs/ip_vs_dh.c).
//
// The kernel keeps a 256-bucket table per service. Filling it walks the
// destination list (newest first) round robin, one bucket per destination
// per turn, wrapping until all 256 buckets are set: weights play no part in
// the table. A packet's destination address picks its bucket (see HashDH);
// the bucket's destination is used if it is still available, has a
// positive weight and is not overloaded, otherwise there is no destination
// (dh has no fallback). The table is rebuilt when a destination is added
// or removed; the kernel's dh has no upd_dest hook, and edits cannot change
// a table that ignores weights anyway.

import "github.com/govs/govs/internal/ipvs"

// DHTableSize is the number of dh buckets (1 << CONFIG_IP_VS_DH_TAB_BITS).
const DHTableSize = 256

var dhNoDest = noDest("dh")

// DH is the dh scheduler of one service. Its Table is what the eBPF data
// plane copies.
type DH struct {
	table [DHTableSize]*ipvs.Dest
}

func dhNew(_ Config, list []*ipvs.Dest) Scheduler {
	s := &DH{}
	s.reassign(list)
	return s
}

// reassign is ip_vs_dh_reassign: bucket i holds list[i mod len(list)].
func (s *DH) reassign(list []*ipvs.Dest) {
	for i := range s.table {
		if len(list) == 0 {
			s.table[i] = nil
			continue
		}
		s.table[i] = list[i%len(list)]
	}
}

// Table returns a copy of the 256 buckets: bucket HashDH(f) holds the
// destination for flow f (nil when the service has none).
func (s *DH) Table() []*ipvs.Dest {
	t := make([]*ipvs.Dest, DHTableSize)
	copy(t, s.table[:])
	return t
}

// Name implements Scheduler.
func (s *DH) Name() string { return "dh" }

// AddDest implements Scheduler.
func (s *DH) AddDest(list []*ipvs.Dest, _ *ipvs.Dest) { s.reassign(list) }

// DelDest implements Scheduler.
func (s *DH) DelDest(list []*ipvs.Dest, _ *ipvs.Dest, _ int) { s.reassign(list) }

// UpdDest implements Scheduler. The kernel's dh has no upd_dest hook.
func (s *DH) UpdDest(_ []*ipvs.Dest, _ *ipvs.Dest) {}

// Schedule implements Scheduler.
func (s *DH) Schedule(_ Service, f Flow) (*ipvs.Dest, error) {
	d := s.table[HashDH(f)]
	if d == nil || !d.Available || d.Weight <= 0 || d.Overloaded {
		return nil, dhNoDest
	}
	return d, nil
}
