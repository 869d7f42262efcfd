// Package testenv decides whether a test that needs root, a kernel
// feature or a tool from a Debian package runs, skips, or fails.
//
// A developer without root gets a skip that says why. CI sets
// GOVS_REQUIRE_PRIVILEGED=1 (.ci/run does): then a missing privilege or
// tool is a failure, so a privileged test can never pass in CI by skipping.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireEnv is the environment variable that turns skips into failures.
const RequireEnv = "GOVS_REQUIRE_PRIVILEGED"

// Required reports whether privileged tests must run (CI).
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// skip skips, or fails when privileged tests are required.
func skip(tb testing.TB, msg string) {
	tb.Helper()
	if Required() {
		tb.Fatalf("%s (%s=1: privileged tests must run here)", msg, RequireEnv)
	}
	tb.Skip(msg)
}

// Root skips tb unless it runs as root; in -short mode it always skips
// (unless required).
func Root(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		skip(tb, "skipped: needs root (network namespaces, BPF, raw sockets); run go test as root to include it")
	}
	if testing.Short() && !Required() {
		tb.Skip("skipped in -short mode: privileged test")
	}
}

// Command skips tb unless name is on PATH, naming the Debian package
// that provides it.
func Command(tb testing.TB, name, debianPkg string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		skip(tb, "skipped: "+name+" is not installed (apt-get install -y "+debianPkg+")")
	}
	return p
}
