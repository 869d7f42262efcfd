// # Routes
//
// All bodies are JSON; the types are those of packages ipvs, conn and this
// one, with their JSON field names. Durations (conn.Timeouts, conn.Info's
// expires) are integer nanoseconds, as Go's time.Duration encodes.
//
//	GET    /v1/info                        Info
//	GET    /v1/services                    []ipvs.ServiceState
//	POST   /v1/services                    add ipvs.Service (201)
//	DELETE /v1/services                    flush: remove every service
//	GET    /v1/services/{key}              ipvs.ServiceState
//	PUT    /v1/services/{key}              edit: ipvs.Service
//	DELETE /v1/services/{key}              delete the service
//	POST   /v1/services/{key}/zero         zero its counters
//	POST   /v1/services/{key}/dests        add ipvs.Destination (201)
//	PUT    /v1/services/{key}/dests/{dest} edit: ipvs.Destination
//	DELETE /v1/services/{key}/dests/{dest} delete the destination
//	POST   /v1/batch                       apply []Op in order: BatchResult
//	POST   /v1/zero                        zero every counter
//	GET    /v1/timeouts                    conn.Timeouts
//	PUT    /v1/timeouts                    set the non-zero conn.Timeouts
//	GET    /v1/conns                       []conn.Info
//	GET    /v1/daemons                     []SyncDaemon
//	POST   /v1/daemons                     start a SyncDaemon (201)
//	DELETE /v1/daemons/{state}             stop the master or backup daemon
//	GET    /v1/health                      HealthStatus (govsd -f; empty without)
//	POST   /v1/reload                      re-read -f and apply the difference: ReloadResult
//
// Changes answer 204 No Content (201 Created for additions) with no body.
// A batch ([Director.Apply]) applies its ops in order and stops at the
// first that fails, answering that op's error with its index (op_index);
// the ops before it stay applied. govsadm -R sends its table commands in
// batches of 1,000.
//
// # Keys in paths
//
// {key} is a service key as [FormatServiceKey] writes it, each
// "/"-separated segment URL-escaped: tcp/10.0.0.1:80,
// udp/%5B2001:db8::1%5D:53 (that is, udp/[2001:db8::1]:53), sctp/10.0.0.1:9000,
// fwmark/7/ipv4, fwmark/7/ipv6. {dest} is "10.0.0.2:80" or
// "[2001:db8::2]:80", escaped the same way. A body of PUT names the same
// service or destination as its path, or leaves the key out.
// In request bodies the family of an address service may be left out: it
// is the address's.
//
// # Errors
//
// Every error answers {"code": "...", "message": "..."}. The codes and
// their statuses: service_exists 409, no_service 404, dest_exists 409,
// no_dest 404, no_scheduler 422, daemon_running 409, no_daemon 404,
// unsupported 501 (the data plane cannot do it), invalid 400 (validation
// or a malformed request), not_found 404 and method_not_allowed 405 (no
// such route), internal 500. [Client] turns them back into errors that
// unwrap to ipvs.ErrNoService and the others, and a socket nobody answers
// on into an error wrapping [ErrUnreachable].
//
// # What it is not
//
// The API has no authentication of its own: who may connect is decided by
// the socket's file mode ([SocketMode]) and directory. It holds no state:
// everything is the [Director]'s.
package api
