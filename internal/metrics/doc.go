// Package metrics exports a director's live state to Prometheus: per
// virtual service and per destination, the traffic counters (connections,
// packets, bytes in and out), the estimated rates, the connection counts,
// the weight, and whether the data plane is healthy.
//
// A [Collector] reads the state on every scrape (nothing is cached, so a
// scrape shows exactly what ipvsadm -L --stats would), and [Handler] serves
// it with the Go runtime and process metrics.
//
// # Labels
//
// Services are labelled family, protocol, vip, port and fwmark: an address
// service has fwmark="", a firewall-mark service has protocol, vip and port
// "". Destinations add realserver, realserver_port and forward (masq,
// route, tunnel, local).
//
// # What it is not
//
// No metric here is computed: counters and rates are the data plane's,
// read as they are. Scrape-time cost grows with the number of
// destinations, not with traffic.
package metrics
