//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	osexec "os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// debPackages are the Debian packages the harness runs, with the command
// each provides.
var debPackages = []struct{ pkg, cmd string }{
	{"wrk", "wrk"},
	{"nginx", "nginx"},
	{"haproxy", "haproxy"},
	{"iperf3", "iperf3"},
	{"nftables", "nft"},
	{"ethtool", "ethtool"},
	{"iproute2", "ip"},
	{"util-linux", "nsenter"},
}

type harness struct {
	mode       string
	reps       int
	dur        time.Duration
	iperfDur   time.Duration
	floodDur   time.Duration
	conns      int
	runID      string
	tmp        string
	out        string
	govsdBin   string
	govsadmBin string
	seq        int
	cur        *topo
	progress   func(format string, a ...any)
}

func main() {
	os.Exit(mainErr())
}

func mainErr() int {
	flag.Bool("quick", false, "quick mode: 3 short repetitions of every case (about 5 minutes; the default)")
	full := flag.Bool("full", false, "full mode: 5 longer repetitions (about 40 minutes)")
	out := flag.String("out", "", "results folder (default bench/results/<UTC date-time>)")
	casesFlag := flag.String("cases", "", "comma-separated cases or name prefixes to run (default all; see --list)")
	list := flag.Bool("list", false, "list the cases and exit")
	install := flag.Bool("install", false, "apt-get install the missing Debian packages first")
	reps := flag.Int("reps", 0, "repetitions (overrides the mode's)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: go run ./bench/cmd/govsbench [--quick|--full] [--out DIR] [--cases a,b] [--install]\n\n")
		fmt.Fprintf(os.Stderr, "Needs root and these Debian packages: %s\n\n", strings.Join(pkgNames(), " "))
		flag.PrintDefaults()
	}
	flag.Parse()
	all := allCases()
	floods := floodCases()
	if *list {
		for _, c := range all {
			fmt.Printf("%-16s %s\n", c.name, c.desc)
		}
		for _, c := range floods {
			fmt.Printf("%-16s UDP flood: %s\n", c.name, c.desc)
		}
		return 0
	}
	h := &harness{mode: "quick", reps: 3, dur: 3 * time.Second, iperfDur: 2 * time.Second, floodDur: 2 * time.Second, conns: 50}
	if *full {
		h.mode, h.reps, h.dur, h.iperfDur, h.floodDur = "full", 5, 15*time.Second, 10*time.Second, 10*time.Second
	}

	if *reps > 0 {
		h.reps = *reps
	}
	h.progress = func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "%s govsbench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "govsbench: needs root (network namespaces, BPF, nftables): run it with sudo")
		return 1
	}
	if err := checkPackages(*install); err != nil {
		fmt.Fprintf(os.Stderr, "govsbench: %v\n", err)
		return 1
	}
	sel := func(name string) bool {
		if *casesFlag == "" {
			return true
		}
		for _, s := range strings.Split(*casesFlag, ",") {
			if s = strings.TrimSpace(s); s != "" && strings.HasPrefix(name, s) {
				return true
			}
		}
		return false
	}
	named := func(name string) bool {
		for _, s := range strings.Split(*casesFlag, ",") {
			if strings.TrimSpace(s) == name {
				return true
			}
		}
		return false
	}
	var cases []benchCase
	for _, c := range all {
		if c.optIn && !named(c.name) {
			continue
		}
		if sel(c.name) {
			cases = append(cases, c)
		}
	}
	var fcases []benchCase
	for _, c := range floods {
		if sel(c.name) {
			fcases = append(fcases, c)
		}
	}
	if len(cases)+len(fcases) == 0 {
		fmt.Fprintf(os.Stderr, "govsbench: --cases %q matches no case (see --list)\n", *casesFlag)
		return 2
	}

	start := time.Now().UTC()
	h.out = *out
	if h.out == "" {
		h.out = filepath.Join("bench", "results", start.Format("2006-01-02T150405Z"))
	}
	if err := os.MkdirAll(h.out, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "govsbench: %v\n", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "govsbench-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "govsbench: %v\n", err)
		return 1
	}
	_ = os.Chmod(tmp, 0o755) // nginx workers run as www-data
	defer os.RemoveAll(tmp)
	h.tmp = tmp
	h.runID = fmt.Sprintf("%d", os.Getpid()%100000)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Whatever happens (a failure, Ctrl-C, a panic), the current case's
	// processes and namespaces go.
	defer func() {
		if h.cur != nil {
			h.cur.close()
		}
	}()

	h.progress("building govsd and govsadm")
	if err := h.build(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "govsbench: %v\n", err)
		return 1
	}
	res := &results{
		Command:  "go run ./bench/cmd/govsbench " + strings.Join(os.Args[1:], " "),
		Date:     start.Format(time.RFC3339),
		Mode:     h.mode,
		Reps:     h.reps,
		Machine:  machine(),
		Settings: map[string]string{"wrk": fmt.Sprintf("2 threads, %d connections, %s per run, --latency", h.conns, h.dur), "iperf3": fmt.Sprintf("-P 2 -t %s, client sends", h.iperfDur), "flood": fmt.Sprintf("%d flows, %d-byte UDP payloads, sendmmsg x%d, %s", floodFlows, floodPayload, floodBatch, h.floodDur)},
	}
	for _, c := range cases {
		res.Cases = append(res.Cases, &caseResult{Name: c.name, Desc: c.desc})
	}
	for _, c := range fcases {
		res.Floods = append(res.Floods, &floodCaseResult{Name: c.name, Desc: c.desc})
	}
	total := h.reps * (len(cases) + len(fcases))
	step := 0
	for rep := range h.reps {
		for i, c := range cases {
			cr := res.Cases[i]
			step++
			if cr.Status == errNotAvailable.Error() {
				continue
			}
			if ctx.Err() != nil {
				break
			}
			h.progress("[%d/%d] %s, repetition %d/%d", step, total, c.name, rep+1, h.reps)
			r, err := h.runCase(ctx, c)
			if err != nil && ctx.Err() != nil {
				break // interrupted: not a failure of the case
			}
			if err != nil {
				if errors.Is(err, errNotAvailable) {
					cr.Status = errNotAvailable.Error()
					cr.Note = err.Error()
					h.progress("  %s: not yet available (%v)", c.name, err)
					continue
				}
				cr.Errors = append(cr.Errors, err.Error())
				h.progress("  %s failed: %v", c.name, err)
				continue
			}
			cr.Reps = append(cr.Reps, r)
			h.progress("  short %.0f conn/s (p50 %.2f ms, p99 %.2f ms), keep-alive %.0f req/s, %.2f Gbit/s",
				r.Short.Rate, r.Short.P50ms, r.Short.P99ms, r.KeepAlive.Rate, r.Iperf.Gbps)
		}
		for i, c := range fcases {
			fr := res.Floods[i]
			step++
			if fr.Status == errNotAvailable.Error() || ctx.Err() != nil {
				continue
			}
			h.progress("[%d/%d] %s, repetition %d/%d", step, total, c.name, rep+1, h.reps)
			r, err := h.runFloodCase(ctx, c)
			if err != nil && ctx.Err() != nil {
				break
			}
			if err != nil {
				if errors.Is(err, errNotAvailable) {
					fr.Status = errNotAvailable.Error()
					fr.Note = err.Error()
					h.progress("  %s: not yet available", c.name)
					continue
				}
				fr.Errors = append(fr.Errors, err.Error())
				h.progress("  %s failed: %v", c.name, err)
				continue
			}
			fr.Reps = append(fr.Reps, r)
			h.progress("  sent %.0f pkt/s, forwarded %.0f pkt/s", r.SentPPS, r.ForwardedPPS)
		}
	}
	if ctx.Err() != nil {
		h.progress("interrupted: writing what was measured")
	}
	res.Duration = time.Since(start).Round(time.Second).String()
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.Machine["loadavg_at_end"] = strings.TrimSpace(string(b))
	}
	res.summarize()
	if err := res.write(h.out); err != nil {
		fmt.Fprintf(os.Stderr, "govsbench: %v\n", err)
		return 1
	}
	h.progress("done in %s: %s/{results.json,results.md,chart.png}", res.Duration, h.out)
	if ctx.Err() != nil {
		return 130
	}
	return 0
}

func pkgNames() []string {
	var s []string
	for _, p := range debPackages {
		s = append(s, p.pkg)
	}
	return s
}

// checkPackages finds the commands the harness runs; with install it
// apt-get installs the missing packages, else it says how.
func checkPackages(install bool) error {
	var missing []string
	for _, p := range debPackages {
		if _, err := osexec.LookPath(p.cmd); err != nil {
			missing = append(missing, p.pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	cmd := "apt-get install -y " + strings.Join(missing, " ")
	if !install {
		return fmt.Errorf("missing Debian packages %s: install them with\n\n  apt-get update && %s\n\nor run govsbench with --install", strings.Join(missing, ", "), cmd)
	}
	fmt.Fprintf(os.Stderr, "govsbench: installing %s\n", strings.Join(missing, " "))
	for _, args := range [][]string{{"update"}, append([]string{"install", "-y"}, missing...)} {
		c := osexec.Command("apt-get", args...)
		// RUNLEVEL=1: Debian's maintainer scripts do not start the
		// nginx and haproxy system services.
		c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "RUNLEVEL=1")
		c.Stdout, c.Stderr = os.Stderr, os.Stderr
		if err := c.Run(); err != nil {
			return fmt.Errorf("apt-get %s: %w", strings.Join(args, " "), err)
		}
	}
	return nil
}

// build compiles govsd and govsadm into the temp directory, from the
// module the command runs in.
func (h *harness) build(ctx context.Context) error {
	h.govsdBin = filepath.Join(h.tmp, "govsd")
	h.govsadmBin = filepath.Join(h.tmp, "govsadm")
	out, err := runOut(ctx, "go", "build", "-o", h.tmp+"/", "github.com/govs/govs/cmd/govsd", "github.com/govs/govs/cmd/govsadm")
	if err != nil {
		return fmt.Errorf("build govsd and govsadm: %w: %s", err, out)
	}
	return nil
}

// newTopo makes the next case's topology the current one (closed by
// main's deferred cleanup if the run stops inside it).
func (h *harness) newTopo(r routing) (*topo, error) {
	h.seq++
	t := newTopo(h.runID, h.seq, h.tmp)
	h.cur = t
	if err := t.build(r); err != nil {
		return t, fmt.Errorf("build topology: %w", err)
	}
	return t, nil
}

func (h *harness) closeTopo(t *topo) {
	t.close()
	h.cur = nil
}

// caseRep is one repetition of one case.
type caseRep struct {
	Short     wrkResult   `json:"short"`
	KeepAlive wrkResult   `json:"keepalive"`
	Iperf     iperfResult `json:"iperf"`
}

func (h *harness) runCase(ctx context.Context, c benchCase) (caseRep, error) {
	var r caseRep
	t, err := h.newTopo(c.routing)
	defer h.closeTopo(t)
	if err != nil {
		return r, err
	}
	if err := h.startServers(t); err != nil {
		return r, err
	}
	pid, err := c.setup(ctx, h, t)
	if err != nil {
		return r, err
	}
	targets := []string{vip + ":80"}
	iperfTarget := vip
	if c.direct {
		// The same client as every other case (one wrk, 2 threads), to
		// rs1 (nginx has 2 workers; the machine has 2 cores).
		targets = []string{rsIPs[0] + ":80"}
		iperfTarget = rsIPs[0]
	}
	for _, tg := range targets {
		if err := h.probe(ctx, t, tg); err != nil {
			return r, err
		}
	}
	if r.Short, err = h.runWrk(ctx, t, targets, true, h.dur, pid); err != nil {
		return r, fmt.Errorf("short connections: %w", err)
	}
	if r.KeepAlive, err = h.runWrk(ctx, t, targets, false, h.dur, pid); err != nil {
		return r, fmt.Errorf("keep-alive: %w", err)
	}
	if r.Iperf, err = h.runIperf(ctx, t, iperfTarget, h.iperfDur, pid); err != nil {
		return r, fmt.Errorf("throughput: %w", err)
	}
	return r, nil
}

// floodCases are the cases the UDP flood runs through.
func floodCases() []benchCase {
	want := map[string]bool{"direct": true, "nftables": true, "govs-tc-dr": true, "govs-tc-nat": true, "govs-xdp-dr": true, "govs-xdp-nat": true}
	var fs []benchCase
	for _, c := range allCases() {
		if want[c.name] {
			c.name = "flood-" + c.name
			fs = append(fs, c)
		}
	}
	return fs
}

func (h *harness) runFloodCase(ctx context.Context, c benchCase) (floodResult, error) {
	var r floodResult
	t, err := h.newTopo(c.routing)
	defer h.closeTopo(t)
	if err != nil {
		return r, err
	}
	pid, err := c.setup(ctx, h, t)
	if err != nil {
		return r, err
	}
	targets := []string{vip}
	if c.direct {
		targets = rsIPs[:]
	}
	return h.runFlood(ctx, t, targets, h.floodDur, pid)
}

func machine() map[string]string {
	m := map[string]string{"cpus": fmt.Sprint(runtime.NumCPU()), "go": runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m["kernel"] = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		l, _, _ := strings.Cut(string(b), "\n")
		m["memory"] = strings.Join(strings.Fields(l)[1:], " ")
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m["loadavg_at_start"] = strings.TrimSpace(string(b))
	}
	if h, err := os.Hostname(); err == nil {
		m["host"] = h
	}
	return m
}
