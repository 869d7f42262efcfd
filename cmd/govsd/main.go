package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/dataplane/ebpf"
	"github.com/govs/govs/internal/director"
	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/keepalived"
	"github.com/govs/govs/internal/metrics"
)

// version is govsd's version; release builds set it with
// -ldflags "-X main.version=v1.2.3".
var version = ""

// expireInterval is how often the engine's timers run (connection expiry,
// the rate estimator's samples).
const expireInterval = time.Second

// shutdownTimeout bounds how long open API and metrics requests may take
// to finish at shutdown.
const shutdownTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	err := run(ctx, os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, newDataplane: newDataplane, hup: hup, startHA: startHA})
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errConfigTest):
		os.Exit(1)
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintf(os.Stderr, "govsd: %v\n", err)
		os.Exit(1)
	}
}

// env is what run needs from outside: main passes the real ones, tests
// their own.
type env struct {
	stdout       io.Writer
	stderr       io.Writer
	getenv       func(string) string
	newDataplane func(o dataplaneOptions, eng *engine.Engine, log *slog.Logger) (dataplane.Dataplane, error)
	// ready, if set, is called once the API (and metrics, "" if off)
	// listen.
	ready func(socket, metricsAddr string)
	// hup delivers SIGHUP: reload the configuration file.
	hup <-chan os.Signal
	// startHA runs VRRP and lvs_sync_daemon (nil: they are planned and
	// logged, not run; tests that must not touch the host's interfaces).
	startHA func(ctx context.Context, cfg *config.Config, dir *director.Director, o options, log *slog.Logger) (func(), error)
}

// errUsage is returned for a bad command line, already explained on
// stderr.
var errUsage = errors.New("usage")

type options struct {
	dataplane      dataplaneOptions
	socket         string
	metricsAddress string
	logLevel       slog.Level
	rules          string
	configFile     string
	configTest     bool
	drainTimeout   time.Duration
	syncSweep      time.Duration
	noSyncGate     bool
	version        bool
	demo           demoOptions
}

func parseFlags(args []string, e env) (options, error) {
	var o options
	fs := flag.NewFlagSet("govsd", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	socket := api.DefaultSocket
	if s := e.getenv(api.SocketEnv); s != "" {
		socket = s
	}
	o.dataplane.flags(fs)
	fs.StringVar(&o.socket, "socket", socket, "API unix socket (default from "+api.SocketEnv+" if set)")
	fs.StringVar(&o.metricsAddress, "metrics-address", "127.0.0.1:9477", `Prometheus metrics address ("" disables)`)
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	fs.StringVar(&o.rules, "rules", "", "restore these rules (ipvsadm -S format) at start")
	fs.StringVar(&o.configFile, "f", "", "read this keepalived.conf: virtual servers, health checks (reloaded on SIGHUP)")
	fs.StringVar(&o.configFile, "config-file", "", "same as -f")
	fs.BoolVar(&o.configTest, "t", false, "check the -f configuration file, print its errors and exit (0: valid, 1: not)")
	fs.BoolVar(&o.configTest, "config-test", false, "same as -t")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", keepalived.DefaultDrainTimeout,
		"how long a realserver or service removed by a reload keeps its connections (weight 0) before it is deleted")
	fs.DurationVar(&o.syncSweep, "sync-sweep-period", director.DefaultSweepPeriod,
		"sync master: announce every established connection this often, so a returning director learns idle ones; also the backup's readiness wait")
	fs.BoolVar(&o.noSyncGate, "no-sync-gate", false, "VRRP preempts without waiting for the sync backup to learn the connections (see docs/HA.md)")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.BoolVar(&o.demo.on, "demo", false, "run the demo: embedded default config, realservers and a client on loopback")
	fs.TextVar(&o.demo.vip, "demo-vip", defaultDemoVIP, "the demo's virtual service address")
	fs.IntVar(&o.demo.requests, "demo-requests", 0, "stop the demo after this many requests (0: run until Ctrl-C)")
	fs.StringVar(&o.demo.mode, "demo-mode", "dr", "with --demo --dataplane ebpf (root): forward by dr, nat or tun")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: govsd [flags]\n\ngovsd is the govs director daemon; govsadm (ipvsadm) configures it.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, errUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.demo.on {
		o.demo.apply(&o, set, e)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "govsd: unexpected argument %q: govsd takes only flags (see govsd -h)\n", fs.Arg(0))
		return o, errUsage
	}
	if !slices.Contains(dataplaneNames, o.dataplane.name) {
		fmt.Fprintf(e.stderr, "govsd: unknown data plane %q: use --dataplane %s\n", o.dataplane.name, strings.Join(dataplaneNames, " or --dataplane "))
		return o, errUsage
	}
	if o.configTest && o.configFile == "" {
		fmt.Fprintf(e.stderr, "govsd: -t checks a configuration file: give it with -f, e.g. govsd -t -f /etc/keepalived/keepalived.conf\n")
		return o, errUsage
	}
	if o.configFile != "" && o.rules != "" {
		fmt.Fprintf(e.stderr, "govsd: -f and --rules both configure services: use one of them\n")
		return o, errUsage
	}
	if o.drainTimeout <= 0 {
		fmt.Fprintf(e.stderr, "govsd: --drain-timeout must be positive, e.g. --drain-timeout 60s\n")
		return o, errUsage
	}
	if o.syncSweep <= 0 {
		fmt.Fprintf(e.stderr, "govsd: --sync-sweep-period must be positive, e.g. --sync-sweep-period 30s\n")
		return o, errUsage
	}
	if o.socket == "" {
		fmt.Fprintf(e.stderr, "govsd: --socket is empty: give the API socket's path, e.g. --socket /tmp/govsd.sock\n")
		return o, errUsage
	}
	return o, nil
}

func govsVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// run is govsd: it returns when ctx is done (a signal) or a server fails.
func run(ctx context.Context, args []string, e env) (err error) {
	o, err := parseFlags(args, e)
	if err != nil {
		return err
	}
	if o.version {
		fmt.Fprintf(e.stderr, "govsd %s (IPVS %s)\n", govsVersion(), director.Version)
		return nil
	}
	if o.configTest {
		return configTest(o.configFile, e.stderr)
	}
	if o.demo.on && o.dataplane.name == "ebpf" {
		// The eBPF demo builds its own namespaces, director and data plane.
		return runEBPFDemo(ctx, o, e.stdout)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: o.logLevel}))
	var cfg *config.Config
	if o.configFile != "" {
		if cfg, err = loadConfig(o.configFile, log); err != nil {
			return err
		}
	}

	eng := engine.New(engine.Options{})
	if o.dataplane.remove {
		if err := ebpf.Remove(o.dataplane.pinPath); err != nil {
			return fmt.Errorf("remove the ebpf data plane: %w", err)
		}
		fmt.Fprintf(e.stderr, "govsd: ebpf data plane removed from %s\n", o.dataplane.pinPath)
		return nil
	}
	dp, err := e.newDataplane(o.dataplane, eng, log)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := dp.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close the %s data plane: %w", o.dataplane.name, cerr))
		}
	}()
	dir, err := director.New(director.Config{Engine: eng, Dataplane: dp, Log: log, Version: govsVersion(),
		Sync: director.SyncOptions{SweepPeriod: o.syncSweep}})
	if err != nil {
		return err
	}
	// Sync daemons stop before the data plane closes (defers run last
	// first).
	defer dir.StopSync(context.Background())

	// The engine's timers run from the start, so that connections of
	// restored rules expire too.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	expired := make(chan struct{})
	go func() {
		defer close(expired)
		expireLoop(ctx, eng)
	}()
	defer func() { cancel(); <-expired }()

	if o.rules != "" {
		if err := restoreRules(ctx, dir, o.rules); err != nil {
			return err
		}
		log.Info("rules restored", "file", o.rules)
	}

	var apiOpts []api.ServerOption
	var metricsOpts []metrics.Option
	if cfg != nil {
		if err := startConfig(ctx, cfg, dir, o, log); err != nil {
			return err
		}
		mgr, err := keepalived.New(keepalived.Options{Director: dir, Path: o.configFile, Logger: log.With("component", "healthcheck"),
			DrainTimeout: o.drainTimeout})
		if err != nil {
			return err
		}
		// Closed before the data plane (deferred earlier, run later):
		// checkers stop and the configured services go.
		defer func() {
			cctx, ccancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer ccancel()
			if cerr := mgr.Close(cctx); cerr != nil {
				log.Warn("stop health checks", "err", cerr)
			}
		}()
		if _, err := mgr.Start(ctx, cfg); err != nil {
			return fmt.Errorf("apply %s: %w", o.configFile, err)
		}
		// VRRP starts once the services exist: a director that becomes
		// master forwards at once.
		haStart := e.startHA
		if haStart == nil {
			haStart = planHA
		}
		waitHA, err := haStart(ctx, cfg, dir, o, log)
		if err != nil {
			return err
		}
		defer func() { cancel(); waitHA() }()
		svcs, _ := cfg.IPVS()
		log.Info("configuration loaded", "file", o.configFile, "services", len(svcs))
		apiOpts = append(apiOpts, api.WithHealth(mgr), api.WithReload(mgr))
		metricsOpts = append(metricsOpts, metrics.WithHealth(mgr))
		go reloadLoop(ctx, e.hup, mgr, log)
	} else if e.hup != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-e.hup:
					log.Warn("SIGHUP ignored: govsd runs without -f, there is no configuration file to reload")
				}
			}
		}()
	}

	apiL, err := api.Listen(o.socket)
	if err != nil {
		return socketError(o.socket, err)
	}
	apiSrv := &http.Server{Handler: api.NewServer(dir, log, apiOpts...), ReadHeaderTimeout: 10 * time.Second}
	servers := []*http.Server{apiSrv}
	errc := make(chan error, 2)
	go func() { errc <- serve(apiSrv, apiL, "API") }()

	metricsAddr := ""
	if o.metricsAddress != "" {
		ml, err := net.Listen("tcp", o.metricsAddress)
		if err != nil {
			shutdown(servers, log)
			return fmt.Errorf("listen for metrics on %s: %w; pass a free --metrics-address, or --metrics-address \"\" to turn metrics off", o.metricsAddress, err)
		}
		h, err := metrics.Handler(metrics.NewCollector(dir, log, metricsOpts...), log)
		if err != nil {
			ml.Close()
			shutdown(servers, log)
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", h)
		metricsSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, metricsSrv)
		metricsAddr = ml.Addr().String()
		go func() { errc <- serve(metricsSrv, ml, "metrics") }()
	}

	log.Info("govsd started", "version", govsVersion(), "dataplane", dp.Name(), "socket", o.socket, "metrics", metricsAddr)
	if e.ready != nil {
		e.ready(o.socket, metricsAddr)
	}
	if o.demo.on {
		go func() { errc <- runDemo(ctx, dir, o, metricsAddr, e.stdout) }()
	}

	select {
	case <-ctx.Done():
		log.Info("govsd stopping")
	case err = <-errc:
	}
	shutdown(servers, log)
	log.Info("govsd stopped")
	return err
}

// serve serves srv on l and returns its failure, nil once shut down.
func serve(srv *http.Server, l net.Listener, what string) error {
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", what, err)
	}
	return nil
}

// shutdown closes the listeners (the API socket file goes with its
// listener) and waits a little for requests in flight.
func shutdown(servers []*http.Server, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(ctx); err != nil {
			log.Warn("requests cut short at shutdown", "err", err)
			s.Close()
		}
	}
}

func expireLoop(ctx context.Context, eng *engine.Engine) {
	t := time.NewTicker(expireInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			eng.Expire(now)
		}
	}
}

// socketError says what to do about a socket govsd cannot listen on.
func socketError(socket string, err error) error {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: run as root or pass --socket /tmp/govsd.sock", err)
	case errors.Is(err, api.ErrSocketInUse), errors.Is(err, fs.ErrExist):
		return err
	}
	return fmt.Errorf("%w: pass --socket with a path in a writable directory, e.g. /tmp/govsd.sock", err)
}
