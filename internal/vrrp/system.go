package vrrp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"strconv"
	"time"
)

// ConnConfig configures Dial, the raw socket Conn.
type ConnConfig struct {
	// Interface is the interface to send and receive on.
	Interface string
	// IPv6 selects VRRPv3 over IPv6 (protocol 112 on an IPv6 raw socket).
	IPv6 bool
	// Src is the source address (unicast_src_ip / mcast_src_ip). Zero:
	// the interface's primary IPv4 address, or its link-local IPv6
	// address, as of Dial.
	Src netip.Addr
	// Group is the multicast group. Zero: 224.0.0.18 or ff02::12.
	Group netip.Addr
	// Unicast does not join the group (unicast_peer mode).
	Unicast bool
	// NetnsPath, when set, opens the sockets in that network namespace
	// (a path such as /var/run/netns/NAME or /proc/PID/ns/net).
	NetnsPath string
	// Logger receives decode errors at debug level. Default slog.Default().
	Logger *slog.Logger
}

// SystemActionsConfig configures NewSystemActions.
type SystemActionsConfig struct {
	// NetnsPath, when set, acts in that network namespace.
	NetnsPath string
	// Notify are the notify scripts.
	Notify NotifyScripts
	// Garp gives the gaps between announcements (Interval, NAInterval).
	Garp Garp
	// OnTransition, when set, is called for every transition after the
	// scripts were started, from the node's goroutine; it must not block.
	// The connection sync daemon follows the VRRP state through it.
	OnTransition func(Transition)
	// ScriptTimeout bounds a notify script (default 30s).
	ScriptTimeout time.Duration
	Logger        *slog.Logger
}

// NotifyScripts are keepalived's notify_master, notify_backup,
// notify_fault, notify_stop and notify. The specific ones run as given
// (through /bin/sh -c); the generic one gets keepalived's arguments:
// "INSTANCE" NAME STATE PRIORITY.
type NotifyScripts struct {
	Master, Backup, Fault, Stop, Any string
}

// commands returns the shell command lines to run for t, in order.
func (s NotifyScripts) commands(t Transition) [][]string {
	var out [][]string
	specific := map[State]string{StateMaster: s.Master, StateBackup: s.Backup, StateFault: s.Fault, StateInit: s.Stop}[t.To]
	if specific != "" {
		out = append(out, []string{"/bin/sh", "-c", specific})
	}
	if s.Any != "" {
		state := t.To.String()
		if t.To == StateInit {
			state = "STOP"
		}
		out = append(out, []string{"/bin/sh", "-c", s.Any + ` "$@"`, "notify",
			"INSTANCE", t.Instance, state, strconv.Itoa(int(t.Priority))})
	}
	return out
}

// scriptRunner runs notify scripts one after the other, off the node's
// goroutine, so that a slow script never delays an advert.
type scriptRunner struct {
	scripts NotifyScripts
	timeout time.Duration
	log     *slog.Logger
	queue   chan Transition
}

func newScriptRunner(s NotifyScripts, timeout time.Duration, log *slog.Logger) *scriptRunner {
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	r := &scriptRunner{scripts: s, timeout: timeout, log: log, queue: make(chan Transition, 64)}
	go r.loop()
	return r
}

func (r *scriptRunner) notify(t Transition) {
	if r.scripts == (NotifyScripts{}) {
		return
	}
	select {
	case r.queue <- t:
	default:
		r.log.Error("notify queue full, script skipped", "instance", t.Instance, "state", t.To)
	}
}

func (r *scriptRunner) close() { close(r.queue) }

func (r *scriptRunner) loop() {
	for t := range r.queue {
		for _, argv := range r.scripts.commands(t) {
			ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
			out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
			cancel()
			if err != nil {
				r.log.Warn("notify script failed", "instance", t.Instance, "state", t.To,
					"script", argv[2], "err", fmt.Errorf("run: %w", err), "output", string(out))
			}
		}
	}
}
