package keepalived_test

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/healthcheck"
	"github.com/govs/govs/internal/keepalived"
)

// TestPlanCheckers maps config checker blocks onto checker options and
// timing, with keepalived's defaults.
func TestPlanCheckers(t *testing.T) {
	a := netip.MustParseAddr
	conn := func(ip string, port uint16, timeout time.Duration) healthcheck.ConnOptions {
		return healthcheck.ConnOptions{ConnectIP: a(ip), ConnectPort: port, Timeout: timeout}
	}
	tests := []struct {
		name, block string
		want        keepalived.Plan
	}{
		{"tcp defaults", `TCP_CHECK { }`, keepalived.Plan{Kind: config.TCPCheck, Name: "TCP_CHECK",
			Timing:  healthcheck.Timing{DelayLoop: 60 * time.Second, Retry: 1, DelayBeforeRetry: time.Second, Warmup: 60 * time.Second},
			Options: healthcheck.TCPOptions{ConnOptions: conn("10.0.0.2", 8080, 5*time.Second)}}},
		{"tcp connect_ip, port, timers", `TCP_CHECK { connect_ip 10.0.1.2 connect_port 81 connect_timeout 2 retry 4 delay_before_retry 7 delay_loop 9 warmup 0 bindto 10.0.0.1 }`,
			keepalived.Plan{Kind: config.TCPCheck, Name: "TCP_CHECK",
				Timing: healthcheck.Timing{DelayLoop: 9 * time.Second, Retry: 4, DelayBeforeRetry: 7 * time.Second},
				Options: healthcheck.TCPOptions{ConnOptions: healthcheck.ConnOptions{ConnectIP: a("10.0.1.2"), ConnectPort: 81,
					BindTo: a("10.0.0.1"), Timeout: 2 * time.Second}}}},
		{"http", `HTTP_GET { url { path /health status_code 200 204 digest 0123456789abcdef0123456789abcdef } virtualhost www.example.com }`,
			keepalived.Plan{Kind: config.HTTPGet, Name: "HTTP_GET /health",
				Timing: healthcheck.Timing{DelayLoop: 60 * time.Second, Retry: 1, DelayBeforeRetry: 3 * time.Second, Warmup: 60 * time.Second},
				Options: healthcheck.HTTPOptions{ConnOptions: conn("10.0.0.2", 8080, 5*time.Second), VirtualHost: "www.example.com",
					URLs: []healthcheck.URL{{Path: "/health", Digest: "0123456789abcdef0123456789abcdef",
						StatusCodes: []healthcheck.StatusRange{{Min: 200, Max: 200}, {Min: 204, Max: 204}}, VirtualHost: "www.example.com"}}}}},
		{"dns", `DNS_CHECK { type A name example.com }`,
			keepalived.Plan{Kind: config.DNSCheck, Name: "DNS_CHECK",
				Timing:  healthcheck.Timing{DelayLoop: 60 * time.Second, Retry: 3, DelayBeforeRetry: 60 * time.Second, Warmup: 60 * time.Second},
				Options: healthcheck.DNSOptions{ConnOptions: conn("10.0.0.2", 8080, 5*time.Second), Type: "A", Name: "example.com"}}},
		{"misc", `MISC_CHECK { misc_path "/bin/check 1" misc_dynamic }`,
			keepalived.Plan{Kind: config.MiscCheck, Name: "MISC_CHECK /bin/check 1",
				Timing:  healthcheck.Timing{DelayLoop: 60 * time.Second, Retry: 0, DelayBeforeRetry: time.Second, Warmup: 60 * time.Second},
				Options: healthcheck.MiscOptions{Path: "/bin/check 1", Timeout: 60 * time.Second, Dynamic: true}}},
		{"misc timeout", `MISC_CHECK { misc_path /bin/check misc_timeout 3 delay_loop 10 }`,
			keepalived.Plan{Kind: config.MiscCheck, Name: "MISC_CHECK /bin/check",
				Timing:  healthcheck.Timing{DelayLoop: 10 * time.Second, Retry: 0, DelayBeforeRetry: time.Second, Warmup: 10 * time.Second},
				Options: healthcheck.MiscOptions{Path: "/bin/check", Timeout: 3 * time.Second}}},
		{"udp", `UDP_CHECK { payload 0a0b require_reply 0X }`,
			keepalived.Plan{Kind: config.UDPCheck, Name: "UDP_CHECK",
				Timing: healthcheck.Timing{DelayLoop: 60 * time.Second, Retry: 1, DelayBeforeRetry: time.Second, Warmup: 60 * time.Second},
				Options: healthcheck.UDPOptions{ConnOptions: conn("10.0.0.2", 8080, 5*time.Second), Payload: []byte{0x0a, 0x0b},
					RequireReply: true, Reply: []byte{0x00}, ReplyMask: []byte{0xf0}, MaxReplyLength: 255}}},
		{"ping", `PING_CHECK { }`,
			keepalived.Plan{Kind: config.PingCheck, Name: "PING_CHECK",
				Timing:  healthcheck.Timing{DelayLoop: 60 * time.Second, Retry: 1, DelayBeforeRetry: time.Second, Warmup: 60 * time.Second},
				Options: healthcheck.PingOptions{ConnOptions: conn("10.0.0.2", 0, 5*time.Second)}}},
		{"file from track_file", `FILE_CHECK { track_file tf }`,
			keepalived.Plan{Kind: config.FileCheck, Name: "FILE_CHECK tf",
				Timing:  healthcheck.Timing{DelayLoop: 60 * time.Second, Retry: 1, DelayBeforeRetry: time.Second, Warmup: 60 * time.Second},
				Options: healthcheck.FileOptions{Path: "/run/tf", Weight: -5}}},
		{"file own weight", `FILE_CHECK { track_file tf weight 2 reverse }`,
			keepalived.Plan{Kind: config.FileCheck, Name: "FILE_CHECK tf",
				Timing:  healthcheck.Timing{DelayLoop: 60 * time.Second, Retry: 1, DelayBeforeRetry: time.Second, Warmup: 60 * time.Second},
				Options: healthcheck.FileOptions{Path: "/run/tf", Weight: 2, Reverse: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "track_file tf { file /run/tf\n weight -5 }\nvirtual_server 10.0.0.1 8080 { protocol TCP lb_kind NAT\n real_server 10.0.0.2 8080 {\n" +
				strings.ReplaceAll(tt.block, " { ", " {\n ") + "\n}\n}\n"
			src = strings.NewReplacer(" url {\n", " url {\n", " connect_port", "\n connect_port", " connect_timeout", "\n connect_timeout",
				" retry", "\n retry", " delay_before_retry", "\n delay_before_retry", " delay_loop", "\n delay_loop", " warmup", "\n warmup",
				" bindto", "\n bindto", " status_code", "\n status_code", " digest", "\n digest", " } virtualhost", "\n }\n virtualhost",
				" name", "\n name", " misc_dynamic", "\n misc_dynamic", " misc_timeout", "\n misc_timeout", " require_reply", "\n require_reply",
				" weight 2", "\n weight 2").Replace(src)
			cfg, _, err := config.Parse("k.conf", strings.NewReader(src))
			if err != nil {
				t.Fatalf("%v\n%s", err, src)
			}
			vs := &cfg.VirtualServers[0]
			got, err := keepalived.PlanCheckers(cfg, vs, &vs.RealServers[0], 8080)
			if err != nil || len(got) != 1 {
				t.Fatalf("PlanCheckers = %+v, %v", got, err)
			}
			got[0].Pos = config.Pos{}
			if !reflect.DeepEqual(got[0], tt.want) {
				t.Errorf("plan =\n %#v\nwant\n %#v", got[0], tt.want)
			}
			if _, err := got[0].New(); err != nil {
				t.Errorf("New: %v", err)
			}
		})
	}
}

func TestPlanCheckersErrors(t *testing.T) {
	src := `virtual_server fwmark 7 { lb_kind DR
  real_server 10.0.0.2 { TCP_CHECK { } } }`
	cfg, _, err := config.Parse("k.conf", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if err := keepalived.Validate(cfg); err == nil || !strings.Contains(err.Error(), "k.conf:2: TCP_CHECK: no port") {
		t.Errorf("Validate = %v, want a file:line error about the port", err)
	}
}
