package conn

import (
	"encoding/binary"
	"math/bits"
	"net/netip"

	"github.com/govs/govs/internal/ipvs"
)

// Key identifies a connection entry in one direction: protocol, source and
// destination address and port. Addresses are kept in their 16-byte form
// (IPv4 as IPv4-mapped IPv6), so a Key holds no pointers: a table of a
// million entries is invisible to the garbage collector's scan, and Keys
// compare with one memory comparison.
//
// A connection is found by the key of its client-to-VIP packets (the "in"
// key: client -> virtual); a NAT connection also by the key of its replies
// (the "out" key: destination -> client). A persistence template has its
// own key kind (Template set), so it never collides with a connection.
type Key struct {
	Proto ipvs.Protocol
	// Template marks a persistence template's key.
	Template bool
	SrcPort  uint16
	DstPort  uint16
	Src      [16]byte
	Dst      [16]byte
}

// MakeKey returns the key of a packet from src to dst.
func MakeKey(p ipvs.Protocol, src, dst netip.AddrPort) Key {
	return Key{
		Proto:   p,
		SrcPort: src.Port(),
		DstPort: dst.Port(),
		Src:     src.Addr().As16(),
		Dst:     dst.Addr().As16(),
	}
}

// TemplateKey returns the key of a persistence template, as the kernel's
// ip_vs_sched_persist builds it: client network (the client address
// masked by the service's netmask) with port 0, the virtual address and
// the virtual port, or port 0 for a port-zero service.
func TemplateKey(p ipvs.Protocol, clientNet, vaddr netip.Addr, vport uint16) Key {
	return Key{
		Proto:    p,
		Template: true,
		DstPort:  vport,
		Src:      clientNet.As16(),
		Dst:      vaddr.As16(),
	}
}

// FWMarkTemplateKey returns the key of a persistence template of a
// firewall-mark service: protocol "IP" (0), the client network, and the
// mark in place of the virtual address, so that one template covers every
// protocol, address and port the mark selects.
func FWMarkTemplateKey(mark uint32, clientNet netip.Addr) Key {
	k := Key{Template: true, Src: clientNet.As16()}
	binary.BigEndian.PutUint32(k.Dst[:4], mark)
	return k
}

// SrcAddrPort returns the key's source as an address and port.
func (k Key) SrcAddrPort() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(k.Src).Unmap(), k.SrcPort)
}

// DstAddrPort returns the key's destination as an address and port.
func (k Key) DstAddrPort() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(k.Dst).Unmap(), k.DstPort)
}

// hashSeed is a per-table random key for hash, so that clients cannot
// choose addresses that all fall into one chain (the kernel seeds its
// jhash the same way).
type hashSeed [4]uint64

// mix is the 64x64->128 multiply-fold used by wyhash.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// hash returns k's hash under seed s. It reads the key as five words and
// folds them with multiplications; it does not allocate.
func (s *hashSeed) hash(k *Key) uint64 {
	s0 := binary.LittleEndian.Uint64(k.Src[0:8])
	s1 := binary.LittleEndian.Uint64(k.Src[8:16])
	d0 := binary.LittleEndian.Uint64(k.Dst[0:8])
	d1 := binary.LittleEndian.Uint64(k.Dst[8:16])
	meta := uint64(k.Proto) | uint64(k.SrcPort)<<8 | uint64(k.DstPort)<<24
	if k.Template {
		meta |= 1 << 40
	}
	h := mix(s0^s[0], s1^s[1])
	h = mix(h^d0^s[2], d1^s[3])
	h = mix(h^meta^s[1], 0x9E3779B97F4A7C15^s[0])
	return h
}
