// Package dataplanetest has an in-memory [dataplane.Dataplane] for tests of
// the control plane: it records every call, keeps the services and
// destinations it was given (destinations newest first, as the kernel lists
// them), and can be told to fail any method or to refuse a configuration
// the way a real data plane refuses what it cannot forward.
//
// # What it is not
//
// It forwards nothing and checks nothing on its own: duplicate or missing
// services are the engine's business, so the fake accepts what it is told
// (and fails a change that names something it does not hold, so that a
// control plane that lets the two disagree is caught). Counters and rates
// come from [Fake.SetStats] and connections from [Fake.SetConns].
package dataplanetest
