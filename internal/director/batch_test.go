package director_test

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/dataplane/dataplanetest"
	"github.com/govs/govs/internal/ipvs"
)

func batchOps() []api.Op {
	rs3 := ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.4"), Port: 80, Fwd: ipvs.Masq, Weight: 5}
	return []api.Op{
		api.AddServiceOp(svc(vip, "wrr")),
		api.AddDestOp(vip, rs1),
		api.AddDestOp(vip, rs2),
		api.AddServiceOp(svc(mark, "sh")),
		api.AddDestOp(mark, rs1),
		api.EditServiceOp(svc(vip, "rr")),
		api.AddDestOp(vip, rs3),
		api.EditDestOp(vip, ipvs.Destination{Addr: rs2.Addr, Port: rs2.Port, Fwd: ipvs.Masq, Weight: 9}),
		api.DelDestOp(vip, rs1.Key()),
		api.DelServiceOp(mark),
		api.SetTimeoutsOp(conn.Timeouts{TCP: time.Hour}),
		api.AddServiceOp(svc(vip2, "lc")),
	}
}

// TestApplyMeansOneByOne: a batch leaves the engine and the data plane as
// the same changes made one call each do, with the same data plane calls
// in the same order.
func TestApplyMeansOneByOne(t *testing.T) {
	one, batch := newRig(t), newRig(t)
	if _, err := api.ApplyEach(ctx, one.d, batchOps()); err != nil {
		t.Fatal(err)
	}
	res, err := batch.d.Apply(ctx, batchOps())
	if err != nil || res.Applied != len(batchOps()) {
		t.Fatalf("Apply = %+v, %v", res, err)
	}
	batch.agree(t)
	if a, b := config(one.eng.Services(time.Now())), config(batch.eng.Services(time.Now())); !reflect.DeepEqual(a, b) {
		t.Errorf("engines differ:\none by one %+v\n     batch %+v", a, b)
	}
	if a, b := one.dp.Calls(), batch.dp.Calls(); !reflect.DeepEqual(a, b) {
		t.Errorf("data plane calls differ:\none by one %v\n     batch %v", a, b)
	}
	// A flush in a batch, then a service again: the director's own view of
	// the services follows.
	if _, err := batch.d.Apply(ctx, []api.Op{api.FlushOp(), api.AddServiceOp(svc(vip, "sh")), api.AddDestOp(vip, rs2)}); err != nil {
		t.Fatal(err)
	}
	batch.agree(t)
}

// TestApplyStops: the first refused op stops the batch with its index and
// its own error; the ops before it stay applied, the ops after it are
// not; a data plane failure rolls back that op alone.
func TestApplyStops(t *testing.T) {
	r := newRig(t)
	ops := []api.Op{
		api.AddServiceOp(svc(vip, "wrr")),
		api.AddDestOp(vip, rs1),
		api.AddDestOp(vip2, rs1), // no such service
		api.AddServiceOp(svc(mark, "sh")),
	}
	res, err := r.d.Apply(ctx, ops)
	var be *api.BatchError
	if !errors.As(err, &be) || be.Index != 2 || be.Op != api.OpAddDest || res.Applied != 2 || !errors.Is(err, ipvs.ErrNoService) {
		t.Fatalf("Apply = %+v, %v", res, err)
	}
	if want := r.d.AddDest(ctx, vip2, rs1); be.Err.Error() != want.Error() {
		t.Errorf("op error %q, want AddDest's %q", be.Err, want)
	}
	if got := config(r.eng.Services(time.Now())); len(got) != 1 || len(got[0].Dests) != 1 {
		t.Errorf("engine %+v, want the first two ops", got)
	}
	r.agree(t)

	r.dp.FailNext("AddDest", nil)
	res, err = r.d.Apply(ctx, []api.Op{api.AddDestOp(vip, rs2), api.AddServiceOp(svc(mark, "sh"))})
	if !errors.As(err, &be) || be.Index != 0 || res.Applied != 0 || !errors.Is(err, dataplanetest.ErrInjected) {
		t.Fatalf("Apply = %+v, %v", res, err)
	}
	if got := config(r.eng.Services(time.Now())); len(got) != 1 || len(got[0].Dests) != 1 {
		t.Errorf("engine %+v after the rollback", got)
	}
	r.agree(t)

	// A bad op is refused like any other.
	res, err = r.d.Apply(ctx, []api.Op{api.FlushOp(), {Op: api.OpAddDest}})
	if !errors.As(err, &be) || be.Index != 1 || !errors.Is(err, ipvs.ErrInvalid) {
		t.Errorf("bad op: %+v, %v", res, err)
	}
	r.agree(t)
}

func TestApplyCancelled(t *testing.T) {
	r := newRig(t)
	c, cancel := context.WithCancel(ctx)
	cancel()
	res, err := r.d.Apply(c, batchOps())
	var be *api.BatchError
	if !errors.As(err, &be) || be.Index != 0 || res.Applied != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("Apply = %+v, %v", res, err)
	}
	if n := len(r.dp.ChangeCalls()); n != 0 {
		t.Errorf("%d data plane changes", n)
	}
}

// TestAddDestSeesEditedService: a destination is checked and normalised
// against the service's current settings, also right after an edit in
// the same batch and for a key given IPv4-mapped.
func TestAddDestSeesEditedService(t *testing.T) {
	r := newRig(t)
	mapped := vip
	mapped.Addr = netip.AddrFrom16(vip.Addr.As16())
	mapped.Family = ipvs.FamilyNone
	if _, err := r.d.Apply(ctx, []api.Op{
		api.AddServiceOp(svc(vip, "wrr")),
		api.EditServiceOp(ipvs.Service{ServiceKey: vip, Scheduler: "sh", Persistent: true, Timeout: 30}),
		api.AddDestOp(mapped, rs1),
	}); err != nil {
		t.Fatal(err)
	}
	var checked []ipvs.Service
	for _, c := range r.dp.Calls() {
		if c.Method == "CheckDest" {
			checked = append(checked, c.Args[0].(ipvs.Service))
		}
	}
	if len(checked) != 1 || checked[0].Scheduler != "sh" || !checked[0].Persistent || checked[0].Timeout != 30 {
		t.Errorf("CheckDest saw %+v", checked)
	}
	r.agree(t)
}
