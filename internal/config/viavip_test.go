package config_test

import (
	"strings"
	"testing"

	"github.com/govs/govs/internal/config"
)

// TestCheckViaVIP parses govs's check_via_vip and check_via_vip_interface.
func TestCheckViaVIP(t *testing.T) {
	tests := []struct {
		name, input string
		wantErr     string // "" for none
		wantWarn    string
		on          bool
		iface       string
	}{
		{"DR", "virtual_server 10.1.0.100 80 {\nprotocol TCP\nlb_kind DR\ncheck_via_vip\ncheck_via_vip_interface eth1\nreal_server 10.2.0.11 80 {\nTCP_CHECK {\n}\n}\n}\n", "", "", true, "eth1"},
		{"TUN gue on", "virtual_server 10.1.0.100 80 {\nprotocol TCP\nlb_kind TUN type gue port 6080\ncheck_via_vip on\nreal_server 10.2.0.11 80 {\n}\n}\n", "", "", true, ""},
		{"off", "virtual_server 10.1.0.100 80 {\nprotocol TCP\nlb_kind NAT\ncheck_via_vip off\nreal_server 10.2.0.11 80 {\n}\n}\n", "", "", false, ""},
		{"NAT", "virtual_server 10.1.0.100 80 {\nprotocol TCP\nlb_kind DR\ncheck_via_vip on\nreal_server 10.2.0.11 80 {\nlb_kind NAT\n}\n}\n",
			"k.conf:4: check_via_vip: real server 10.2.0.11 (k.conf:5) of virtual_server 10.1.0.100 80 uses NAT", "", false, ""},
		{"default NAT", "virtual_server 10.1.0.100 80 {\nprotocol TCP\ncheck_via_vip\nreal_server 10.2.0.11 80 {\n}\n}\n",
			"k.conf:3: check_via_vip: real server 10.2.0.11 (k.conf:4)", "", false, ""},
		{"fwmark", "virtual_server fwmark 1 {\nlb_kind DR\ncheck_via_vip\nreal_server 10.2.0.11 {\n}\n}\n",
			"k.conf:3: check_via_vip: virtual_server fwmark 1 has no single VIP", "", false, ""},
		{"GRE", "virtual_server 10.1.0.100 80 {\nprotocol TCP\nlb_kind TUN type gre\ncheck_via_vip\nreal_server 10.2.0.11 80 {\n}\n}\n",
			"k.conf:4: check_via_vip: real server 10.2.0.11 (k.conf:5) of virtual_server 10.1.0.100 80 uses a gre tunnel", "", false, ""},
		{"families", "virtual_server 10.1.0.100 80 {\nprotocol TCP\nlb_kind TUN\ncheck_via_vip\nreal_server fd00::11 80 {\n}\n}\n",
			"k.conf:4: check_via_vip: real server fd00::11 (k.conf:5) and VIP 10.1.0.100 are of different families", "", false, ""},
		{"bad bool", "virtual_server 10.1.0.100 80 {\nprotocol TCP\nlb_kind DR\ncheck_via_vip maybe\nreal_server 10.2.0.11 80 {\n}\n}\n",
			"k.conf:4: check_via_vip: invalid boolean 'maybe'", "", false, ""},
		{"interface alone", "virtual_server 10.1.0.100 80 {\nprotocol TCP\nlb_kind DR\ncheck_via_vip_interface eth1\nreal_server 10.2.0.11 80 {\n}\n}\n",
			"", "k.conf:4: virtual_server 10.1.0.100 80: check_via_vip_interface without check_via_vip; ignored", false, "eth1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, warns, err := config.Parse("k.conf", strings.NewReader(tt.input))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ws []string
			for _, w := range warns {
				ws = append(ws, w.String())
			}
			if tt.wantWarn != "" && !strings.Contains(strings.Join(ws, "\n"), tt.wantWarn) {
				t.Errorf("warnings %q, want %q", ws, tt.wantWarn)
			}
			vs := cfg.VirtualServers[0]
			if vs.CheckViaVIP != tt.on || vs.CheckViaVIPInterface != tt.iface {
				t.Errorf("check_via_vip %v %q, want %v %q", vs.CheckViaVIP, vs.CheckViaVIPInterface, tt.on, tt.iface)
			}
		})
	}
}
