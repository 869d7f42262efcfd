// Package micro holds govs's microbenchmarks, as Go benchmarks: the
// per-packet cost of the eBPF forwarding program against a do-nothing
// floor (BPF_PROG_TEST_RUN), the memory of a connection-table entry, and
// the control plane's scale (10,000 services through the API, through
// govsadm -R, and govsadm -Ln over them).
//
// They need root (network namespaces, BPF) and skip with a message
// without it:
//
//	go test -run '^$' -bench . -benchtime 1x ./bench/micro/          # scale, memory
//	go test -run '^$' -bench Forward -benchtime 1000000x ./bench/micro/ # per packet
//
// # Per-packet cost
//
// BenchmarkForward loads the real data plane (ebpf.New) in a namespace of
// its own with static neighbours, configures one DR, one NAT and one TUN
// service of 10 or 1,000 destinations (wlc, which reads every
// destination's counters for each new connection), with 10 destinations
// also after filling the connection table with 1M connections through the
// program itself, and then times govs_tc (found through its pinned TCX
// link) with Program.Benchmark:
//
//   - established: one packet of an open connection, one run each (at
//     most 200,000 runs), the kernel's time summed (NAT rewrites and TUN
//     grows the packet, so a repeated run would not repeat the same work);
//   - dr/established-repeat: the DR packet repeated b.N times in one
//     BPF_PROG_TEST_RUN (the kernel's per-run time);
//   - first: SYNs of distinct connections (at most 200,000), one run
//     each, the kernel's time summed: every one schedules and inserts an
//     entry.
//
// The floor is a TC program that returns TC_ACT_OK, timed the same two
// ways (repeat and single runs), since a single run carries the test
// harness's fixed cost.
//
// # What it is not
//
// BPF_PROG_TEST_RUN runs the program on a linear skb in the caller's
// context: no driver, no GRO, no actual redirect. It is the program's own
// cost; the macro benchmark (bench/cmd/govsbench) is the system's.
package micro
