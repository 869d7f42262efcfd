package sched

// registry maps a scheduler name to its constructor. It is built once from
// the two families' tables and never changed.
var registry = merge(listSchedulers, hashSchedulers)

// listSchedulers are the schedulers that walk the destination list:
// rr, wrr, lc, wlc, sed, nq, fo, ovf, twos. (registry_list.go)
// hashSchedulers are the schedulers that hash the flow or keep per-address
// state: dh, sh, mh, lblc, lblcr. (registry_hash.go)

func merge(tables ...map[string]New) map[string]New {
	m := make(map[string]New)
	for _, t := range tables {
		for k, v := range t {
			m[k] = v
		}
	}
	return m
}
