package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/director"
	"github.com/govs/govs/internal/keepalived"
)

// errConfigTest is returned by -t for a configuration with errors, which
// are already printed.
var errConfigTest = errors.New("configuration has errors")

// configTest is `govsd -t -f FILE`, keepalived -t: it prints the
// warnings and errors, each file:line, and says whether the file is valid.
func configTest(path string, stderr io.Writer) error {
	cfg, warns, err := keepalived.Load(path)
	for _, w := range warns {
		fmt.Fprintf(stderr, "%s: warning: %s\n", w.Pos, w.Msg)
	}
	if err != nil {
		var u interface{ Unwrap() []error }
		if errors.As(err, &u) && errors.Is(err, config.ErrInvalid) {
			for _, e := range u.Unwrap() {
				fmt.Fprintf(stderr, "%v\n", e)
			}
		} else {
			fmt.Fprintf(stderr, "%v\n", err)
		}
		fmt.Fprintf(stderr, "govsd: %s: configuration is not valid\n", path)
		return errConfigTest
	}
	svcs, _ := cfg.IPVS()
	fmt.Fprintf(stderr, "govsd: %s: configuration is valid (%d virtual services, %d warnings)\n", path, len(svcs), len(warns))
	return nil
}

// loadConfig reads the -f file at start: warnings are logged with their
// file:line, errors stop govsd.
func loadConfig(path string, log *slog.Logger) (*config.Config, error) {
	cfg, warns, err := keepalived.Load(path)
	for _, w := range warns {
		log.Warn("config: "+w.Msg, "pos", w.Pos.String())
	}
	if err != nil {
		return nil, fmt.Errorf("load %s (check it with govsd -t -f %s):\n%w", path, path, err)
	}
	return cfg, nil
}

// startConfig applies what of cfg is neither health checking nor HA:
// lvs_timeouts and static_ipaddress (as root on the ebpf data plane
// only). VRRP and lvs_sync_daemon are startHA's.
func startConfig(ctx context.Context, cfg *config.Config, dir *director.Director, o options, log *slog.Logger) error {
	if t := cfg.Global.LVSTimeouts; t != (config.LVSTimeouts{}) {
		if err := dir.SetTimeouts(ctx, conn.Timeouts{TCP: t.TCP, TCPFin: t.TCPFin, UDP: t.UDP}); err != nil {
			return fmt.Errorf("global_defs lvs_timeouts: %w", err)
		}
	}
	if n := len(cfg.StaticIPAddresses); n > 0 {
		if os.Geteuid() == 0 && o.dataplane.name == "ebpf" {
			for _, a := range cfg.StaticIPAddresses {
				if err := addAddress(a, cfg.Global.DefaultInterface); err != nil {
					return fmt.Errorf("%s: static_ipaddress %s: %w", a.Pos, a.Prefix, err)
				}
				log.Info("static address added", "address", a.Prefix.String(), "pos", a.Pos.String())
			}
		} else {
			log.Info("static_ipaddress not applied: govsd adds addresses only as root on the ebpf data plane (the proxy binds the VIPs it is given)",
				"addresses", n, "dataplane", o.dataplane.name)
		}
	}
	if len(cfg.StaticRoutes) > 0 {
		log.Info("static_routes parsed and not applied: govsd does not manage routes", "routes", len(cfg.StaticRoutes))
	}
	return nil
}

// reloadLoop reloads the configuration on every value from hup (SIGHUP).
func reloadLoop(ctx context.Context, hup <-chan os.Signal, m *keepalived.Manager, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("SIGHUP: reloading the configuration")
			res, err := m.Reload(ctx)
			if err != nil {
				// Reload logged the refusal with its errors.
				continue
			}
			log.Info("configuration reloaded", "file", res.ConfigFile, "changes", len(res.Changes),
				"checkers_kept", res.CheckersKept, "checkers_started", res.CheckersStarted, "checkers_stopped", res.CheckersStopped)
		}
	}
}
