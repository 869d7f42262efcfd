package micro

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/dataplane/dataplanetest"
	"github.com/govs/govs/internal/director"
	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/ipvsadm"
	"github.com/govs/govs/internal/netns"
)

const (
	scaleServices = 10_000
	scaleDests    = 10
)

// scaleService is the i-th of the 10,000 services: TCP 10.100.x.y:80,
// wlc, with destinations 10.2.0.11-20:80 by NAT (what every data plane,
// the proxy included, can forward).
func scaleService(i int) (ipvs.Service, []ipvs.Destination) {
	a := netip.AddrFrom4([4]byte{10, 100, byte(i / 250), byte(1 + i%250)})
	svc := ipvs.Service{ServiceKey: ipvs.TCPService(netip.AddrPortFrom(a, 80)), Scheduler: "wlc"}
	svc.SetDefaults()
	ds := make([]ipvs.Destination, scaleDests)
	for j := range ds {
		ds[j] = ipvs.Destination{Addr: netip.AddrFrom4([4]byte{10, 2, 0, byte(11 + j)}), Port: 80, Fwd: ipvs.Masq, Weight: 1}
	}
	return svc, ds
}

// scaleRules is the same configuration as ipvsadm -S writes it.
func scaleRules() []byte {
	var b bytes.Buffer
	for i := range scaleServices {
		svc, ds := scaleService(i)
		fmt.Fprintf(&b, "-A -t %s:%d -s wlc\n", svc.Addr, svc.Port)
		for _, d := range ds {
			fmt.Fprintf(&b, "-a -t %s:%d -r %s:%d -m -w 1\n", svc.Addr, svc.Port, d.Addr, d.Port)
		}
	}
	return b.Bytes()
}

// scaleOps is the same configuration as batch ops, in the order -R sends
// them.
func scaleOps() []api.Op {
	ops := make([]api.Op, 0, scaleServices*(1+scaleDests))
	for i := range scaleServices {
		svc, ds := scaleService(i)
		ops = append(ops, api.AddServiceOp(svc))
		for _, d := range ds {
			ops = append(ops, api.AddDestOp(svc.ServiceKey, d))
		}
	}
	return ops
}

// applyBatch applies every service and destination through c's Apply,
// in batches of ipvsadm.DefaultBatchSize ops (what govsadm -R sends).
func applyBatch(ctx context.Context, c api.Director) error {
	ops := scaleOps()
	for len(ops) > 0 {
		n := min(len(ops), ipvsadm.DefaultBatchSize)
		if _, err := c.Apply(ctx, ops[:n]); err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}

// apply adds every service and destination through c, one call (one
// request, through the API client) each.
func apply(ctx context.Context, c applier) error {
	for i := range scaleServices {
		svc, ds := scaleService(i)
		if err := c.AddService(ctx, svc); err != nil {
			return fmt.Errorf("add service %d: %w", i, err)
		}
		for _, d := range ds {
			if err := c.AddDest(ctx, svc.ServiceKey, d); err != nil {
				return fmt.Errorf("add destination to service %d: %w", i, err)
			}
		}
	}
	return nil
}

// nullDataplane accepts everything in O(1): the control plane's and
// the API's cost without a data plane's.
type nullDataplane struct{}

func (nullDataplane) Name() string                                     { return "null" }
func (nullDataplane) CheckService(ipvs.Service) error                  { return nil }
func (nullDataplane) CheckDest(ipvs.Service, ipvs.Destination) error   { return nil }
func (nullDataplane) AddService(ipvs.Service) error                    { return nil }
func (nullDataplane) EditService(ipvs.Service) error                   { return nil }
func (nullDataplane) DelService(ipvs.ServiceKey) error                 { return nil }
func (nullDataplane) AddDest(ipvs.ServiceKey, ipvs.Destination) error  { return nil }
func (nullDataplane) EditDest(ipvs.ServiceKey, ipvs.Destination) error { return nil }
func (nullDataplane) DelDest(ipvs.ServiceKey, ipvs.DestKey) error      { return nil }
func (nullDataplane) Flush() error                                     { return nil }
func (nullDataplane) SetTimeouts(conn.Timeouts) error                  { return nil }
func (nullDataplane) Zero(*ipvs.ServiceKey) error                      { return nil }
func (nullDataplane) Services() ([]ipvs.ServiceState, error)           { return nil, nil }
func (nullDataplane) Conns() ([]conn.Info, error)                      { return nil, nil }
func (nullDataplane) Health() error                                    { return nil }
func (nullDataplane) Close() error                                     { return nil }

var _ dataplane.Dataplane = nullDataplane{}

// applier is what apply needs: the API client and the director alike.
type applier interface {
	AddService(context.Context, ipvs.Service) error
	AddDest(context.Context, ipvs.ServiceKey, ipvs.Destination) error
	Flush(context.Context) error
}

// fakeDirector serves the API on a unix socket over a director with dp.
func fakeDirector(b *testing.B, dp dataplane.Dataplane) (*api.Client, *director.Director) {
	b.Helper()
	dir, err := director.New(director.Config{Engine: engine.New(engine.Options{}), Dataplane: dp})
	if err != nil {
		b.Fatal(err)
	}
	sock := filepath.Join(b.TempDir(), "govsd.sock")
	l, err := api.Listen(sock)
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: api.NewServer(dir, slog.New(slog.DiscardHandler))}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return api.NewClient(sock), dir
}

// BenchmarkApply10kServicesAPI applies 10,000 services x 10 destinations
// to an in-process director: directly (no HTTP) one call per change, which
// is the baseline, and in batches; through internal/api's client in
// batches of 1,000 ops (POST /v1/batch, what govsadm -R sends) and one
// request per change; each over a null data plane and the recording fake;
// and govsadm -R's own code (ipvsadm.Main reading the rules, in process)
// through the client. s/apply is one whole configuration, cpu-s/apply the
// process's CPU time for it (client and server: both are in process).
// Every apply starts from a new director, so no run pays for the previous
// one's deleted destinations.
func BenchmarkApply10kServicesAPI(b *testing.B) {
	rules := scaleRules()
	for _, bc := range []struct {
		name  string
		dp    func() dataplane.Dataplane
		http  bool
		batch bool
		R     bool
	}{
		{"director/null", null, false, false, false},
		{"director-batch/null", null, false, true, false},
		{"batch/null", null, true, true, false},
		{"batch/fake", fake, true, true, false},
		{"govsadm-R/null", null, true, true, true},
		{"govsadm-R/fake", fake, true, true, true},
		{"each/null", null, true, false, false},
		{"each/fake", fake, true, false, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			var total, cpu time.Duration
			for range b.N {
				c, dir := fakeDirector(b, bc.dp())
				var d api.Director = dir
				if bc.http {
					d = c
				}
				cpu0 := selfCPU()
				start := time.Now()
				var err error
				switch {
				case bc.R:
					err = restore(ctx, d, rules)
				case bc.batch:
					err = applyBatch(ctx, d)
				default:
					err = apply(ctx, d)
				}
				if err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				cpu += selfCPU() - cpu0
				c.CloseIdleConnections()
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/apply")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/apply")
			b.ReportMetric(float64(total.Microseconds())/float64(b.N)/float64(scaleServices*(1+scaleDests)), "µs/change")
		})
	}
}

// selfCPU is the process's user and system CPU time so far: on a shared
// machine, the CPU an apply costs says more than its wall time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is process pid's user and system CPU time so far, from
// /proc/pid/stat (in clock ticks of 10 ms).
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// restore runs govsadm -R of rules against d.
func restore(ctx context.Context, d api.Director, rules []byte) error {
	var stderr bytes.Buffer
	code := ipvsadm.Main(ctx, []string{"govsadm", "-R"}, ipvsadm.Env{
		Stdin: bytes.NewReader(rules), Stdout: io.Discard, Stderr: &stderr,
		Dial: func(string) api.Director { return d },
	})
	if code != 0 || stderr.Len() > 0 {
		return fmt.Errorf("govsadm -R: exit %d: %s", code, stderr.String())
	}
	return nil
}

func null() dataplane.Dataplane { return nullDataplane{} }
func fake() dataplane.Dataplane { return dataplanetest.New("") }

var bins struct {
	dir            string
	govsd, govsadm string
	err            error
}

// TestMain builds govsd and govsadm once for the benchmarks that run
// the real binaries.
func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

func buildBins(b *testing.B) {
	b.Helper()
	if bins.dir == "" && bins.err == nil {
		bins.dir, bins.err = os.MkdirTemp("", "govs-micro-")
		if bins.err == nil {
			out, err := exec.Command("go", "build", "-o", bins.dir+"/", "github.com/govs/govs/cmd/govsd", "github.com/govs/govs/cmd/govsadm").CombinedOutput()
			if err != nil {
				bins.err = fmt.Errorf("build govsd and govsadm: %w: %s", err, out)
			}
			bins.govsd, bins.govsadm = filepath.Join(bins.dir, "govsd"), filepath.Join(bins.dir, "govsadm")
		}
	}
	if bins.err != nil {
		b.Fatal(bins.err)
	}
}

// govsd starts the real daemon with the proxy data plane (10,000
// listeners) in a namespace of its own and returns its socket and PID.
func govsd(b *testing.B) (string, int) {
	b.Helper()
	netns.RequireRoot(b)
	buildBins(b)
	ns := netns.New(b, "scale")
	sock := filepath.Join(b.TempDir(), "govsd.sock")
	cmd := exec.Command("nsenter", "--net=/run/netns/"+ns.Name, "--", bins.govsd, "--dataplane", "proxy", "--socket", sock, "--metrics-address", "", "--log-level", "warn")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	for range 200 {
		if _, err := os.Stat(sock); err == nil {
			return sock, cmd.Process.Pid
		}
		time.Sleep(25 * time.Millisecond)
	}
	b.Fatalf("govsd did not listen on %s: %s", sock, log.String())
	return "", 0
}

// govsadm runs govsadm and returns its output and CPU time.
func govsadm(b *testing.B, sock string, stdin []byte, args ...string) ([]byte, time.Duration) {
	b.Helper()
	cmd := exec.Command(bins.govsadm, args...)
	cmd.Env = append(os.Environ(), api.SocketEnv+"="+sock)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		b.Fatalf("govsadm %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes(), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// BenchmarkApply10kServicesGovsd applies the configuration to the real
// govsd (proxy data plane) through the API client in batches and one
// request per change, and through govsadm -R; then times govsadm -Ln over
// it. Each sub-benchmark starts its own govsd, and each apply starts from
// an empty table; run it with -benchtime 1x (a second apply would follow
// a flush, whose deleted destinations the engine still holds).
func BenchmarkApply10kServicesGovsd(b *testing.B) {
	rules := scaleRules()
	for _, bc := range []struct {
		name  string
		batch bool
	}{{"api-batch", true}, {"api-each", false}} {
		b.Run(bc.name, func(b *testing.B) {
			sock, pid := govsd(b)
			c := api.NewClient(sock)
			ctx := context.Background()
			var total, cpu, dcpu time.Duration
			for range b.N {
				if err := c.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				cpu0, dcpu0 := selfCPU(), procCPU(b, pid)
				start := time.Now()
				var err error
				if bc.batch {
					err = applyBatch(ctx, c)
				} else {
					err = apply(ctx, c)
				}
				if err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				cpu += selfCPU() - cpu0
				dcpu += procCPU(b, pid) - dcpu0
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/apply")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "client-cpu-s/apply")
			b.ReportMetric(dcpu.Seconds()/float64(b.N), "govsd-cpu-s/apply")
		})
	}
	b.Run("govsadm-R", func(b *testing.B) {
		sock, pid := govsd(b)
		var total, cpu, dcpu time.Duration
		for range b.N {
			govsadm(b, sock, nil, "-C")
			dcpu0 := procCPU(b, pid)
			start := time.Now()
			_, acpu := govsadm(b, sock, rules, "-R")
			total += time.Since(start)
			cpu += acpu
			dcpu += procCPU(b, pid) - dcpu0
		}
		b.ReportMetric(total.Seconds()/float64(b.N), "s/apply")
		b.ReportMetric(cpu.Seconds()/float64(b.N), "client-cpu-s/apply")
		b.ReportMetric(dcpu.Seconds()/float64(b.N), "govsd-cpu-s/apply")
		// Then the listing, with the 10,000 services in place.
		var ltotal time.Duration
		var lines int
		for range 3 {
			start := time.Now()
			out, _ := govsadm(b, sock, nil, "-Ln")
			ltotal += time.Since(start)
			lines = 0
			for sc := bufio.NewScanner(bytes.NewReader(out)); sc.Scan(); {
				lines++
			}
		}
		if want := 3 + scaleServices*(1+scaleDests); lines != want {
			b.Errorf("govsadm -Ln printed %d lines, want %d", lines, want)
		}
		b.ReportMetric(ltotal.Seconds()/3, "s/list")
	})
}
