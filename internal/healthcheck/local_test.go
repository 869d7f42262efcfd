package healthcheck

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "check.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMisc(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		dynamic bool
		up      bool
		weight  *int
	}{
		{"exit 0", "exit 0", false, true, nil},
		{"exit 1", "exit 1", false, false, nil},
		{"exit 3 static", "exit 3", false, false, nil},
		{"exit 0 dynamic", "exit 0", true, true, nil},
		{"exit 1 dynamic", "exit 1", true, false, nil},
		{"exit 12 dynamic", "exit 12", true, true, ptr(10)},
		{"exit 2 dynamic", "exit 2", true, true, ptr(0)},
		{"exit 255 dynamic", "exit 255", true, true, ptr(253)},
		{"killed", "kill -9 $$", false, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMisc(MiscOptions{Path: script(t, tt.body) + " arg", Dynamic: tt.dynamic, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			r := m.Check(context.Background())
			if r.Up != tt.up {
				t.Fatalf("up = %v, want %v: %v", r.Up, tt.up, r)
			}
			if (r.Weight == nil) != (tt.weight == nil) || (r.Weight != nil && *r.Weight != *tt.weight) {
				t.Fatalf("weight = %v, want %v", deref(r.Weight), deref(tt.weight))
			}
		})
	}
}

func ptr(i int) *int { return &i }

func deref(p *int) string {
	if p == nil {
		return "nil"
	}
	return strconv.Itoa(*p)
}

func TestMiscArgs(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	m, err := NewMisc(MiscOptions{Path: script(t, `printf '%s|' "$@" > "$1"`) + " " + out + ` 'two words' "x y" z\ z`})
	if err != nil {
		t.Fatal(err)
	}
	mustUp(t, m.Check(context.Background()))
	b, _ := os.ReadFile(out)
	if want := out + "|two words|x y|z z|"; string(b) != want {
		t.Fatalf("args %q, want %q", b, want)
	}
}

func TestMiscTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The script starts a child that would outlive it, then hangs.
	m, err := NewMisc(MiscOptions{Path: script(t, "sleep 60 & echo $! > "+pidFile+"\nwait"), Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	mustDown(t, m.Check(context.Background()), ErrTimeout)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("timeout took %s", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(2 * time.Second)
	for {
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) {
			break
		}
		// A zombie is gone as far as the group kill goes.
		if st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the timed-out script still runs", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMiscIgnoresTERM(t *testing.T) {
	m, err := NewMisc(MiscOptions{Path: script(t, "trap '' TERM\nwhile :; do sleep 0.1; done"), Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	mustDown(t, m.Check(context.Background()), ErrTimeout)
	if d := time.Since(start); d < miscGrace || d > miscGrace+3*time.Second {
		t.Fatalf("SIGKILL after %s, want after the %s grace", d, miscGrace)
	}
}

func TestMiscErrors(t *testing.T) {
	for _, o := range []MiscOptions{{}, {Path: "'unterminated"}, {Path: "/bin/true", Timeout: -1}, {Path: "/bin/true", User: "no-such-user-govs"}} {
		if _, err := NewMisc(o); !errors.Is(err, ErrConfig) {
			t.Errorf("NewMisc(%+v) = %v, want ErrConfig", o, err)
		}
	}
	m, _ := NewMisc(MiscOptions{Path: "/nonexistent/script"})
	mustDown(t, m.Check(context.Background()), nil)
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"/bin/check", []string{"/bin/check"}},
		{"  /bin/check  a   b ", []string{"/bin/check", "a", "b"}},
		{`/bin/check 'a b' "c d"`, []string{"/bin/check", "a b", "c d"}},
		{`/bin/check '' x`, []string{"/bin/check", "", "x"}},
		{`a\ b 'c\d'`, []string{"a b", `c\d`}},
	}
	for _, tt := range tests {
		got, err := SplitCommand(tt.in)
		if err != nil || strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestPing(t *testing.T) {
	p, err := NewPing(PingOptions{ConnOptions{ConnectIP: loopback, Timeout: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	r := p.Check(context.Background())
	if errors.Is(r.Err, ErrPingNotPermitted) {
		if os.Geteuid() == 0 {
			t.Fatalf("root cannot open an ICMP socket: %v", r.Err)
		}
		t.Skipf("skipping: not root and net.ipv4.ping_group_range does not include this group: %v", r.Err)
	}
	mustUp(t, r)
	mustUp(t, p.Check(context.Background())) // a second echo, next sequence number

	// A cancelled check fails at once (tests send only to loopback,
	// which always answers).
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := p.Check(ctx); r.Up {
		t.Fatalf("cancelled ping passed: %v", r)
	}
}

func TestPing6(t *testing.T) {
	p, _ := NewPing(PingOptions{ConnOptions{ConnectIP: mustAddr("::1"), Timeout: 2 * time.Second}})
	r := p.Check(context.Background())
	if !r.Up {
		if errors.Is(r.Err, ErrPingNotPermitted) || strings.Contains(r.Err.Error(), "address") {
			t.Skipf("skipping: no IPv6 ICMP here: %v", r.Err)
		}
		t.Fatalf("ping ::1: %v", r)
	}
}

func TestFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	tests := []struct {
		name    string
		content *string // nil: no file
		weight  int
		reverse bool
		up      bool
		offset  *int
	}{
		{"missing", nil, 0, false, true, nil},
		{"zero", sp("0\n"), 0, false, true, nil},
		{"nonzero", sp("1\n"), 0, false, false, nil},
		{"nonzero reverse", sp("1"), 0, true, true, nil},
		{"zero reverse", sp("0"), 0, true, false, nil},
		{"text is zero", sp("up"), 0, false, true, nil},
		{"weighted", sp("5"), 2, false, true, ptr(10)},
		{"weighted reverse", sp("5"), 2, true, true, ptr(-10)},
		{"weighted hex", sp(" 0x10 trailing"), 1, false, true, ptr(16)},
		{"weighted octal", sp("010"), 1, false, true, ptr(8)},
		{"weighted negative", sp("-3"), 4, false, true, ptr(-12)},
		{"fault", sp("-2147483648"), 1, false, false, ptr(0)},
		{"clamped", sp("2147483647"), 2, false, true, ptr(2147483647)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(path)
			if tt.content != nil {
				if err := os.WriteFile(path, []byte(*tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			f, err := NewFile(FileOptions{Path: path, Weight: tt.weight, Reverse: tt.reverse})
			if err != nil {
				t.Fatal(err)
			}
			r := f.Check(context.Background())
			if r.Up != tt.up || deref(r.Offset) != deref(tt.offset) {
				t.Fatalf("got up=%v offset=%s, want up=%v offset=%s (%v)", r.Up, deref(r.Offset), tt.up, deref(tt.offset), r)
			}
		})
	}
	// An out-of-range number keeps the last value.
	os.WriteFile(path, []byte("7"), 0o644)
	f, _ := NewFile(FileOptions{Path: path, Weight: 1})
	f.Check(context.Background())
	os.WriteFile(path, []byte("99999999999"), 0o644)
	if r := f.Check(context.Background()); deref(r.Offset) != "7" {
		t.Fatalf("out of range: offset %s, want the last value 7", deref(r.Offset))
	}
}

func sp(s string) *string { return &s }
