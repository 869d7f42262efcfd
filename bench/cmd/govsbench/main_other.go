//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "govsbench: not supported on this OS: it needs Linux network namespaces, BPF and nftables")
	os.Exit(1)
}
