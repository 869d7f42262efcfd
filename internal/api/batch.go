package api

import (
	"context"
	"fmt"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

// MaxBatchOps is the most ops one [Director.Apply] call over the API may
// carry: about 4 MB of JSON. Split larger changes into several batches.
const MaxBatchOps = 10_000

// OpKind names a table command in a batch.
type OpKind string

// The table commands a batch can carry: ipvsadm -A -E -D -a -e -d -C and
// --set.
const (
	OpAddService  OpKind = "add_service"
	OpEditService OpKind = "edit_service"
	OpDelService  OpKind = "del_service"
	OpAddDest     OpKind = "add_dest"
	OpEditDest    OpKind = "edit_dest"
	OpDelDest     OpKind = "del_dest"
	OpFlush       OpKind = "flush"
	OpSetTimeouts OpKind = "set_timeouts"
)

// Op is one table command of a batch: what one of the [Director]'s
// single-change methods does, as data. In JSON:
//
//	{"op": "add_service", "service": {"protocol": "tcp", "addr": "10.0.0.1", "port": 80, "scheduler": "wlc"}}
//	{"op": "add_dest", "key": "tcp/10.0.0.1:80", "dest": {"addr": "10.0.0.2", "port": 80, "fwd": "masq", "weight": 1}}
//	{"op": "del_dest", "key": "fwmark/7/ipv4", "dest": {"addr": "10.0.0.2", "port": 80}}
//	{"op": "set_timeouts", "timeouts": {"tcp": 900000000000, "tcp_fin": 0, "udp": 0}}
type Op struct {
	Op OpKind `json:"op"`
	// Service is add_service's and edit_service's service.
	Service *ipvs.Service `json:"service,omitempty"`
	// Key names the service of del_service and of the destination ops,
	// written as in paths ([FormatServiceKey]): a string is much cheaper to
	// decode than an object, at 100,000 ops a batch.
	Key ServiceRef `json:"key,omitzero"`
	// Dest is the destination of add_dest and edit_dest; for del_dest
	// only its address and port are read.
	Dest ipvs.Destination `json:"dest,omitzero"`
	// Timeouts are set_timeouts' (0 leaves one unchanged).
	Timeouts *conn.Timeouts `json:"timeouts,omitempty"`
}

// ServiceRef is a service key that encodes as text, in the form of
// [FormatServiceKey] ("tcp/10.0.0.1:80", "fwmark/7/ipv4").
type ServiceRef ipvs.ServiceKey

// MarshalText implements encoding.TextMarshaler.
func (r ServiceRef) MarshalText() ([]byte, error) {
	s, err := FormatServiceKey(ipvs.ServiceKey(r))
	return []byte(s), err
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *ServiceRef) UnmarshalText(b []byte) error {
	k, err := ParseServiceKey(string(b))
	*r = ServiceRef(k)
	return err
}

// AddServiceOp returns the op of [Director.AddService].
func AddServiceOp(svc ipvs.Service) Op { return Op{Op: OpAddService, Service: &svc} }

// EditServiceOp returns the op of [Director.EditService].
func EditServiceOp(svc ipvs.Service) Op { return Op{Op: OpEditService, Service: &svc} }

// DelServiceOp returns the op of [Director.DelService].
func DelServiceOp(k ipvs.ServiceKey) Op { return Op{Op: OpDelService, Key: ServiceRef(k)} }

// AddDestOp returns the op of [Director.AddDest].
func AddDestOp(k ipvs.ServiceKey, d ipvs.Destination) Op {
	return Op{Op: OpAddDest, Key: ServiceRef(k), Dest: d}
}

// EditDestOp returns the op of [Director.EditDest].
func EditDestOp(k ipvs.ServiceKey, d ipvs.Destination) Op {
	return Op{Op: OpEditDest, Key: ServiceRef(k), Dest: d}
}

// DelDestOp returns the op of [Director.DelDest].
func DelDestOp(k ipvs.ServiceKey, dk ipvs.DestKey) Op {
	return Op{Op: OpDelDest, Key: ServiceRef(k), Dest: ipvs.Destination{Addr: dk.Addr, Port: dk.Port}}
}

// ServiceKey returns the key of the service op acts on.
func (op *Op) ServiceKey() ipvs.ServiceKey {
	if op.Service != nil && (op.Op == OpAddService || op.Op == OpEditService) {
		return op.Service.ServiceKey
	}
	return ipvs.ServiceKey(op.Key)
}

// FlushOp returns the op of [Director.Flush].
func FlushOp() Op { return Op{Op: OpFlush} }

// SetTimeoutsOp returns the op of [Director.SetTimeouts].
func SetTimeoutsOp(t conn.Timeouts) Op { return Op{Op: OpSetTimeouts, Timeouts: &t} }

// Check reports an op that names no known command or lacks what its
// command needs, wrapping ipvs.ErrInvalid.
func (op Op) Check() error {
	var needSvc, needKey, needDest, needTimeouts bool
	switch op.Op {
	case OpAddService, OpEditService:
		needSvc = true
	case OpDelService:
		needKey = true
	case OpAddDest, OpEditDest, OpDelDest:
		needKey, needDest = true, true
	case OpFlush:
	case OpSetTimeouts:
		needTimeouts = true
	default:
		return fmt.Errorf("unknown op %q: use one of add_service edit_service del_service add_dest edit_dest del_dest flush set_timeouts: %w", op.Op, ipvs.ErrInvalid)
	}
	switch {
	case needSvc && op.Service == nil:
		return fmt.Errorf("op %s has no service: %w", op.Op, ipvs.ErrInvalid)
	case needKey && op.Key == (ServiceRef{}):
		return fmt.Errorf("op %s has no key: %w", op.Op, ipvs.ErrInvalid)
	case needDest && !op.Dest.Addr.IsValid():
		return fmt.Errorf("op %s has no dest: %w", op.Op, ipvs.ErrInvalid)
	case needTimeouts && op.Timeouts == nil:
		return fmt.Errorf("op %s has no timeouts: %w", op.Op, ipvs.ErrInvalid)
	}
	return nil
}

// BatchResult is what [Director.Apply] did.
type BatchResult struct {
	// Applied is how many ops were applied, counting from the first: all
	// of them when Apply returns nil, else the index of the op that failed
	// (when the error is a [*BatchError]).
	Applied int `json:"applied"`
}

// BatchError is the error of a batch that stopped at an op: the ops
// before it are applied, it and the ops after it are not. It unwraps to
// the op's own error, so errors.Is(err, ipvs.ErrNoService) and the like
// hold as for the single-change methods.
type BatchError struct {
	// Index is the failed op's index in the batch.
	Index int
	// Op is the failed op's command.
	Op OpKind
	// Err is the op's error, as the single-change method would return it.
	Err error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("batch op %d (%s): %v", e.Index, e.Op, e.Err)
}

func (e *BatchError) Unwrap() error { return e.Err }

// ApplyOne runs op through d's single-change methods. It is what an op
// means, for implementations of [Director.Apply] with nothing better to do.
func ApplyOne(ctx context.Context, d Director, op Op) error {
	if err := op.Check(); err != nil {
		return err
	}
	switch op.Op {
	case OpAddService:
		return d.AddService(ctx, *op.Service)
	case OpEditService:
		return d.EditService(ctx, *op.Service)
	case OpDelService:
		return d.DelService(ctx, op.ServiceKey())
	case OpAddDest:
		return d.AddDest(ctx, op.ServiceKey(), op.Dest)
	case OpEditDest:
		return d.EditDest(ctx, op.ServiceKey(), op.Dest)
	case OpDelDest:
		return d.DelDest(ctx, op.ServiceKey(), op.Dest.Key())
	case OpFlush:
		return d.Flush(ctx)
	case OpSetTimeouts:
		return d.SetTimeouts(ctx, *op.Timeouts)
	}
	return nil // Check refused everything else
}

// ApplyEach applies ops one at a time through [ApplyOne] with
// [Director.Apply]'s results: the stop at the first failing op, reported
// as a [*BatchError]. Other changes may come between the ops.
func ApplyEach(ctx context.Context, d Director, ops []Op) (BatchResult, error) {
	for i, op := range ops {
		if err := ApplyOne(ctx, d, op); err != nil {
			return BatchResult{Applied: i}, &BatchError{Index: i, Op: op.Op, Err: err}
		}
	}
	return BatchResult{Applied: len(ops)}, nil
}
