// Package dataplane defines what the control plane needs from a data plane:
// the thing that actually moves packets for the virtual services.
//
// The control plane (package director) owns the configuration: it
// validates every change against its engine (the Go reference, package
// engine) first, then mirrors the accepted change into the data plane. A
// data plane therefore never sees an invalid or duplicate service; it
// returns an error only for what it cannot do (e.g. a forwarding method it
// does not support) or for a failure of its own (e.g. a map update).
//
// Implementations live in sub-packages: proxy (userspace TCP/UDP, no root)
// and ebpf (TC/XDP in the kernel). Package dataplanetest has an in-memory
// recording fake for tests.
package dataplane

import (
	"errors"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

// ErrUnsupported is wrapped by errors for configurations a data plane
// cannot forward (its message says which data plane can).
var ErrUnsupported = errors.New("not supported by this data plane")

// Dataplane forwards packets for virtual services.
type Dataplane interface {
	// Name is the data plane's name as given to govsd --dataplane.
	Name() string

	// CheckService and CheckDest report, before anything changes, whether
	// the data plane can forward svc / d; the error wraps ErrUnsupported
	// and names the data plane that can.
	CheckService(svc ipvs.Service) error
	CheckDest(svc ipvs.Service, d ipvs.Destination) error

	// The mirror of ipvsadm's commands, called after the engine accepted
	// them. Destinations arrive in the order they were added.
	AddService(svc ipvs.Service) error
	EditService(svc ipvs.Service) error
	DelService(k ipvs.ServiceKey) error
	AddDest(k ipvs.ServiceKey, d ipvs.Destination) error
	EditDest(k ipvs.ServiceKey, d ipvs.Destination) error
	DelDest(k ipvs.ServiceKey, d ipvs.DestKey) error
	Flush() error
	SetTimeouts(t conn.Timeouts) error
	// Zero zeroes the counters of one service, or of all when k is nil.
	Zero(k *ipvs.ServiceKey) error

	// Services returns the live state (connection counts, counters,
	// rates) of every service the data plane forwards.
	Services() ([]ipvs.ServiceState, error)
	// Conns returns the connection table (ipvsadm -Lc).
	Conns() ([]conn.Info, error)
	// Health reports whether the data plane is forwarding; nil is healthy.
	Health() error

	// Close stops forwarding and releases what the data plane holds. A
	// data plane that keeps forwarding across restarts (ebpf pins its
	// maps) documents what Close leaves behind.
	Close() error
}
