// Command govsadm is govs's ipvsadm: it takes ipvsadm's command line,
// asks govsd over its unix socket, and prints what ipvsadm prints.
// Installed (or linked) as ipvsadm it is exactly ipvsadm; as govsadm it
// also takes --json and --socket, and `govsadm realserver` (or `rs`)
// prepares a realserver (package realserver).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/govs/govs/internal/ipvsadm"
	"github.com/govs/govs/internal/realserver"
)

func main() {
	if isRealserver(os.Args) {
		os.Exit(runRealserver(os.Args[0], os.Args[2:], os.Stdout, os.Stderr, realserver.NewSystem))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ipvsadm.Main(ctx, os.Args, ipvsadm.Env{
		Stdin:    os.Stdin,
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
		Getenv:   os.Getenv,
		Dial:     dial,
		Resolver: &ipvsadm.SystemResolver{},
	})
	stop()
	os.Exit(code)
}
