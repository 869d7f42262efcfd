package realserver

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// Status says what happened to an item.
type Status string

// Item statuses, as printed.
const (
	StatusChanged     Status = "changed"      // setup changed it
	StatusInPlace     Status = "ok"           // already as wanted
	StatusWouldChange Status = "would change" // dry run
	StatusMissing     Status = "MISSING"      // status: not as wanted
	StatusRestored    Status = "restored"     // teardown put Before back
	StatusGone        Status = "gone"         // teardown: the route no longer exists
	StatusFailed      Status = "FAILED"       // the change failed
)

// Result is an item with what happened to it. For a change Before and
// After are the values before and after; otherwise Before is the
// current value.
type Result struct {
	Item
	Status Status
}

// Report lists what a command found and did, in order.
type Report struct {
	Action    string // setup, teardown or status
	DryRun    bool
	StatePath string
	Results   []Result
	// StateRemoved is set when teardown removed the state file.
	StateRemoved bool
}

// Count returns how many results have status st.
func (r *Report) Count(st Status) int {
	n := 0
	for _, x := range r.Results {
		if x.Status == st {
			n++
		}
	}
	return n
}

// OK reports whether status found everything in place.
func (r *Report) OK() bool { return r.Count(StatusMissing) == 0 && r.Count(StatusFailed) == 0 }

// WriteTo prints the report: one line per item, then a summary.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	for _, x := range r.Results {
		val := x.Before
		switch x.Status {
		case StatusChanged, StatusWouldChange, StatusRestored, StatusFailed:
			val = x.Before + " -> " + x.After
		case StatusMissing:
			val = x.Before + ", want " + x.After
		}
		fmt.Fprintf(cw, "%-12s %-8s %-40s %s\n", x.Status, x.Kind, x.Target, val)
	}
	n := len(r.Results)
	switch {
	case r.Action == "setup" && r.DryRun:
		fmt.Fprintf(cw, "dry run: %d would change, %d already in place; nothing was changed\n", r.Count(StatusWouldChange), r.Count(StatusInPlace))
	case r.Action == "setup" && r.Count(StatusChanged) == 0 && r.Count(StatusFailed) == 0:
		fmt.Fprintf(cw, "setup: nothing changed, all %d items already in place\n", n)
	case r.Action == "setup":
		fmt.Fprintf(cw, "setup: %d changed, %d already in place; previous values saved in %s\n", r.Count(StatusChanged), r.Count(StatusInPlace), r.StatePath)
	case r.Action == "teardown" && r.DryRun:
		fmt.Fprintf(cw, "dry run: %d would be restored; nothing was changed\n", r.Count(StatusWouldChange))
	case r.Action == "teardown" && n == 0 && r.StateRemoved:
		fmt.Fprintf(cw, "teardown: setup had changed nothing; removed %s\n", r.StatePath)
	case r.Action == "teardown" && r.StateRemoved:
		fmt.Fprintf(cw, "teardown: %d restored, %d already as before; removed %s\n", r.Count(StatusRestored), n-r.Count(StatusRestored), r.StatePath)
	case r.Action == "teardown":
		fmt.Fprintf(cw, "teardown: %d restored, %d failed; the rest stays in %s\n", r.Count(StatusRestored), r.Count(StatusFailed), r.StatePath)
	case r.Action == "status" && r.OK():
		fmt.Fprintf(cw, "status: all %d items in place\n", n)
	case r.Action == "status":
		fmt.Fprintf(cw, "status: %d of %d items missing; run govsadm realserver setup\n", r.Count(StatusMissing), n)
	}
	return cw.n, cw.err
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

// Options are how a command runs, beside the configuration.
type Options struct {
	// StatePath is the state file (DefaultStatePath when empty).
	StatePath string
	// DryRun plans without changing anything.
	DryRun bool
}

func (o *Options) statePath() string {
	if o.StatePath == "" {
		return DefaultStatePath
	}
	return o.StatePath
}

func needRoot(sys System, action string) error {
	if sys.Root() {
		return nil
	}
	return fmt.Errorf("%s: %w: it changes addresses, sysctls and BPF programs; run it with sudo, or add --dry-run to see the plan", action, ErrNotRoot)
}

// Setup makes the system look like cfg, changing only what is not
// already right, and records the previous values of what it changed in
// the state file. When a change fails, what was done so far is recorded
// so teardown can undo it.
func Setup(sys System, cfg Config, opts Options) (*Report, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rep := &Report{Action: "setup", DryRun: opts.DryRun, StatePath: opts.statePath()}
	if !opts.DryRun {
		if err := needRoot(sys, "setup"); err != nil {
			return nil, err
		}
	}
	if cfg.Mode == ModeTUN && len(cfg.IngressDevs) == 0 {
		// Record the devices the default routes lead to now, so status and
		// a later setup check the same ones.
		ls, err := ingressLinks(sys, cfg)
		if err != nil {
			return nil, err
		}
		cfg.IngressDevs = names(ls)
	}
	checks, err := plan(sys, cfg)
	if err != nil {
		return nil, err
	}
	if opts.DryRun {
		for _, c := range checks {
			rep.Results = append(rep.Results, Result{Item: c.Item, Status: statusOf(c.ok, StatusWouldChange)})
		}
		return rep, nil
	}
	st, err := LoadState(rep.StatePath)
	if err != nil {
		return nil, err
	}
	if st == nil {
		st = &State{}
	}
	st.Config = cfg
	var failed error
	for _, c := range checks {
		if c.ok || failed != nil {
			rep.Results = append(rep.Results, Result{Item: c.Item, Status: StatusInPlace})
			if !c.ok {
				rep.Results[len(rep.Results)-1].Status = StatusMissing
			}
			continue
		}
		if err := write(sys, c.Item, c.After); err != nil {
			failed = fmt.Errorf("setup: set %s %s to %s: %w", c.Kind, c.Target, c.After, err)
			rep.Results = append(rep.Results, Result{Item: c.Item, Status: StatusFailed})
			continue
		}
		st.record(c.Item)
		rep.Results = append(rep.Results, Result{Item: c.Item, Status: StatusChanged})
	}
	if err := st.save(rep.StatePath); err != nil {
		return rep, errors.Join(failed, fmt.Errorf("setup: %w; the changes above are not recorded, undo them by hand", err))
	}
	if failed != nil {
		return rep, fmt.Errorf("%w (what was changed is recorded in %s: govsadm realserver teardown undoes it)", failed, rep.StatePath)
	}
	return rep, nil
}

func statusOf(ok bool, otherwise Status) Status {
	if ok {
		return StatusInPlace
	}
	return otherwise
}

// Teardown restores every item recorded in the state file to its value
// before setup, newest first, and removes the state file. Items it cannot
// restore stay in the state file.
func Teardown(sys System, opts Options) (*Report, error) {
	rep := &Report{Action: "teardown", DryRun: opts.DryRun, StatePath: opts.statePath()}
	st, err := LoadState(rep.StatePath)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("teardown: no state file %s: setup has not run (or teardown already did); nothing to undo", rep.StatePath)
	}
	if !opts.DryRun {
		if err := needRoot(sys, "teardown"); err != nil {
			return nil, err
		}
	}
	var errs []error
	var left []Item
	for _, it := range slices.Backward(st.Items) {
		cur, err := read(sys, it)
		switch {
		case errors.Is(err, errGone):
			rep.Results = append(rep.Results, Result{Item: withBefore(it, "gone"), Status: StatusGone})
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("teardown: read %s %s: %w", it.Kind, it.Target, err))
			rep.Results = append(rep.Results, Result{Item: withBefore(it, "?"), Status: StatusFailed})
			left = append(left, it)
			continue
		case cur == it.Before:
			rep.Results = append(rep.Results, Result{Item: withBefore(it, cur), Status: StatusInPlace})
			continue
		}
		r := Result{Item: it, Status: StatusRestored}
		r.Before, r.After = cur, it.Before
		if opts.DryRun {
			r.Status = StatusWouldChange
		} else if err := write(sys, it, it.Before); err != nil {
			errs = append(errs, fmt.Errorf("teardown: restore %s %s to %s: %w", it.Kind, it.Target, it.Before, err))
			r.Status = StatusFailed
			left = append(left, it)
		}
		rep.Results = append(rep.Results, r)
	}
	if opts.DryRun {
		return rep, nil
	}
	if len(errs) > 0 {
		slices.Reverse(left)
		st.Items = left
		if err := st.save(rep.StatePath); err != nil {
			errs = append(errs, err)
		}
		return rep, errors.Join(errs...)
	}
	if err := os.Remove(rep.StatePath); err != nil {
		return rep, fmt.Errorf("teardown: %w", err)
	}
	rep.StateRemoved = true
	return rep, nil
}

func withBefore(it Item, v string) Item {
	it.Before = v
	return it
}

// Status compares the system with cfg, or, when cfg is nil, with the
// configuration of the last setup recorded in the state file. The report
// is not OK when something is missing.
func StatusOf(sys System, cfg *Config, opts Options) (*Report, error) {
	rep := &Report{Action: "status", StatePath: opts.statePath()}
	if cfg == nil {
		st, err := LoadState(rep.StatePath)
		if err != nil {
			return nil, err
		}
		if st == nil {
			return nil, fmt.Errorf("status: no state file %s and no --vip: run setup first, or give the configuration to check", rep.StatePath)
		}
		cfg = &st.Config
	}
	c := *cfg
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	checks, err := plan(sys, c)
	if err != nil {
		return nil, err
	}
	for _, ch := range checks {
		rep.Results = append(rep.Results, Result{Item: ch.Item, Status: statusOf(ch.ok, StatusMissing)})
	}
	return rep, nil
}
