// Package ipvsadm is govs's ipvsadm: it parses ipvsadm's command line,
// runs the command against an [api.Director] and prints what ipvsadm
// prints, byte for byte, with ipvsadm's messages and exit codes.
//
// The specification is ipvsadm 1.31's source (ipvsadm.c, libipvs,
// config_stream.c) and its man page: the popt option table and its
// parsing rules (clustered short options, optional -p argument, leftover
// arguments), the commands-versus-options table, the printf formats of
// every listing, print_largenum's K/M/G/T rule, libipvs's sort order and
// ipvs_strerror's messages.
//
// # Parts
//
//   - [Parser] turns argv into a [Command], or an [*ExitError] with
//     ipvsadm's text for stderr and its exit code (2 for ipvsadm's own
//     checks, 255 for popt's errors and "Try ... -h").
//   - [Runner] executes a Command against a Director; -R sends its table
//     commands in batches ([api.Director.Apply], [DefaultBatchSize] a
//     request) and, where the director stops a batch at a refused
//     command, prints that command's message and goes on from the next,
//     so the table, the messages and the exit code are those of one
//     request per line. [Strerror] maps
//     govs's sentinel errors (ipvs.ErrNoService, ...) to libipvs's
//     messages, which depend on the command.
//   - [Lister] prints listings: -L with -n, --stats, --rate, --exact,
//     --thresholds, --persistent-conn, --tun-info, --nosort, -c, --timeout,
//     --daemon, and -S's rules that -R reads back.
//   - [Main] ties them together for cmd/govsadm. Under the name ipvsadm
//     it is exactly ipvsadm (the command is the first option, as ipvsadm
//     1.31's parse_options takes it); under another name it also takes
//     --json (listings as JSON) and --socket, before the command or after
//     it, and --proxy-protocol 1|2 for -a and
//     -e (the destination's [ipvs.Destination].ProxyProtocol, a govs
//     extension). -S prints --proxy-protocol on the destinations that
//     have it, and only on those, so govsadm -R restores it; such a line
//     is not ipvsadm's, and ipvsadm -R refuses it as an unknown option
//     rather than dropping the setting. The listings are ipvsadm's and do
//     not show it; --json does.
//   - [Resolver] is the name lookup (host and service names both ways);
//     tests inject a fake, the command uses [SystemResolver].
//
// # What it is not
//
// It holds no state and talks to no kernel: everything goes through the
// Director (govsd's API client in production; in tests apitest's fake,
// or the real director over a fake data plane). It does not validate services beyond ipvsadm's own checks; the
// director applies the kernel's rules and its errors come back as
// ipvs's sentinels.
package ipvsadm
