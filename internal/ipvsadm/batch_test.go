package ipvsadm_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/api/apitest"
	"github.com/govs/govs/internal/ipvsadm"
)

// batchRecorder is a Director that records the size of every Apply.
type batchRecorder struct {
	api.Director
	sizes []int
	// noBatch makes Apply answer as a govsd without POST /v1/batch does.
	noBatch bool
}

func (b *batchRecorder) Apply(ctx context.Context, ops []api.Op) (api.BatchResult, error) {
	if b.noBatch {
		return api.BatchResult{}, &api.Error{Status: 404, Code: api.CodeNotFound, Message: "no route POST /v1/batch"}
	}
	b.sizes = append(b.sizes, len(ops))
	return b.Director.Apply(ctx, ops)
}

// restoreWith runs -R of in against d with batches of size, as ipvsadm
// (compat) does, and returns what it printed, its exit code and the table
// saved afterwards.
func restoreWith(t *testing.T, d api.Director, size int, in string) (res result, saved string) {
	t.Helper()
	ctx := context.Background()
	p := &ipvsadm.Parser{Prog: "ipvsadm", Compat: true}
	cmd, err := p.Parse(ctx, []string{"-R"})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := d.Info(ctx)
	var out, errb bytes.Buffer
	r := &ipvsadm.Runner{D: d, Info: info, Parser: p, Stdin: strings.NewReader(in), Stdout: &out, Stderr: &errb, BatchSize: size}
	res.code = r.Run(ctx, cmd)
	res.stdout, res.stderr = out.String(), errb.String()
	return res, run(t, d, nil, "", "ipvsadm", "-Sn").stdout
}

// TestRestoreBatches: -R in batches prints the same messages in the same
// order, leaves the same table and exits with the same code as one request
// per line, wherever the refused commands fall in a batch (first, middle,
// last, several in a row, the very last line), and whatever the batch size.
func TestRestoreBatches(t *testing.T) {
	const svc = "-A -t 10.0.0.1:80 -s rr\n"
	dest := func(n int) string { return fmt.Sprintf("-a -t 10.0.0.1:80 -r 10.0.0.%d -m\n", n) }
	tests := []struct {
		name       string
		in         string
		wantStderr string
		wantCode   int
	}{
		{
			name:     "all applied",
			in:       svc + dest(2) + dest(3) + dest(4) + dest(5) + dest(6) + dest(7),
			wantCode: 0,
		},
		{
			name:       "refused in the middle, then more",
			in:         svc + dest(2) + dest(2) + dest(3) + dest(4) + dest(5) + dest(6),
			wantStderr: "Destination already exists\n",
		},
		{
			name:       "refused at the edges of batches of 3",
			in:         svc + dest(2) + dest(2) + dest(3) + dest(4) + dest(3) + dest(5) + dest(5),
			wantStderr: "Destination already exists\nDestination already exists\nDestination already exists\n",
			wantCode:   255,
		},
		{
			name:       "first line refused",
			in:         "-d -t 10.0.0.1:80 -r 10.0.0.2\n" + svc + dest(2),
			wantStderr: "Service not defined\n",
		},
		{
			name:       "several refused in a row",
			in:         svc + svc + svc + svc + dest(2) + "-D -t 10.0.0.9:80\n" + dest(3),
			wantStderr: "Service already exists\nService already exists\nService already exists\nNo such service\n",
		},
		{
			name:       "last line refused: exit 255",
			in:         svc + dest(2) + dest(3) + dest(2),
			wantStderr: "Destination already exists\n",
			wantCode:   255,
		},
		{
			name:       "parse error after queued commands: their messages first, nothing after",
			in:         svc + svc + dest(2) + "-a -t 10.0.0.1:80 -r 10.0.0.3 -w x\n" + dest(4),
			wantStderr: "Service already exists\nillegal weight specified\n",
			wantCode:   2,
		},
		{
			name:       "non-table commands run in order between batches",
			in:         svc + dest(2) + "-Z -t 10.0.0.9:80\n" + dest(3) + dest(3) + "-Z\n" + dest(4),
			wantStderr: "No such service\nDestination already exists\n",
		},
		{
			name:       "edit, delete, flush and set",
			in:         svc + dest(2) + dest(3) + "-e -t 10.0.0.1:80 -r 10.0.0.3 -m -w 5\n" + "-d -t 10.0.0.1:80 -r 10.0.0.2\n" + "-d -t 10.0.0.1:80 -r 10.0.0.2\n" + "--set 10 20 30\n" + "-C\n" + svc + "-E -t 10.0.0.1:80 -s wrr\n",
			wantStderr: "No such destination\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One request per line: the meaning batches must keep.
			ref := &batchRecorder{Director: apitest.New(), noBatch: true}
			wantRes, wantSaved := restoreWith(t, ref, 0, tt.in)
			if wantRes.stderr != tt.wantStderr || wantRes.code != tt.wantCode {
				t.Fatalf("one by one: %+v, want stderr %q code %d", wantRes, tt.wantStderr, tt.wantCode)
			}
			lines := strings.Count(tt.in, "\n")
			for size := 1; size <= lines+1; size++ {
				for name, d := range map[string]api.Director{"fake": apitest.New(), "director": realDirector(t), "api": served(t, realDirector(t))} {
					rec := &batchRecorder{Director: d}
					res, saved := restoreWith(t, rec, size, tt.in)
					if res != wantRes || saved != wantSaved {
						t.Errorf("%s, batches of %d: %+v, table\n%s\nwant %+v, table\n%s", name, size, res, saved, wantRes, wantSaved)
					}
					for _, n := range rec.sizes {
						if n > size || n == 0 {
							t.Errorf("%s, batches of %d: sent a batch of %d (all: %v)", name, size, n, rec.sizes)
						}
					}
				}
			}
		})
	}
}

// TestRestoreBatchSends: 7 table commands in batches of 3 go in 3
// requests; a refused command in a batch makes one more request, with
// the rest of that batch after it.
func TestRestoreBatchSends(t *testing.T) {
	in := "-A -t 10.0.0.1:80\n" +
		"-a -t 10.0.0.1:80 -r 10.0.0.2\n" +
		"-a -t 10.0.0.1:80 -r 10.0.0.3\n" +
		"-a -t 10.0.0.1:80 -r 10.0.0.4\n" +
		"-a -t 10.0.0.1:80 -r 10.0.0.4\n" + // refused: index 1 of the second batch
		"-a -t 10.0.0.1:80 -r 10.0.0.5\n" +
		"-a -t 10.0.0.1:80 -r 10.0.0.6\n"
	rec := &batchRecorder{Director: apitest.New()}
	res, _ := restoreWith(t, rec, 3, in)
	if res.code != 0 || res.stderr != "Destination already exists\n" {
		t.Errorf("restore: %+v", res)
	}
	if want := []int{3, 3, 1, 1}; fmt.Sprint(rec.sizes) != fmt.Sprint(want) {
		t.Errorf("batch sizes %v, want %v", rec.sizes, want)
	}
	// The default size sends it all at once.
	rec = &batchRecorder{Director: apitest.New()}
	if res, _ := restoreWith(t, rec, 0, in); res.code != 0 || fmt.Sprint(rec.sizes) != "[7 2]" {
		t.Errorf("default batch: %+v, sizes %v", res, rec.sizes)
	}
}

// served returns an API client of d served on a unix socket.
func served(t *testing.T, d api.Director) api.Director {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "govsd.sock")
	l, err := api.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: api.NewServer(d, slog.New(slog.DiscardHandler))}
	go srv.Serve(l)
	c := api.NewClient(sock)
	t.Cleanup(func() { c.CloseIdleConnections(); srv.Close() })
	return c
}
