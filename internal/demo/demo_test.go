package demo

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/dataplane/proxy"
	"github.com/govs/govs/internal/director"
	"github.com/govs/govs/internal/engine"
)

// freePort returns a TCP port free on 127.0.0.1..4 right now.
func freePort(t *testing.T) uint16 {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := uint16(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		ok := true
		for i := 2; i <= 4; i++ {
			l2, err := net.Listen("tcp", netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(i)}), port).String())
			if err != nil {
				ok = false
				break
			}
			l2.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no free port on 127.0.0.1-4")
	return 0
}

// TestRunSpreadsTrafficInWRROrder runs the demo end to end through the
// proxy data plane and checks the realservers answer in the kernel's wrr
// order: rs1..rs3 are added with weights 3, 2, 1, so the list is rs3 rs2
// rs1 (newest first); adding leaves wrr's current weight at 1, so the
// first pass takes each in list order, then a full cycle starts at cw=3:
// rs3 rs2 rs1 | rs1 | rs2 rs1 | rs3 rs2 rs1.
func TestRunSpreadsTrafficInWRROrder(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng := engine.New(engine.Options{})
	p, err := proxy.New(eng, log)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	d, err := director.New(director.Config{Engine: eng, Dataplane: p, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := Config{VIP: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), Every: time.Millisecond, Requests: 9, TableEvery: 9}
	if err := Run(ctx, d, cfg, &out); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	got := regexp.MustCompile(`request \d+ -> (rs\d)`).FindAllStringSubmatch(out.String(), -1)
	var seq []string
	for _, m := range got {
		seq = append(seq, m[1])
	}
	want := "rs3 rs2 rs1 rs1 rs2 rs1 rs3 rs2 rs1"
	if strings.Join(seq, " ") != want {
		t.Fatalf("answers = %q, want %q\n%s", strings.Join(seq, " "), want, out.String())
	}
	for _, line := range []string{
		"TCP  127.0.0.1:" + itoa(port) + " wrr",
		"  -> 127.0.0.2:" + itoa(port),
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
	// rs1 (weight 3) served four of the nine requests. Each HTTP exchange
	// closed, so once the proxy has seen the last FIN all four count as
	// InActConn (TIME_WAIT) and none as ActiveConn.
	rs1 := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), port)
	var active, inact uint32
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		svcs, err := d.Services(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ds := range svcs[0].Dests {
			if ds.AddrPort() == rs1 {
				active, inact = ds.ActiveConns, ds.InactConns
			}
		}
		if active == 0 && inact == 4 {
			return
		}
	}
	t.Errorf("rs1: ActiveConn %d InActConn %d, want 0 and 4 after nine closed requests", active, inact)
}

func itoa(p uint16) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), p).String()[len("0.0.0.0:"):]
}

func TestRulesDefault(t *testing.T) {
	want := `# govs demo: the embedded default configuration, in ipvsadm -S format
# (govsadm -R reads it too). A wrr service on the VIP and three NAT
# realservers on other loopback addresses, weighted 3:2:1.
-A -t 127.0.0.1:8080 -s wrr
-a -t 127.0.0.1:8080 -r 127.0.0.2:8080 -m -w 3
-a -t 127.0.0.1:8080 -r 127.0.0.3:8080 -m -w 2
-a -t 127.0.0.1:8080 -r 127.0.0.4:8080 -m -w 1
`
	if got := Rules(Config{}); got != want {
		t.Fatalf("Rules =\n%s\nwant\n%s", got, want)
	}
}
