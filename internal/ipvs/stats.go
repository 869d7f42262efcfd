package ipvs

// Counters are the traffic counters of a service or destination, the
// kernel's struct ip_vs_kstats: connections scheduled, packets and bytes in
// (client to server) and out (server to client).
type Counters struct {
	Conns    uint64 `json:"conns"`
	InPkts   uint64 `json:"inpkts"`
	OutPkts  uint64 `json:"outpkts"`
	InBytes  uint64 `json:"inbytes"`
	OutBytes uint64 `json:"outbytes"`
}

// Add adds o to c.
func (c *Counters) Add(o Counters) {
	c.Conns += o.Conns
	c.InPkts += o.InPkts
	c.OutPkts += o.OutPkts
	c.InBytes += o.InBytes
	c.OutBytes += o.OutBytes
}

// Rates are estimated per-second rates of a service or destination, as the
// kernel's estimator (ip_vs_est.c) reports them: connections, packets and
// bytes per second.
type Rates struct {
	CPS    uint64 `json:"cps"`
	InPPS  uint64 `json:"inpps"`
	OutPPS uint64 `json:"outpps"`
	InBPS  uint64 `json:"inbps"`
	OutBPS uint64 `json:"outbps"`
}

// DestState is a snapshot of one destination: configuration, connection
// counts, traffic counters and rates. It is what listings print.
type DestState struct {
	Destination
	ActiveConns  uint32   `json:"active_conns"`
	InactConns   uint32   `json:"inact_conns"`
	PersistConns uint32   `json:"persist_conns"`
	Overloaded   bool     `json:"overloaded,omitempty"`
	Stats        Counters `json:"stats"`
	Rates        Rates    `json:"rates"`
}

// ServiceState is a snapshot of one virtual service and its destinations,
// destinations in the kernel's list order (newest first).
type ServiceState struct {
	Service
	Dests []DestState `json:"dests"`
	Stats Counters    `json:"stats"`
	Rates Rates       `json:"rates"`
}
