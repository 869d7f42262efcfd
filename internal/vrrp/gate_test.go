package vrrp_test

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestPreemptGate: a higher priority backup whose gate is closed behaves
// as nopreempt; once the gate opens it takes over at the next master
// down interval. A dead master is taken over whatever the gate says.
func TestPreemptGate(t *testing.T) {
	s := newSim(t)
	low := s.add(baseConfig("low", 100), "10.0.0.1")
	s.run(5 * time.Second)
	var open atomic.Bool
	cfg := baseConfig("high", 200)
	cfg.PreemptGate = open.Load
	s.add(cfg, "10.0.0.2")
	s.run(10 * time.Second)
	if got := s.masters(); len(got) != 1 || got[0] != "low" {
		t.Fatalf("masters with the gate closed = %v, want [low]", got)
	}
	open.Store(true)
	s.run(5 * time.Second)
	if got := s.masters(); len(got) != 1 || got[0] != "high" {
		t.Fatalf("masters after the gate opened = %v, want [high]", got)
	}

	if low == nil {
		t.Fatal("no low node")
	}
}

// TestPreemptGateNeverDelaysFailover: a gated backup takes over from a
// master that died, gate closed or not.
func TestPreemptGateNeverDelaysFailover(t *testing.T) {
	s := newSim(t)
	low := s.add(baseConfig("low", 100), "10.0.0.1")
	s.run(5 * time.Second)
	cfg := baseConfig("high", 200)
	cfg.PreemptGate = func() bool { return false }
	s.add(cfg, "10.0.0.2")
	s.run(10 * time.Second)
	s.wantMaster("low")
	s.crash(low)
	s.run(4 * time.Second)
	s.wantMaster("high")
}
