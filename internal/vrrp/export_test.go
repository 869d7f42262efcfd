package vrrp

import (
	"context"
	"time"
)

// Hooks for the external tests, which drive a node step by step on a fake
// clock (the seesaw runOnce pattern).

func (n *Node) Start()                            { n.start(n.clock.Now()) }
func (n *Node) RunOnce(ctx context.Context) error { return n.runOnce(ctx) }
func (n *Node) Shutdown()                         { n.shutdown(n.clock.Now()) }
func (n *Node) NextDeadline() time.Time           { return n.nextDeadline() }
func (n *Node) PendingEvents() int                { return len(n.events) }
