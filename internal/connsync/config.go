package connsync

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/govs/govs/internal/ipvs"
)

// ErrNotSupported is returned by Dial and Listen where multicast sync
// sockets are not implemented (every OS but Linux).
var ErrNotSupported = errors.New("sync daemon sockets are not supported on this OS")

// Defaults of the sync daemon (start_sync_thread).
var (
	// DefaultGroup is the IPv4 multicast group (IP_VS_SYNC_GROUP).
	DefaultGroup = netip.AddrFrom4([4]byte{224, 0, 0, 81})
)

const (
	// DefaultPort is the UDP port of sync thread 0 (IP_VS_SYNC_PORT);
	// thread i uses DefaultPort+i.
	DefaultPort = 8848
	// DefaultTTL is the multicast TTL.
	DefaultTTL = 1
	// MaxLenLimitIPv4 is the largest --sync-maxlen for an IPv4 group:
	// 65535 less the IP and UDP headers.
	MaxLenLimitIPv4 = 65535 - 20 - 8
	// ifNameMax is IFNAMSIZ less the terminating NUL.
	ifNameMax = 15
)

// Role is the sync daemon's state, with the kernel's values
// (IP_VS_STATE_MASTER, IP_VS_STATE_BACKUP).
type Role uint8

// Roles.
const (
	RoleNone   Role = 0
	RoleMaster Role = 1
	RoleBackup Role = 2
)

func (r Role) String() string {
	switch r {
	case RoleMaster:
		return "master"
	case RoleBackup:
		return "backup"
	case RoleNone:
		return "none"
	}
	return fmt.Sprintf("role%d", uint8(r))
}

// ParseRole accepts "master" and "backup", as ipvsadm --start-daemon does.
func ParseRole(s string) (Role, error) {
	switch strings.ToLower(s) {
	case "master":
		return RoleMaster, nil
	case "backup":
		return RoleBackup, nil
	}
	return RoleNone, fmt.Errorf("unknown sync daemon state %q: use master or backup", s)
}

// MarshalText implements encoding.TextMarshaler.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Role) UnmarshalText(b []byte) error {
	v, err := ParseRole(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Config is one sync daemon: what ipvsadm --start-daemon master|backup
// sets with --mcast-interface, --syncid, --sync-maxlen, --mcast-group,
// --mcast-port and --mcast-ttl, and what keepalived's "lvs_sync_daemon
// IF [inst] NAME [id N] [maxlen N] [port N] [ttl N] [group ADDR]" sets.
// Zero fields take the kernel's defaults ([Config.WithDefaults]).
type Config struct {
	Role Role `json:"state"`
	// Interface is the multicast interface (--mcast-interface).
	Interface string `json:"mcast_interface"`
	// SyncID tags this cluster's messages (--syncid, 0..255). A backup
	// with SyncID 0 accepts every syncid.
	SyncID uint8 `json:"syncid"`
	// MaxLen is the UDP payload limit (--sync-maxlen); 0 derives it from
	// the MTU, see MaxLen.
	MaxLen int `json:"sync_maxlen,omitempty"`
	// Group is the multicast group (--mcast-group), IPv4 or IPv6.
	Group netip.Addr `json:"mcast_group"`
	// Port is the UDP port of sync thread 0 (--mcast-port).
	Port uint16 `json:"mcast_port"`
	// TTL is the multicast TTL or hop limit (--mcast-ttl).
	TTL uint8 `json:"mcast_ttl"`
	// Instance is keepalived's VRRP instance whose state selects the role
	// (lvs_sync_daemon's second argument); empty for ipvsadm.
	Instance string `json:"instance,omitempty"`
}

// WithDefaults returns c with zero fields set as start_sync_thread sets
// them: group 224.0.0.81, port 8848, TTL 1.
func (c Config) WithDefaults() Config {
	if !c.Group.IsValid() {
		c.Group = DefaultGroup
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	return c
}

// Validate reports every problem in c, joined. Call it on WithDefaults's
// result.
func (c *Config) Validate() error {
	var errs []error
	add := func(field string, v any, format string, args ...any) {
		errs = append(errs, &ipvs.FieldError{Field: "sync_daemon." + field, Value: v, Msg: fmt.Sprintf(format, args...)})
	}
	if c.Role != RoleMaster && c.Role != RoleBackup {
		add("state", c.Role, "must be master or backup")
	}
	switch {
	case c.Interface == "":
		add("mcast_interface", `""`, "a multicast interface is required (--mcast-interface, or lvs_sync_daemon's first argument)")
	case len(c.Interface) > ifNameMax || strings.ContainsAny(c.Interface, "/ \t\n") || c.Interface == "." || c.Interface == "..":
		add("mcast_interface", c.Interface, "is not a valid interface name (at most %d characters, no '/' or spaces)", ifNameMax)
	}
	switch {
	case !c.Group.IsValid():
		add("mcast_group", "", "a multicast group is required (default 224.0.0.81)")
	case c.Group.Is4In6():
		add("mcast_group", c.Group, "write an IPv4 group as plain IPv4")
	case !c.Group.IsMulticast():
		add("mcast_group", c.Group, "is not a multicast address")
	}
	if c.Port == 0 {
		add("mcast_port", 0, "must be 1..65535")
	}
	if c.TTL == 0 {
		add("mcast_ttl", 0, "must be 1..255")
	}
	limit := MaxLenLimitIPv4
	if c.Group.Is6() {
		limit = 65535 - 40 - 8
	}
	if c.MaxLen < 0 || c.MaxLen > limit {
		add("sync_maxlen", c.MaxLen, "must be 1..%d (0 derives it from the MTU)", limit)
	}
	return errors.Join(errs...)
}

// headerRoom is the IP and UDP header length for the group's family.
func (c *Config) headerRoom() int {
	if c.Group.Is6() {
		return 40 + 8
	}
	return 20 + 8
}

// EffectiveMaxLen returns the message size limit the kernel derives for
// c on an interface of the given MTU (start_sync_thread): a master uses
// MaxLen clamped to 1..65535-headers, or 1500-headers when MaxLen is 0
// (it never assumes more than Ethernet, whatever its own MTU); a backup
// uses MaxLen clamped to 1024..65535-headers, or the interface MTU
// clamped to 1500..65535 less the headers. The headers are 28 bytes for
// IPv4 (IP + UDP) and 48 for IPv6.
func (c *Config) EffectiveMaxLen(mtu int) int {
	hlen := c.headerRoom()
	minLen, dflt := 1, 1500-hlen
	if c.Role == RoleBackup {
		minLen, dflt = 1024, min(max(mtu, 1500), 65535)-hlen
	}
	if c.MaxLen != 0 {
		return min(max(c.MaxLen, minLen), 65535-hlen)
	}
	return dflt
}

// Settings are the sync sysctls of net.ipv4.vs (ipvs-sysctl.rst), with
// the kernel's defaults from [DefaultSettings].
type Settings struct {
	// Threshold and Period are sync_threshold's two values: a
	// connection is synced when its incoming packet count modulo Period
	// equals Threshold (default 3 50). Period 0 syncs once, when the
	// count equals Threshold, and then only on state changes.
	Threshold int
	Period    int
	// RefreshPeriod (sync_refresh_period, default 0) syncs a connection
	// again only when its expiry moved by more than this (or half its
	// timeout, at least 10 s) since the last sync; it replaces the packet
	// counting when Period is 0 too.
	RefreshPeriod time.Duration
	// Retries (sync_retries, 0..3) resends a refresh that would be
	// suppressed, every RefreshPeriod/8, up to this many times.
	Retries int
	// QLenMax (sync_qlen_max) bounds the messages queued for sending;
	// more are dropped. The kernel's default is 1/32 of the memory pages;
	// govs uses DefaultQLenMax.
	QLenMax int
	// SockSize (sync_sock_size) sets SO_SNDBUF (master) or SO_RCVBUF
	// (backup); 0 keeps the system default.
	SockSize int
	// Ports (sync_ports, a power of two up to 64) is the number of sync
	// threads, each with its own UDP port Port+id.
	Ports int
	// PersistMode (sync_persist_mode) syncs only the templates of
	// connections under persistence, not the connections.
	PersistMode bool
}

// Kernel defaults and limits of the settings.
const (
	DefaultThreshold = 3
	DefaultPeriod    = 50
	// DefaultQLenMax is govs's queue bound; the kernel's default depends
	// on the memory size.
	DefaultQLenMax = 4096
	MaxRetries     = 3
	MaxPorts       = 64 // IPVS_SYNC_PORTS_MAX

	// FlushTime is how long the master keeps a partly filled message
	// before sending it (IPVS_SYNC_FLUSH_TIME); CheckPeriod how often it
	// looks (IPVS_SYNC_CHECK_PERIOD).
	FlushTime   = 2 * time.Second
	CheckPeriod = time.Second
	// TemplateTimeout is the timeout a backup gives a template whose
	// message carries none (version 0).
	TemplateTimeout = 3 * time.Minute
)

// DefaultSettings returns the kernel's defaults.
func DefaultSettings() Settings {
	return Settings{
		Threshold: DefaultThreshold,
		Period:    DefaultPeriod,
		QLenMax:   DefaultQLenMax,
		Ports:     1,
	}
}

// Validate reports every problem in s by the kernel's sysctl rules, joined.
func (s *Settings) Validate() error {
	var errs []error
	add := func(field string, v any, format string, args ...any) {
		errs = append(errs, &ipvs.FieldError{Field: "sync." + field, Value: v, Msg: fmt.Sprintf(format, args...)})
	}
	if s.Threshold < 0 || s.Period < 0 || (s.Period != 0 && s.Threshold >= s.Period) {
		add("sync_threshold", fmt.Sprintf("%d %d", s.Threshold, s.Period), "threshold must be 0..period-1 (or any non-negative value with period 0)")
	}
	if s.RefreshPeriod < 0 {
		add("sync_refresh_period", s.RefreshPeriod, "must not be negative")
	}
	if s.Retries < 0 || s.Retries > MaxRetries {
		add("sync_retries", s.Retries, "must be 0..%d", MaxRetries)
	}
	if s.QLenMax < 1 {
		add("sync_qlen_max", s.QLenMax, "must be at least 1")
	}
	if s.SockSize < 0 {
		add("sync_sock_size", s.SockSize, "must not be negative (0 keeps the system default)")
	}
	if s.Ports < 1 || s.Ports&(s.Ports-1) != 0 {
		add("sync_ports", s.Ports, "must be a power of two")
	}
	return errors.Join(errs...)
}

// threads returns the number of sync threads (ports) actually used:
// sync_ports clamped to 1..64.
func (s *Settings) threads() int { return min(max(s.Ports, 1), MaxPorts) }
