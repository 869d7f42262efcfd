package api

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"time"

	"github.com/govs/govs/internal/ipvs"
)

// ErrNoConfig is returned by a reload when govsd runs without a
// configuration file (no -f).
var ErrNoConfig = errors.New("govsd runs without a configuration file: start it with -f keepalived.conf to reload one")

// HealthReader is implemented by what knows the realservers' health (the
// keepalived.conf glue in govsd, and [Client]).
type HealthReader interface {
	HealthStatus(ctx context.Context) (HealthStatus, error)
}

// Reloader is implemented by what can re-read govsd's configuration file
// (the keepalived.conf glue in govsd, and [Client]).
type Reloader interface {
	Reload(ctx context.Context) (ReloadResult, error)
}

// HealthStatus is the state of every health-checked virtual service.
type HealthStatus struct {
	// ConfigFile is the keepalived.conf govsd runs; empty without -f.
	ConfigFile string `json:"config_file,omitempty"`
	// LoadedAt is when it was last (re)loaded.
	LoadedAt time.Time       `json:"loaded_at,omitzero"`
	Services []ServiceHealth `json:"services"`
}

// ServiceHealth is one virtual service's health state.
type ServiceHealth struct {
	Service ipvs.ServiceKey `json:"service"`
	// Source is the virtual_server block's position, "file:line".
	Source      string `json:"source,omitempty"`
	QuorumUp    bool   `json:"quorum_up"`
	SorryActive bool   `json:"sorry_active,omitempty"`
	// Draining is set for a service removed from the configuration that
	// waits for its connections to end.
	Draining      bool               `json:"draining,omitempty"`
	DrainDeadline time.Time          `json:"drain_deadline,omitzero"`
	RealServers   []RealServerHealth `json:"realservers"`
}

// Realserver states in RealServerHealth.State.
const (
	StateUp       = "up"
	StateDown     = "down"
	StateDraining = "draining" // removed from the configuration, weight 0 until its connections end
	StateSorry    = "sorry"    // the sorry server, serving while the quorum is lost
	StateStandby  = "standby"  // the sorry server, not serving
)

// RealServerHealth is one realserver's health state in a service.
type RealServerHealth struct {
	Addr netip.Addr `json:"addr"`
	Port uint16     `json:"port"`
	// State is one of the State* constants.
	State string `json:"state"`
	Up    bool   `json:"up"`
	// Weight is the weight the health checks give it (configured weight,
	// or a dynamic checker's); the table may hold 0 (inhibit_on_failure).
	Weight    int       `json:"weight"`
	LastCheck time.Time `json:"last_check,omitzero"`
	// Reason says why it is down (the failing checker and its error), or
	// what the last change was.
	Reason   string `json:"reason,omitempty"`
	Checks   uint64 `json:"checks"`
	Failures uint64 `json:"failures"`
	// DrainDeadline is when a draining realserver is deleted even with
	// connections left.
	DrainDeadline time.Time       `json:"drain_deadline,omitzero"`
	Checkers      []CheckerHealth `json:"checkers,omitempty"`
}

// CheckerHealth is one checker's state.
type CheckerHealth struct {
	Name                string    `json:"name"`
	Up                  bool      `json:"up"`
	LastCheck           time.Time `json:"last_check,omitzero"`
	LastError           string    `json:"last_error,omitempty"`
	Checks              uint64    `json:"checks"`
	Failures            uint64    `json:"failures"`
	ConsecutiveFailures uint64    `json:"consecutive_failures"`
}

// ReloadResult is what a reload did.
type ReloadResult struct {
	ConfigFile string   `json:"config_file"`
	Warnings   []string `json:"warnings,omitempty"`
	// Changes lists what was applied, one line each ("add service tcp
	// 10.0.0.1:80", "drain destination ..."); empty when nothing changed.
	Changes         []string `json:"changes"`
	CheckersKept    int      `json:"checkers_kept"`
	CheckersStarted int      `json:"checkers_started"`
	CheckersStopped int      `json:"checkers_stopped"`
}

// ServerOption configures NewServer.
type ServerOption func(*server)

// WithHealth serves GET /v1/health from h.
func WithHealth(h HealthReader) ServerOption { return func(s *server) { s.health = h } }

// WithReload serves POST /v1/reload with r.
func WithReload(r Reloader) ServerOption { return func(s *server) { s.reloader = r } }

// Find returns the health of destination (addr, port) of service k.
func (h HealthStatus) Find(k ipvs.ServiceKey, addr netip.Addr, port uint16) (RealServerHealth, bool) {
	for _, s := range h.Services {
		if s.Service != k {
			continue
		}
		for _, r := range s.RealServers {
			if r.Addr == addr && r.Port == port {
				return r, true
			}
		}
	}
	return RealServerHealth{}, false
}

func (s *server) healthStatus(w http.ResponseWriter, r *http.Request) {
	if s.health == nil {
		s.reply(w, r, http.StatusOK, HealthStatus{Services: []ServiceHealth{}}, nil)
		return
	}
	v, err := s.health.HealthStatus(r.Context())
	if v.Services == nil {
		v.Services = []ServiceHealth{}
	}
	s.reply(w, r, http.StatusOK, v, err)
}

func (s *server) reload(w http.ResponseWriter, r *http.Request) {
	if s.reloader == nil {
		s.reply(w, r, http.StatusOK, nil, ErrNoConfig)
		return
	}
	v, err := s.reloader.Reload(r.Context())
	if v.Changes == nil {
		v.Changes = []string{}
	}
	s.reply(w, r, http.StatusOK, v, err)
}

var (
	_ HealthReader = (*Client)(nil)
	_ Reloader     = (*Client)(nil)
)

// HealthStatus implements [HealthReader]: GET /v1/health.
func (c *Client) HealthStatus(ctx context.Context) (HealthStatus, error) {
	var v HealthStatus
	err := c.do(ctx, http.MethodGet, "/v1/health", nil, &v)
	return v, err
}

// Reload implements [Reloader]: POST /v1/reload. A configuration with
// errors is refused (errors.Is(err, config.ErrInvalid)) and the message
// lists every error with its file:line.
func (c *Client) Reload(ctx context.Context) (ReloadResult, error) {
	var v ReloadResult
	err := c.do(ctx, http.MethodPost, "/v1/reload", nil, &v)
	return v, err
}
