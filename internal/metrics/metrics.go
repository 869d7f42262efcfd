package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/ipvs"
)

// Source is what the collector reads: the director's services with their
// live state, its info (for the data plane's name) and the data plane's
// health.
type Source interface {
	Info(ctx context.Context) (api.Info, error)
	Services(ctx context.Context) ([]ipvs.ServiceState, error)
	// Health reports whether the data plane forwards; nil is healthy.
	Health() error
}

// scrapeTimeout bounds one read of the director's state.
const scrapeTimeout = 10 * time.Second

var (
	serviceLabels = []string{"family", "protocol", "vip", "port", "fwmark"}
	destLabels    = append(append([]string(nil), serviceLabels...), "realserver", "realserver_port", "forward")
)

// stat is one counter or rate, exported for services and destinations.
type stat struct {
	name, help string
	counter    bool
	get        func(c ipvs.Counters, r ipvs.Rates) uint64
}

var stats = []stat{
	{"connections_total", "Connections scheduled.", true, func(c ipvs.Counters, _ ipvs.Rates) uint64 { return c.Conns }},
	{"in_packets_total", "Packets from clients to realservers.", true, func(c ipvs.Counters, _ ipvs.Rates) uint64 { return c.InPkts }},
	{"out_packets_total", "Packets from realservers to clients (NAT only: DR and TUN replies bypass the director).", true, func(c ipvs.Counters, _ ipvs.Rates) uint64 { return c.OutPkts }},
	{"in_bytes_total", "Bytes from clients to realservers.", true, func(c ipvs.Counters, _ ipvs.Rates) uint64 { return c.InBytes }},
	{"out_bytes_total", "Bytes from realservers to clients (NAT only).", true, func(c ipvs.Counters, _ ipvs.Rates) uint64 { return c.OutBytes }},
	{"connections_per_second", "Estimated new connections per second (ipvsadm CPS).", false, func(_ ipvs.Counters, r ipvs.Rates) uint64 { return r.CPS }},
	{"in_packets_per_second", "Estimated incoming packets per second (ipvsadm InPPS).", false, func(_ ipvs.Counters, r ipvs.Rates) uint64 { return r.InPPS }},
	{"out_packets_per_second", "Estimated outgoing packets per second (ipvsadm OutPPS).", false, func(_ ipvs.Counters, r ipvs.Rates) uint64 { return r.OutPPS }},
	{"in_bytes_per_second", "Estimated incoming bytes per second (ipvsadm InBPS).", false, func(_ ipvs.Counters, r ipvs.Rates) uint64 { return r.InBPS }},
	{"out_bytes_per_second", "Estimated outgoing bytes per second (ipvsadm OutBPS).", false, func(_ ipvs.Counters, r ipvs.Rates) uint64 { return r.OutBPS }},
}

// Collector is a prometheus.Collector over a [Source].
type Collector struct {
	src Source
	log *slog.Logger

	up                                 *prometheus.Desc
	svcStats, destStats                []*prometheus.Desc
	svcInfo, svcDests                  *prometheus.Desc
	svcActive, svcInact, svcPersist    *prometheus.Desc
	destActive, destInact, destPersist *prometheus.Desc
	destWeight, destOverloaded         *prometheus.Desc

	health                                  api.HealthReader
	rsUp, rsChecks, rsFailures, rsWeight    *prometheus.Desc
	rsLast, rsDraining, svcQuorum, svcSorry *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector that reads src on every scrape.
func NewCollector(src Source, log *slog.Logger, opts ...Option) *Collector {
	svc := func(name, help string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc("govs_service_"+name, help, append(append([]string(nil), serviceLabels...), extra...), nil)
	}
	dest := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("govs_destination_"+name, help, destLabels, nil)
	}
	c := &Collector{
		src: src,
		log: log,
		up: prometheus.NewDesc("govs_dataplane_up",
			"Whether the data plane forwards (1) or reports a failure (0).", []string{"dataplane"}, nil),
		svcInfo:     svc("info", "A virtual service, with its scheduler; always 1.", "scheduler"),
		svcDests:    svc("destinations", "Destinations of the service."),
		svcActive:   svc("active_connections", "Connections in an active state (TCP ESTABLISHED), over all destinations."),
		svcInact:    svc("inactive_connections", "Connections in any other state, over all destinations."),
		svcPersist:  svc("persistent_connections", "Persistence templates, over all destinations."),
		destActive:  dest("active_connections", "Connections in an active state (TCP ESTABLISHED): ipvsadm ActiveConn."),
		destInact:   dest("inactive_connections", "Connections in any other state: ipvsadm InActConn."),
		destPersist: dest("persistent_connections", "Persistence templates pointing at the destination: ipvsadm PersistConn."),
		destWeight:  dest("weight", "The destination's weight; 0 is quiescent (no new connections)."),
		destOverloaded: dest("overloaded",
			"Whether the destination reached its upper connection threshold and takes no new connections (1)."),
	}
	for _, s := range stats {
		c.svcStats = append(c.svcStats, svc(s.name, s.help))
		c.destStats = append(c.destStats, dest(s.name, s.help))
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.svcInfo, c.svcDests, c.svcActive, c.svcInact, c.svcPersist,
		c.destActive, c.destInact, c.destPersist, c.destWeight, c.destOverloaded} {
		ch <- d
	}
	for i := range stats {
		ch <- c.svcStats[i]
		ch <- c.destStats[i]
	}
	for _, d := range c.healthDescs() {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()

	name := "unknown"
	if info, err := c.src.Info(ctx); err == nil {
		name = info.Dataplane
	} else {
		c.log.Warn("metrics: read director info", "err", err)
	}
	up := 1.0
	if err := c.src.Health(); err != nil {
		up = 0
		c.log.Warn("metrics: data plane unhealthy", "dataplane", name, "err", err)
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, name)
	c.collectHealth(ctx, ch)

	svcs, err := c.src.Services(ctx)
	if err != nil {
		// An invalid metric fails this part of the scrape visibly instead
		// of exporting an empty table that looks like "no services".
		ch <- prometheus.NewInvalidMetric(c.svcInfo, fmt.Errorf("read services: %w", err))
		return
	}
	for _, s := range svcs {
		c.collectService(ch, s)
	}
}

func (c *Collector) collectService(ch chan<- prometheus.Metric, s ipvs.ServiceState) {
	sl := serviceLabelValues(s.ServiceKey)
	gauge := func(d *prometheus.Desc, v float64, labels []string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.svcInfo, 1, append(append([]string(nil), sl...), s.Scheduler))
	gauge(c.svcDests, float64(len(s.Dests)), sl)
	for i, st := range stats {
		c.stat(ch, c.svcStats[i], st, s.Stats, s.Rates, sl)
	}
	var active, inact, persist uint64
	for _, d := range s.Dests {
		active += uint64(d.ActiveConns)
		inact += uint64(d.InactConns)
		persist += uint64(d.PersistConns)

		dl := append(append(make([]string, 0, len(destLabels)), sl...),
			d.Addr.String(), strconv.Itoa(int(d.Port)), fwdLabel(d.Fwd))
		for i, st := range stats {
			c.stat(ch, c.destStats[i], st, d.Stats, d.Rates, dl)
		}
		gauge(c.destActive, float64(d.ActiveConns), dl)
		gauge(c.destInact, float64(d.InactConns), dl)
		gauge(c.destPersist, float64(d.PersistConns), dl)
		gauge(c.destWeight, float64(d.Weight), dl)
		overloaded := 0.0
		if d.Overloaded {
			overloaded = 1
		}
		gauge(c.destOverloaded, overloaded, dl)
	}
	gauge(c.svcActive, float64(active), sl)
	gauge(c.svcInact, float64(inact), sl)
	gauge(c.svcPersist, float64(persist), sl)
}

func (c *Collector) stat(ch chan<- prometheus.Metric, d *prometheus.Desc, st stat, cnt ipvs.Counters, r ipvs.Rates, labels []string) {
	vt := prometheus.GaugeValue
	if st.counter {
		vt = prometheus.CounterValue
	}
	ch <- prometheus.MustNewConstMetric(d, vt, float64(st.get(cnt, r)), labels...)
}

// serviceLabelValues returns the values of serviceLabels for k.
func serviceLabelValues(k ipvs.ServiceKey) []string {
	if k.IsFWMark() {
		return []string{k.Family.String(), "", "", "", strconv.FormatUint(uint64(k.FWMark), 10)}
	}
	proto, _ := k.Protocol.MarshalText()
	return []string{k.Family.String(), string(proto), k.Addr.String(), strconv.Itoa(int(k.Port)), ""}
}

func fwdLabel(m ipvs.FwdMethod) string {
	b, _ := m.MarshalText()
	return string(b)
}

// Handler returns the /metrics handler: c plus the Go runtime and process
// collectors, in a registry of its own. A scrape whose service read fails
// still serves the rest, and the failure is logged.
func Handler(c *Collector, log *slog.Logger) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	for _, col := range []prometheus.Collector{
		c,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("register metrics collector: %w", err)
		}
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      errorLog{log},
		ErrorHandling: promhttp.ContinueOnError,
	}), nil
}

// errorLog adapts slog to promhttp's logger.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) { l.log.Error("metrics: " + fmt.Sprint(v...)) }
