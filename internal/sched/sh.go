package sched

// sh: source hashing (net/netfilter/ipvs/ip_vs_sh.c).
//
// The kernel keeps a 256-bucket table per service. Filling it walks the
// destination list (newest first) and gives each destination as many
// consecutive buckets as its weight, then moves to the next one, wrapping
// around the list until all 256 buckets are set. A destination of weight 0
// still gets one bucket (the "move on" test is count >= weight, checked
// after assigning), so a quiesced destination keeps a bucket and flows
// hashed there find no destination. The table is rebuilt on every add,
// delete and edit.
//
// A packet's source address (plus its source port with sh-port, for TCP,
// UDP and SCTP) picks its bucket (see HashSH). The bucket's destination is
// used if its weight is positive and it is not overloaded. Otherwise,
// without sh-fallback there is no destination; with sh-fallback the kernel
// probes up to 256 more buckets, rehashing with offsets h, h+1, ...
// (mod 256) where h is the first bucket, and takes the first usable one.

import "github.com/govs/govs/internal/ipvs"

// SHTableSize is the number of sh buckets (1 << CONFIG_IP_VS_SH_TAB_BITS).
const SHTableSize = 256

var shNoDest = noDest("sh")

// SH is the sh scheduler of one service. Its Table is what the eBPF data
// plane copies.
type SH struct {
	table [SHTableSize]*ipvs.Dest
}

func shNew(_ Config, list []*ipvs.Dest) Scheduler {
	s := &SH{}
	s.reassign(list)
	return s
}

// reassign is ip_vs_sh_reassign.
func (s *SH) reassign(list []*ipvs.Dest) {
	p, count := 0, 0
	for i := range s.table {
		if len(list) == 0 {
			s.table[i] = nil
			continue
		}
		d := list[p]
		s.table[i] = d
		count++
		if count >= int(d.Weight) {
			p = (p + 1) % len(list)
			count = 0
		}
	}
}

// Table returns a copy of the 256 buckets: bucket HashSH(f, flags, 0)
// holds the destination for flow f (nil when the service has none).
func (s *SH) Table() []*ipvs.Dest {
	t := make([]*ipvs.Dest, SHTableSize)
	copy(t, s.table[:])
	return t
}

// Name implements Scheduler.
func (s *SH) Name() string { return "sh" }

// AddDest implements Scheduler.
func (s *SH) AddDest(list []*ipvs.Dest, _ *ipvs.Dest) { s.reassign(list) }

// DelDest implements Scheduler.
func (s *SH) DelDest(list []*ipvs.Dest, _ *ipvs.Dest, _ int) { s.reassign(list) }

// UpdDest implements Scheduler.
func (s *SH) UpdDest(list []*ipvs.Dest, _ *ipvs.Dest) { s.reassign(list) }

// Schedule implements Scheduler.
func (s *SH) Schedule(svc Service, f Flow) (*ipvs.Dest, error) {
	h := HashSH(f, svc.Flags, 0)
	d := s.table[h]
	if d != nil && hashUsable(d) {
		return d, nil
	}
	if d == nil || svc.Flags&ipvs.SchedFallback == 0 {
		return nil, shNoDest
	}
	for off := uint32(0); off < SHTableSize; off++ {
		d = s.table[HashSH(f, svc.Flags, (off+h)%SHTableSize)]
		if d == nil {
			break
		}
		if hashUsable(d) {
			return d, nil
		}
	}
	return nil, shNoDest
}
