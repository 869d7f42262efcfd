// Package netns builds network namespace topologies for tests and demos:
// namespaces joined by veth pairs, with addresses, routes, static
// neighbours and sysctls, all removed again by t.Cleanup.
//
// It is a test helper, not a general network configuration library: every
// function takes a [TB] (a *testing.T, or an [Env] for the root demo) and
// fails it on error.
//
// # Threads
//
// A network namespace belongs to an OS thread. [NS.Do] locks the calling
// goroutine to its thread, switches into the namespace, runs the function
// and switches back; code that opens sockets or runs BPF programs
// (BPF_PROG_TEST_RUN resolves routes in the caller's namespace) must run
// inside Do. Goroutines started inside Do do not inherit the namespace.
package netns
