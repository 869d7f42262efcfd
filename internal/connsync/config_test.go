package connsync_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/ipvs"
)

func TestConfigDefaults(t *testing.T) {
	c := connsync.Config{Role: connsync.RoleMaster, Interface: "eth0"}.WithDefaults()
	if c.Group != netip.MustParseAddr("224.0.0.81") || c.Port != 8848 || c.TTL != 1 {
		t.Errorf("defaults %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  connsync.Config
		want []string // substrings of the error, all of them; none: valid
	}{
		{"master", connsync.Config{Role: connsync.RoleMaster, Interface: "eth0", SyncID: 255, MaxLen: 1000}, nil},
		{"backup v6", connsync.Config{Role: connsync.RoleBackup, Interface: "bond0.100", Group: netip.MustParseAddr("ff02::81")}, nil},
		{"no role", connsync.Config{Interface: "eth0"}, []string{"sync_daemon.state"}},
		{"no interface", connsync.Config{Role: connsync.RoleBackup}, []string{"mcast_interface"}},
		{"long interface", connsync.Config{Role: connsync.RoleBackup, Interface: "abcdefghijklmnop"}, []string{"mcast_interface"}},
		{"unicast group", connsync.Config{Role: connsync.RoleBackup, Interface: "eth0", Group: netip.MustParseAddr("10.0.0.1")}, []string{"not a multicast"}},
		{"maxlen", connsync.Config{Role: connsync.RoleMaster, Interface: "eth0", MaxLen: 65508}, []string{"sync_maxlen"}},
		{"all at once", connsync.Config{Group: netip.MustParseAddr("10.0.0.1"), MaxLen: -1},
			[]string{"state", "mcast_interface", "mcast_group", "sync_maxlen"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg.WithDefaults()
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !errors.Is(err, ipvs.ErrInvalid) {
				t.Fatalf("err = %v, want a validation error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestEffectiveMaxLen(t *testing.T) {
	v6 := netip.MustParseAddr("ff02::81")
	for _, tc := range []struct {
		role   connsync.Role
		maxLen int
		group  netip.Addr
		mtu    int
		want   int
	}{
		{connsync.RoleMaster, 0, netip.Addr{}, 9000, 1472}, // the master assumes 1500 whatever the MTU
		{connsync.RoleMaster, 0, v6, 1500, 1452},
		{connsync.RoleMaster, 100, netip.Addr{}, 1500, 100},
		{connsync.RoleMaster, 65535, v6, 1500, 65535 - 48},
		{connsync.RoleBackup, 0, netip.Addr{}, 9000, 9000 - 28},
		{connsync.RoleBackup, 0, netip.Addr{}, 1280, 1472}, // at least 1500
		{connsync.RoleBackup, 100, netip.Addr{}, 1500, 1024},
		{connsync.RoleBackup, 0, netip.Addr{}, 70000, 65535 - 28},
	} {
		c := connsync.Config{Role: tc.role, Interface: "eth0", MaxLen: tc.maxLen, Group: tc.group}.WithDefaults()
		if got := c.EffectiveMaxLen(tc.mtu); got != tc.want {
			t.Errorf("%s maxlen %d group %s mtu %d: %d, want %d", tc.role, tc.maxLen, c.Group, tc.mtu, got, tc.want)
		}
	}
}

func TestSettingsValidate(t *testing.T) {
	ok := connsync.DefaultSettings()
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(s *connsync.Settings)
		want string
	}{
		{"threshold at period", func(s *connsync.Settings) { s.Threshold = 50 }, "sync_threshold"},
		{"negative period", func(s *connsync.Settings) { s.Period = -1 }, "sync_threshold"},
		{"retries", func(s *connsync.Settings) { s.Retries = 4 }, "sync_retries"},
		{"ports", func(s *connsync.Settings) { s.Ports = 3 }, "sync_ports"},
		{"qlen", func(s *connsync.Settings) { s.QLenMax = 0 }, "sync_qlen_max"},
		{"refresh", func(s *connsync.Settings) { s.RefreshPeriod = -time.Second }, "sync_refresh_period"},
		{"sock size", func(s *connsync.Settings) { s.SockSize = -1 }, "sync_sock_size"},
	} {
		s := connsync.DefaultSettings()
		tc.mod(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	s := connsync.DefaultSettings()
	s.Period, s.Threshold = 0, 1000 // period 0: any threshold
	if err := s.Validate(); err != nil {
		t.Error(err)
	}
}

func TestParseRole(t *testing.T) {
	for in, want := range map[string]connsync.Role{"master": connsync.RoleMaster, "BACKUP": connsync.RoleBackup} {
		if got, err := connsync.ParseRole(in); err != nil || got != want {
			t.Errorf("ParseRole(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := connsync.ParseRole("both"); err == nil {
		t.Error("ParseRole(both) succeeded")
	}
	var r connsync.Role
	if err := r.UnmarshalText([]byte("master")); err != nil || r != connsync.RoleMaster {
		t.Errorf("UnmarshalText: %v %v", r, err)
	}
}
