package ipvs

// Dest is a destination as the schedulers and the connection table see it:
// its configuration and its live state (the kernel's struct ip_vs_dest).
//
// A Dest is owned by one service of an engine and is read and written only
// under that engine's lock, so its fields are plain values.
type Dest struct {
	Destination

	// ActiveConns counts connections in an active state (TCP ESTABLISHED),
	// InactConns every other connection, PersistConns the persistence
	// templates that point at this destination (ipvsadm's ActiveConn,
	// InActConn and PersistConn columns).
	ActiveConns  int32
	InactConns   int32
	PersistConns int32

	// Available is false once the destination was removed from its service
	// (it may linger, like the kernel's trash, while connections use it).
	Available bool
	// Overloaded is IP_VS_DEST_F_OVERLOAD: set when the connections reach
	// the upper threshold, cleared below the lower one (see UpdateOverload).
	Overloaded bool

	// Stats are this destination's traffic counters.
	Stats Counters

	// LastWeight is the weight before the destination was last set to 0
	// (the kernel's last_weight, kept for sync and for health checks that
	// restore a weight).
	LastWeight int32
}

// NewDest returns a live destination for d, available and with no
// connections.
func NewDest(d Destination) *Dest {
	return &Dest{Destination: d, Available: true, LastWeight: d.Weight}
}

// TotalConns is what the thresholds count: active plus inactive
// connections (the kernel's ip_vs_dest_totalconns; templates do not count).
func (d *Dest) TotalConns() int32 { return d.ActiveConns + d.InactConns }

// Bind accounts a new connection or template bound to d, as the kernel's
// ip_vs_bind_dest does: templates count in PersistConns, connections in
// InactConns or ActiveConns by their initial state; then the overload flag
// is set if the upper threshold is reached.
func (d *Dest) Bind(template, active bool) {
	switch {
	case template:
		d.PersistConns++
	case active:
		d.ActiveConns++
	default:
		d.InactConns++
	}
	if d.Upper != 0 && uint32(d.TotalConns()) >= d.Upper {
		d.Overloaded = true
	}
}

// Unbind reverses Bind when a connection or template expires, then
// clears the overload flag by the kernel's rule (ip_vs_unbind_dest).
func (d *Dest) Unbind(template, active bool) {
	switch {
	case template:
		d.PersistConns--
	case active:
		d.ActiveConns--
	default:
		d.InactConns--
	}
	if d.Overloaded {
		d.clearOverload()
	}
}

// SetActive moves one connection between InactConns and ActiveConns, as
// the protocol state machines do on a state change that crosses between
// active and inactive states.
func (d *Dest) SetActive(active bool) {
	if active {
		d.InactConns--
		d.ActiveConns++
	} else {
		d.ActiveConns--
		d.InactConns++
	}
}

// UpdateOverload recomputes the overload flag after the thresholds were
// edited: set at or above the upper threshold, cleared by the unbind rule.
func (d *Dest) UpdateOverload() {
	if d.Upper != 0 && uint32(d.TotalConns()) >= d.Upper {
		d.Overloaded = true
		return
	}
	d.clearOverload()
}

// clearOverload is the kernel's rule for leaving overload: below the lower
// threshold if one is set; else below 3/4 of the upper threshold; else
// (no thresholds) at once.
func (d *Dest) clearOverload() {
	conns := uint64(d.TotalConns())
	switch {
	case d.Lower != 0:
		if conns < uint64(d.Lower) {
			d.Overloaded = false
		}
	case d.Upper != 0:
		if conns*4 < uint64(d.Upper)*3 {
			d.Overloaded = false
		}
	default:
		d.Overloaded = false
	}
}
