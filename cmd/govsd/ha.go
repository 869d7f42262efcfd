package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/director"
	"github.com/govs/govs/internal/ha"
)

// startHA runs the vrrp_instance, vrrp_sync_group and vrrp_script blocks
// of cfg and its lvs_sync_daemon (package ha). The returned wait blocks
// until the instances have stopped after ctx ended: a master sends
// priority 0 and removes its addresses, the sync daemons stop. Without
// any of those blocks it does nothing.
func startHA(ctx context.Context, cfg *config.Config, dir *director.Director, o options, log *slog.Logger) (wait func(), err error) {
	if len(cfg.VRRPInstances) == 0 && cfg.Global.LVSSyncDaemon == nil {
		return func() {}, nil
	}
	plan, err := ha.NewPlan(cfg)
	if err != nil {
		return nil, fmt.Errorf("vrrp configuration: %w", err)
	}
	if plan.Sync != nil && len(plan.Instances) == 0 {
		// lvs_sync_daemon without VRRP: a plain backup, as keepalived
		// starts it, until govsadm says otherwise.
		sd := *plan.Sync
		sd.State = "backup"
		if err := dir.StartDaemon(ctx, sd); err != nil {
			return nil, fmt.Errorf("lvs_sync_daemon: %w", err)
		}
		return func() {}, nil
	}
	m, err := ha.New(ha.Options{Plan: plan, Sync: dir, SweepPeriod: o.syncSweep, NoGate: o.noSyncGate,
		Logger: log.With("component", "ha")})
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := m.Run(ctx); err != nil {
			log.Error("VRRP stopped", "err", err)
		}
	}()
	log.Info("VRRP started", "instances", len(plan.Instances), "sync_groups", len(plan.Groups),
		"scripts", len(plan.Scripts), "lvs_sync_daemon", plan.Sync != nil, "sync_follows", plan.SyncInstance)
	return func() { <-done }, nil
}

// planHA checks and logs what startHA would run, without running it.
func planHA(_ context.Context, cfg *config.Config, _ *director.Director, _ options, log *slog.Logger) (func(), error) {
	if len(cfg.VRRPInstances) == 0 && cfg.Global.LVSSyncDaemon == nil {
		return func() {}, nil
	}
	plan, err := ha.NewPlan(cfg)
	if err != nil {
		return nil, fmt.Errorf("vrrp configuration: %w", err)
	}
	log.Info("VRRP planned, not started", "instances", len(plan.Instances), "lvs_sync_daemon", plan.Sync != nil)
	return func() {}, nil
}
