package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/dataplane/dataplanetest"
	"github.com/govs/govs/internal/ipvs"
)

const testConf = `global_defs { router_id test }
static_ipaddress { 192.0.2.1/32 dev lo }
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
}
virtual_server 10.0.0.1 80 {
    protocol TCP
    lb_kind NAT
    real_server 10.0.0.2 80 { weight 2 }
    bogus_keyword 1
}
`

func TestConfigTest(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.conf")
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(good, []byte(testConf), 0o644)
	os.WriteFile(bad, []byte(strings.Replace(testConf, "weight 2", "weight two", 1)+"virtual_server 10.0.0.1 {\n}\n"), 0o644)
	var out syncBuffer
	if err := run(context.Background(), []string{"-t", "-f", good}, testEnv(&out, nil)); err != nil {
		t.Fatalf("-t on a good config: %v\n%s", err, out.String())
	}
	if s := out.String(); !strings.Contains(s, "good.conf:11: warning: Unknown keyword 'bogus_keyword'") || !strings.Contains(s, "configuration is valid") {
		t.Errorf("-t output:\n%s", s)
	}
	out = syncBuffer{}
	if err := run(context.Background(), []string{"--config-test", "--config-file", bad}, testEnv(&out, nil)); !errors.Is(err, errConfigTest) {
		t.Fatalf("-t on a bad config = %v\n%s", err, out.String())
	}
	if s := out.String(); !strings.Contains(s, "bad.conf:10: ") || !strings.Contains(s, "not valid") {
		t.Errorf("-t output lacks the file:line error:\n%s", s)
	}
	out = syncBuffer{}
	if err := run(context.Background(), []string{"-t"}, testEnv(&out, nil)); !errors.Is(err, errUsage) {
		t.Errorf("-t without -f = %v", err)
	}
}

func TestRunWithConfigFileAndReload(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	os.WriteFile(conf, []byte(testConf), 0o644)
	socket := filepath.Join(dir, "govsd.sock")
	fake := dataplanetest.New("fake")
	var stderr syncBuffer
	e := testEnv(&stderr, fake)
	hup := make(chan os.Signal, 1)
	e.hup = hup
	ready := make(chan string, 1)
	e.ready = func(_, m string) { ready <- m }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--socket", socket, "--metrics-address", "127.0.0.1:0", "-f", conf, "--drain-timeout", "1s"}, e)
	}()
	var metricsAddr string
	select {
	case metricsAddr = <-ready:
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	c := api.NewClient(socket)
	defer c.CloseIdleConnections()
	k := ipvs.TCPService(netip.MustParseAddrPort("10.0.0.1:80"))
	st, err := c.Service(ctx, k)
	if err != nil || len(st.Dests) != 1 || st.Dests[0].Weight != 2 {
		t.Fatalf("service from the config = %+v, %v", st, err)
	}
	hs, err := c.HealthStatus(ctx)
	if err != nil || len(hs.Services) != 1 || hs.ConfigFile != conf {
		t.Errorf("health = %+v, %v", hs, err)
	}

	// SIGHUP: a realserver added.
	os.WriteFile(conf, []byte(strings.Replace(testConf, "real_server 10.0.0.2 80 { weight 2 }",
		"real_server 10.0.0.2 80 { weight 2 }\n real_server 10.0.0.3 80 { }", 1)), 0o644)
	hup <- os.Interrupt
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ = c.Service(ctx, k)
		if len(st.Dests) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not add the realserver: %+v\n%s", st, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The API: a bad config is refused with file:line, the running one stays.
	os.WriteFile(conf, []byte("virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 { weight x }\n}\n"), 0o644)
	if _, err := c.Reload(ctx); !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "keepalived.conf:2") {
		t.Errorf("reload of a bad config = %v", err)
	}
	if st, _ = c.Service(ctx, k); len(st.Dests) != 2 {
		t.Errorf("after a refused reload: %+v", st)
	}
	// A good one: 10.0.0.3 drains (no connections: deleted at the next poll).
	os.WriteFile(conf, []byte(testConf), 0o644)
	res, err := c.Reload(ctx)
	if err != nil || len(res.Changes) != 1 || !strings.Contains(res.Changes[0], "drain destination 10.0.0.3:80") {
		t.Errorf("reload = %+v, %v", res, err)
	}

	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`govs_realserver_up{family="ipv4",fwmark="",port="80",protocol="tcp",realserver="10.0.0.2",realserver_port="80",vip="10.0.0.1"} 1`, "govs_service_quorum_up"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run = %v", err)
	}
	for _, want := range []string{"static_ipaddress not applied", "VRRP planned, not started", "pos=" + conf + ":11", "configuration reloaded", "reload refused"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}
