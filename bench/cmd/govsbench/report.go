//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

type results struct {
	Command  string             `json:"command"`
	Date     string             `json:"date"`
	Duration string             `json:"duration"`
	Mode     string             `json:"mode"`
	Reps     int                `json:"repetitions"`
	Machine  map[string]string  `json:"machine"`
	Settings map[string]string  `json:"settings"`
	Cases    []*caseResult      `json:"cases"`
	Floods   []*floodCaseResult `json:"udp_flood"`
}

// stat is a median with its spread (min and max over the repetitions).
type stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

func newStat(v []float64) stat {
	if len(v) == 0 {
		return stat{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{Median: m, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// MarshalJSON writes NaN (no data) as null.
func (s stat) MarshalJSON() ([]byte, error) {
	if math.IsNaN(s.Median) {
		return []byte("null"), nil
	}
	type plain stat
	return json.Marshal(plain(s))
}

// summary is a case's figures over its repetitions.
type summary struct {
	ShortCPS        stat `json:"short_conn_per_s"`
	KeepAliveRPS    stat `json:"keepalive_req_per_s"`
	Gbps            stat `json:"throughput_gbit_per_s"`
	P50ms           stat `json:"short_latency_p50_ms"`
	P99ms           stat `json:"short_latency_p99_ms"`
	KeepAliveP50ms  stat `json:"keepalive_latency_p50_ms"`
	KeepAliveP99ms  stat `json:"keepalive_latency_p99_ms"`
	SoftirqMsPer1k  stat `json:"softirq_ms_per_1k_conns"`
	BusyMsPer1k     stat `json:"machine_busy_ms_per_1k_conns"`
	DirectorMsPer1k stat `json:"director_process_ms_per_1k_conns"`
	SoftirqPerGbps  stat `json:"softirq_cores_per_gbit_s"`
	DirectorPerGbps stat `json:"director_process_cores_per_gbit_s"`
	Errors          stat `json:"short_socket_errors"`
}

type ratios struct {
	ShortCPS     float64 `json:"short_conn_per_s"`
	KeepAliveRPS float64 `json:"keepalive_req_per_s"`
	Gbps         float64 `json:"throughput_gbit_per_s"`
}

type caseResult struct {
	Name    string    `json:"name"`
	Desc    string    `json:"description"`
	Status  string    `json:"status"` // ok, not yet available, failed
	Note    string    `json:"note,omitempty"`
	Errors  []string  `json:"errors,omitempty"`
	Reps    []caseRep `json:"repetitions"`
	Summary *summary  `json:"summary,omitempty"`
	Ratio   *ratios   `json:"ratio_to_direct,omitempty"`
}

type floodCaseResult struct {
	Name      string        `json:"name"`
	Desc      string        `json:"description"`
	Status    string        `json:"status"`
	Note      string        `json:"note,omitempty"`
	Errors    []string      `json:"errors,omitempty"`
	Reps      []floodResult `json:"repetitions"`
	Sent      *stat         `json:"sent_pps,omitempty"`
	Forwarded *stat         `json:"forwarded_pps,omitempty"`
	Ratio     float64       `json:"ratio_to_direct,omitempty"`
}

func col[T any](rs []T, f func(T) float64) []float64 {
	var v []float64
	for _, r := range rs {
		x := f(r)
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			v = append(v, x)
		}
	}
	return v
}

// perGbps is CPU cores used per Gbit/s moved (NaN, left out, when
// nothing moved).
func perGbps(secs float64, r iperfResult) float64 {
	if r.Gbps < 0.01 || r.CPU.Seconds == 0 {
		return math.NaN()
	}
	return secs / r.CPU.Seconds / r.Gbps
}

func (res *results) summarize() {
	var direct *summary
	for _, c := range res.Cases {
		if c.Status == "" {
			if len(c.Reps) > 0 {
				c.Status = "ok"
			} else {
				c.Status = "failed"
			}
		}
		if len(c.Reps) == 0 {
			continue
		}
		per1k := func(secs float64, r wrkResult) float64 { return secs * 1000 / (r.Requests / 1000) }
		s := &summary{
			ShortCPS:        newStat(col(c.Reps, func(r caseRep) float64 { return r.Short.Rate })),
			KeepAliveRPS:    newStat(col(c.Reps, func(r caseRep) float64 { return r.KeepAlive.Rate })),
			Gbps:            newStat(col(c.Reps, func(r caseRep) float64 { return r.Iperf.Gbps })),
			P50ms:           newStat(col(c.Reps, func(r caseRep) float64 { return r.Short.P50ms })),
			P99ms:           newStat(col(c.Reps, func(r caseRep) float64 { return r.Short.P99ms })),
			KeepAliveP50ms:  newStat(col(c.Reps, func(r caseRep) float64 { return r.KeepAlive.P50ms })),
			KeepAliveP99ms:  newStat(col(c.Reps, func(r caseRep) float64 { return r.KeepAlive.P99ms })),
			SoftirqMsPer1k:  newStat(col(c.Reps, func(r caseRep) float64 { return per1k(r.Short.CPU.Softirq, r.Short) })),
			BusyMsPer1k:     newStat(col(c.Reps, func(r caseRep) float64 { return per1k(r.Short.CPU.Busy, r.Short) })),
			DirectorMsPer1k: newStat(col(c.Reps, func(r caseRep) float64 { return per1k(r.Short.CPU.Director, r.Short) })),
			SoftirqPerGbps:  newStat(col(c.Reps, func(r caseRep) float64 { return perGbps(r.Iperf.CPU.Softirq, r.Iperf) })),
			DirectorPerGbps: newStat(col(c.Reps, func(r caseRep) float64 { return perGbps(r.Iperf.CPU.Director, r.Iperf) })),
			Errors:          newStat(col(c.Reps, func(r caseRep) float64 { return float64(r.Short.Errors) })),
		}
		c.Summary = s
		if c.Name == "direct" {
			direct = s
		}
	}
	if direct != nil {
		for _, c := range res.Cases {
			if c.Summary != nil {
				c.Ratio = &ratios{
					ShortCPS:     c.Summary.ShortCPS.Median / direct.ShortCPS.Median,
					KeepAliveRPS: c.Summary.KeepAliveRPS.Median / direct.KeepAliveRPS.Median,
					Gbps:         c.Summary.Gbps.Median / direct.Gbps.Median,
				}
			}
		}
	}
	var directFlood float64
	for _, f := range res.Floods {
		if f.Status == "" {
			f.Status = "ok"
			if len(f.Reps) == 0 {
				f.Status = "failed"
			}
		}
		if len(f.Reps) == 0 {
			continue
		}
		s := newStat(col(f.Reps, func(r floodResult) float64 { return r.SentPPS }))
		fw := newStat(col(f.Reps, func(r floodResult) float64 { return r.ForwardedPPS }))
		f.Sent, f.Forwarded = &s, &fw
		if f.Name == "flood-direct" {
			directFlood = fw.Median
		}
	}
	if directFlood > 0 {
		for _, f := range res.Floods {
			if f.Forwarded != nil {
				f.Ratio = f.Forwarded.Median / directFlood
			}
		}
	}
}

func (res *results) write(dir string) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(res.markdown()), 0o644); err != nil {
		return err
	}
	png, err := res.chart()
	if err != nil {
		return fmt.Errorf("draw chart: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, "chart.png"), png, 0o644)
}

// fmtStat is "median (min-max)".
func fmtStat(s stat, prec int) string {
	if s.N == 0 || math.IsNaN(s.Median) {
		return "-"
	}
	f := func(v float64) string { return trimFloat(v, prec) }
	if s.N == 1 || s.Min == s.Max {
		return f(s.Median)
	}
	return fmt.Sprintf("%s (%s-%s)", f(s.Median), f(s.Min), f(s.Max))
}

func trimFloat(v float64, prec int) string {
	if math.Abs(v) >= 1000 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.*f", prec, v)
}

func pct(r float64) string {
	if r == 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", r*100)
}

func (res *results) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# govsbench results\n\n")
	fmt.Fprintf(&b, "- command: `%s`\n- date: %s (took %s), mode %s, %d repetitions\n", res.Command, res.Date, res.Duration, res.Mode, res.Reps)
	fmt.Fprintf(&b, "- machine: %s, %s CPUs, %s, kernel %s, %s\n", res.Machine["cpu"], res.Machine["cpus"], res.Machine["memory"], res.Machine["kernel"], res.Machine["go"])
	fmt.Fprintf(&b, "- load average at start %s, at end %s (other work on the machine shares the CPUs)\n", res.Machine["loadavg_at_start"], res.Machine["loadavg_at_end"])
	keys := make([]string, 0, len(res.Settings))
	for k := range res.Settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "- %s: %s\n", k, res.Settings[k])
	}
	fmt.Fprintf(&b, "\nMedian (min-max) over the repetitions; %% is the median against the direct path of this run.\n\n")
	fmt.Fprintf(&b, "| case | short conn/s | %% | keep-alive req/s | %% | Gbit/s | %% | p50 ms | p99 ms | softirq ms /1k conn | machine busy ms /1k conn | director proc ms /1k conn | softirq cores /Gbit/s | director proc cores /Gbit/s |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range res.Cases {
		if c.Summary == nil {
			msg := c.Status
			if c.Status == "failed" && len(c.Errors) > 0 {
				msg = "failed: " + c.Errors[0]
			}
			fmt.Fprintf(&b, "| %s | %s |||||||||||||\n", c.Name, strings.ReplaceAll(msg, "|", "/"))
			continue
		}
		s := c.Summary
		r := c.Ratio
		if r == nil {
			r = &ratios{}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", c.Name,
			fmtStat(s.ShortCPS, 0), pct(r.ShortCPS), fmtStat(s.KeepAliveRPS, 0), pct(r.KeepAliveRPS),
			fmtStat(s.Gbps, 2), pct(r.Gbps), fmtStat(s.P50ms, 2), fmtStat(s.P99ms, 2),
			fmtStat(s.SoftirqMsPer1k, 1), fmtStat(s.BusyMsPer1k, 1), fmtStat(s.DirectorMsPer1k, 1),
			fmtStat(s.SoftirqPerGbps, 3), fmtStat(s.DirectorPerGbps, 3))
	}
	if len(res.Floods) > 0 {
		fmt.Fprintf(&b, "\n## Small-packet UDP flood\n\n| case | sent pkt/s | forwarded pkt/s | %% of direct |\n|---|---|---|---|\n")
		for _, f := range res.Floods {
			if f.Forwarded == nil {
				fmt.Fprintf(&b, "| %s | %s | | |\n", f.Name, f.Status)
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", f.Name, fmtStat(*f.Sent, 0), fmtStat(*f.Forwarded, 0), pct(f.Ratio))
		}
	}
	var notes []string
	for _, c := range res.Cases {
		for _, e := range c.Errors {
			notes = append(notes, fmt.Sprintf("- %s: %s", c.Name, e))
		}
		if c.Note != "" {
			notes = append(notes, fmt.Sprintf("- %s: %s", c.Name, c.Note))
		}
	}
	for _, f := range res.Floods {
		for _, e := range f.Errors {
			notes = append(notes, fmt.Sprintf("- %s: %s", f.Name, e))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(&b, "\n## Notes and errors\n\n%s\n", strings.Join(notes, "\n"))
	}
	fmt.Fprintf(&b, "\nCPU figures are whole-machine (every namespace shares the kernel's softirq accounting); the director's own share is the difference against the direct path. \"director proc\" is govsd's or haproxy's process CPU.\n")
	return b.String()
}
