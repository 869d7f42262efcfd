// Package keepalived runs a keepalived.conf against govs' director: it is
// the glue between package config (the file), package healthcheck (the
// checkers, their Runner and keepalived's ipwrapper Policy) and the
// director (the table).
//
// # What it does
//
// [Load] is `govsd -t`: config.Load, the conversion to IPVS services, and
// every checker resolved ([PlanCheckers]: connect_ip and connect_port
// default to the realserver's, the track_file's path and weight for
// FILE_CHECK, the SSL block as a *tls.Config; with govs's check_via_vip,
// the TCP-based checks of DR and TUN realservers become or gain a
// healthcheck.Path check of the VIP's forwarding path). A [Manager] then
//
//   - creates the virtual services (groups expanded);
//   - runs one healthcheck.Runner per real_server block (one for all the
//     services of a virtual_server_group) and one healthcheck.Policy per
//     virtual service; the runners' events go to the policies on the
//     manager's single goroutine, which applies their actions to the
//     director idempotently (an add of a present destination is an edit,
//     an edit to the same values is skipped);
//   - reloads ([Manager.Reload], [Manager.Apply]): config.Diff between the
//     running and the new configuration; a runner whose checker
//     configuration did not change keeps running (a weight-only edit goes
//     to it with Runner.SetWeight); a policy whose inputs did not change
//     is kept and its destinations untouched; other policies are rebuilt
//     from the runners' current states; removed realservers and services
//     are drained: weight 0 until ActiveConn+InActConn is 0 or the drain
//     timeout passes, then deleted;
//   - reports [Manager.HealthStatus] (api.HealthReader) for the API,
//     govsadm --json and the metrics.
//
// A configuration with errors is refused whole, before anything changes.
//
// # What it is not
//
// It does not parse (package config), check (package healthcheck) or
// forward (the data plane). It does not run VRRP, the sync daemon, or
// static addresses and routes: cmd/govsd says so in its log.
package keepalived
