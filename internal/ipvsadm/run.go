package ipvsadm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/ipvs"
)

// Env is what [Main] needs from the outside world.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads the environment (GOVS_SOCKET); nil reads nothing.
	Getenv func(string) string
	// Dial returns a Director for govsd's socket; it need not connect
	// yet: Main asks Info first and reports an unreachable govsd.
	Dial func(socket string) api.Director
	// Resolver resolves names; nil resolves nothing.
	Resolver Resolver
}

// Exit codes.
const (
	exitOK       = 0
	exitList     = 1   // ipvsadm's exit(1) when a listing fails
	exitUsage    = 2   // ipvsadm's fail(2, ...)
	exitKernel   = 255 // ipvsadm returns -1 when the kernel refuses
	unreachHint  = "Start it with: govsd (or set " + api.SocketEnv + ")"
	govsadmLabel = "govsadm"
)

// Main runs one ipvsadm command line (argv[0] included) and returns the
// process's exit code. Under the name ipvsadm it is exactly ipvsadm;
// under any other name it also accepts govsadm's --json and --socket.
func Main(ctx context.Context, argv []string, env Env) int {
	prog := "ipvsadm"
	if len(argv) > 0 {
		prog = argv[0]
	}
	p := &Parser{Prog: prog, Compat: filepath.Base(prog) == "ipvsadm", Resolver: env.Resolver}
	out := bufio.NewWriter(env.Stdout)
	defer out.Flush()

	cmd := &Command{Cmd: CmdList}
	if len(argv) > 1 {
		c, err := p.Parse(ctx, argv[1:])
		if err != nil {
			return reportParse(env.Stderr, err)
		}
		cmd = c
	}
	switch cmd.Cmd {
	case CmdHelp:
		writeUsage(out, prog, !p.Compat)
		return exitOK
	case CmdVersion:
		writeVersion(out)
		return exitOK
	}

	socket := cmd.Socket
	if socket == "" && env.Getenv != nil {
		socket = env.Getenv(api.SocketEnv)
	}
	if socket == "" {
		socket = api.DefaultSocket
	}
	d := env.Dial(socket)
	info, err := d.Info(ctx)
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: cannot reach govsd at %s: %v\n%s\n", govsadmLabel, socket, unreachableCause(err), unreachHint)
		return exitUsage
	}
	r := &Runner{D: d, Info: info, Parser: p, Stdin: env.Stdin, Stdout: out, Stderr: env.Stderr}
	code, _ := r.run(ctx, cmd, false)
	return code
}

func reportParse(stderr io.Writer, err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		io.WriteString(stderr, ee.Msg)
		return ee.Code
	}
	fmt.Fprintln(stderr, err)
	return exitUsage
}

// unreachableCause digs the dial error out of the client's "unreachable"
// error, so the message names the cause once.
func unreachableCause(err error) error {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if u, ok := e.(interface {
			Is(error) bool
			Unwrap() error
		}); ok && u.Is(api.ErrUnreachable) && u.Unwrap() != nil {
			return u.Unwrap()
		}
	}
	return err
}

// Runner executes parsed commands against a Director and prints what
// ipvsadm prints.
type Runner struct {
	D      api.Director
	Info   api.Info
	Parser *Parser
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// BatchSize is how many of -R's table commands go to D in one Apply;
	// 0 is [DefaultBatchSize].
	BatchSize int
}

// Run executes cmd and returns ipvsadm's exit code.
func (r *Runner) Run(ctx context.Context, cmd *Command) int {
	code, _ := r.run(ctx, cmd, false)
	if f, ok := r.Stdout.(interface{ Flush() error }); ok {
		f.Flush()
	}
	return code
}

// run returns the exit code, and stop when ipvsadm would exit() there (so
// that -R stops reading).
func (r *Runner) run(ctx context.Context, cmd *Command, readingStdin bool) (int, bool) {
	l := &Lister{W: r.Stdout, Resolver: r.Parser.resolver(), Format: cmd.Format}
	var err error
	switch cmd.Cmd {
	case CmdHelp:
		writeUsage(r.Stdout, r.Parser.Prog, !r.Parser.Compat)
		return exitOK, true
	case CmdVersion:
		writeVersion(r.Stdout)
		return exitOK, true
	case CmdList:
		return r.list(ctx, l, cmd)
	case CmdSave:
		l.Format |= FmtRule
		svcs, err := r.D.Services(ctx)
		if err != nil {
			return r.listFailed(CmdList, err)
		}
		l.All(ctx, r.Info, svcs)
		return exitOK, false
	case CmdRestore:
		if readingStdin {
			return reportParse(r.Stderr, r.Parser.tryHelp()), true
		}
		return r.restore(ctx)
	case CmdFlush, CmdAdd, CmdEdit, CmdDel, CmdZero, CmdAddDest, CmdEditDest, CmdDelDest,
		CmdTimeout, CmdStartDaemon, CmdStopDaemon:
		err = apply(ctx, r.D, cmd)
	default:
		return reportParse(r.Stderr, r.Parser.tryHelp()), true
	}
	if err != nil {
		r.report(cmd.Cmd, err)
		return exitKernel, false
	}
	return exitOK, false
}

// report prints ipvsadm's message for a refused command; govsadm adds the
// director's own explanation where ipvsadm's says little.
func (r *Runner) report(cmd Cmd, err error) {
	msg, generic := Strerror(cmd, err)
	fmt.Fprintln(r.Stderr, msg)
	if generic && !r.Parser.Compat && msg != err.Error() {
		fmt.Fprintf(r.Stderr, "%s: %v\n", govsadmLabel, err)
	}
}

func (r *Runner) listFailed(cmd Cmd, err error) (int, bool) {
	r.report(cmd, err)
	return exitList, true
}

func (r *Runner) list(ctx context.Context, l *Lister, cmd *Command) (int, bool) {
	o := cmd.Opts
	switch {
	case o.Has(OptConnection):
		cs, err := r.D.Conns(ctx)
		if err != nil {
			return r.listFailed(CmdNone, err)
		}
		if cmd.JSON {
			return r.json(cs)
		}
		l.Conns(ctx, cs)
	case o.Has(OptService):
		s, err := r.D.Service(ctx, cmd.Service.ServiceKey)
		if err != nil {
			return r.listFailed(CmdList, err)
		}
		sortDests(&s, cmd.Format)
		if cmd.JSON {
			return r.json(r.withHealth(ctx, []ipvs.ServiceState{s})[0])
		}
		l.One(ctx, &s)
	case o.Has(OptTimeout):
		t, err := r.D.Timeouts(ctx)
		if err != nil {
			return r.listFailed(CmdNone, err)
		}
		if cmd.JSON {
			return r.json(t)
		}
		l.Timeouts(t)
	case o.Has(OptDaemon):
		ds, err := r.D.Daemons(ctx)
		if err != nil {
			return r.listFailed(CmdNone, err)
		}
		if cmd.JSON {
			if ds == nil {
				ds = []api.SyncDaemon{}
			}
			return r.json(ds)
		}
		l.Daemons(ds)
	default:
		svcs, err := r.D.Services(ctx)
		if err != nil {
			return r.listFailed(CmdList, err)
		}
		if cmd.JSON {
			svcs = append([]ipvs.ServiceState(nil), svcs...)
			sortServices(svcs, cmd.Format)
			if svcs == nil {
				svcs = []ipvs.ServiceState{}
			}
			return r.json(Listing{Info: r.Info, Services: r.withHealth(ctx, svcs)})
		}
		l.All(ctx, r.Info, svcs)
	}
	return exitOK, false
}

// Listing is govsadm's -L --json output: the header's facts and every
// service with its destinations, counters and rates.
type Listing struct {
	Info     api.Info        `json:"info"`
	Services []ListedService `json:"services"`
}

// ListedService is a service in a JSON listing: ipvs.ServiceState with
// each destination's health.
type ListedService struct {
	ipvs.ServiceState
	Dests []ListedDest `json:"dests"`
}

// ListedDest is a destination in a JSON listing. Health is the health
// checks' view of it (up/down, last check, reason) when govsd runs a
// keepalived.conf that checks it; absent otherwise.
type ListedDest struct {
	ipvs.DestState
	Health *api.RealServerHealth `json:"health,omitempty"`
}

// withHealth pairs the destinations of svcs with their health, when the
// director reports health (an older govsd, or one without -f, does not).
func (r *Runner) withHealth(ctx context.Context, svcs []ipvs.ServiceState) []ListedService {
	var hs api.HealthStatus
	if h, ok := r.D.(api.HealthReader); ok {
		if v, err := h.HealthStatus(ctx); err == nil {
			hs = v
		}
	}
	out := make([]ListedService, 0, len(svcs))
	for _, s := range svcs {
		ls := ListedService{ServiceState: s, Dests: make([]ListedDest, 0, len(s.Dests))}
		for _, d := range s.Dests {
			ld := ListedDest{DestState: d}
			if h, ok := hs.Find(s.ServiceKey, d.Addr, d.Port); ok {
				ld.Health = &h
			}
			ls.Dests = append(ls.Dests, ld)
		}
		out = append(out, ls)
	}
	return out
}

func (r *Runner) json(v any) (int, bool) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		fmt.Fprintf(r.Stderr, "%s: encode JSON: %v\n", govsadmLabel, err)
		return exitList, true
	}
	b = append(b, '\n')
	r.Stdout.Write(b)
	return exitOK, false
}

// restore is ipvsadm's restore_table: each line of stdin is a command
// line. A line ipvsadm's parser rejects ends the restore with its exit
// code; a command the director refuses is reported and the restore goes
// on; the exit code is the last command's.
//
// Table commands (-A -E -D -a -e -d -C --set) go to the director in
// batches of r.BatchSize: when the director stops a batch at a command,
// that command's message is printed and the rest of the batch is sent
// again from the next command, so the table, the messages and their order
// are those of one request per line. Any other command, and a line that
// does not parse, first sends what is queued.
func (r *Runner) restore(ctx context.Context) (int, bool) {
	if r.Stdin == nil {
		return exitOK, false
	}
	lines := newRestoreLines(r.Stdin)
	b := newBatch(r.D, r.BatchSize)
	result := exitOK
	send := func() {
		if len(b.ops) == 0 {
			return
		}
		ok := b.flush(ctx, func(cmd Cmd, _ int, err error) bool {
			r.report(cmd, err)
			return true
		})
		result = exitOK
		if !ok {
			result = exitKernel
		}
	}
	for {
		words, ok := lines.next()
		if !ok {
			send()
			return result, false
		}
		cmd, err := r.Parser.Parse(ctx, words)
		if err != nil {
			send()
			return reportParse(r.Stderr, err), true
		}
		if op, ok := opOf(cmd); ok {
			if b.add(op, cmd.Cmd, lines.line) {
				send()
			}
			continue
		}
		send()
		code, stop := r.run(ctx, cmd, true)
		if stop {
			return code, true
		}
		result = code
	}
}
