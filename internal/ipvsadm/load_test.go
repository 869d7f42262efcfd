package ipvsadm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/govs/govs/internal/api/apitest"
	"github.com/govs/govs/internal/ipvs"
)

func TestRestore(t *testing.T) {
	tests := []struct {
		name     string
		rules    string
		wantErr  string // substring; "" for success
		wantSvcs int
	}{
		{
			name: "save format",
			rules: `# demo
-A -t 127.0.0.1:8080 -s wrr
-a -t 127.0.0.1:8080 -r 127.0.0.2:8080 -m -w 3
ipvsadm -a -t 127.0.0.1:8080 -r 127.0.0.3:8080 -m -w 2

-A -u 127.0.0.1:53 -s rr
`,
			wantSvcs: 2,
		},
		{
			name:    "bad option names the line",
			rules:   "-A -t 127.0.0.1:80 -s wrr\n-a -t 127.0.0.1:80 -r 127.0.0.2 -w -5\n",
			wantErr: "rules:2: ",
		},
		{
			name:    "refused command names the line and keeps the cause",
			rules:   "-A -t 127.0.0.1:80\n-A -t 127.0.0.1:80\n",
			wantErr: "service already exists",
		},
		{
			name:    "listing is not a rule",
			rules:   "-L -n\n",
			wantErr: "rules:1: only table commands",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := apitest.New()
			err := Restore(context.Background(), strings.NewReader(tt.rules), "rules", d)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Restore: %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Restore error = %v, want it to contain %q", err, tt.wantErr)
			}
			svcs, _ := d.Services(context.Background())
			if tt.wantErr == "" && len(svcs) != tt.wantSvcs {
				t.Fatalf("services = %d, want %d", len(svcs), tt.wantSvcs)
			}
		})
	}
}

func TestRestoreKeepsSentinel(t *testing.T) {
	d := apitest.New()
	err := Restore(context.Background(), strings.NewReader("-a -t 127.0.0.1:80 -r 127.0.0.2\n"), "r", d)
	if !errors.Is(err, ipvs.ErrNoService) {
		t.Fatalf("err = %v, want ipvs.ErrNoService", err)
	}
}

// TestRestoreBatchBoundaries: whatever the batch size, a refused command
// names its own line and keeps its cause, the commands before it are
// applied and the ones after it are not; a line that does not parse is
// reported only after the commands before it were applied without error.
func TestRestoreBatchBoundaries(t *testing.T) {
	const rules = "-A -t 127.0.0.1:80\n" + // 1
		"-a -t 127.0.0.1:80 -r 127.0.0.2\n" + // 2
		"-a -t 127.0.0.1:80 -r 127.0.0.3\n" + // 3
		"-a -t 127.0.0.1:80 -r 127.0.0.2\n" + // 4: refused
		"-a -t 127.0.0.1:80 -r 127.0.0.4\n" + // 5
		"-A -t 127.0.0.1:81\n" // 6
	for size := 1; size <= 7; size++ {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			ctx := context.Background()
			d := apitest.New()
			err := restore(ctx, strings.NewReader(rules), "rules", d, size)
			if err == nil || !strings.HasPrefix(err.Error(), "rules:4: ") || !errors.Is(err, ipvs.ErrDestExists) {
				t.Fatalf("err = %v, want rules:4: wrapping ipvs.ErrDestExists", err)
			}
			svcs, _ := d.Services(ctx)
			if len(svcs) != 1 || len(svcs[0].Dests) != 2 {
				t.Fatalf("table after the refusal: %+v, want 1 service with 2 destinations", svcs)
			}

			// A parse error after a refused command: the refusal wins.
			d = apitest.New()
			err = restore(ctx, strings.NewReader(rules[:strings.Index(rules, "-a -t 127.0.0.1:80 -r 127.0.0.4")]+"-A -t\n"), "rules", d, size)
			if err == nil || !strings.HasPrefix(err.Error(), "rules:4: ") {
				t.Fatalf("err = %v, want the refusal of line 4", err)
			}
			// A parse error alone: after everything before it.
			d = apitest.New()
			err = restore(ctx, strings.NewReader(rules[:strings.Index(rules, "-a -t 127.0.0.1:80 -r 127.0.0.2\n-a -t 127.0.0.1:80 -r 127.0.0.4")]+"-A -t\n"), "rules", d, size)
			if err == nil || err.Error() != "rules:4: -t: missing argument" {
				t.Fatalf("err = %v, want rules:4's parse error", err)
			}
			if svcs, _ := d.Services(ctx); len(svcs) != 1 || len(svcs[0].Dests) != 2 {
				t.Fatalf("table before the parse error: %+v", svcs)
			}
		})
	}
}
