package director_test

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/dataplane/proxy"
	"github.com/govs/govs/internal/director"
	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/ipvs"
)

// TestWithProxy runs the director over the real proxy data plane on the
// loopback: the proxy's refusals and failures leave the engine as it was.
func TestWithProxy(t *testing.T) {
	eng := engine.New(engine.Options{})
	p, err := proxy.New(eng, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	d, err := director.New(director.Config{Engine: eng, Dataplane: p})
	if err != nil {
		t.Fatal(err)
	}

	// A port someone else holds: the proxy cannot listen, the engine
	// must not keep the service.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	k := ipvs.TCPService(netip.MustParseAddrPort(busy.Addr().String()))
	if err := d.AddService(ctx, svc(k, "rr")); err == nil {
		t.Fatal("AddService on a busy port succeeded")
	}
	if n := len(eng.Services(time.Now())); n != 0 {
		t.Fatalf("engine kept %d services after the proxy failed", n)
	}

	// What the proxy cannot forward is refused before the engine sees it.
	if err := d.AddService(ctx, svc(mark, "rr")); !errors.Is(err, dataplane.ErrUnsupported) {
		t.Errorf("fwmark service: %v, want ErrUnsupported", err)
	}
	busy.Close()
	if err := d.AddService(ctx, svc(k, "rr")); err != nil {
		t.Fatal(err)
	}
	if err := d.AddDest(ctx, k, ipvs.Destination{Addr: netip.MustParseAddr("127.0.0.2"), Port: k.Port, Fwd: ipvs.Route, Weight: 1}); !errors.Is(err, dataplane.ErrUnsupported) {
		t.Errorf("DR destination: %v, want ErrUnsupported", err)
	}
	if err := d.AddDest(ctx, k, ipvs.Destination{Addr: netip.MustParseAddr("127.0.0.1"), Port: 1, Fwd: ipvs.Masq, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	st, err := d.Service(ctx, k)
	if err != nil || len(st.Dests) != 1 {
		t.Fatalf("Service = %+v, %v", st, err)
	}
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Health(); err != nil {
		t.Errorf("proxy health after flush: %v", err)
	}
}
