package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/api/apitest"
	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

// TestBatchRoundTrip: every kind of op crosses the socket and reaches the
// director as the single-change method's call would, keys of every form
// included.
func TestBatchRoundTrip(t *testing.T) {
	fake, c := newPair(t)
	ctx := context.Background()
	d := ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Fwd: ipvs.Masq, Weight: 3, Upper: 7, ProxyProtocol: 2}
	svc4 := ipvs.Service{ServiceKey: tcp4, Scheduler: "rr", Netmask: 32}
	svc6 := ipvs.Service{ServiceKey: udp6, Scheduler: "wlc", Netmask: 128}
	mk := ipvs.Service{ServiceKey: mark6, Scheduler: "sh", Netmask: 128, Persistent: true, Timeout: 60}
	ops := []api.Op{
		api.FlushOp(),
		api.AddServiceOp(svc4),
		api.AddServiceOp(svc6),
		api.AddServiceOp(mk),
		api.AddDestOp(tcp4, d),
		api.AddDestOp(udp6, ipvs.Destination{Addr: netip.MustParseAddr("2001:db8::2"), Port: 53, Weight: 1}),
		api.AddDestOp(mark6, ipvs.Destination{Addr: netip.MustParseAddr("2001:db8::3"), Port: 0, Fwd: ipvs.Route, Weight: 1}),
		api.EditServiceOp(ipvs.Service{ServiceKey: tcp4, Scheduler: "wrr", Netmask: 32}),
		api.EditDestOp(tcp4, ipvs.Destination{Addr: d.Addr, Port: 80, Fwd: ipvs.Masq, Weight: 0}),
		api.DelDestOp(mark6, ipvs.DestKey{Addr: netip.MustParseAddr("2001:db8::3")}),
		api.DelServiceOp(udp6),
		api.SetTimeoutsOp(conn.Timeouts{TCP: time.Hour}),
	}
	fake.Calls() // nothing yet
	res, err := c.Apply(ctx, ops)
	if err != nil || res.Applied != len(ops) {
		t.Fatalf("Apply = %+v, %v", res, err)
	}
	// The same calls as one request each.
	ref := apitest.New()
	if _, err := api.ApplyEach(ctx, ref, ops); err != nil {
		t.Fatal(err)
	}
	got, want := fake.Calls(), ref.Calls()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("calls through the API:\n%v\nwant\n%v", got, want)
	}
	if res, err := c.Apply(ctx, nil); err != nil || res.Applied != 0 {
		t.Errorf("empty batch: %+v, %v", res, err)
	}
}

// TestBatchStops: a batch stops at the first op the director refuses and
// reports its index, command and error (the sentinel and the message of
// the single-change method); the ops before it stay applied.
func TestBatchStops(t *testing.T) {
	fake, c := newPair(t)
	ctx := context.Background()
	d := ipvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Weight: 1}
	ops := []api.Op{
		api.AddServiceOp(ipvs.Service{ServiceKey: tcp4, Scheduler: "rr"}),
		api.AddDestOp(tcp4, d),
		api.AddDestOp(tcp4, d), // refused
		api.AddServiceOp(ipvs.Service{ServiceKey: sctp4, Scheduler: "rr"}),
	}
	res, err := c.Apply(ctx, ops)
	var be *api.BatchError
	if !errors.As(err, &be) || be.Index != 2 || be.Op != api.OpAddDest || res.Applied != 2 {
		t.Fatalf("Apply = %+v, %#v; want a BatchError at 2", res, err)
	}
	if !errors.Is(err, ipvs.ErrDestExists) || errors.Is(err, ipvs.ErrNoService) {
		t.Errorf("err %v does not unwrap to ErrDestExists alone", err)
	}
	if want := fmt.Sprintf("add destination %s to %s: %s", d.AddrPort(), tcp4, ipvs.ErrDestExists); be.Err.Error() != want {
		t.Errorf("op error %q, want the fake's %q", be.Err, want)
	}
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeDestExists || ae.Status != 409 {
		t.Errorf("api error %#v", ae)
	}
	svcs, _ := fake.Services(ctx)
	if len(svcs) != 1 || len(svcs[0].Dests) != 1 {
		t.Errorf("table %+v, want the first two ops applied", svcs)
	}

	// An injected failure of the first op.
	fake.Fail("Flush", fmt.Errorf("flush: %w", ipvs.ErrInvalid))
	res, err = c.Apply(ctx, []api.Op{api.FlushOp()})
	if !errors.As(err, &be) || be.Index != 0 || res.Applied != 0 || !errors.Is(err, ipvs.ErrInvalid) {
		t.Errorf("Apply = %+v, %v", res, err)
	}
}

// TestBatchClientRefuses: the client refuses an op whose key has no form
// in the API, or that lacks what its command needs, as the single-change
// methods refuse them: after sending the ops before it.
func TestBatchClientRefuses(t *testing.T) {
	fake, c := newPair(t)
	ctx := context.Background()
	bad := ipvs.ServiceKey{Family: ipvs.IPv6, Protocol: ipvs.ProtoTCP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}
	for _, op := range []api.Op{
		api.DelServiceOp(bad),
		{Op: api.OpAddDest, Key: api.ServiceRef(tcp4)},
		{Op: api.OpDelService},
		{Op: api.OpAddService},
		{Op: api.OpSetTimeouts},
		{Op: "zero"},
	} {
		res, err := c.Apply(ctx, []api.Op{api.FlushOp(), op, api.FlushOp()})
		var be *api.BatchError
		if !errors.As(err, &be) || be.Index != 1 || res.Applied != 1 || !errors.Is(err, ipvs.ErrInvalid) {
			t.Errorf("%+v: Apply = %+v, %v", op, res, err)
		}
	}
	if n := len(fake.Calls()); n != 6 {
		t.Errorf("%d calls, want the 6 flushes before the bad ops: %v", n, fake.Calls())
	}
	if _, err := c.Apply(ctx, make([]api.Op, api.MaxBatchOps+1)); !errors.Is(err, ipvs.ErrInvalid) {
		t.Errorf("too many ops: %v", err)
	}
}

func TestBatchServerRequests(t *testing.T) {
	fake := apitest.New()
	socket := serve(t, fake)
	for _, tc := range []struct {
		body   string
		status int
		code   string
		index  *int
	}{
		{`[]`, 200, "", nil},
		{`[{"op":"add_service","service":{"protocol":"tcp","addr":"10.0.0.1","port":80,"scheduler":"rr"}},` +
			`{"op":"add_dest","key":"tcp/10.0.0.1:80","dest":{"addr":"10.0.0.2","port":80,"fwd":"masq","weight":1}}]`, 200, "", nil},
		{`[{"op":"add_dest","key":"tcp/10.0.0.1:80","dest":{"addr":"10.0.0.3","port":80}},{"op":"del_service","key":"tcp/10.0.0.9:80"}]`, 404, api.CodeNoService, ptr(1)},
		{`[{"op":"bogus"}]`, 400, api.CodeInvalid, ptr(0)},
		{`[{"op":"flush","extra":1}]`, 400, api.CodeInvalid, nil},
		{`[{"op":"del_service","key":"tcp/nowhere"}]`, 400, api.CodeInvalid, nil},
		{`{"op":"flush"}`, 400, api.CodeInvalid, nil},
		{``, 400, api.CodeInvalid, nil},
		{`[` + strings.Repeat(`{"op":"flush"},`, api.MaxBatchOps) + `{"op":"flush"}]`, 400, api.CodeInvalid, nil},
	} {
		status, _, eb := raw(t, socket, "POST", "/v1/batch", tc.body)
		if status != tc.status || eb.Code != tc.code || !reflect.DeepEqual(eb.OpIndex, tc.index) {
			t.Errorf("%.80s: %d %+v, want %d %s index %v", tc.body, status, eb, tc.status, tc.code, tc.index)
		}
	}
	// A successful batch answers what it applied.
	c := api.NewClient(socket)
	defer c.CloseIdleConnections()
	res, err := c.Apply(context.Background(), []api.Op{api.FlushOp(), api.FlushOp()})
	if err != nil || res.Applied != 2 {
		t.Errorf("Apply = %+v, %v", res, err)
	}
	if status, allow, _ := raw(t, socket, "GET", "/v1/batch", ""); status != 405 || allow != "POST" {
		t.Errorf("GET /v1/batch: %d allow %q", status, allow)
	}
}

func ptr(i int) *int { return &i }

// TestOpJSON pins the wire form of ops.
func TestOpJSON(t *testing.T) {
	for _, tc := range []struct {
		op   api.Op
		want string
	}{
		{api.FlushOp(), `{"op":"flush"}`},
		{api.DelServiceOp(mark4), `{"op":"del_service","key":"fwmark/7/ipv4"}`},
		{api.AddDestOp(udp6, ipvs.Destination{Addr: netip.MustParseAddr("2001:db8::2"), Port: 53, Fwd: ipvs.Route, Weight: 2}),
			`{"op":"add_dest","key":"udp/[2001:db8::1]:53","dest":{"addr":"2001:db8::2","port":53,"fwd":"route","weight":2}}`},
		{api.DelDestOp(tcp4, ipvs.DestKey{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80}),
			`{"op":"del_dest","key":"tcp/10.0.0.1:80","dest":{"addr":"10.0.0.2","port":80,"fwd":"masq","weight":0}}`},
		{api.SetTimeoutsOp(conn.Timeouts{UDP: time.Second}), `{"op":"set_timeouts","timeouts":{"tcp":0,"tcp_fin":0,"udp":1000000000}}`},
	} {
		b, err := json.Marshal(tc.op)
		if err != nil || string(b) != tc.want {
			t.Errorf("%+v: %s, %v; want %s", tc.op, b, err, tc.want)
			continue
		}
		var back api.Op
		if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, tc.op) {
			t.Errorf("%s: back %+v, %v", b, back, err)
		}
	}
}

// FuzzBatchBody: any body to POST /v1/batch is answered, 200 with what was
// applied or an error body, without a panic; a stopped batch names an op
// that exists.
func FuzzBatchBody(f *testing.F) {
	f.Add(`[{"op":"flush"}]`)
	f.Add(`[{"op":"add_service","service":{"protocol":"tcp","addr":"10.0.0.1","port":80}},{"op":"add_dest","key":"tcp/10.0.0.1:80","dest":{"addr":"10.0.0.2","port":80}}]`)
	f.Add(`[{"op":"del_dest","key":"fwmark/7/ipv6","dest":{"addr":"::1"}},{"op":"set_timeouts","timeouts":{"tcp":1}}]`)
	f.Add(`[{"op":"edit_dest","key":"udp/[2001:db8::1]:53"}]`)
	f.Fuzz(func(t *testing.T, body string) {
		h := api.NewServer(apitest.New(), slog.New(slog.DiscardHandler))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/v1/batch", strings.NewReader(body)))
		if w.Code == 200 {
			var res api.BatchResult
			if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
				t.Fatalf("200 with %q: %v", w.Body, err)
			}
			return
		}
		var eb api.ErrorBody
		if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Code == "" {
			t.Fatalf("%d with %q: %v", w.Code, w.Body, err)
		}
		if eb.OpIndex != nil {
			var ops []json.RawMessage
			if json.Unmarshal([]byte(body), &ops) != nil || *eb.OpIndex < 0 || *eb.OpIndex >= len(ops) {
				t.Fatalf("op_index %d for %q", *eb.OpIndex, body)
			}
		}
	})
}
