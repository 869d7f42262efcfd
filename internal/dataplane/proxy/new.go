package proxy

import (
	"errors"
	"log/slog"

	"github.com/govs/govs/internal/engine"
)

// New returns a proxy data plane that forwards by the decisions of eng.
// eng must be the engine the control plane configures: the proxy reads
// services, destinations and timeouts from it and never changes them.
func New(eng *engine.Engine, log *slog.Logger, opts ...Option) (*Proxy, error) {
	if eng == nil {
		return nil, errors.New("new proxy data plane: no engine")
	}
	return newProxy(eng, log, opts...), nil
}
