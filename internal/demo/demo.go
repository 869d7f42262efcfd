package demo

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/ipvsadm"
)

//go:embed demo.rules
var rulesTemplate string

var rulesTmpl = template.Must(template.New("demo.rules").Parse(rulesTemplate))

// Realserver is one demo realserver.
type Realserver struct {
	Name   string
	Addr   netip.AddrPort
	Weight int
}

// Config is the demo's setup. The zero value of a field means its default.
type Config struct {
	// VIP is the virtual service's address (default 127.0.0.1:8080).
	VIP netip.AddrPort
	// Realservers default to rs1..rs3 on 127.0.0.2..4 at the VIP's
	// port, weights 3, 2, 1.
	Realservers []Realserver
	// Socket is govsd's API socket, printed so the user can run govsadm.
	Socket string
	// Every is the interval between the demo client's requests (1 s).
	Every time.Duration
	// TableEvery prints the table after every this many requests (5).
	TableEvery int
	// Requests stops the demo after this many requests; 0 runs until ctx
	// is done.
	Requests int
}

func (c *Config) setDefaults() {
	if !c.VIP.IsValid() {
		c.VIP = netip.MustParseAddrPort("127.0.0.1:8080")
	}
	if len(c.Realservers) == 0 {
		for i, w := range []int{3, 2, 1} {
			c.Realservers = append(c.Realservers, Realserver{
				Name:   fmt.Sprintf("rs%d", i+1),
				Addr:   netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(i + 2)}), c.VIP.Port()),
				Weight: w,
			})
		}
	}
	if c.Every == 0 {
		c.Every = time.Second
	}
	if c.TableEvery == 0 {
		c.TableEvery = 5
	}
}

// Rules returns the demo's configuration in ipvsadm -S format.
func Rules(cfg Config) string {
	cfg.setDefaults()
	var b bytes.Buffer
	if err := rulesTmpl.Execute(&b, cfg); err != nil {
		panic(err) // the template is ours and fixed
	}
	return b.String()
}

// Run starts the realservers, loads the rules into d, and runs the demo
// client until ctx is done or cfg.Requests were sent. It prints to out.
func Run(ctx context.Context, d api.Director, cfg Config, out io.Writer) error {
	cfg.setDefaults()
	stop, err := startRealservers(cfg.Realservers)
	if err != nil {
		return err
	}
	defer stop()
	if err := ipvsadm.Restore(ctx, strings.NewReader(Rules(cfg)), "demo.rules (embedded)", d); err != nil {
		return fmt.Errorf("load the demo configuration: %w", err)
	}

	fmt.Fprintf(out, "\ngovs demo: a director on the userspace proxy data plane, realservers on loopback\n\n")
	fmt.Fprintf(out, "  client --> VIP %s (govsd, wrr)\n", cfg.VIP)
	for i, rs := range cfg.Realservers {
		branch := "|"
		if i == len(cfg.Realservers)-1 {
			branch = "'"
		}
		fmt.Fprintf(out, "               %s--> %s %s  weight %d\n", branch, rs.Name, rs.Addr, rs.Weight)
	}
	fmt.Fprintln(out)
	if err := printTable(ctx, d, out); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nTry it:   curl http://%s/\n", cfg.VIP)
	if cfg.Socket != "" {
		fmt.Fprintf(out, "Inspect:  GOVS_SOCKET=%s go run ./cmd/govsadm -Ln   (or --stats, -Lnc)\n", cfg.Socket)
	}
	fmt.Fprintf(out, "Stop:     Ctrl-C\n\n")

	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	}
	url := fmt.Sprintf("http://%s/", cfg.VIP)
	tick := time.NewTicker(cfg.Every)
	defer tick.Stop()
	for n := 1; cfg.Requests == 0 || n <= cfg.Requests; n++ {
		answer, err := get(ctx, client, url)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			fmt.Fprintf(out, "demo client: request %d: %v\n", n, err)
		} else {
			fmt.Fprintf(out, "demo client: request %d -> %s\n", n, answer)
		}
		if n%cfg.TableEvery == 0 {
			fmt.Fprintln(out)
			if err := printTable(ctx, d, out); err != nil {
				return err
			}
			fmt.Fprintln(out)
		}
		if cfg.Requests != 0 && n == cfg.Requests {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
	return nil
}

func get(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// printTable prints what govsadm -Ln prints.
func printTable(ctx context.Context, d api.Director, out io.Writer) error {
	info, err := d.Info(ctx)
	if err != nil {
		return err
	}
	svcs, err := d.Services(ctx)
	if err != nil {
		return err
	}
	l := &ipvsadm.Lister{W: out, Resolver: ipvsadm.NumericResolver{}, Format: ipvsadm.FmtNumeric}
	l.All(ctx, info, svcs)
	return nil
}

// startRealservers starts one HTTP server per realserver. Each answers
// with its name and address and closes the connection, as the
// LVS-mini-HOWTO's http test does.
func startRealservers(rss []Realserver) (stop func(), err error) {
	var srvs []*http.Server
	stop = func() {
		for _, s := range srvs {
			s.Close()
		}
	}
	for _, rs := range rss {
		l, err := net.Listen("tcp", rs.Addr.String())
		if err != nil {
			stop()
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("start demo realserver %s on %s: %w: stop what listens there, or run the demo on another port with --demo-vip 127.0.0.1:PORT", rs.Name, rs.Addr, err)
			}
			return nil, fmt.Errorf("start demo realserver %s on %s: %w", rs.Name, rs.Addr, err)
		}
		name, addr := rs.Name, rs.Addr
		s := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "%s (%s) answered\n", name, addr)
			}),
			ReadHeaderTimeout: 5 * time.Second,
		}
		s.SetKeepAlivesEnabled(false)
		srvs = append(srvs, s)
		go s.Serve(l)
	}
	return stop, nil
}
