package sched

// Hashing shared by the hashing schedulers (dh, sh, mh) and the
// per-destination-address cache of the locality schedulers (lblc, lblcr).
//
// # Hash functions, and why they are stable
//
// None of the five kernel schedulers uses a per-boot random key, so every
// hash here is exactly the kernel's function, and two directors with the
// same configuration (destinations added in the same order, same weights)
// build identical tables and pick identical destinations:
//
//   - dh, sh: the bucket is (x * 2654435761) mod 256, where x is the
//     address folded to 32 bits (IPv4 as is; IPv6 as the XOR of its four
//     big-endian 32-bit words) and, for sh, plus the source port when
//     sh-port is set. Only the low 8 bits of the product are kept, so the
//     bucket depends only on the low byte of x: for IPv4, the last octet of
//     the address. See [HashDH] and [HashSH].
//   - mh: the kernel's hsiphash (on 64-bit kernels, SipHash-1-3 truncated
//     to 32 bits) of the 32-bit value offset + port + folded address, in
//     host (little-endian) byte order, with the two keys ip_vs_mh.c fixes
//     at compile time: {2654435761, 2654435761} for the lookup and the
//     permutation offset, {2654446892, 2654446892} for the permutation
//     skip. See [HashMH]. 32-bit and big-endian kernels compute other
//     values; we follow x86-64 and arm64.
//   - lblc, lblcr: hash_32(folded address, 10), the golden-ratio multiply
//     0x61C88647 keeping the top 10 bits. It only places entries in the
//     1024 buckets of the per-address cache, which decides the order in
//     which the kernel's partial garbage collection visits them.
//
// The eBPF data plane reproduces dh, sh and mh decisions from the tables
// exported by (*DH).Table, (*SH).Table and (*MH).Table and the functions
// HashDH, HashSH and HashMH; tests compare the two.

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"time"

	"github.com/govs/govs/internal/ipvs"
)

// hashGolden is the multiplier of ip_vs_sh_hashkey and ip_vs_dh_hashkey
// (2654435761, 0x9E3779B1, close to 2^32 divided by the golden ratio).
const hashGolden uint32 = 2654435761

// hashGoldenRatio32 is GOLDEN_RATIO_32 of include/linux/hash.h, used by
// hash_32.
const hashGoldenRatio32 uint32 = 0x61C88647

// hashFold folds an address to 32 bits as the kernel's schedulers do:
// an IPv4 address is its big-endian value, an IPv6 address the XOR of its
// four big-endian 32-bit words. The invalid address folds to 0.
func hashFold(a netip.Addr) uint32 {
	if a.Is4() {
		b := a.As4()
		return binary.BigEndian.Uint32(b[:])
	}
	if !a.IsValid() {
		return 0
	}
	b := a.As16()
	return binary.BigEndian.Uint32(b[0:4]) ^ binary.BigEndian.Uint32(b[4:8]) ^
		binary.BigEndian.Uint32(b[8:12]) ^ binary.BigEndian.Uint32(b[12:16])
}

// hashPort is the port sh-port and mh-port add to the hash: the source port
// of TCP, UDP and SCTP packets (the kernel reads the first 16 bits after
// the IP header only for those), else 0.
func hashPort(f Flow, flags ipvs.SchedFlags) uint32 {
	if flags&ipvs.SchedPort == 0 {
		return 0
	}
	switch f.Proto {
	case ipvs.ProtoTCP, ipvs.ProtoUDP, ipvs.ProtoSCTP:
		return uint32(f.SrcPort)
	}
	return 0
}

// hash32 is the kernel's hash_32(val, bits).
func hash32(val uint32, bits uint) uint32 {
	return (val * hashGoldenRatio32) >> (32 - bits)
}

// HashDH returns the dh bucket (0..DHTableSize-1) of f: the kernel's
// ip_vs_dh_hashkey of the packet's destination address.
func HashDH(f Flow) uint32 {
	return (hashFold(f.Dst) * hashGolden) & (DHTableSize - 1)
}

// HashSH returns the sh bucket (0..SHTableSize-1) of f under the service's
// scheduler flags: the kernel's ip_vs_sh_hashkey of the source address,
// plus the source port with sh-port. Offset is 0 for the first lookup; the
// sh-fallback walk probes offset (k + HashSH(f, flags, 0)) mod 256 for
// k = 0, 1, ..., 255, which visits bucket 2h, 2h+1, ... (mod 256) where h
// is the first bucket.
func HashSH(f Flow, flags ipvs.SchedFlags, offset uint32) uint32 {
	x := hashPort(f, flags) + hashFold(f.Src)
	return (offset + x*hashGolden) & (SHTableSize - 1)
}

// HashMH returns the mh lookup slot (0..MHTableSize-1) of f under the
// service's scheduler flags: the kernel's ip_vs_mh_hashkey of the source
// address, plus the source port with mh-port, modulo the table size.
// Offset is 0 for the first lookup; the mh-fallback walk probes offset
// (k + HashMH(f, flags, 0)) mod MHTableSize for k = 0, 1, ....
func HashMH(f Flow, flags ipvs.SchedFlags, offset uint32) uint32 {
	v := offset + hashPort(f, flags) + hashFold(f.Src)
	return hashSip13(v, hashMHKey1) % MHTableSize
}

// hashSipKey is a 128-bit SipHash key (the kernel's hsiphash_key_t on a
// 64-bit kernel: two unsigned longs).
type hashSipKey [2]uint64

// The keys ip_vs_mh.c's generate_hash_secret sets: constants, not random.
var (
	hashMHKey1 = hashSipKey{2654435761, 2654435761}
	hashMHKey2 = hashSipKey{2654446892, 2654446892}
)

// hashSip13 is the 64-bit kernel's hsiphash of the 4-byte little-endian
// value v: SipHash-1-3 of a 4-byte message, truncated to 32 bits.
func hashSip13(v uint32, k hashSipKey) uint32 {
	v0 := uint64(0x736f6d6570736575) ^ k[0]
	v1 := uint64(0x646f72616e646f6d) ^ k[1]
	v2 := uint64(0x6c7967656e657261) ^ k[0]
	v3 := uint64(0x7465646279746573) ^ k[1]
	b := uint64(4)<<56 | uint64(v)
	v3 ^= b
	v0, v1, v2, v3 = hashSipRound(v0, v1, v2, v3)
	v0 ^= b
	v2 ^= 0xff
	v0, v1, v2, v3 = hashSipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = hashSipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = hashSipRound(v0, v1, v2, v3)
	return uint32(v0 ^ v1 ^ v2 ^ v3)
}

// hashSipRound is one SipRound.
func hashSipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13)
	v1 ^= v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16)
	v3 ^= v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21)
	v3 ^= v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17)
	v1 ^= v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}

// hashUsable is the availability test of sh and mh (is_unavailable): a
// positive weight and no overload flag.
func hashUsable(d *ipvs.Dest) bool {
	return d.Weight > 0 && !d.Overloaded
}

// hashOverhead is ip_vs_dest_conn_overhead: active connections weigh 256
// inactive ones.
func hashOverhead(d *ipvs.Dest) int64 {
	return int64(d.ActiveConns)<<8 + int64(d.InactConns)
}

// hashLeastConn is the weighted least-connection pick shared by lblc and
// lblcr (__ip_vs_lblc_schedule, __ip_vs_lblcr_schedule): skip overloaded
// and quiescent destinations, keep the first of equally loaded ones.
func hashLeastConn(list []*ipvs.Dest) *ipvs.Dest {
	var least *ipvs.Dest
	var loh int64
	for _, d := range list {
		if d.Overloaded {
			continue
		}
		if least == nil {
			if d.Weight > 0 {
				least, loh = d, hashOverhead(d)
			}
			continue
		}
		doh := hashOverhead(d)
		if loh*int64(d.Weight) > doh*int64(least.Weight) {
			least, loh = d, doh
		}
	}
	return least
}

// hashOverloaded is lblc's and lblcr's is_overloaded: d has more active
// connections than its weight while some destination of the service has
// fewer than half its weight. It ignores the overload flag.
func hashOverloaded(d *ipvs.Dest, list []*ipvs.Dest) bool {
	if d.ActiveConns <= d.Weight {
		return false
	}
	for _, o := range list {
		if int64(o.ActiveConns)*2 < int64(o.Weight) {
			return true
		}
	}
	return false
}

// The per-address cache of lblc and lblcr, with the kernel's constants.
const (
	hashCacheBits     = 10 // CONFIG_IP_VS_LBLC(R)_TAB_BITS
	hashCacheSize     = 1 << hashCacheBits
	hashCacheMax      = hashCacheSize * 16 // max_size: partial GC above this
	hashCheckInterval = 60 * time.Second   // CHECK_EXPIRE_INTERVAL
	hashEntryTimeout  = 6 * time.Minute    // ENTRY_TIMEOUT of the partial GC
	hashFullEvery     = 30                 // COUNT_FOR_FULL_EXPIRATION
	// hashDefaultExpiration is the default of the lblc_expiration and
	// lblcr_expiration sysctls.
	hashDefaultExpiration = 24 * time.Hour
)

// hashEntry is one cached destination address and the scheduler's value
// for it (lblc: a destination; lblcr: a destination set).
type hashEntry[V any] struct {
	addr    netip.Addr
	lastuse time.Time
	val     V
}

// hashCache is the kernel's ip_vs_lblc_table / ip_vs_lblcr_table: 1024
// buckets by hash_32 of the address, an entry counter, and the periodic
// garbage collector's state (rover, counter). The kernel's timer fires
// every minute; here advance replays the ticks that fell due, at their
// own times, when Schedule brings a newer Now. The first tick is a minute
// after the first Schedule (the kernel's is a minute after the service was
// created, which the scheduler is not told).
type hashCache[V any] struct {
	buckets [hashCacheSize][]hashEntry[V]
	exp     time.Duration
	// entries is the kernel's atomic entry count. lblc replaces an entry
	// without decrementing it (ip_vs_lblc_new deletes the old one with
	// ip_vs_lblc_del, which does not count), so it can exceed live.
	entries int
	live    int
	rover   int
	counter int
	started bool
	next    time.Time // when the next tick is due
	oldest  time.Time // a lower bound of every entry's lastuse
}

func (c *hashCache[V]) init(exp time.Duration) {
	if exp == 0 {
		exp = hashDefaultExpiration
	}
	c.exp = exp
	c.counter = 1
}

// get returns the entry for addr, or nil. The pointer is valid until the
// next insert or garbage collection.
func (c *hashCache[V]) get(addr netip.Addr) *hashEntry[V] {
	b := c.buckets[hash32(hashFold(addr), hashCacheBits)]
	for i := range b {
		if b[i].addr == addr {
			return &b[i]
		}
	}
	return nil
}

// touch records a use of e at now.
func (c *hashCache[V]) touch(e *hashEntry[V], now time.Time) {
	e.lastuse = now
	if c.live == 0 || now.Before(c.oldest) {
		c.oldest = now
	}
}

// insert adds an entry for addr, which has none, and returns it.
func (c *hashCache[V]) insert(addr netip.Addr, now time.Time, val V) *hashEntry[V] {
	if c.live == 0 || now.Before(c.oldest) {
		c.oldest = now
	}
	h := hash32(hashFold(addr), hashCacheBits)
	c.buckets[h] = append(c.buckets[h], hashEntry[V]{addr: addr, lastuse: now, val: val})
	c.entries++
	c.live++
	return &c.buckets[h][len(c.buckets[h])-1]
}

// sweep deletes the entries of bucket j unused since before now-timeout and
// returns how many it deleted.
func (c *hashCache[V]) sweep(j int, now time.Time, timeout time.Duration) int {
	b := c.buckets[j]
	n := 0
	for i := 0; i < len(b); {
		if now.Before(b[i].lastuse.Add(timeout)) {
			i++
			continue
		}
		last := len(b) - 1
		b[i] = b[last]
		b[last] = hashEntry[V]{}
		b = b[:last]
		n++
	}
	c.buckets[j] = b
	c.entries -= n
	c.live -= n
	return n
}

// fullCheck is ip_vs_lblc_full_check at time t: every entry unused for the
// expiration time goes. The walk covers every bucket, so the rover ends
// where it started.
func (c *hashCache[V]) fullCheck(t time.Time) {
	if c.live == 0 || t.Before(c.oldest.Add(c.exp)) {
		return // nothing can have expired
	}
	oldest := time.Time{}
	for j := range c.buckets {
		c.sweep(j, t, c.exp)
		for i := range c.buckets[j] {
			if u := c.buckets[j][i].lastuse; oldest.IsZero() || u.Before(oldest) {
				oldest = u
			}
		}
	}
	c.oldest = oldest
}

// partialCheck is the over-full branch of ip_vs_lblc_check_expire at time
// t: from the rover on, delete entries unused for six minutes, bucket by
// bucket, until a goal of (entries - max) * 4/3 (at most max/2) is met.
func (c *hashCache[V]) partialCheck(t time.Time) {
	goal := (c.entries - hashCacheMax) * 4 / 3
	if goal > hashCacheMax/2 {
		goal = hashCacheMax / 2
	}
	j := c.rover
	for i := 0; i < hashCacheSize; i++ {
		j = (j + 1) & (hashCacheSize - 1)
		goal -= c.sweep(j, t, hashEntryTimeout)
		if goal <= 0 {
			break
		}
	}
	c.rover = j
}

// advance runs the garbage collector's ticks due at or before now, each at
// its own time, as the kernel's timer would have. Runs of ticks that
// cannot change the table are skipped arithmetically.
func (c *hashCache[V]) advance(now time.Time) {
	if !c.started {
		c.started = true
		c.next = now.Add(hashCheckInterval)
		return
	}
	for !now.Before(c.next) {
		t := c.next
		if c.live == 0 {
			c.advanceEmpty(now)
			return
		}
		switch {
		case c.counter%hashFullEvery == 0:
			c.fullCheck(t)
			c.counter = 1
			c.next = t.Add(hashCheckInterval)
			if c.live > 0 && c.entries <= hashCacheMax {
				// Nothing changes until a full check can find an
				// expired entry: jump to the first one that can.
				period := hashFullEvery * hashCheckInterval
				if k := c.oldest.Add(c.exp).Sub(t); k > period {
					at := t.Add((k + period - 1) / period * period)
					if now.Before(at) {
						c.idleTo(now)
						return
					}
					c.next, c.counter = at, hashFullEvery
				}
			}
		case c.entries <= hashCacheMax:
			// Idle ticks only count, up to the next full check.
			k := hashFullEvery - c.counter%hashFullEvery
			n := int(now.Sub(t)/hashCheckInterval) + 1
			if n > k {
				n = k
			}
			c.counter += n
			c.next = t.Add(time.Duration(n) * hashCheckInterval)
		default:
			c.partialCheck(t)
			c.next = t.Add(hashCheckInterval)
		}
	}
}

// advanceEmpty runs the ticks due at or before now on an empty table,
// where only the counter moves (the rover returns to where it was).
func (c *hashCache[V]) advanceEmpty(now time.Time) {
	if c.entries <= hashCacheMax {
		c.idleTo(now)
		return
	}
	// Over-full by drift: a pending full check resets the counter, then
	// partial checks leave it alone.
	n := int64(now.Sub(c.next)/hashCheckInterval) + 1
	c.next = c.next.Add(time.Duration(n) * hashCheckInterval)
	if c.counter%hashFullEvery == 0 {
		c.counter = 1
	}
}

// idleTo runs the ticks due at or before now when none of them can change
// the table and the table is not over-full: the counter runs 1..30, and
// the tick that finds 30 is a (fruitless) full check that restarts it at 1.
func (c *hashCache[V]) idleTo(now time.Time) {
	n := int64(now.Sub(c.next)/hashCheckInterval) + 1
	c.next = c.next.Add(time.Duration(n) * hashCheckInterval)
	p := int64((c.counter-1)%hashFullEvery) + n
	c.counter = int(p%hashFullEvery) + 1
}
