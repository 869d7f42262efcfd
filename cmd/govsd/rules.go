package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/govs/govs/internal/api"
)

// restoreRules applies the rules in path, in ipvsadm -S (save) format, to
// d before the API is served: what ipvsadm -R < path would do.
//
// LEAD: hook to wire. The -R reader and parser are internal/ipvsadm's; do
// not grow a second parser here. One way, in process, with no socket:
//
//	f, err := os.Open(path)           // "open rules: %w"
//	defer f.Close()
//	var stderr bytes.Buffer
//	code := ipvsadm.Main(ctx, []string{"ipvsadm", "-R"}, ipvsadm.Env{
//		Stdin: f, Stdout: io.Discard, Stderr: &stderr,
//		Dial: func(string) api.Director { return d },
//	})
//	if code != 0 { return fmt.Errorf("restore rules from %s: %s", path, strings.TrimSpace(stderr.String())) }
//
// or, better, an ipvsadm.Restore(ctx, r io.Reader, d api.Director) error
// that reports the file's line numbers.
func restoreRules(ctx context.Context, d api.Director, path string, log *slog.Logger) error {
	return errors.New("--rules is not wired into this govsd yet: start govsd without it, then run govsadm -R < " + path)
}
