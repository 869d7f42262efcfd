package testenv

import (
	"testing"
)

// TestRequiredFailsInsteadOfSkipping checks the CI switch: with it set, a
// missing tool fails the test rather than skipping it.
func TestRequiredFailsInsteadOfSkipping(t *testing.T) {
	t.Setenv(RequireEnv, "1")
	ft := &fakeTB{TB: t}
	func() {
		defer func() { recover() }()
		Command(ft, "govs-no-such-command", "nothing")
	}()
	if !ft.failed || ft.skipped {
		t.Fatalf("failed=%v skipped=%v, want a failure", ft.failed, ft.skipped)
	}
	t.Setenv(RequireEnv, "")
	ft = &fakeTB{TB: t}
	func() {
		defer func() { recover() }()
		Command(ft, "govs-no-such-command", "nothing")
	}()
	if ft.failed || !ft.skipped {
		t.Fatalf("failed=%v skipped=%v, want a skip", ft.failed, ft.skipped)
	}
}

type fakeTB struct {
	testing.TB
	failed, skipped bool
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(string, ...any) {
	f.failed = true
	panic("fatal")
}
func (f *fakeTB) Skip(...any) {
	f.skipped = true
	panic("skip")
}
