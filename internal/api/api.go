// Package api is govsd's administration API: HTTP/JSON on a unix socket
// (described in openapi.yaml beside this file), the server that exposes a
// [Director] and the client that implements [Director] over the socket.
//
// The [Director] interface is the whole of what ipvsadm can do, plus
// reading state as structured data. package director implements it in the
// daemon; [Client] implements it for govsadm. Errors cross the socket with
// a code, so errors.Is(err, ipvs.ErrNoService) holds on the client side.
package api

import (
	"context"
	"net/netip"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

// DefaultSocket is where govsd listens and govsadm connects, unless
// --socket or the GOVS_SOCKET environment variable says otherwise.
const DefaultSocket = "/run/govs/govsd.sock"

// SocketEnv is the environment variable both binaries honour.
const SocketEnv = "GOVS_SOCKET"

// Director is everything ipvsadm can ask of a director.
type Director interface {
	// Info returns the version and table sizes (ipvsadm's header line).
	Info(ctx context.Context) (Info, error)

	AddService(ctx context.Context, svc ipvs.Service) error
	EditService(ctx context.Context, svc ipvs.Service) error
	DelService(ctx context.Context, k ipvs.ServiceKey) error
	// Flush removes every service (ipvsadm -C).
	Flush(ctx context.Context) error
	AddDest(ctx context.Context, k ipvs.ServiceKey, d ipvs.Destination) error
	EditDest(ctx context.Context, k ipvs.ServiceKey, d ipvs.Destination) error
	DelDest(ctx context.Context, k ipvs.ServiceKey, d ipvs.DestKey) error
	// Zero zeroes the counters of one service, or of all when k is nil.
	Zero(ctx context.Context, k *ipvs.ServiceKey) error

	// Services lists every service with its destinations and live state.
	Services(ctx context.Context) ([]ipvs.ServiceState, error)
	// Service returns one service (ipvsadm -L -t addr:port).
	Service(ctx context.Context, k ipvs.ServiceKey) (ipvs.ServiceState, error)
	// Conns lists the connection table (ipvsadm -Lc).
	Conns(ctx context.Context) ([]conn.Info, error)

	Timeouts(ctx context.Context) (conn.Timeouts, error)
	// SetTimeouts changes the non-zero fields (ipvsadm --set).
	SetTimeouts(ctx context.Context, t conn.Timeouts) error

	// Apply runs ops in order, each exactly as its single-change method
	// would (ipvsadm -R's table commands). On the first op that fails it
	// stops and returns a [*BatchError] with that op's index and error;
	// the ops before it stay applied, as they would had they been made one
	// by one: a batch is not a transaction. The director applies a batch
	// under one lock, so no other change comes between its ops.
	Apply(ctx context.Context, ops []Op) (BatchResult, error)

	// StartDaemon starts a connection sync daemon (ipvsadm --start-daemon).
	StartDaemon(ctx context.Context, d SyncDaemon) error
	// StopDaemon stops the daemon in state "master" or "backup".
	StopDaemon(ctx context.Context, state string) error
	// Daemons lists the running sync daemons (ipvsadm -L --daemon).
	Daemons(ctx context.Context) ([]SyncDaemon, error)
}

// Info is the director's version line and table size.
type Info struct {
	// Version is the IPVS version emulated, "1.2.1".
	Version string `json:"version"`
	// ConnTabSize is the connection hash table size ipvsadm prints
	// ("size=4096").
	ConnTabSize int `json:"conn_tab_size"`
	NumServices int `json:"num_services"`
	// Dataplane is the data plane's name ("proxy", "ebpf").
	Dataplane string `json:"dataplane"`
	// GovsVersion is govsd's own version.
	GovsVersion string `json:"govs_version"`
}

// SyncDaemon is a connection synchronisation daemon's settings (ipvsadm
// --start-daemon and its options).
type SyncDaemon struct {
	// State is "master" or "backup".
	State string `json:"state"`
	// Interface is the multicast interface (--mcast-interface).
	Interface string `json:"mcast_interface"`
	SyncID    uint8  `json:"syncid"`
	// SyncMaxLen is the maximum sync message size (--sync-maxlen), 0 for
	// the default.
	SyncMaxLen uint16     `json:"sync_maxlen,omitempty"`
	Group      netip.Addr `json:"mcast_group,omitzero"`
	Port       uint16     `json:"mcast_port,omitempty"`
	TTL        uint8      `json:"mcast_ttl,omitempty"`
}
