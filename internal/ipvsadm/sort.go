package ipvsadm

import (
	"net/netip"

	"github.com/govs/govs/internal/ipvs"
)

// Listings sort as ipvsadm sorts them: with glibc's qsort (a top-down merge
// sort) and libipvs's comparators, which subtract unsigned numbers as int
// (so two addresses more than 2^31 apart compare the "wrong" way round,
// exactly as ipvsadm prints them).

// msort is glibc's msort_with_tmp: stable, top-down, taking from the left
// run while cmp(left, right) <= 0.
func msort[T any](s []T, cmp func(a, b *T) int) {
	if len(s) <= 1 {
		return
	}
	tmp := make([]T, len(s))
	msortRec(s, tmp, cmp)
}

func msortRec[T any](s, tmp []T, cmp func(a, b *T) int) {
	n := len(s)
	if n <= 1 {
		return
	}
	n1 := n / 2
	b1, b2 := s[:n1], s[n1:]
	msortRec(b1, tmp, cmp)
	msortRec(b2, tmp, cmp)
	i, j, k := 0, 0, 0
	for i < len(b1) && j < len(b2) {
		if cmp(&b1[i], &b2[j]) <= 0 {
			tmp[k] = b1[i]
			i++
		} else {
			tmp[k] = b2[j]
			j++
		}
		k++
	}
	k += copy(tmp[k:], b1[i:])
	copy(s, tmp[:k])
}

// csub is C's int r = a - b for unsigned 32-bit a and b.
func csub(a, b uint32) int { return int(int32(a - b)) }

// addrCmp compares two addresses of family fam as libipvs does: IPv4 as
// one 32-bit word, IPv6 word by word.
func addrCmp(fam ipvs.Family, a, b netip.Addr) int {
	if fam == ipvs.IPv6 {
		x, y := a.As16(), b.As16()
		for i := 0; i < 16; i += 4 {
			if r := csub(be32(x[i:]), be32(y[i:])); r != 0 {
				return r
			}
		}
		return 0
	}
	return csub(v4(a), v4(b))
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func v4(a netip.Addr) uint32 {
	a = a.Unmap()
	if !a.Is4() {
		// An IPv4 service's word of an IPv6 address: its first 4 bytes.
		if !a.IsValid() {
			return 0
		}
		b := a.As16()
		return be32(b[:4])
	}
	b := a.As4()
	return be32(b[:])
}

// family returns the family of a service as the kernel reports it.
func family(k *ipvs.ServiceKey) ipvs.Family {
	if k.Family != ipvs.FamilyNone {
		return k.Family
	}
	if f := ipvs.FamilyOf(k.Addr); f != ipvs.FamilyNone {
		return f
	}
	return ipvs.IPv4
}

// afNum is the AF_* number of a family.
func afNum(f ipvs.Family) int {
	if f == ipvs.IPv6 {
		return afInet6
	}
	return afInet
}

// kernelProto is the protocol the kernel keeps for a service: ipvsadm
// sends TCP for a firewall-mark service.
func kernelProto(k *ipvs.ServiceKey) ipvs.Protocol {
	if k.IsFWMark() && k.Protocol == ipvs.ProtoNone {
		return ipvs.ProtoTCP
	}
	return k.Protocol
}

// cmpServices is libipvs's ipvs_cmp_services.
func cmpServices(a, b *ipvs.ServiceState) int {
	ka, kb := &a.ServiceKey, &b.ServiceKey
	if r := csub(ka.FWMark, kb.FWMark); r != 0 {
		return r
	}
	fa, fb := family(ka), family(kb)
	if r := afNum(fa) - afNum(fb); r != 0 {
		return r
	}
	if r := int(kernelProto(ka)) - int(kernelProto(kb)); r != 0 {
		return r
	}
	if r := addrCmp(fa, ka.Addr, kb.Addr); r != 0 {
		return r
	}
	return int(ka.Port) - int(kb.Port)
}

// cmpDests is libipvs's ipvs_cmp_dests.
func cmpDests(a, b *ipvs.DestState) int {
	if r := addrCmp(ipvs.FamilyOf(a.Addr), a.Addr, b.Addr); r != 0 {
		return r
	}
	return int(a.Port) - int(b.Port)
}

// sortServices sorts services and their destinations in place, unless
// format says --nosort. It copies the destination slices it sorts.
func sortServices(svcs []ipvs.ServiceState, format Format) {
	if format&FmtNoSort != 0 {
		return
	}
	msort(svcs, cmpServices)
	for i := range svcs {
		sortDests(&svcs[i], format)
	}
}

func sortDests(s *ipvs.ServiceState, format Format) {
	if format&FmtNoSort != 0 {
		return
	}
	s.Dests = append([]ipvs.DestState(nil), s.Dests...)
	msort(s.Dests, cmpDests)
}
