package ipvsadm_test

import (
	"bytes"
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/dataplane/dataplanetest"
	"github.com/govs/govs/internal/director"
	"github.com/govs/govs/internal/engine"
	"github.com/govs/govs/internal/ipvsadm"
)

// fakeResolver knows a few names, both ways.
type fakeResolver struct {
	hosts map[string]netip.Addr // name -> addr
	ports map[string]uint16     // "http/tcp" -> 80
}

func newFakeResolver() *fakeResolver {
	return &fakeResolver{
		hosts: map[string]netip.Addr{
			"www.example.com": netip.MustParseAddr("192.168.1.110"),
			"rs1.example.com": netip.MustParseAddr("192.168.1.11"),
			"v6.example.com":  netip.MustParseAddr("2001:db8::1"),
		},
		ports: map[string]uint16{"http/tcp": 80, "https/tcp": 443, "domain/udp": 53, "domain/tcp": 53},
	}
}

func (r *fakeResolver) LookupHost(_ context.Context, name string) (netip.Addr, bool) {
	a, ok := r.hosts[name]
	return a, ok && a.Is4()
}

func (r *fakeResolver) LookupPort(_ context.Context, proto, name string) (uint16, bool) {
	p, ok := r.ports[name+"/"+proto]
	return p, ok
}

func (r *fakeResolver) HostName(_ context.Context, a netip.Addr) (string, bool) {
	for n, x := range r.hosts {
		if x == a {
			return n, true
		}
	}
	return "", false
}

func (r *fakeResolver) PortName(_ context.Context, proto string, port uint16) (string, bool) {
	for k, p := range r.ports {
		if p == port && strings.HasSuffix(k, "/"+proto) {
			return strings.TrimSuffix(k, "/"+proto), true
		}
	}
	return "", false
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs argv (argv[0] included) against f.
func run(t testing.TB, f api.Director, r ipvsadm.Resolver, stdin string, argv ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := ipvsadm.Main(context.Background(), argv, ipvsadm.Env{
		Stdin:    strings.NewReader(stdin),
		Stdout:   &out,
		Stderr:   &errb,
		Getenv:   func(string) string { return "" },
		Dial:     func(string) api.Director { return f },
		Resolver: r,
	})
	return result{out.String(), errb.String(), code}
}

// golden turns a golden text written with a '$' at the end of every line
// (so trailing spaces show) into the real text.
func golden(s string) string {
	s = strings.TrimPrefix(s, "\n")
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if line == "" {
			continue
		}
		line = strings.TrimLeft(line, "\t")
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			continue
		}
		if !strings.HasSuffix(line, "$") {
			panic("golden line without $: " + strconv.Quote(line))
		}
		b.WriteString(strings.TrimSuffix(line, "$") + "\n")
	}
	return b.String()
}

func diff(t testing.TB, what, got, want string) {
	t.Helper()
	if got == want {
		return
	}
	gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(gl) || i < len(wl); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Errorf("%s: line %d differs\n got: %q\nwant: %q", what, i+1, g, w)
			break
		}
	}
	t.Errorf("%s: got\n%s\nwant\n%s", what, got, want)
}

// realDirector is govsd's real control plane (the engine's kernel
// semantics: validation, scheduler names, duplicates) over a recording
// fake data plane, for tests of how govsadm reports what the director
// refuses.
func realDirector(t testing.TB) api.Director {
	t.Helper()
	d, err := director.New(director.Config{Engine: engine.New(engine.Options{}), Dataplane: dataplanetest.New("fake")})
	if err != nil {
		t.Fatal(err)
	}
	return d
}
