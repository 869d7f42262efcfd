package healthchecktest

import (
	"context"
	"errors"
	"sync"

	"github.com/govs/govs/internal/healthcheck"
)

// ErrScripted is the error of a scripted failure.
var ErrScripted = errors.New("scripted failure")

// Checker returns results set by the test: each Check takes the next
// queued result, or repeats the default when none is queued. Calls
// counts the checks and Done receives after each.
type Checker struct {
	mu    sync.Mutex
	queue []healthcheck.Result
	def   healthcheck.Result
	calls int
	Done  chan struct{}
}

// NewChecker returns a checker whose default result is up or down.
func NewChecker(up bool) *Checker {
	c := &Checker{Done: make(chan struct{}, 1000)}
	c.def = result(up)
	return c
}

func result(up bool) healthcheck.Result {
	if up {
		return healthcheck.Result{Up: true}
	}
	return healthcheck.Result{Err: ErrScripted}
}

// SetUp changes the default result.
func (c *Checker) SetUp(up bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.def = result(up)
}

// Queue queues results to return before the default.
func (c *Checker) Queue(rs ...healthcheck.Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queue = append(c.queue, rs...)
}

// Calls returns how many checks ran.
func (c *Checker) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// Check implements healthcheck.Checker.
func (c *Checker) Check(context.Context) healthcheck.Result {
	c.mu.Lock()
	c.calls++
	r := c.def
	if len(c.queue) > 0 {
		r, c.queue = c.queue[0], c.queue[1:]
	}
	c.mu.Unlock()
	c.Done <- struct{}{}
	return r
}

// Recorder is a healthcheck.Notifier that records notifications.
type Recorder struct {
	mu sync.Mutex
	ns []healthcheck.Notification
}

// Notify records n.
func (r *Recorder) Notify(n healthcheck.Notification) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ns = append(r.ns, n)
}

// Take returns and clears the recorded notifications.
func (r *Recorder) Take() []healthcheck.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	ns := r.ns
	r.ns = nil
	return ns
}
