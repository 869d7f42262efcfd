// Package config reads keepalived.conf, the configuration LVS users already
// have, into a typed, defaulted and validated [Config], and converts its
// virtual servers into [ipvs.Service] and [ipvs.Destination] values.
//
// # What it reads
//
// The grammar is keepalived's (lib/parser.c): blocks in braces, comments
// from '#' or '!' outside double quotes, double-quoted words, "@id" and
// "@^id" conditional lines (see [WithConfigID]), "$NAME=VALUE" parameters
// with multiline values ending in '\', "${NAME}" substitution (and _PWD,
// _INSTANCE, _HASH, _BANG), and include/includer/includem/includew/
// includeb/includea with globs resolved relative to the including file.
//
// The blocks: global_defs, static_ipaddress, static_routes, track_file,
// SSL, virtual_server_group, virtual_server (by "IP [PORT]", "fwmark N" or
// "group NAME") with real_server and every checker (TCP_CHECK, HTTP_GET,
// SSL_GET, SMTP_CHECK, DNS_CHECK, MISC_CHECK, UDP_CHECK, PING_CHECK,
// FILE_CHECK), vrrp_script, vrrp_sync_group and vrrp_instance. README.md
// lists the keywords.
//
// # Defaults
//
// Defaults are keepalived's (keepalived.conf(5), check_data.c and the
// checkers' parsers): delay_loop 60 s, connect_timeout 5 s, retry 1 (DNS_CHECK
// 3, MISC_CHECK 0), delay_before_retry 1 s (HTTP_GET/SSL_GET 3 s, DNS_CHECK
// delay_loop), warmup delay_loop, weight 1, quorum 1, hysteresis 0,
// lvs_sched wlc, lvs_method NAT, persistence_timeout without a value 360 s,
// status_code 200-299, DNS type SOA name ".", misc_timeout delay_loop,
// vrrp_script interval 1 s / timeout interval / rise 1 / fall 1 / weight 0,
// vrrp_instance state BACKUP / priority 100 / advert_int 1 s / preempt /
// version vrrp_version (2; 3 for IPv6), garp master delay 5 s repeat 5,
// lvs_sync_daemon port 8848 group 224.0.0.81 syncid the instance's VRID.
// Timers given on a virtual server are the default for its real servers,
// and a real server's are the default for its checkers. In a virtual or
// real server's [Timing], -1 means "not set: the checker default applies";
// a checker's Timing is always fully resolved.
//
// keepalived's corrections are applied and reported as a [Warning]: a
// missing protocol becomes UDP, a non-NAT real server with another port
// takes the virtual server's, quorum above the total weight is lowered,
// duplicate real servers are dropped, and so on.
//
// # Errors and warnings
//
// Real errors ("file:line: what is wrong and what to do") are collected,
// all of them, and returned joined; each wraps [ErrInvalid]. Unknown
// keywords and keywords govs does not implement are warnings, never errors,
// as in keepalived. [Check] is `govsd -t`.
//
// # Differences from keepalived
//
//   - A virtual_server inside a vrrp_instance (a frequent copy-paste from
//     tutorials) is read as a top-level one, with a warning; keepalived
//     skips it.
//   - An unknown keyword with a block skips the whole block; keepalived
//     reads its contents at the current level.
//   - A virtual_server naming a group that does not exist is an error,
//     not a skipped server.
//   - ~SEQ and ~LST lines, ${_RANDOM} and ${_ENV} are not supported (~SEQ
//     and ~LST are errors); glob brace expansion is not supported.
//   - A trailing '\' outside a $NAME= definition is dropped with a warning.
//   - proxy_protocol 1|2 in a real_server is govs's own keyword (the
//     destination's [ipvs.Destination].ProxyProtocol); keepalived warns
//     that it is unknown and ignores it. See README.md.
//
// # What it is not
//
// It runs nothing: health checks, VRRP and the sync daemon consume the
// typed values. Reload support is [Diff], which lists what to add, edit
// and remove between two sets of [ServiceConfig].
package config
