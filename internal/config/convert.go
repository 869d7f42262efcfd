package config

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/govs/govs/internal/ipvs"
)

// ServiceConfig is one IPVS virtual service a virtual_server produces
// (a group produces one per address, port and mark), with its configured
// destinations sorted by address and port. Whether a destination is in the
// kernel table at a given moment is the health checker's business (alpha
// starts them down); this is the configuration.
type ServiceConfig struct {
	Service ipvs.Service       `json:"service"`
	Dests   []ipvs.Destination `json:"dests"`
	Sorry   *ipvs.Destination  `json:"sorry,omitempty"`
	// Source is the virtual_server this service came from.
	Source *VirtualServer `json:"-"`
}

// IPVS converts the virtual servers into IPVS services and destinations,
// validated by package ipvs's rules. Errors carry the position of the
// virtual_server or real_server block; all are returned, joined. Services
// are sorted by key.
func (c *Config) IPVS() ([]ServiceConfig, error) {
	var errs []error
	fail := func(p Pos, format string, args ...any) {
		errs = append(errs, &Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
	}
	var out []ServiceConfig
	seen := map[ipvs.ServiceKey]Pos{}
	for i := range c.VirtualServers {
		vs := &c.VirtualServers[i]
		if len(vs.RealServers) == 0 {
			continue
		}
		keys, ports := c.serviceKeys(vs, fail)
		for j, key := range keys {
			if p, dup := seen[key]; dup {
				fail(vs.Pos, "virtual_server %s: service %s is already defined at %s", vsName(vs), key, p)
				continue
			}
			seen[key] = vs.Pos
			sc := ServiceConfig{Source: vs, Service: ipvs.Service{
				ServiceKey: key,
				Scheduler:  vs.Scheduler,
				SchedFlags: vs.SchedFlags,
				Persistent: vs.Persistent,
				Timeout:    vs.PersistenceTimeout,
				Netmask:    vs.PersistenceGranularity,
				OnePacket:  vs.OnePacket,
				PE:         vs.PersistenceEngine,
			}}
			if !vs.Persistent {
				sc.Service.Timeout = 0
			}
			sc.Service.SetDefaults()
			if err := sc.Service.Validate(); err != nil {
				fail(vs.Pos, "virtual_server %s: %s", vsName(vs), joinMsg(err))
			}
			for _, rs := range vs.RealServers {
				dst := toDest(rs.Addr, rs.Port, rs.Forwarding, ports[j], &sc.Service)
				dst.Weight, dst.Upper, dst.Lower = rs.Weight, rs.UThreshold, rs.LThreshold
				dst.ProxyProtocol = rs.ProxyProtocol
				if err := dst.Validate(&sc.Service); err != nil {
					fail(rs.Pos, "real_server %s: %s", rs.Addr, joinMsg(err))
				}
				sc.Dests = append(sc.Dests, dst)
			}
			if s := vs.SorryServer; s != nil {
				dst := toDest(s.Addr, s.Port, s.Forwarding, ports[j], &sc.Service)
				dst.Weight = ipvs.DefaultWeight
				if err := dst.Validate(&sc.Service); err != nil {
					fail(s.Pos, "sorry_server %s: %s", s.Addr, joinMsg(err))
				}
				sc.Sorry = &dst
			}
			slices.SortFunc(sc.Dests, cmpDest)
			out = append(out, sc)
		}
	}
	slices.SortFunc(out, func(a, b ServiceConfig) int { return cmpKey(a.Service.ServiceKey, b.Service.ServiceKey) })
	return out, errors.Join(errs...)
}

func toDest(addr netip.Addr, port uint16, f Forwarding, svcPort uint16, svc *ipvs.Service) ipvs.Destination {
	d := ipvs.Destination{Addr: addr, Port: port, Fwd: f.Method}
	if f.Method == ipvs.Tunnel {
		d.TunType, d.TunPort, d.TunFlags = f.TunType, f.TunPort, f.TunFlags
	}
	if d.Port == 0 && !svc.IsFWMark() {
		d.Port = svcPort
	}
	if svc.IsFWMark() && f.Method != ipvs.Masq {
		d.Port = 0 // the kernel ignores it; keepalived clears it
	}
	d.Normalize(svc)
	return d
}

// joinMsg flattens a joined validation error onto one line.
func joinMsg(err error) string {
	var u interface{ Unwrap() []error }
	if errors.As(err, &u) {
		s := ""
		for i, e := range u.Unwrap() {
			if i > 0 {
				s += "; "
			}
			s += e.Error()
		}
		return s
	}
	return err.Error()
}

// serviceKeys lists the service keys of vs and each one's port.
func (c *Config) serviceKeys(vs *VirtualServer, fail func(Pos, string, ...any)) ([]ipvs.ServiceKey, []uint16) {
	markFamily := func(f ipvs.Family) ipvs.Family {
		if f != ipvs.FamilyNone {
			return f
		}
		if vs.IPFamily != ipvs.FamilyNone {
			return vs.IPFamily
		}
		for _, rs := range vs.RealServers {
			if rs.Forwarding.Method != ipvs.Tunnel {
				return ipvs.FamilyOf(rs.Addr)
			}
		}
		if len(vs.RealServers) > 0 {
			return ipvs.FamilyOf(vs.RealServers[0].Addr)
		}
		return ipvs.IPv4
	}
	switch {
	case vs.FWMark != 0:
		return []ipvs.ServiceKey{ipvs.FWMarkService(vs.FWMark, markFamily(ipvs.FamilyNone))}, []uint16{0}
	case vs.Group == "":
		return []ipvs.ServiceKey{addrKey(vs.Protocol, vs.Addr, vs.Port)}, []uint16{vs.Port}
	}
	var keys []ipvs.ServiceKey
	var ports []uint16
	for _, g := range c.VirtualServerGroups {
		if g.Name != vs.Group {
			continue
		}
		for _, e := range g.Entries {
			if e.FWMark != 0 {
				keys = append(keys, ipvs.FWMarkService(e.FWMark, markFamily(e.Family)))
				ports = append(ports, 0)
				continue
			}
			for a := e.First; ; a = a.Next() {
				keys = append(keys, addrKey(vs.Protocol, a, e.Port))
				ports = append(ports, e.Port)
				if a == e.Last || !a.IsValid() {
					break
				}
			}
		}
	}
	if len(keys) == 0 {
		fail(vs.Pos, "virtual_server group %s: the group has no entries", vs.Group)
	}
	return keys, ports
}

func addrKey(p ipvs.Protocol, a netip.Addr, port uint16) ipvs.ServiceKey {
	return ipvs.ServiceKey{Family: ipvs.FamilyOf(a), Protocol: p, Addr: a.Unmap(), Port: port}
}

// cmpKey orders services as ipvsadm lists them: fwmark, family, protocol,
// address, port.
func cmpKey(a, b ipvs.ServiceKey) int {
	return cmp.Or(cmp.Compare(a.FWMark, b.FWMark), cmp.Compare(a.Family, b.Family),
		cmp.Compare(a.Protocol, b.Protocol), a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
}

func cmpDest(a, b ipvs.Destination) int {
	return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
}
