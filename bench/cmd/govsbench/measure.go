//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

func runOut(ctx context.Context, name string, args ...string) (string, error) {
	out, err := osexec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// cpuSample is the machine's CPU time (/proc/stat, all CPUs) and one
// process's (/proc/PID/stat), in clock ticks.
type cpuSample struct {
	at                    time.Time
	user, system, softirq uint64
	irq, idle, total      uint64
	procTicks             uint64
}

const clkTck = 100 // USER_HZ on Linux

func sampleCPU(pid int) cpuSample {
	s := cpuSample{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		var v [10]uint64
		for i := 1; i < len(f) && i <= 10; i++ {
			v[i-1], _ = strconv.ParseUint(f[i], 10, 64)
		}
		// user nice system idle iowait irq softirq steal guest guest_nice
		s.user, s.system, s.idle, s.irq, s.softirq = v[0]+v[1], v[2], v[3]+v[4], v[5], v[6]
		s.total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7]
	}
	if pid > 0 {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			// Fields after the command name (which may hold spaces).
			s2 := string(b)
			if i := strings.LastIndexByte(s2, ')'); i >= 0 {
				f := strings.Fields(s2[i+1:])
				// f[0] is field 3 (state); utime is field 14, stime 15.
				if len(f) > 13 {
					ut, _ := strconv.ParseUint(f[11], 10, 64)
					st, _ := strconv.ParseUint(f[12], 10, 64)
					s.procTicks = ut + st
				}
			}
		}
	}
	return s
}

// cpuUse is CPU used over an interval, in CPU-seconds.
type cpuUse struct {
	Seconds  float64 `json:"seconds"`
	Softirq  float64 `json:"softirq_s"`
	System   float64 `json:"system_s"`
	User     float64 `json:"user_s"`
	Busy     float64 `json:"busy_s"`
	Director float64 `json:"director_process_s"`
}

func cpuDelta(a, b cpuSample) cpuUse {
	t := func(x uint64) float64 { return float64(x) / clkTck }
	u := cpuUse{
		Seconds:  b.at.Sub(a.at).Seconds(),
		Softirq:  t(b.softirq - a.softirq),
		System:   t(b.system - a.system),
		User:     t(b.user - a.user),
		Director: t(b.procTicks - a.procTicks),
	}
	u.Busy = t((b.total - b.idle) - (a.total - a.idle))
	return u
}

// wrkResult is what one wrk run printed.
type wrkResult struct {
	Rate     float64 `json:"requests_per_s"`
	Requests float64 `json:"requests"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	Errors   int     `json:"socket_errors"`
	Non2xx   int     `json:"non_2xx"`
	CPU      cpuUse  `json:"cpu"`
}

var (
	reRate    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reTotal   = regexp.MustCompile(`([0-9]+) requests in`)
	reLat     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	reSockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := reRate.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in wrk output: %s", strings.TrimSpace(out))
	}
	r.Rate, _ = strconv.ParseFloat(m[1], 64)
	if m := reTotal.FindStringSubmatch(out); m != nil {
		r.Requests, _ = strconv.ParseFloat(m[1], 64)
	}
	for _, m := range reLat.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		switch m[3] {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if m[1] == "50" {
			r.P50ms = v
		} else {
			r.P99ms = v
		}
	}
	if m := reSockErr.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			r.Errors += n
		}
	}
	if m := reNon2xx.FindStringSubmatch(out); m != nil {
		r.Non2xx, _ = strconv.Atoi(m[1])
	}
	return r, nil
}

// runWrk runs wrk from the client namespace against each target at once
// (the direct path has two: one per realserver), splitting threads and
// connections, and sums the rates. Latencies are the targets' mean.
func (h *harness) runWrk(ctx context.Context, t *topo, targets []string, close bool, d time.Duration, dirPID int) (wrkResult, error) {
	threads, conns := 2, h.conns
	if len(targets) > 1 {
		threads, conns = 1, h.conns/len(targets)
	}
	outs := make([]string, len(targets))
	errs := make([]error, len(targets))
	before := sampleCPU(dirPID)
	var wg sync.WaitGroup
	for i, tg := range targets {
		args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", int(d.Seconds())), "--latency", "--timeout", "5s"}
		if close {
			args = append(args, "-H", "Connection: close")
		}
		args = append(args, "http://"+tg+"/")
		wg.Go(func() { outs[i], errs[i] = t.nsRun(ctx, "client", "wrk", args...) })
	}
	wg.Wait()
	after := sampleCPU(dirPID)
	var sum wrkResult
	for i := range targets {
		if errs[i] != nil {
			return sum, errs[i]
		}
		r, err := parseWrk(outs[i])
		if err != nil {
			return sum, err
		}
		sum.Rate += r.Rate
		sum.Requests += r.Requests
		sum.P50ms += r.P50ms / float64(len(targets))
		sum.P99ms += r.P99ms / float64(len(targets))
		sum.Errors += r.Errors
		sum.Non2xx += r.Non2xx
	}
	sum.CPU = cpuDelta(before, after)
	return sum, nil
}

// iperfResult is one iperf3 run: the client sends, so the bulk of the
// bytes crosses the director in every mode.
type iperfResult struct {
	Gbps float64 `json:"gbit_per_s"`
	CPU  cpuUse  `json:"cpu"`
}

func (h *harness) runIperf(ctx context.Context, t *topo, target string, d time.Duration, dirPID int) (iperfResult, error) {
	var r iperfResult
	before := sampleCPU(dirPID)
	out, err := t.nsRun(ctx, "client", "iperf3", "-c", target, "-p", "5201", "-t", strconv.Itoa(int(d.Seconds())), "-P", "2", "-J")
	after := sampleCPU(dirPID)
	if err != nil {
		return r, err
	}
	var j struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		return r, fmt.Errorf("parse iperf3 output: %w", err)
	}
	if j.Error != "" {
		return r, fmt.Errorf("iperf3: %s", j.Error)
	}
	r.Gbps = j.End.SumReceived.BitsPerSecond / 1e9
	r.CPU = cpuDelta(before, after)
	return r, nil
}

// probe fetches http://target/ from the client namespace until it
// answers (or 10 s pass): the case works before it is measured.
func (h *harness) probe(ctx context.Context, t *topo, target string) error {
	var last error
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		last = t.inNS("client", func() error {
			c, err := net.DialTimeout("tcp4", target, time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(2 * time.Second))
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %s", resp.Status)
			}
			return nil
		})
		if last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no answer from %s through the case: %w", target, last)
}
