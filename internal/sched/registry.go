package sched

// registry maps a scheduler name to its constructor. It is filled here,
// statically, and never changed.
var registry = map[string]New{
	// Each scheduler file adds its entry here: "rr": newRR, ...
}
