package config

import (
	"net/netip"
	"time"

	"github.com/govs/govs/internal/ipvs"
)

// Config is a parsed, defaulted and validated keepalived configuration.
// Treat it as read-only: a reload builds a new one and diffs (see Diff).
type Config struct {
	Global              Global               `json:"global"`
	StaticIPAddresses   []IPAddress          `json:"static_ipaddress,omitempty"`
	StaticRoutes        []Route              `json:"static_routes,omitempty"`
	TrackFiles          []TrackFile          `json:"track_files,omitempty"`
	SSL                 *SSL                 `json:"ssl,omitempty"`
	VirtualServerGroups []VirtualServerGroup `json:"virtual_server_groups,omitempty"`
	VirtualServers      []VirtualServer      `json:"virtual_servers,omitempty"`
	VRRPScripts         []VRRPScript         `json:"vrrp_scripts,omitempty"`
	VRRPSyncGroups      []VRRPSyncGroup      `json:"vrrp_sync_groups,omitempty"`
	VRRPInstances       []VRRPInstance       `json:"vrrp_instances,omitempty"`
}

// Setting is a keyword govs recognises but does not act on, kept with its
// position so tools can show it.
type Setting struct {
	Pos  Pos      `json:"pos"`
	Name string   `json:"name"`
	Args []string `json:"args,omitempty"`
}

// Script is a notify or check command: the command line as written (run
// through a shell-like split by the runner, see Args) and the user and
// group to run it as ("" for keepalived's default script_user).
type Script struct {
	Pos     Pos    `json:"pos"`
	Command string `json:"command"`
	User    string `json:"user,omitempty"`
	Group   string `json:"group,omitempty"`
}

// Global is global_defs.
type Global struct {
	RouterID              string        `json:"router_id,omitempty"` // default: host name (resolved at run time)
	NotificationEmail     []string      `json:"notification_email,omitempty"`
	NotificationEmailFrom string        `json:"notification_email_from,omitempty"` // default keepalived@<host>
	SMTPServer            string        `json:"smtp_server,omitempty"`
	SMTPPort              uint16        `json:"smtp_port,omitempty"` // default 25
	SMTPHeloName          string        `json:"smtp_helo_name,omitempty"`
	SMTPConnectTimeout    time.Duration `json:"smtp_connect_timeout"` // default 30s
	// SMTPAlert, SMTPAlertVRRP and SMTPAlertChecker are nil when not set.
	SMTPAlert        *bool `json:"smtp_alert,omitempty"`
	SMTPAlertVRRP    *bool `json:"smtp_alert_vrrp,omitempty"`
	SMTPAlertChecker *bool `json:"smtp_alert_checker,omitempty"`

	LVSSyncDaemon  *SyncDaemon `json:"lvs_sync_daemon,omitempty"`
	LVSTimeouts    LVSTimeouts `json:"lvs_timeouts"`
	LVSFlush       bool        `json:"lvs_flush,omitempty"`
	LVSFlushOnStop bool        `json:"lvs_flush_on_stop,omitempty"`

	DefaultInterface     string `json:"default_interface"` // default eth0
	ScriptUser           string `json:"script_user,omitempty"`
	ScriptGroup          string `json:"script_group,omitempty"`
	EnableScriptSecurity bool   `json:"enable_script_security,omitempty"`

	VRRPVersion          int           `json:"vrrp_version"`      // default 2
	VRRPMcastGroup4      netip.Addr    `json:"vrrp_mcast_group4"` // default 224.0.0.18
	VRRPMcastGroup6      netip.Addr    `json:"vrrp_mcast_group6"` // default ff02::12
	VRRPStrict           bool          `json:"vrrp_strict,omitempty"`
	VRRPCheckUnicastSrc  bool          `json:"vrrp_check_unicast_src,omitempty"`
	VRRPSkipCheckAdvAddr bool          `json:"vrrp_skip_check_adv_addr,omitempty"`
	VRRPStartupDelay     time.Duration `json:"vrrp_startup_delay,omitempty"`
	Garp                 Garp          `json:"garp"`

	// Other holds global_defs keywords keepalived knows that govs does not
	// act on (each also produced a warning).
	Other []Setting `json:"other,omitempty"`
}

// Garp are the gratuitous ARP / unsolicited NA settings, globally and per
// VRRP instance.
type Garp struct {
	MasterDelay         time.Duration `json:"master_delay"`          // default 5s
	MasterRepeat        int           `json:"master_repeat"`         // default 5
	LowerPrioDelay      time.Duration `json:"lower_prio_delay"`      // default MasterDelay
	LowerPrioRepeat     int           `json:"lower_prio_repeat"`     // default MasterRepeat
	MasterRefresh       time.Duration `json:"master_refresh"`        // default 0 (none)
	MasterRefreshRepeat int           `json:"master_refresh_repeat"` // default 1
	Interval            time.Duration `json:"interval,omitempty"`    // between GARPs, default 0
	NAInterval          time.Duration `json:"na_interval,omitempty"` // between NAs, default 0
}

// SyncDaemon is lvs_sync_daemon: the IPVS connection sync daemon.
type SyncDaemon struct {
	Pos       Pos        `json:"pos"`
	Interface string     `json:"interface"`
	Instance  string     `json:"instance,omitempty"` // VRRP instance whose state drives master/backup
	SyncID    uint8      `json:"syncid"`             // default: the instance's VRID, else 0
	SyncIDSet bool       `json:"-"`
	MaxLen    uint16     `json:"maxlen,omitempty"`
	Port      uint16     `json:"port"`  // default 8848
	TTL       uint8      `json:"ttl"`   // default 1
	Group     netip.Addr `json:"group"` // default 224.0.0.81
}

// LVSTimeouts is lvs_timeouts (ipvsadm --set); zero leaves a value as is.
type LVSTimeouts struct {
	TCP    time.Duration `json:"tcp,omitempty"`
	TCPFin time.Duration `json:"tcpfin,omitempty"`
	UDP    time.Duration `json:"udp,omitempty"`
}

// IPAddress is an entry of static_ipaddress, virtual_ipaddress or
// virtual_ipaddress_excluded: "ADDR[/LEN] [brd X] [dev X] [scope X]
// [label X] [peer X] ...".
type IPAddress struct {
	Pos     Pos          `json:"pos"`
	Prefix  netip.Prefix `json:"prefix"` // /32 or /128 when no length is given
	Brd     string       `json:"brd,omitempty"`
	Dev     string       `json:"dev,omitempty"` // default: the instance's interface (static: default_interface)
	Scope   string       `json:"scope,omitempty"`
	Label   string       `json:"label,omitempty"`
	Peer    netip.Prefix `json:"peer,omitzero"`
	NoTrack bool         `json:"no_track,omitempty"`
	// Options are further flags kept as written (home, -nodad, use_vmac, ...).
	Options []string `json:"options,omitempty"`
}

// Route is a static_routes or virtual_routes entry, kept as its words; Dest
// is the destination prefix when one could be identified.
type Route struct {
	Pos   Pos          `json:"pos"`
	Dest  netip.Prefix `json:"dest,omitzero"`
	Words []string     `json:"words"`
}

// TrackFile is track_file (vrrp_track_file) NAME { file, weight, init_file }.
type TrackFile struct {
	Pos     Pos    `json:"pos"`
	Name    string `json:"name"`
	File    string `json:"file"`
	Weight  int    `json:"weight"` // default 1
	Reverse bool   `json:"reverse,omitempty"`
}

// SSL is the SSL block used by SSL_GET checkers.
type SSL struct {
	Password    string `json:"password,omitempty"`
	CA          string `json:"ca,omitempty"`
	Certificate string `json:"certificate,omitempty"`
	Key         string `json:"key,omitempty"`
}

// VirtualServerGroup is virtual_server_group NAME { ... }.
type VirtualServerGroup struct {
	Pos     Pos          `json:"pos"`
	Name    string       `json:"name"`
	Entries []GroupEntry `json:"entries"`
}

// GroupEntry is one line of a virtual_server_group: an address range with
// a port (First == Last for a single address), or a firewall mark.
type GroupEntry struct {
	Pos    Pos         `json:"pos"`
	First  netip.Addr  `json:"first,omitzero"`
	Last   netip.Addr  `json:"last,omitzero"`
	Port   uint16      `json:"port,omitempty"`
	FWMark uint32      `json:"fwmark,omitempty"`
	Family ipvs.Family `json:"family,omitempty"` // for fwmark entries: inet/inet6 if given
}

// Forwarding is an lvs_method (lb_kind) with its tunnel options.
type Forwarding struct {
	Method   ipvs.FwdMethod  `json:"method"`
	TunType  ipvs.TunnelType `json:"tun_type,omitempty"`
	TunPort  uint16          `json:"tun_port,omitempty"`
	TunFlags ipvs.TunFlags   `json:"tun_flags,omitempty"`
}

// Timing are the checker timers, set on a virtual server, real server or
// checker; each level defaults to the one above (see Defaults in doc.go).
type Timing struct {
	DelayLoop        time.Duration `json:"delay_loop"`
	ConnectTimeout   time.Duration `json:"connect_timeout"`
	Retry            int           `json:"retry"`
	DelayBeforeRetry time.Duration `json:"delay_before_retry"`
	Warmup           time.Duration `json:"warmup"`
}

// VirtualServer is virtual_server IP PORT | fwmark N | group NAME { ... }.
type VirtualServer struct {
	Pos Pos `json:"pos"`
	// Exactly one of Addr (with Port), FWMark or Group identifies it.
	Addr   netip.Addr `json:"addr,omitzero"`
	Port   uint16     `json:"port,omitempty"`
	FWMark uint32     `json:"fwmark,omitempty"`
	Group  string     `json:"group,omitempty"`

	Protocol   ipvs.Protocol   `json:"protocol"`  // default: keepalived warns and uses UDP
	Scheduler  string          `json:"scheduler"` // lvs_sched / lb_algo, default wlc
	SchedFlags ipvs.SchedFlags `json:"sched_flags,omitempty"`
	OnePacket  bool            `json:"ops,omitempty"`
	Forwarding Forwarding      `json:"forwarding"` // default NAT
	IPFamily   ipvs.Family     `json:"ip_family,omitempty"`

	// Persistent is set by persistence_timeout (default 360 s when given
	// without a value), persistence_granularity is a prefix length (0 =
	// whole address).
	Persistent             bool   `json:"persistent,omitempty"`
	PersistenceTimeout     uint32 `json:"persistence_timeout,omitempty"`
	PersistenceGranularity uint8  `json:"persistence_granularity,omitempty"`
	PersistenceEngine      string `json:"persistence_engine,omitempty"`

	HASuspend        bool    `json:"ha_suspend,omitempty"`
	VirtualHost      string  `json:"virtualhost,omitempty"`
	Alpha            bool    `json:"alpha,omitempty"`
	Omega            bool    `json:"omega,omitempty"`
	Quorum           uint32  `json:"quorum"` // default 1
	Hysteresis       uint32  `json:"hysteresis,omitempty"`
	QuorumUp         *Script `json:"quorum_up,omitempty"`
	QuorumDown       *Script `json:"quorum_down,omitempty"`
	InhibitOnFailure bool    `json:"inhibit_on_failure,omitempty"`
	SMTPAlert        bool    `json:"smtp_alert,omitempty"`
	Timing           Timing  `json:"timing"`

	// CheckViaVIP is govs's check_via_vip: the TCP-based checks of the
	// DR and TUN real servers also check VIP:port through the forwarding
	// path (healthcheck.Path), so a real server without the VIP, or one
	// answering ARP for it, is down. CheckViaVIPInterface is
	// check_via_vip_interface: the director's interface towards the real
	// servers (default: the route's).
	CheckViaVIP          bool   `json:"check_via_vip,omitempty"`
	CheckViaVIPInterface string `json:"check_via_vip_interface,omitempty"`

	SorryServer *SorryServer `json:"sorry_server,omitempty"`
	RealServers []RealServer `json:"real_servers"`
	Other       []Setting    `json:"other,omitempty"`
}

// SorryServer is the server used when the quorum is lost.
type SorryServer struct {
	Pos        Pos        `json:"pos"`
	Addr       netip.Addr `json:"addr"`
	Port       uint16     `json:"port,omitempty"`
	Forwarding Forwarding `json:"forwarding"`
	Inhibit    bool       `json:"inhibit,omitempty"`
}

// RealServer is real_server IP [PORT] { ... }. The values are effective:
// those not set on it come from its virtual server.
type RealServer struct {
	Pos              Pos        `json:"pos"`
	Addr             netip.Addr `json:"addr"`
	Port             uint16     `json:"port,omitempty"`
	Weight           int32      `json:"weight"` // default 1
	Forwarding       Forwarding `json:"forwarding"`
	InhibitOnFailure bool       `json:"inhibit_on_failure,omitempty"`
	NotifyUp         *Script    `json:"notify_up,omitempty"`
	NotifyDown       *Script    `json:"notify_down,omitempty"`
	UThreshold       uint32     `json:"uthreshold,omitempty"`
	LThreshold       uint32     `json:"lthreshold,omitempty"`
	// ProxyProtocol is govs's proxy_protocol 1|2, not keepalived's: the
	// destination's [ipvs.Destination].ProxyProtocol, 0 when not given.
	ProxyProtocol uint8     `json:"proxy_protocol,omitempty"`
	SMTPAlert     bool      `json:"smtp_alert"` // default true (keepalived's historical default)
	VirtualHost   string    `json:"virtualhost,omitempty"`
	Alpha         bool      `json:"alpha,omitempty"`
	Timing        Timing    `json:"timing"`
	Checkers      []Checker `json:"checkers,omitempty"`
	Other         []Setting `json:"other,omitempty"`
}

// CheckerKind names a checker block.
type CheckerKind string

// Checker kinds, spelled as in keepalived.conf.
const (
	TCPCheck  CheckerKind = "TCP_CHECK"
	HTTPGet   CheckerKind = "HTTP_GET"
	SSLGet    CheckerKind = "SSL_GET"
	SMTPCheck CheckerKind = "SMTP_CHECK"
	DNSCheck  CheckerKind = "DNS_CHECK"
	MiscCheck CheckerKind = "MISC_CHECK"
	UDPCheck  CheckerKind = "UDP_CHECK"
	PingCheck CheckerKind = "PING_CHECK"
	FileCheck CheckerKind = "FILE_CHECK"
	BFDCheck  CheckerKind = "BFD_CHECK"
)

// Checker is one health checker of a real server. The common connection
// options apply to every kind except MISC_CHECK, FILE_CHECK and BFD_CHECK;
// exactly the kind's own pointer field is set.
type Checker struct {
	Pos  Pos         `json:"pos"`
	Kind CheckerKind `json:"kind"`

	// ConnectIP and ConnectPort default to the real server's address and
	// port (zero here means "use the real server's").
	ConnectIP      netip.Addr `json:"connect_ip,omitzero"`
	ConnectPort    uint16     `json:"connect_port,omitempty"`
	BindTo         netip.Addr `json:"bindto,omitzero"`
	BindIf         string     `json:"bind_if,omitempty"`
	BindPort       uint16     `json:"bind_port,omitempty"`
	FWMark         uint32     `json:"fwmark,omitempty"`
	Alpha          bool       `json:"alpha,omitempty"`
	LogAllFailures bool       `json:"log_all_failures,omitempty"`
	Timing         Timing     `json:"timing"`

	HTTP *HTTPCheck       `json:"http,omitempty"` // HTTP_GET and SSL_GET
	SMTP *SMTPCheckConfig `json:"smtp,omitempty"`
	DNS  *DNSCheckConfig  `json:"dns,omitempty"`
	Misc *MiscCheckConfig `json:"misc,omitempty"`
	UDP  *UDPCheckConfig  `json:"udp,omitempty"`
	File *FileCheckConfig `json:"file,omitempty"`
	BFD  string           `json:"bfd,omitempty"` // BFD_CHECK name
}

// HTTPCheck is HTTP_GET / SSL_GET.
type HTTPCheck struct {
	TLS          bool   `json:"tls,omitempty"`           // SSL_GET
	HTTPProtocol string `json:"http_protocol,omitempty"` // 1.0, 1.0C or 1.1; default 1.0
	FastRecovery bool   `json:"fast_recovery,omitempty"`
	VirtualHost  string `json:"virtualhost,omitempty"` // effective: checker, real server, virtual server
	EnableSNI    bool   `json:"enable_sni,omitempty"`
	SNIName      string `json:"sni_name,omitempty"`
	TLSCompliant bool   `json:"tls_compliant,omitempty"`
	URLs         []URL  `json:"urls"`
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// URL is an HTTP_GET/SSL_GET url block.
type URL struct {
	Pos          Pos           `json:"pos"`
	Path         string        `json:"path"`
	Digest       string        `json:"digest,omitempty"` // lower-case hex MD5 of the body (genhash)
	StatusCodes  []StatusRange `json:"status_code"`      // default 200-299
	VirtualHost  string        `json:"virtualhost,omitempty"`
	Regex        string        `json:"regex,omitempty"`
	RegexNoMatch bool          `json:"regex_no_match,omitempty"`
	RegexOptions []string      `json:"regex_options,omitempty"`
}

// SMTPCheckConfig is SMTP_CHECK. Hosts are the legacy "host { }" blocks,
// each a further endpoint checked with the checker's options.
type SMTPCheckConfig struct {
	HeloName string        `json:"helo_name,omitempty"` // default: local host name
	Hosts    []CheckerHost `json:"hosts,omitempty"`
}

// CheckerHost is an SMTP_CHECK host block.
type CheckerHost struct {
	Pos         Pos        `json:"pos"`
	ConnectIP   netip.Addr `json:"connect_ip,omitzero"`
	ConnectPort uint16     `json:"connect_port,omitempty"`
	BindTo      netip.Addr `json:"bindto,omitzero"`
	BindPort    uint16     `json:"bind_port,omitempty"`
}

// DNSCheckConfig is DNS_CHECK.
type DNSCheckConfig struct {
	Type string `json:"type"` // default SOA
	Name string `json:"name"` // default "."
}

// MiscCheckConfig is MISC_CHECK.
type MiscCheckConfig struct {
	Path    string        `json:"misc_path"`
	Timeout time.Duration `json:"misc_timeout"` // default: delay_loop
	Dynamic bool          `json:"misc_dynamic,omitempty"`
	User    string        `json:"user,omitempty"`
	Group   string        `json:"group,omitempty"`
}

// UDPCheckConfig is UDP_CHECK.
type UDPCheckConfig struct {
	Payload      []byte `json:"payload,omitempty"` // nil: random payload
	RequireReply bool   `json:"require_reply,omitempty"`
	// Reply and ReplyMask: when RequireReply, the reply must match Reply
	// on the bits set in ReplyMask (an X digit is a wildcard nibble).
	Reply          []byte `json:"reply,omitempty"`
	ReplyMask      []byte `json:"reply_mask,omitempty"`
	MinReplyLength int    `json:"min_reply_length"` // default 0
	MaxReplyLength int    `json:"max_reply_length"` // default 255
}

// FileCheckConfig is FILE_CHECK.
type FileCheckConfig struct {
	TrackFile string `json:"track_file"`
	Dynamic   bool   `json:"dynamic,omitempty"`
	Weight    int    `json:"weight"` // default 1
	Reverse   bool   `json:"reverse,omitempty"`
}

// VRRPScript is vrrp_script NAME { ... }.
type VRRPScript struct {
	Pos      Pos           `json:"pos"`
	Name     string        `json:"name"`
	Script   Script        `json:"script"`
	Interval time.Duration `json:"interval"` // default 1s
	Timeout  time.Duration `json:"timeout"`  // default Interval
	Weight   int           `json:"weight"`   // default 0: failure means FAULT
	Reverse  bool          `json:"reverse,omitempty"`
	Rise     int           `json:"rise"` // default 1
	Fall     int           `json:"fall"` // default 1
	InitFail bool          `json:"init_fail,omitempty"`
}

// Track is a track_interface / track_script / track_file entry. Weight is
// nil when not given (a script's own weight then applies).
type Track struct {
	Pos     Pos    `json:"pos"`
	Name    string `json:"name"`
	Weight  *int   `json:"weight,omitempty"`
	Reverse bool   `json:"reverse,omitempty"`
}

// Notify are the notify scripts of a VRRP instance or sync group.
type Notify struct {
	Master *Script `json:"master,omitempty"`
	Backup *Script `json:"backup,omitempty"`
	Fault  *Script `json:"fault,omitempty"`
	Stop   *Script `json:"stop,omitempty"`
	Any    *Script `json:"notify,omitempty"`
}

// VRRPSyncGroup is vrrp_sync_group NAME { group { ... } ... }.
type VRRPSyncGroup struct {
	Pos             Pos       `json:"pos"`
	Name            string    `json:"name"`
	Instances       []string  `json:"group"`
	Notify          Notify    `json:"notify"`
	SMTPAlert       bool      `json:"smtp_alert,omitempty"`
	TrackInterfaces []Track   `json:"track_interface,omitempty"`
	TrackScripts    []Track   `json:"track_script,omitempty"`
	TrackFiles      []Track   `json:"track_file,omitempty"`
	Other           []Setting `json:"other,omitempty"`
}

// VRRPAuth is the authentication block (VRRPv2 only).
type VRRPAuth struct {
	Type string `json:"auth_type"` // PASS or AH
	Pass string `json:"auth_pass"` // at most 8 characters are used
}

// UnicastPeer is a unicast_peer entry.
type UnicastPeer struct {
	Pos    Pos        `json:"pos"`
	Addr   netip.Addr `json:"addr"`
	MinTTL int        `json:"min_ttl,omitempty"`
	MaxTTL int        `json:"max_ttl,omitempty"`
}

// VRRPInstance is vrrp_instance NAME { ... }.
type VRRPInstance struct {
	Pos             Pos           `json:"pos"`
	Name            string        `json:"name"`
	State           string        `json:"state"` // MASTER or BACKUP, default BACKUP
	Interface       string        `json:"interface,omitempty"`
	VirtualRouterID uint8         `json:"virtual_router_id"`
	Priority        uint8         `json:"priority"`   // default 100
	AdvertInt       time.Duration `json:"advert_int"` // default 1s
	Version         int           `json:"version"`    // default vrrp_version; 3 for IPv6
	Auth            *VRRPAuth     `json:"authentication,omitempty"`

	VirtualIPAddresses         []IPAddress `json:"virtual_ipaddress,omitempty"`
	VirtualIPAddressesExcluded []IPAddress `json:"virtual_ipaddress_excluded,omitempty"`
	VirtualRoutes              []Route     `json:"virtual_routes,omitempty"`

	Preempt          bool          `json:"preempt"` // default true; nopreempt clears it
	PreemptDelay     time.Duration `json:"preempt_delay,omitempty"`
	Accept           *bool         `json:"accept,omitempty"`
	UnicastSrcIP     netip.Addr    `json:"unicast_src_ip,omitzero"`
	UnicastPeers     []UnicastPeer `json:"unicast_peer,omitempty"`
	McastSrcIP       netip.Addr    `json:"mcast_src_ip,omitzero"`
	DontTrackPrimary bool          `json:"dont_track_primary,omitempty"`

	TrackInterfaces []Track   `json:"track_interface,omitempty"`
	TrackScripts    []Track   `json:"track_script,omitempty"`
	TrackFiles      []Track   `json:"track_file,omitempty"`
	Notify          Notify    `json:"notify"`
	SMTPAlert       bool      `json:"smtp_alert,omitempty"`
	Garp            Garp      `json:"garp"`
	Strict          bool      `json:"strict_mode,omitempty"`
	Other           []Setting `json:"other,omitempty"`
}
