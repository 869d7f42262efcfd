package config

import (
	"slices"

	"github.com/govs/govs/internal/ipvs"
)

// Changes is what a reload must do to go from one set of services to
// another. Apply in this order: AddServices, EditServices, AddDests,
// EditDests, RemoveDests, RemoveServices. Destinations of added services
// are in AddDests; destinations of removed services are not listed (they
// go with their service, drained by the caller). Every list is sorted by
// service key, then destination address and port.
type Changes struct {
	AddServices    []ipvs.Service `json:"add_services,omitempty"`
	EditServices   []ServiceEdit  `json:"edit_services,omitempty"`
	RemoveServices []ipvs.Service `json:"remove_services,omitempty"`
	AddDests       []DestChange   `json:"add_dests,omitempty"`
	EditDests      []DestEdit     `json:"edit_dests,omitempty"`
	RemoveDests    []DestChange   `json:"remove_dests,omitempty"`
}

// Empty reports whether there is nothing to do.
func (c Changes) Empty() bool {
	return len(c.AddServices)+len(c.EditServices)+len(c.RemoveServices)+
		len(c.AddDests)+len(c.EditDests)+len(c.RemoveDests) == 0
}

// ServiceEdit is a service whose attributes changed; Fields names them
// (scheduler, sched_flags, persistent, timeout, netmask, one_packet, pe).
type ServiceEdit struct {
	Old    ipvs.Service `json:"old"`
	New    ipvs.Service `json:"new"`
	Fields []string     `json:"fields"`
}

// DestChange is a destination added to or removed from a service.
type DestChange struct {
	Service ipvs.ServiceKey  `json:"service"`
	Dest    ipvs.Destination `json:"dest"`
}

// DestEdit is a destination whose attributes changed; Fields names them
// (fwd, weight, upper_threshold, lower_threshold, tun_type, tun_port,
// tun_flags).
type DestEdit struct {
	Service ipvs.ServiceKey  `json:"service"`
	Old     ipvs.Destination `json:"old"`
	New     ipvs.Destination `json:"new"`
	Fields  []string         `json:"fields"`
}

// Diff computes the changes from old to new. Services are matched by key
// and destinations by address and port; a sorry server counts as a
// destination only where the health checker puts it, so it is not diffed.
func Diff(old, new []ServiceConfig) Changes {
	var ch Changes
	oldBy := map[ipvs.ServiceKey]*ServiceConfig{}
	for i := range old {
		oldBy[old[i].Service.ServiceKey] = &old[i]
	}
	newBy := map[ipvs.ServiceKey]*ServiceConfig{}
	for i := range new {
		newBy[new[i].Service.ServiceKey] = &new[i]
	}
	for i := range new {
		n := &new[i]
		k := n.Service.ServiceKey
		o, ok := oldBy[k]
		if !ok {
			ch.AddServices = append(ch.AddServices, n.Service)
			for _, d := range n.Dests {
				ch.AddDests = append(ch.AddDests, DestChange{Service: k, Dest: d})
			}
			continue
		}
		if f := serviceFields(o.Service, n.Service); len(f) > 0 {
			ch.EditServices = append(ch.EditServices, ServiceEdit{Old: o.Service, New: n.Service, Fields: f})
		}
		od := map[ipvs.DestKey]ipvs.Destination{}
		for _, d := range o.Dests {
			od[d.Key()] = d
		}
		nd := map[ipvs.DestKey]bool{}
		for _, d := range n.Dests {
			nd[d.Key()] = true
			prev, ok := od[d.Key()]
			if !ok {
				ch.AddDests = append(ch.AddDests, DestChange{Service: k, Dest: d})
				continue
			}
			if f := destFields(prev, d); len(f) > 0 {
				ch.EditDests = append(ch.EditDests, DestEdit{Service: k, Old: prev, New: d, Fields: f})
			}
		}
		for _, d := range o.Dests {
			if !nd[d.Key()] {
				ch.RemoveDests = append(ch.RemoveDests, DestChange{Service: k, Dest: d})
			}
		}
	}
	for i := range old {
		if _, ok := newBy[old[i].Service.ServiceKey]; !ok {
			ch.RemoveServices = append(ch.RemoveServices, old[i].Service)
		}
	}
	bySvc := func(a, b ipvs.Service) int { return cmpKey(a.ServiceKey, b.ServiceKey) }
	byDest := func(a, b DestChange) int {
		if c := cmpKey(a.Service, b.Service); c != 0 {
			return c
		}
		return cmpDest(a.Dest, b.Dest)
	}
	slices.SortFunc(ch.AddServices, bySvc)
	slices.SortFunc(ch.RemoveServices, bySvc)
	slices.SortFunc(ch.EditServices, func(a, b ServiceEdit) int { return bySvc(a.New, b.New) })
	slices.SortFunc(ch.AddDests, byDest)
	slices.SortFunc(ch.RemoveDests, byDest)
	slices.SortFunc(ch.EditDests, func(a, b DestEdit) int {
		return byDest(DestChange{a.Service, a.New}, DestChange{b.Service, b.New})
	})
	return ch
}

func serviceFields(a, b ipvs.Service) []string {
	var f []string
	add := func(c bool, name string) {
		if c {
			f = append(f, name)
		}
	}
	add(a.Scheduler != b.Scheduler, "scheduler")
	add(a.SchedFlags != b.SchedFlags, "sched_flags")
	add(a.Persistent != b.Persistent, "persistent")
	add(a.Timeout != b.Timeout, "timeout")
	add(a.Netmask != b.Netmask, "netmask")
	add(a.OnePacket != b.OnePacket, "one_packet")
	add(a.PE != b.PE, "pe")
	return f
}

func destFields(a, b ipvs.Destination) []string {
	var f []string
	add := func(c bool, name string) {
		if c {
			f = append(f, name)
		}
	}
	add(a.Fwd != b.Fwd, "fwd")
	add(a.Weight != b.Weight, "weight")
	add(a.Upper != b.Upper, "upper_threshold")
	add(a.Lower != b.Lower, "lower_threshold")
	add(a.TunType != b.TunType, "tun_type")
	add(a.TunPort != b.TunPort, "tun_port")
	add(a.TunFlags != b.TunFlags, "tun_flags")
	add(a.ProxyProtocol != b.ProxyProtocol, "proxy_protocol")
	return f
}
