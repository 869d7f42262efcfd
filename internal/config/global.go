package config

import (
	"net/netip"
	"strings"
	"time"
)

// Defaults of global_defs (keepalived's global_data.c).
const (
	DefaultSMTPPort           = 25
	DefaultSMTPConnectTimeout = 30 * time.Second
	DefaultInterface          = "eth0"
	DefaultVRRPVersion        = 2
	DefaultSyncPort           = 8848
	DefaultGarpMasterDelay    = 5 * time.Second
	DefaultGarpMasterRepeat   = 5
)

// Default multicast groups.
var (
	DefaultVRRPMcastGroup4 = netip.MustParseAddr("224.0.0.18")
	DefaultVRRPMcastGroup6 = netip.MustParseAddr("ff02::12")
	DefaultSyncGroup       = netip.MustParseAddr("224.0.0.81")
)

// ignoredGlobal are global_defs keywords of keepalived.conf(5) that govs
// accepts and does not act on.
var ignoredGlobal = []string{
	"tmp_config_directory", "config_save_dir", "process_names", "process_name",
	"vrrp_process_name", "checker_process_name", "bfd_process_name", "use_symlink_paths",
	"set_supplementary_groups", "startup_script", "startup_script_timeout",
	"shutdown_script", "shutdown_script_timeout", "checker_log_all_failures",
	"no_email_faults", "vrrp_garp_extra_if", "vrrp_down_timer_adverts",
	"vrrp_lower_prio_no_advert", "vrrp_higher_prio_send_advert", "v3_checksum_as_v2",
	"nftables", "nftables_priority", "nftables_counters", "nftables_ifindex",
	"nftables_ipvs", "nftables_ipvs_priority", "nftables_ipvs_start_fwmark",
	"vrrp_iptables", "vrrp_ipsets", "disable_local_igmp", "vrrp_notify_priority_changes",
	"max_auto_priority", "min_auto_priority_delay", "vrrp_priority", "checker_priority",
	"bfd_priority", "vrrp_no_swap", "checker_no_swap", "bfd_no_swap", "vrrp_cpu_affinity",
	"checker_cpu_affinity", "bfd_cpu_affinity", "vrrp_rt_priority", "checker_rt_priority",
	"bfd_rt_priority", "vrrp_rlimit_rttime", "checker_rlimit_rttime", "bfd_rlimit_rttime",
	"snmp_socket", "enable_snmp_vrrp", "enable_snmp_keepalived", "enable_snmp_checker",
	"enable_snmp_rfc", "enable_snmp_rfcv2", "enable_snmp_rfcv3", "enable_traps",
	"snmp_vs_stats_update_interval", "snmp_rs_stats_update_interval", "enable_dbus",
	"dbus_service_name", "dbus_no_interface_name", "notify_fifo", "notify_fifo_script",
	"vrrp_notify_fifo", "vrrp_notify_fifo_script", "lvs_notify_fifo", "lvs_notify_fifo_script",
	"fifo_write_vrrp_states_on_reload", "dynamic_interfaces", "vrrp_netlink_cmd_rcv_bufs",
	"vrrp_netlink_cmd_rcv_bufs_force", "vrrp_netlink_monitor_rcv_bufs",
	"vrrp_netlink_monitor_rcv_bufs_force", "lvs_netlink_cmd_rcv_bufs",
	"lvs_netlink_cmd_rcv_bufs_force", "lvs_netlink_monitor_rcv_bufs",
	"lvs_netlink_monitor_rcv_bufs_force", "process_monitor_rcv_bufs",
	"process_monitor_rcv_bufs_force", "vrrp_rx_bufs_policy", "vrrp_rx_bufs_multiplier",
	"rs_init_notifies", "no_checker_emails", "umask", "vrrp_delay_after_boot",
	"log_unknown_vrids", "vmac_prefix", "vmac_addr_prefix", "random_seed",
	"reload_check_config", "include_check", "reload_time_file", "reload_repeat",
	"reload_file", "data_use_instance", "state_file_location", "stats_file_location",
	"json_file_location", "json_version", "iproute_usr_dir", "iproute_etc_dir",
	"net_namespace", "net_namespace_ipvs", "namespace_with_ipsets", "instance",
	"use_pid_dir", "linkbeat_use_polling", "child_wait_time", "vrrp_lvs_syncd",
	"lvs_sync_daemon_interface", "vrrp_version_check", "vrrp_mcast_group4_fallback",
}

// ignoredTop are top-level blocks keepalived has that govs does not act on.
var ignoredTop = []string{
	"linkbeat_interfaces", "track_group", "static_rules", "vrrp_track_process",
	"bfd_instance", "garp_group", "interface_up_down_delays", "net_namespace",
	"net_namespace_ipvs", "namespace_with_ipsets", "instance", "use_pid_dir",
	"linkbeat_use_polling", "child_wait_time",
}

func (d *decoder) top(nodes []*Node) {
	g := &d.cfg.Global
	h := map[string]handler{
		"global_defs": func(n *Node) {
			if d.block(n) {
				d.globalDefs(n)
			}
		},
		"static_ipaddress": func(n *Node) {
			d.cfg.StaticIPAddresses = append(d.cfg.StaticIPAddresses, d.ipAddresses(n)...)
		},
		"static_routes":        func(n *Node) { d.cfg.StaticRoutes = append(d.cfg.StaticRoutes, d.routes(n)...) },
		"track_file":           d.trackFile,
		"vrrp_track_file":      d.trackFile,
		"SSL":                  d.ssl,
		"virtual_server_group": d.virtualServerGroup,
		"virtual_server":       d.virtualServer,
		"vrrp_script":          d.vrrpScript,
		"vrrp_sync_group":      d.vrrpSyncGroup,
		"vrrp_instance":        d.vrrpInstance,
	}
	d.walk(nodes, h, ignoredTop, &g.Other)
}

func (d *decoder) globalDefs(n *Node) {
	g := &d.cfg.Global
	h := map[string]handler{
		"router_id": d.setStr(&g.RouterID),
		"notification_email": func(n *Node) {
			g.NotificationEmail = append(g.NotificationEmail, d.values(n)...)
		},
		"notification_email_from": d.setStr(&g.NotificationEmailFrom),
		"smtp_server": func(n *Node) {
			if !d.scalar(n, 1, 2) {
				return
			}
			g.SMTPServer = n.Args[0]
			if len(n.Args) == 2 {
				if p, ok := d.intArgAt(n, 1, 1, 65535); ok {
					g.SMTPPort = uint16(p)
				}
			}
		},
		"smtp_helo_name": d.setStr(&g.SMTPHeloName),
		"smtp_connect_timeout": func(n *Node) {
			if v, ok := d.timer(n, time.Second, time.Hour); ok {
				g.SMTPConnectTimeout = v
			}
		},
		"smtp_alert":         d.optFlag(&g.SMTPAlert),
		"smtp_alert_vrrp":    d.optFlag(&g.SMTPAlertVRRP),
		"smtp_alert_checker": d.optFlag(&g.SMTPAlertChecker),
		"lvs_sync_daemon":    d.syncDaemon,
		"lvs_timeouts":       d.lvsTimeouts,
		"lvs_flush":          d.flag(&g.LVSFlush),
		"lvs_flush_on_stop":  func(n *Node) { d.scalar(n, 0, 1); g.LVSFlushOnStop = true },
		"default_interface":  d.setStr(&g.DefaultInterface),
		"script_user": func(n *Node) {
			if d.scalar(n, 1, 2) {
				g.ScriptUser, g.ScriptGroup = splitUserGroup(n.Args)
			}
		},
		"enable_script_security": d.flag(&g.EnableScriptSecurity),
		"vrrp_version": func(n *Node) {
			if v, ok := d.int(n, 2, 3); ok {
				g.VRRPVersion = int(v)
			}
		},
		"vrrp_mcast_group4":        d.setAddr(&g.VRRPMcastGroup4),
		"vrrp_mcast_group6":        d.setAddr(&g.VRRPMcastGroup6),
		"vrrp_strict":              d.flag(&g.VRRPStrict),
		"vrrp_check_unicast_src":   d.flag(&g.VRRPCheckUnicastSrc),
		"vrrp_skip_check_adv_addr": d.flag(&g.VRRPSkipCheckAdvAddr),
		"vrrp_startup_delay": func(n *Node) {
			if v, ok := d.timer(n, 0, time.Hour); ok {
				g.VRRPStartupDelay = v
			}
		},
		"vrrp_min_garp": func(n *Node) {
			if v, ok := d.boolArg(n); ok && v {
				g.Garp.MasterRepeat, g.Garp.MasterDelay = 1, 0
			}
		},
	}
	d.garpHandlers(h, &g.Garp, "vrrp_")
	d.walk(n.Block, h, ignoredGlobal, &g.Other)
}

// garpHandlers installs the garp_* keywords (prefix "vrrp_" globally, ""
// in a vrrp_instance).
func (d *decoder) garpHandlers(h map[string]handler, g *Garp, prefix string) {
	dur := func(dst *time.Duration, max time.Duration) handler {
		return func(n *Node) {
			if v, ok := d.timer(n, 0, max); ok {
				*dst = v
			}
		}
	}
	cnt := func(dst *int) handler {
		return func(n *Node) {
			if v, ok := d.int(n, 0, 255); ok {
				*dst = int(v)
			}
		}
	}
	h[prefix+"garp_master_delay"] = dur(&g.MasterDelay, time.Hour)
	h[prefix+"garp_master_repeat"] = cnt(&g.MasterRepeat)
	h[prefix+"garp_lower_prio_delay"] = dur(&g.LowerPrioDelay, time.Hour)
	h[prefix+"garp_lower_prio_repeat"] = cnt(&g.LowerPrioRepeat)
	h[prefix+"garp_master_refresh"] = dur(&g.MasterRefresh, 24*time.Hour)
	h[prefix+"garp_master_refresh_repeat"] = cnt(&g.MasterRefreshRepeat)
	if prefix != "" {
		h["vrrp_garp_interval"] = dur(&g.Interval, time.Second)
		h["vrrp_gna_interval"] = dur(&g.NAInterval, time.Second)
	}
}

// syncDaemon reads "lvs_sync_daemon IF [[inst] NAME] [id N] [maxlen N]
// [port N] [ttl N] [group ADDR]".
func (d *decoder) syncDaemon(n *Node) {
	if !d.scalar(n, 1, -1) {
		return
	}
	s := &SyncDaemon{Pos: n.Pos, Interface: n.Args[0]}
	args := n.Args[1:]
	for i := 0; i < len(args); i++ {
		kw := args[i]
		val := func() (string, bool) {
			if i+1 >= len(args) {
				d.errorf(n.Pos, "lvs_sync_daemon: '%s' needs a value", kw)
				return "", false
			}
			i++
			return args[i], true
		}
		num := func(min, max int64) (int64, bool) {
			v, ok := val()
			if !ok {
				return 0, false
			}
			x, ok := parseInt(v, min, max)
			if !ok {
				d.errorf(n.Pos, "lvs_sync_daemon: invalid %s '%s': use [%d, %d]", kw, v, min, max)
			}
			return x, ok
		}
		switch kw {
		case "inst":
			if v, ok := val(); ok {
				s.Instance = v
			}
		case "id":
			if v, ok := num(0, 255); ok {
				s.SyncID, s.SyncIDSet = uint8(v), true
			}
		case "maxlen":
			if v, ok := num(1, 65507); ok {
				s.MaxLen = uint16(v)
			}
		case "port":
			if v, ok := num(1, 65535); ok {
				s.Port = uint16(v)
			}
		case "ttl":
			if v, ok := num(1, 255); ok {
				s.TTL = uint8(v)
			}
		case "group":
			if v, ok := val(); ok {
				a, ok := parseAddr(v)
				if !ok || !a.IsMulticast() {
					d.errorf(n.Pos, "lvs_sync_daemon: group '%s' is not a multicast address", v)
				} else {
					s.Group = a
				}
			}
		default:
			if i == 0 && s.Instance == "" {
				s.Instance = kw // "inst" may be omitted for backward compatibility
				continue
			}
			d.errorf(n.Pos, "lvs_sync_daemon: unknown option '%s': use inst, id, maxlen, port, ttl or group", kw)
		}
	}
	d.cfg.Global.LVSSyncDaemon = s
}

func (d *decoder) lvsTimeouts(n *Node) {
	if !d.scalar(n, 2, 6) {
		return
	}
	t := &d.cfg.Global.LVSTimeouts
	for i := 0; i+1 < len(n.Args); i += 2 {
		v, ok := d.intArgAt(n, i+1, 1, 86400*31)
		if !ok {
			continue
		}
		dur := time.Duration(v) * time.Second
		switch n.Args[i] {
		case "tcp":
			t.TCP = dur
		case "tcpfin", "tcp_fin":
			t.TCPFin = dur
		case "udp":
			t.UDP = dur
		default:
			d.errorf(n.Pos, "lvs_timeouts: unknown timeout '%s': use tcp, tcpfin or udp", n.Args[i])
		}
	}
	if len(n.Args)%2 != 0 {
		d.errorf(n.Pos, "lvs_timeouts: '%s' needs a value", n.Args[len(n.Args)-1])
	}
}

func (d *decoder) trackFile(n *Node) {
	if !d.args(n, 1, 1) || !d.block(n) {
		return
	}
	tf := TrackFile{Pos: n.Pos, Name: n.Args[0], Weight: 1}
	d.walk(n.Block, map[string]handler{
		"file": d.setStr(&tf.File),
		"weight": func(c *Node) {
			if !d.scalar(c, 1, 2) {
				return
			}
			if v, ok := d.intArgAt(c, 0, -2147483647, 2147483647); ok {
				tf.Weight = int(v)
			}
			tf.Reverse = len(c.Args) == 2 && c.Args[1] == "reverse"
		},
	}, []string{"init_file"}, nil)
	if tf.File == "" {
		d.errorf(n.Pos, "track_file %s: 'file' is required", tf.Name)
	}
	d.cfg.TrackFiles = append(d.cfg.TrackFiles, tf)
}

func (d *decoder) ssl(n *Node) {
	if !d.block(n) {
		return
	}
	s := &SSL{}
	d.walk(n.Block, map[string]handler{
		"password":    d.setStr(&s.Password),
		"ca":          d.setStr(&s.CA),
		"certificate": d.setStr(&s.Certificate),
		"key":         d.setStr(&s.Key),
	}, nil, nil)
	d.cfg.SSL = s
}

// ipAddresses reads a block of "ADDR[/LEN] [brd X] [dev X] ..." lines.
func (d *decoder) ipAddresses(n *Node) []IPAddress {
	if !d.block(n) {
		return nil
	}
	var out []IPAddress
	for _, c := range n.Block {
		if c.HasBlock {
			d.warnf(c.Pos, "unexpected block after '%s' in %s; ignored", c.Name, n.Name)
		}
		if a, ok := d.ipAddress(c); ok {
			out = append(out, a)
		}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()), true
	}
	a, ok := parseAddr(s)
	if !ok {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

func (d *decoder) ipAddress(n *Node) (IPAddress, bool) {
	a := IPAddress{Pos: n.Pos}
	p, ok := parsePrefix(n.Name)
	if !ok {
		d.errorf(n.Pos, "invalid IP address '%s': use ADDR or ADDR/LEN", n.Name)
		return a, false
	}
	a.Prefix = p
	args := n.Args
	for i := 0; i < len(args); i++ {
		kw := args[i]
		switch kw {
		case "brd", "broadcast", "dev", "scope", "label", "peer", "preferred_lft", "track_group":
			if i+1 >= len(args) {
				d.errorf(n.Pos, "%s: '%s' needs a value", n.Name, kw)
				return a, false
			}
			i++
			v := args[i]
			switch kw {
			case "brd", "broadcast":
				a.Brd = v
			case "dev":
				a.Dev = v
			case "scope":
				a.Scope = v
			case "label":
				a.Label = v
			case "peer":
				pp, ok := parsePrefix(v)
				if !ok {
					d.errorf(n.Pos, "%s: invalid peer '%s'", n.Name, v)
					return a, false
				}
				a.Peer = pp
			default:
				a.Options = append(a.Options, kw, v)
			}
		case "no_track":
			a.NoTrack = true
		case "home", "-nodad", "nodad", "mngtmpaddr", "noprefixroute", "autojoin", "use_vmac":
			a.Options = append(a.Options, kw)
		default:
			d.warnf(n.Pos, "%s: unknown address option '%s' ignored", n.Name, kw)
		}
	}
	return a, true
}

// routes keeps route lines as words; the destination is the first word
// that parses as a prefix after optional "src X" / "to" / a route type.
func (d *decoder) routes(n *Node) []Route {
	if !d.block(n) {
		return nil
	}
	var out []Route
	for _, c := range n.Block {
		r := Route{Pos: c.Pos, Words: c.Words()}
		w := r.Words
		for i := 0; i < len(w); i++ {
			switch w[i] {
			case "src", "from":
				i++
				continue
			case "to", "blackhole", "unreachable", "prohibit", "throw", "inet6":
				continue
			}
			if p, ok := parsePrefix(w[i]); ok {
				r.Dest = p
			} else {
				d.errorf(c.Pos, "route '%s': cannot find the destination; write it as ADDR/LEN", strings.Join(w, " "))
			}
			break
		}
		out = append(out, r)
	}
	return out
}
