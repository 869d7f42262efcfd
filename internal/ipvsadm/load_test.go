package ipvsadm

import (
	"context"
	"errors"
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
