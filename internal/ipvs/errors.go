package ipvs

import "errors"

// Errors of table operations, the kernel's errno results of ip_vs_ctl.c
// given names. Every layer (engine, director, API, CLI) wraps or maps
// these, so errors.Is works end to end and ipvsadm's messages can be
// printed for them.
var (
	// ErrServiceExists: -A for a service that exists (EEXIST).
	ErrServiceExists = errors.New("service already exists")
	// ErrNoService: -E, -D, -Z, -a, -e, -d for a service that does not
	// exist (ESRCH).
	ErrNoService = errors.New("no such service")
	// ErrDestExists: -a for a destination that exists (EEXIST).
	ErrDestExists = errors.New("destination already exists")
	// ErrNoDest: -e, -d for a destination that does not exist (ENOENT).
	ErrNoDest = errors.New("no such destination")
	// ErrNoScheduler: a scheduler or persistence engine that does not
	// exist (ENOENT on -A / -E).
	ErrNoScheduler = errors.New("scheduler or persistence engine not found")
	// ErrDaemonRunning: --start-daemon for a sync daemon state that
	// already runs (EEXIST).
	ErrDaemonRunning = errors.New("daemon has already run")
	// ErrNoDaemon: --stop-daemon when none runs (ESRCH).
	ErrNoDaemon = errors.New("no daemon is running")
)
