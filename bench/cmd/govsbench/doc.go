// Command govsbench measures govs against the direct routed path,
// nftables DNAT and HAProxy, in one run, on a namespace topology it
// builds itself (client, director, two realservers running nginx and
// iperf3), and writes results.json, results.md and chart.png.
//
//	go run ./bench/cmd/govsbench --quick
//
// It needs root and the Debian packages listed by --help; it installs
// nothing unless given --install. See docs/BENCHMARKS.md.
package main
