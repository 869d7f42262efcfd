package main

import (
	"fmt"
	"log/slog"

	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/dataplane/proxy"
	"github.com/govs/govs/internal/engine"
)

// dataplaneNames are the values --dataplane takes.
var dataplaneNames = []string{"proxy", "ebpf"}

// newDataplane is the one place a data plane is chosen and built.
func newDataplane(name string, eng *engine.Engine, log *slog.Logger) (dataplane.Dataplane, error) {
	switch name {
	case "proxy":
		p, err := proxy.New(eng, log.With("dataplane", "proxy"))
		if err != nil {
			return nil, err
		}
		return p, nil
	case "ebpf":
		// LEAD: when internal/dataplane/ebpf has its constructor, build it
		// here.
		return nil, fmt.Errorf("data plane ebpf is not built into this govsd yet: use --dataplane proxy")
	}
	return nil, fmt.Errorf("unknown data plane %q: use --dataplane proxy or --dataplane ebpf", name)
}
