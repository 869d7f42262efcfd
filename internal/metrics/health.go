package metrics

import (
	"context"
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/govs/govs/internal/api"
)

// Option configures a Collector.
type Option func(*Collector)

// WithHealth adds the health checks' state, read from h on every scrape:
// govs_realserver_up, govs_realserver_checks_total,
// govs_realserver_check_failures_total, govs_realserver_health_weight,
// govs_realserver_last_check_timestamp_seconds, govs_realserver_draining,
// govs_service_quorum_up and govs_service_sorry_active.
func WithHealth(h api.HealthReader) Option {
	return func(c *Collector) {
		c.health = h
		rs := append(append([]string(nil), serviceLabels...), "realserver", "realserver_port")
		svc := serviceLabels
		c.rsUp = prometheus.NewDesc("govs_realserver_up",
			"Whether the realserver passes its health checks (1) or not (0); a sorry server is 1 while it serves.", rs, nil)
		c.rsChecks = prometheus.NewDesc("govs_realserver_checks_total",
			"Health checks run against the realserver (reset when a reload restarts its checkers).", rs, nil)
		c.rsFailures = prometheus.NewDesc("govs_realserver_check_failures_total",
			"Health checks of the realserver that failed (reset when a reload restarts its checkers).", rs, nil)
		c.rsWeight = prometheus.NewDesc("govs_realserver_health_weight",
			"The weight the health checks give the realserver (configured, or a dynamic checker's).", rs, nil)
		c.rsLast = prometheus.NewDesc("govs_realserver_last_check_timestamp_seconds",
			"When the realserver was last checked, Unix time.", rs, nil)
		c.rsDraining = prometheus.NewDesc("govs_realserver_draining",
			"Whether the realserver was removed by a reload and waits for its connections to end (1).", rs, nil)
		c.svcQuorum = prometheus.NewDesc("govs_service_quorum_up",
			"Whether the service has its quorum of live realserver weight (1).", svc, nil)
		c.svcSorry = prometheus.NewDesc("govs_service_sorry_active",
			"Whether the sorry server serves the service (1).", svc, nil)
	}
}

func (c *Collector) healthDescs() []*prometheus.Desc {
	if c.health == nil {
		return nil
	}
	return []*prometheus.Desc{c.rsUp, c.rsChecks, c.rsFailures, c.rsWeight, c.rsLast, c.rsDraining, c.svcQuorum, c.svcSorry}
}

func (c *Collector) collectHealth(ctx context.Context, ch chan<- prometheus.Metric) {
	if c.health == nil {
		return
	}
	hs, err := c.health.HealthStatus(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.rsUp, fmt.Errorf("read health status: %w", err))
		return
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, s := range hs.Services {
		sl := serviceLabelValues(s.Service)
		if !s.Draining {
			ch <- prometheus.MustNewConstMetric(c.svcQuorum, prometheus.GaugeValue, b(s.QuorumUp), sl...)
			ch <- prometheus.MustNewConstMetric(c.svcSorry, prometheus.GaugeValue, b(s.SorryActive), sl...)
		}
		seen := map[string]bool{}
		for _, r := range s.RealServers {
			l := append(append([]string(nil), sl...), r.Addr.String(), strconv.Itoa(int(r.Port)))
			id := r.Addr.String() + "|" + strconv.Itoa(int(r.Port))
			if seen[id] {
				continue // a sorry server that is also a realserver
			}
			seen[id] = true
			ch <- prometheus.MustNewConstMetric(c.rsDraining, prometheus.GaugeValue, b(r.State == api.StateDraining), l...)
			if r.State == api.StateDraining {
				continue
			}
			ch <- prometheus.MustNewConstMetric(c.rsUp, prometheus.GaugeValue, b(r.Up), l...)
			ch <- prometheus.MustNewConstMetric(c.rsChecks, prometheus.CounterValue, float64(r.Checks), l...)
			ch <- prometheus.MustNewConstMetric(c.rsFailures, prometheus.CounterValue, float64(r.Failures), l...)
			ch <- prometheus.MustNewConstMetric(c.rsWeight, prometheus.GaugeValue, float64(r.Weight), l...)
			if !r.LastCheck.IsZero() {
				ch <- prometheus.MustNewConstMetric(c.rsLast, prometheus.GaugeValue, float64(r.LastCheck.UnixNano())/1e9, l...)
			}
		}
	}
}
