package main

import (
	"context"
	"fmt"
	"os"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/ipvsadm"
)

// restoreRules applies the rules in path, in ipvsadm -S (save) format, to
// d before the API is served: what ipvsadm -R < path would do, except that
// the first bad or refused line stops govsd with its file:line.
func restoreRules(ctx context.Context, d api.Director, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open rules: %w", err)
	}
	defer f.Close()
	return ipvsadm.Restore(ctx, f, path, d)
}
