package sched

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/govs/govs/internal/ipvs"
)

// Helpers shared by the list schedulers' tests (rr, wrr, lc, wlc, sed, nq,
// fo, ovf, twos), then the property tests and the fuzz test that run
// across all nine.

// listNames are the list schedulers, in a fixed order for the fuzz test.
var listNames = []string{"rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf", "twos"}

// listSvc plays the part of the engine for one service: it keeps the
// destination list newest first and calls the scheduler's hooks exactly
// where the kernel's ip_vs_ctl.c calls add_dest, del_dest and upd_dest.
// Destinations are named by the test ("A", "B", ...).
type listSvc struct {
	t     testing.TB
	s     Scheduler
	dests []*ipvs.Dest
	names map[*ipvs.Dest]string
	n     int // destinations created, for unique addresses
}

// listNew starts a service with scheduler name on an empty list, as
// ipvsadm -A does, then adds each "NAME:weight" in order with -a, so the
// last one ends up at the head.
func listNew(t testing.TB, name string, cfg Config, adds ...string) *listSvc {
	t.Helper()
	n, err := Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	v := &listSvc{t: t, s: n(cfg, nil), names: map[*ipvs.Dest]string{}}
	for _, a := range adds {
		nm, w := listParse(t, a)
		v.add(nm, w)
	}
	return v
}

// listInit starts a service whose list already holds dests ("NAME:weight",
// head first) when the scheduler is bound, as ipvsadm -E -s does when it
// switches an existing service to this scheduler.
func listInit(t testing.TB, name string, cfg Config, list ...string) *listSvc {
	t.Helper()
	n, err := Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	v := &listSvc{t: t, names: map[*ipvs.Dest]string{}}
	for _, a := range list {
		nm, w := listParse(t, a)
		v.dests = append(v.dests, v.newDest(nm, w))
	}
	v.s = n(cfg, v.dests)
	return v
}

func listParse(t testing.TB, s string) (string, int32) {
	t.Helper()
	var w int32
	nm, ws, ok := strings.Cut(s, ":")
	if !ok {
		t.Fatalf("bad destination spec %q: want NAME:weight", s)
	}
	if _, err := fmt.Sscan(ws, &w); err != nil {
		t.Fatalf("bad weight in %q: %v", s, err)
	}
	return nm, w
}

func (v *listSvc) newDest(name string, w int32) *ipvs.Dest {
	v.n++
	d := ipvs.NewDest(ipvs.Destination{
		Addr:   netip.AddrFrom4([4]byte{10, 0, byte(v.n >> 8), byte(v.n)}),
		Port:   80,
		Fwd:    ipvs.Route,
		Weight: w,
	})
	v.names[d] = name
	return d
}

// add inserts a new destination at the head and calls AddDest.
func (v *listSvc) add(name string, w int32) *ipvs.Dest {
	d := v.newDest(name, w)
	v.dests = slices.Insert(v.dests, 0, d)
	v.s.AddDest(v.dests, d)
	return d
}

// del unlinks the named destination and calls DelDest.
func (v *listSvc) del(name string) {
	at := v.index(name)
	d := v.dests[at]
	v.dests = slices.Delete(v.dests, at, at+1)
	v.s.DelDest(v.dests, d, at)
}

// edit sets the named destination's weight and calls UpdDest.
func (v *listSvc) edit(name string, w int32) {
	d := v.dest(name)
	d.Weight = w
	v.s.UpdDest(v.dests, d)
}

func (v *listSvc) index(name string) int {
	for i, d := range v.dests {
		if v.names[d] == name {
			return i
		}
	}
	v.t.Fatalf("no destination %q in %s", name, v.order())
	return -1
}

func (v *listSvc) dest(name string) *ipvs.Dest { return v.dests[v.index(name)] }

// order renders the list head first, e.g. "[C B A]".
func (v *listSvc) order() string {
	s := make([]string, len(v.dests))
	for i, d := range v.dests {
		s[i] = v.names[d]
	}
	return "[" + strings.Join(s, " ") + "]"
}

// pick schedules once and returns the destination's name, or "-" for
// ErrNoDestination. With bind, the pick is accounted as a new active
// connection, as the connection table would.
func (v *listSvc) pick(bind bool) string {
	v.t.Helper()
	d, err := v.s.Schedule(Service{Dests: v.dests}, Flow{})
	if err != nil {
		if !errors.Is(err, ErrNoDestination) {
			v.t.Fatalf("Schedule: %v, want ErrNoDestination", err)
		}
		if d != nil {
			v.t.Fatalf("Schedule returned %v with error %v", d, err)
		}
		return "-"
	}
	nm, ok := v.names[d]
	if !ok || !slices.Contains(v.dests, d) {
		v.t.Fatalf("Schedule returned %s, not in the list %s", d.AddrPort(), v.order())
	}
	if bind {
		d.Bind(false, true)
	}
	return nm
}

// picks schedules n times and returns the names space-separated.
func (v *listSvc) picks(n int, bind bool) string {
	v.t.Helper()
	s := make([]string, n)
	for i := range s {
		s[i] = v.pick(bind)
	}
	return strings.Join(s, " ")
}

// expect schedules len(want) times and compares with want, a
// space-separated list of names ("-" for no destination).
func (v *listSvc) expect(step, want string, bind bool) {
	v.t.Helper()
	n := len(strings.Fields(want))
	if got := v.picks(n, bind); got != want {
		v.t.Errorf("%s: list %s: picks\n got %s\nwant %s", step, v.order(), got, want)
	}
}

// listStep is one action in a scripted scheduler test. Exactly one of the
// action fields is set; picks are compared with want.
type listStep struct {
	name string // what the step shows

	add      string // "NAME:weight": add at the head
	del      string // NAME: remove
	edit     string // "NAME:weight": change the weight
	overload string // NAME: set Overloaded
	clear    string // NAME: clear Overloaded
	active   string // "NAME:n": bind n active connections
	inact    string // "NAME:n": bind n inactive connections
	unbind   string // "NAME:n": unbind n active connections

	want string // picks expected after the action
	bind bool   // bind each pick as an active connection
}

// listRun applies steps to v in order.
func listRun(t *testing.T, v *listSvc, steps []listStep) {
	t.Helper()
	for _, st := range steps {
		switch {
		case st.add != "":
			nm, w := listParse(t, st.add)
			v.add(nm, w)
		case st.del != "":
			v.del(st.del)
		case st.edit != "":
			nm, w := listParse(t, st.edit)
			v.edit(nm, w)
		case st.overload != "":
			v.dest(st.overload).Overloaded = true
		case st.clear != "":
			v.dest(st.clear).Overloaded = false
		case st.active != "":
			nm, n := listParse(t, st.active)
			for range n {
				v.dest(nm).Bind(false, true)
			}
		case st.inact != "":
			nm, n := listParse(t, st.inact)
			for range n {
				v.dest(nm).Bind(false, false)
			}
		case st.unbind != "":
			nm, n := listParse(t, st.unbind)
			for range n {
				v.dest(nm).Unbind(false, true)
			}
		}
		if st.want != "" {
			v.expect(st.name, st.want, st.bind)
		}
	}
}

// listScriptedRand returns a *rand.Rand whose successive Int64N(n) calls
// return draws, in order: it feeds math/rand/v2's reduction the 64-bit
// value that yields each draw (for a power of two, the draw itself; else,
// for the multiply-shift of Lemire's method, the value whose product with
// n has the draw as its high word and a low word no rejection applies to). It checks itself,
// so a change in math/rand/v2's reduction fails the test loudly instead of
// silently testing other draws.
func listScriptedRand(t testing.TB, n int64, draws ...int64) *rand.Rand {
	t.Helper()
	src := &listScriptSource{}
	for _, r := range draws {
		if r < 0 || r >= n {
			t.Fatalf("draw %d out of [0,%d)", r, n)
		}
		// u = floor((r+1)*2^64/n) - 1, so u*n lies in ((r+1)*2^64-2n, (r+1)*2^64-n].
		var u uint64 = math.MaxUint64
		switch {
		case n&(n-1) == 0: // a power of two is masked, not multiplied
			u = uint64(r)
		case r+1 < n:
			q, _ := bits.Div64(uint64(r+1), 0, uint64(n))
			u = q - 1
		}
		src.vals = append(src.vals, u)
	}
	check := rand.New(&listScriptSource{vals: src.vals})
	for i, r := range draws {
		if got := check.Int64N(n); got != r {
			t.Fatalf("scripted draw %d: Int64N(%d) = %d, want %d: math/rand/v2 changed its reduction", i, n, got, r)
		}
	}
	return rand.New(src)
}

type listScriptSource struct {
	vals []uint64
	i    int
}

func (s *listScriptSource) Uint64() uint64 {
	if s.i >= len(s.vals) {
		panic("listScriptSource: out of scripted values")
	}
	s.i++
	return s.vals[s.i-1]
}

func TestListRegistry(t *testing.T) {
	for _, name := range listNames {
		n, err := Lookup(name)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", name, err)
		}
		if got := n(Config{}, nil).Name(); got != name {
			t.Errorf("Lookup(%q) builds a scheduler named %q", name, got)
		}
	}
}

// TestListNoDestination: every list scheduler fails with ErrNoDestination
// and a nil destination when nothing is usable, both when bound to such a
// list and when the list got that way through the hooks.
func TestListNoDestination(t *testing.T) {
	cases := []struct {
		name  string
		list  []string
		setup func(v *listSvc)
	}{
		{name: "empty"},
		{name: "all quiesced", list: []string{"A:0", "B:0"}},
		{name: "all overloaded", list: []string{"A:1", "B:2"}, setup: func(v *listSvc) {
			v.dest("A").Overloaded = true
			v.dest("B").Overloaded = true
		}},
		{name: "overloaded by threshold", list: []string{"A:1", "B:0"}, setup: func(v *listSvc) {
			a := v.dest("A")
			a.Upper = 1
			a.Bind(false, false)
		}},
		{name: "mixed", list: []string{"A:0", "B:3", "C:0"}, setup: func(v *listSvc) {
			v.dest("B").Overloaded = true
		}},
	}
	for _, name := range listNames {
		for _, c := range cases {
			t.Run(name+"/"+c.name+"/bound", func(t *testing.T) {
				v := listInit(t, name, Config{}, c.list...)
				if c.setup != nil {
					c.setup(v)
				}
				v.expect("bound", "- -", false)
			})
			t.Run(name+"/"+c.name+"/hooks", func(t *testing.T) {
				// Built usable, then quiesced or overloaded through
				// the same path the engine takes.
				v := listNew(t, name, Config{})
				for i := len(c.list) - 1; i >= 0; i-- {
					nm, _ := listParse(t, c.list[i])
					v.add(nm, 1)
				}
				v.picks(3, false)
				for _, s := range c.list {
					nm, w := listParse(t, s)
					v.edit(nm, w)
				}
				if c.setup != nil {
					c.setup(v)
				}
				v.expect("via hooks", "- -", false)
			})
		}
	}
}

// TestListProperties runs each scheduler over a long simulation with
// connection churn, on a list holding a quiesced and an overloaded
// destination, and checks that neither is ever picked and that the load
// follows the scheduler's notion of weight.
func TestListProperties(t *testing.T) {
	const (
		picks = 6000
		live  = 200 // connections kept open; a random one closes per pick beyond
	)
	// Head first. O has the highest weight but stays overloaded (upper
	// threshold 1 reached), Q is quiesced.
	list := []string{"Q:0", "A:1", "O:5", "B:2", "C:3", "D:4"}
	usableW := map[string]int64{"A": 1, "B": 2, "C": 3, "D": 4}
	const totalW = 10

	for _, name := range listNames {
		t.Run(name, func(t *testing.T) {
			v := listInit(t, name, Config{Rand: rand.New(rand.NewPCG(7, 11))}, list...)
			o := v.dest("O")
			o.Upper = 1
			o.Bind(false, true)
			rng := rand.New(rand.NewPCG(3, 5))
			live := int64(live)
			if name == "ovf" {
				// ovf's capacity is the sum of weight+1 (14 here): keep
				// fewer open (13) so connections close and it refills.
				live = 13
			}
			var conns []string
			count := map[string]int64{}
			for i := range picks {
				if int64(len(conns)) >= live {
					j := rng.IntN(len(conns))
					v.dest(conns[j]).Unbind(false, true)
					conns[j] = conns[len(conns)-1]
					conns = conns[:len(conns)-1]
				}
				d, err := v.s.Schedule(Service{Dests: v.dests}, Flow{})
				if err != nil {
					if name == "ovf" && errors.Is(err, ErrNoDestination) {
						listCheckOVFFull(t, v)
						continue
					}
					t.Fatalf("pick %d: %v", i, err)
				}
				nm := v.names[d]
				if _, ok := usableW[nm]; !ok || !usable(d) {
					t.Fatalf("pick %d: %s (weight %d, overloaded %v) is not usable", i, nm, d.Weight, d.Overloaded)
				}
				if name == "ovf" {
					listCheckOVFPick(t, v, d)
				}
				d.Bind(false, true)
				conns = append(conns, nm)
				count[nm]++
			}
			active := map[string]int64{}
			for nm := range usableW {
				active[nm] = int64(v.dest(nm).ActiveConns)
			}
			t.Logf("picks %v, open connections %v", count, active)

			switch name {
			case "rr":
				for nm := range usableW {
					if count[nm] != picks/4 {
						t.Errorf("rr: %s picked %d times, want %d", nm, count[nm], picks/4)
					}
				}
			case "wrr":
				// Bound at the top of a cycle; 6000 picks are 600 cycles
				// of 10 (di 1): exactly 600*weight each.
				for nm, w := range usableW {
					if want := picks / totalW * w; count[nm] != want {
						t.Errorf("wrr: %s picked %d times, want %d", nm, count[nm], want)
					}
				}
			case "lc":
				// Weights do not matter: open connections even.
				listCheckSpread(t, active, map[string]int64{"A": 1, "B": 1, "C": 1, "D": 1}, 4, live, 2)
			case "wlc", "sed", "nq":
				listCheckSpread(t, active, usableW, totalW, live, 3)
			case "twos":
				// Random probes: the spread is looser but follows weight.
				listCheckSpread(t, active, usableW, totalW, live, live/10)
			case "fo":
				if count["D"] != picks {
					t.Errorf("fo: picks %v, want all %d on D, the heaviest usable", count, picks)
				}
			}
		})
	}
}

// listCheckSpread checks that open connections per destination are
// within tol of their share of total by weight.
func listCheckSpread(t *testing.T, got, weight map[string]int64, totalW, total, tol int64) {
	t.Helper()
	for nm, w := range weight {
		want := total * w / totalW
		if d := got[nm] - want; d < -tol || d > tol {
			t.Errorf("%s has %d open connections, want %d±%d (weight %d/%d)", nm, got[nm], want, tol, w, totalW)
		}
	}
}

// listCheckOVFPick checks ovf's pick: eligible (active <= weight) and of
// the highest weight among the eligible.
func listCheckOVFPick(t *testing.T, v *listSvc, d *ipvs.Dest) {
	t.Helper()
	if d.ActiveConns > d.Weight {
		t.Fatalf("ovf picked %s with %d active > weight %d", v.names[d], d.ActiveConns, d.Weight)
	}
	for _, e := range v.dests {
		if usable(e) && e.ActiveConns <= e.Weight && e.Weight > d.Weight {
			t.Fatalf("ovf picked %s (weight %d) over eligible %s (weight %d)", v.names[d], d.Weight, v.names[e], e.Weight)
		}
	}
}

// listCheckOVFFull checks that ovf failed only with every usable
// destination past its weight.
func listCheckOVFFull(t *testing.T, v *listSvc) {
	t.Helper()
	for _, e := range v.dests {
		if usable(e) && e.ActiveConns <= e.Weight {
			t.Fatalf("ovf found no destination, but %s has %d active <= weight %d", v.names[e], e.ActiveConns, e.Weight)
		}
	}
}

// TestTwosDrawBias: with equal loads the first choice always stands, so
// the pick is one weighted draw over [0, T]: the first usable destination
// has (w+1)/(T+1), the others w/(T+1).
func TestTwosDrawBias(t *testing.T) {
	const n = 100000
	v := listInit(t, "twos", Config{Rand: rand.New(rand.NewPCG(1, 1))}, "C:1", "B:1", "A:2")
	count := map[string]int{}
	for range n {
		count[v.pick(false)]++
	}
	// T = 4: C 2/5, B 1/5, A 2/5.
	want := map[string]float64{"C": 0.4, "B": 0.2, "A": 0.4}
	for nm, p := range want {
		if got := float64(count[nm]) / n; math.Abs(got-p) > 0.01 {
			t.Errorf("%s drawn %.3f of the time, want %.3f", nm, got, p)
		}
	}
}

// FuzzListSchedulers drives a random list scheduler through random adds,
// deletes, weight and threshold edits, overload flips, picks and closed
// connections. A pick must be in the list and usable; a failure must be
// ErrNoDestination and happen only when no destination is usable.
func FuzzListSchedulers(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 2, 0, 3, 4, 0, 4, 1, 4, 1, 1, 0, 4, 0})
	f.Add([]byte{1, 0, 4, 0, 3, 0, 2, 4, 0, 4, 0, 2, 0x21, 4, 0, 1, 1, 4, 0})
	f.Add([]byte{2, 0, 1, 0, 1, 4, 1, 4, 0, 6, 0, 3, 0, 4, 1})
	f.Add([]byte{5, 0, 2, 0, 5, 4, 1, 4, 1, 4, 1, 6, 1, 4, 0})
	f.Add([]byte{7, 0, 2, 0, 1, 4, 1, 4, 1, 4, 1, 4, 1, 4, 1, 7, 0x12, 4, 1})
	f.Add([]byte{8, 0, 3, 0, 0, 0, 5, 3, 1, 4, 1, 2, 0x30, 4, 0, 1, 0, 4, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		name := listNames[int(data[0])%len(listNames)]
		cfg := Config{Rand: rand.New(rand.NewPCG(uint64(len(data)), uint64(data[0])))}
		v := listNew(t, name, cfg)
		var conns []*ipvs.Dest
		ops := data[1:]
		if len(ops) > 1024 {
			ops = ops[:1024]
		}
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i]%8, ops[i+1]
			var d *ipvs.Dest
			if len(v.dests) > 0 {
				d = v.dests[int(arg)%len(v.dests)]
			}
			switch {
			case op == 0:
				v.add(fmt.Sprintf("d%d", v.n+1), int32(arg%6))
			case op == 1 && d != nil:
				v.del(v.names[d])
			case op == 2 && d != nil:
				v.edit(v.names[d], int32(arg>>4)%6)
			case op == 3 && d != nil:
				d.Overloaded = !d.Overloaded
			case op == 6 && len(conns) > 0:
				j := int(arg) % len(conns)
				conns[j].Unbind(false, true)
				conns = slices.Delete(conns, j, j+1)
			case op == 7 && d != nil:
				// -e with a new upper threshold.
				d.Upper = uint32(arg>>4) % 4
				d.UpdateOverload()
				v.s.UpdDest(v.dests, d)
			case op == 4 || op == 5:
				got, err := v.s.Schedule(Service{Dests: v.dests}, Flow{})
				listFuzzCheck(t, name, v, got, err)
				if got != nil {
					// Every connection is active in the lists' view of
					// ovf; the fuzz only needs the counts to move.
					got.Bind(false, true)
					conns = append(conns, got)
				}
			}
		}
	})
}

func listFuzzCheck(t *testing.T, name string, v *listSvc, d *ipvs.Dest, err error) {
	t.Helper()
	eligible := func(e *ipvs.Dest) bool {
		return usable(e) && (name != "ovf" || e.ActiveConns <= e.Weight)
	}
	if err != nil {
		if !errors.Is(err, ErrNoDestination) || d != nil {
			t.Fatalf("%s: Schedule = %v, %v; want nil, ErrNoDestination", name, d, err)
		}
		for _, e := range v.dests {
			if eligible(e) {
				t.Fatalf("%s: no destination, but %s (weight %d, active %d) is usable in %s",
					name, v.names[e], e.Weight, e.ActiveConns, v.order())
			}
		}
		return
	}
	if d == nil || !slices.Contains(v.dests, d) {
		t.Fatalf("%s: picked %v, not in the list %s", name, d, v.order())
	}
	if !eligible(d) {
		t.Fatalf("%s: picked %s (weight %d, overloaded %v, active %d), not usable",
			name, v.names[d], d.Weight, d.Overloaded, d.ActiveConns)
	}
}
