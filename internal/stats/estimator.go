// Package stats is the IPVS rate estimator (net/netfilter/ipvs/ip_vs_est.c)
// in pure Go: the connection, packet and byte rates that ipvsadm --rate
// prints, estimated from a service's or destination's running counters.
//
// # Method
//
// Every two seconds ([Interval]) each estimator takes a sample of its
// counters and moves its averages a quarter of the way towards the rate
// seen over those two seconds: an exponentially weighted moving average
// with weight W = 2^-2,
//
//	avg = avg + (rate - avg) / 4
//
// in fixed point, exactly as the kernel computes it. The averages are
// stored scaled: connections and packets per second by 2^10, bytes per
// second by 2^5. Because a sample covers two seconds, the scaled rate of a
// sample is the counter's increase shifted left by 9 (2^10 / 2) for
// connections and packets and by 4 (2^5 / 2) for bytes:
//
//	cps    += ((Δconns   << 9) - cps)    >> 2
//	inpps  += ((Δinpkts  << 9) - inpps)  >> 2
//	outpps += ((Δoutpkts << 9) - outpps) >> 2
//	inbps  += ((Δinbytes << 4) - inbps)  >> 2
//	outbps += ((Δoutbytes<< 4) - outbps) >> 2
//
// (the shift right of a negative difference rounds towards minus infinity,
// as the kernel's signed shift does). Reading rounds the scaled values
// back to units, adding just under one half:
//
//	CPS = (cps + 0x1FF) >> 10    InBPS = (inbps + 0xF) >> 5
//
// So a steady 100 connections per second reads 25, 44, 58, 68, 76, ... and
// converges on 100; when traffic stops the rate decays by a quarter every
// two seconds.
//
// # Time
//
// Nothing here reads a clock or runs a timer. A [Clock] tells its owner how
// many two-second samples are due at the time it passes in; the owner (the
// engine, from its Expire) then calls [Estimator.Sample] that many times.
// Samples that were missed because the owner was late are taken with the
// counters as they are then, so the whole increase falls into the first
// of them, which is what the kernel's timer would have seen had it run
// late.
package stats

import (
	"time"

	"github.com/govs/govs/internal/ipvs"
)

// Interval is the kernel's estimation period: 2 seconds.
const Interval = 2 * time.Second

// Estimator estimates the rates of one set of counters.
type Estimator struct {
	last ipvs.Counters
	// Scaled averages: cps, pps by 2^10; bps by 2^5.
	cps, inpps, outpps int64
	inbps, outbps      int64
}

// ewma moves avg a quarter of the way towards rate, in the kernel's
// fixed-point arithmetic.
func ewma(avg *int64, rate int64) {
	*avg += (rate - *avg) >> 2
}

// Sample takes one two-second sample of c.
func (e *Estimator) Sample(c ipvs.Counters) {
	ewma(&e.cps, int64(c.Conns-e.last.Conns)<<9)
	ewma(&e.inpps, int64(c.InPkts-e.last.InPkts)<<9)
	ewma(&e.outpps, int64(c.OutPkts-e.last.OutPkts)<<9)
	ewma(&e.inbps, int64(c.InBytes-e.last.InBytes)<<4)
	ewma(&e.outbps, int64(c.OutBytes-e.last.OutBytes)<<4)
	e.last = c
}

// Reset restarts the estimator from counters c with all rates zero (the
// kernel's ip_vs_zero_estimator, run when counters are zeroed).
func (e *Estimator) Reset(c ipvs.Counters) {
	*e = Estimator{last: c}
}

// Rates returns the estimated rates, rounded as the kernel's
// ip_vs_read_estimator rounds them.
func (e *Estimator) Rates() ipvs.Rates {
	return ipvs.Rates{
		CPS:    read(e.cps, 0x1FF, 10),
		InPPS:  read(e.inpps, 0x1FF, 10),
		OutPPS: read(e.outpps, 0x1FF, 10),
		InBPS:  read(e.inbps, 0xF, 5),
		OutBPS: read(e.outbps, 0xF, 5),
	}
}

func read(v, round int64, shift uint) uint64 {
	if v <= 0 {
		return 0
	}
	return uint64(v+round) >> shift
}

// Clock schedules the two-second samples from the times its owner passes
// in. The zero Clock takes its first sample Interval after the first time
// it is given.
type Clock struct {
	next time.Time
	set  bool
}

// MaxCatchUp bounds the samples Due returns after a long gap: after 64
// samples without traffic every rate has decayed to zero anyway
// ((3/4)^64 < 2^-26).
const MaxCatchUp = 64

// Due returns how many samples are due at now (usually 0 or 1), and
// advances the clock past them.
func (c *Clock) Due(now time.Time) int {
	if !c.set {
		c.next = now.Add(Interval)
		c.set = true
		return 0
	}
	n := 0
	for !now.Before(c.next) {
		n++
		c.next = c.next.Add(Interval)
		if n == MaxCatchUp {
			if !now.Before(c.next) {
				// Skip what is left of the gap.
				gap := now.Sub(c.next)
				c.next = c.next.Add((gap/Interval + 1) * Interval)
			}
			break
		}
	}
	return n
}
