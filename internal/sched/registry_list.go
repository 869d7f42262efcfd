package sched

import "github.com/govs/govs/internal/ipvs"

// listSchedulers are the schedulers that walk the destination list in the
// kernel's order and keep at most a cursor into it.
var listSchedulers = map[string]New{
	"rr":   newRR,
	"wrr":  newWRR,
	"lc":   newLC,
	"wlc":  newWLC,
	"sed":  newSED,
	"nq":   newNQ,
	"fo":   newFO,
	"ovf":  newOVF,
	"twos": newTwos,
}

// listNoHooks is embedded by the list schedulers that, like their kernel
// counterparts, register no add_dest, del_dest or upd_dest hook: they
// read the whole list at every decision and keep nothing between them.
type listNoHooks struct{}

func (listNoHooks) AddDest([]*ipvs.Dest, *ipvs.Dest)      {}
func (listNoHooks) DelDest([]*ipvs.Dest, *ipvs.Dest, int) {}
func (listNoHooks) UpdDest([]*ipvs.Dest, *ipvs.Dest)      {}

// listConnOverhead is the kernel's ip_vs_dest_conn_overhead: an active
// connection is reckoned to cost 256 times an inactive one. It is computed
// in 64 bits, so that, unlike the kernel's int, it cannot wrap.
func listConnOverhead(d *ipvs.Dest) int64 {
	return int64(d.ActiveConns)<<8 + int64(d.InactConns)
}
