//go:build linux

package demo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/dataplane/ebpf"
	"github.com/govs/govs/internal/testenv"
)

// TestNetnsDemoEBPF runs the eBPF demo in each mode for a few requests:
// both realservers answer (wrr 2:1), each sees the real client address,
// the table lists the forwarding method, and nothing is left behind.
func TestNetnsDemoEBPF(t *testing.T) {
	testenv.Root(t)
	for _, mode := range []struct{ name, fwd string }{{"dr", "Route"}, {"nat", "Masq"}, {"tun", "Tunnel"}} {
		t.Run(mode.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var out bytes.Buffer
			if err := RunEBPF(ctx, &out, mode.name, 6); err != nil {
				t.Fatalf("RunEBPF: %v\n%s", err, out.String())
			}
			s := out.String()
			t.Log("\n" + s)
			if n := strings.Count(s, "rs2 (10.2.0.12) answered, client 10.1.0.2:"); n != 4 {
				t.Errorf("rs2 answered %d of 6 requests, want 4 (wrr 2:1)", n)
			}
			if n := strings.Count(s, "rs1 (10.2.0.11) answered, client 10.1.0.2:"); n != 2 {
				t.Errorf("rs1 answered %d of 6 requests, want 2 (wrr 2:1)", n)
			}
			if !regexp.MustCompile(`-> 10\.2\.0\.12:80\s+` + mode.fwd + `\s+2\s+\d+\s+\d+`).MatchString(s) {
				t.Errorf("the table does not list rs2 by %s with weight 2", mode.fwd)
			}
			for _, ns := range regexp.MustCompile(`namespace (govs-\S+)`).FindAllStringSubmatch(s, -1) {
				if _, err := os.Stat("/run/netns/" + ns[1]); err == nil {
					t.Errorf("namespace %s left behind", ns[1])
				}
			}
			if _, err := os.Stat(fmt.Sprintf("%s-demo-%d", ebpf.DefaultPinPath, os.Getpid())); err == nil {
				t.Errorf("BPF pins left behind")
			}
		})
	}
}

func TestRunEBPFBadMode(t *testing.T) {
	if err := RunEBPF(context.Background(), &bytes.Buffer{}, "gre", 1); err == nil || !strings.Contains(err.Error(), "use dr, nat or tun") {
		t.Errorf("RunEBPF(gre) = %v, want an error naming the modes", err)
	}
}
