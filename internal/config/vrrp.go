package config

import (
	"math"
	"strings"
	"time"
)

// Defaults of the VRRP part (keepalived's vrrp_data.c and vrrp_parser.c).
const (
	DefaultPriority       = 100
	DefaultAdvertInt      = time.Second
	DefaultScriptInterval = time.Second
	DefaultState          = "BACKUP"
)

var ignoredInstance = []string{
	"vrf", "use_vmac", "use_vmac_addr", "vmac_xmit_base", "use_ipvlan", "native_ipv6",
	"track_process", "track_bfd", "mcast_dst_ip", "track_src_ip", "check_unicast_src",
	"unicast_fault_no_peer", "unicast_ttl", "old_unicast_checksum", "v3_checksum_as_v2",
	"garp_extra_if", "down_timer_adverts", "timer_expired_backup", "lower_prio_no_advert",
	"higher_prio_send_advert", "auth_hmac", "no_virtual_ipaddress", "promote_secondaries",
	"virtual_rules", "skip_check_adv_addr", "debug", "notify_master_rx_lower_pri",
	"notify_priority_changes", "notify_deleted", "kernel_rx_buf_size", "linkbeat_use_polling",
	"lvs_sync_daemon_interface",
}

func (d *decoder) tracks(n *Node, min, max int64) []Track {
	if !d.block(n) {
		return nil
	}
	var out []Track
	for _, c := range n.Block {
		t := Track{Pos: c.Pos, Name: c.Name}
		for i := 0; i < len(c.Args); i++ {
			switch c.Args[i] {
			case "weight":
				if i+1 >= len(c.Args) {
					d.errorf(c.Pos, "%s %s: 'weight' needs a value", n.Name, c.Name)
					break
				}
				i++
				v, ok := parseInt(c.Args[i], min, max)
				if !ok {
					d.errorf(c.Pos, "%s %s: invalid weight '%s': use [%d, %d]", n.Name, c.Name, c.Args[i], min, max)
					continue
				}
				w := int(v)
				t.Weight = &w
			case "reverse":
				t.Reverse = true
			case "noreverse":
				t.Reverse = false
			default:
				d.warnf(c.Pos, "%s %s: unknown option '%s' ignored", n.Name, c.Name, c.Args[i])
			}
		}
		out = append(out, t)
	}
	return out
}

func (d *decoder) notifyHandlers(h map[string]handler, nt *Notify) {
	h["notify_master"] = d.setScript(&nt.Master)
	h["notify_backup"] = d.setScript(&nt.Backup)
	h["notify_fault"] = d.setScript(&nt.Fault)
	h["notify_stop"] = d.setScript(&nt.Stop)
	h["notify"] = d.setScript(&nt.Any)
}

func (d *decoder) vrrpScript(n *Node) {
	if !d.args(n, 1, 1) || !d.block(n) {
		return
	}
	s := VRRPScript{Pos: n.Pos, Name: n.Args[0], Rise: 1, Fall: 1, Timeout: unset}
	interval := DefaultScriptInterval
	d.walk(n.Block, map[string]handler{
		"script": func(c *Node) {
			if sc := d.script(c); sc != nil {
				s.Script = *sc
			}
		},
		"interval": func(c *Node) {
			if v, ok := d.timer(c, time.Millisecond, 24*time.Hour); ok {
				interval = v
			}
		},
		"timeout": func(c *Node) {
			if v, ok := d.timer(c, time.Millisecond, 24*time.Hour); ok {
				s.Timeout = v
			}
		},
		"weight": func(c *Node) {
			if !d.scalar(c, 1, 2) {
				return
			}
			if v, ok := d.intArgAt(c, 0, -253, 253); ok {
				s.Weight = int(v)
			}
			s.Reverse = len(c.Args) == 2 && c.Args[1] == "reverse"
		},
		"rise": func(c *Node) {
			if v, ok := d.int(c, 1, math.MaxInt32); ok {
				s.Rise = int(v)
			}
		},
		"fall": func(c *Node) {
			if v, ok := d.int(c, 1, math.MaxInt32); ok {
				s.Fall = int(v)
			}
		},
		"user": func(c *Node) {
			if d.scalar(c, 1, 2) {
				s.Script.User, s.Script.Group = splitUserGroup(c.Args)
			}
		},
		"init_fail": d.flag(&s.InitFail),
	}, nil, nil)
	s.Interval = interval
	if s.Timeout == unset {
		s.Timeout = interval
	}
	if s.Script.Command == "" {
		d.errorf(n.Pos, "vrrp_script %s needs a script", s.Name)
		return
	}
	d.cfg.VRRPScripts = append(d.cfg.VRRPScripts, s)
}

func (d *decoder) vrrpSyncGroup(n *Node) {
	if !d.args(n, 1, 1) || !d.block(n) {
		return
	}
	g := VRRPSyncGroup{Pos: n.Pos, Name: n.Args[0]}
	h := map[string]handler{
		"group":           func(c *Node) { g.Instances = append(g.Instances, d.values(c)...) },
		"smtp_alert":      d.flag(&g.SMTPAlert),
		"track_interface": func(c *Node) { g.TrackInterfaces = append(g.TrackInterfaces, d.tracks(c, -253, 253)...) },
		"track_script":    func(c *Node) { g.TrackScripts = append(g.TrackScripts, d.tracks(c, -253, 253)...) },
		"track_file":      func(c *Node) { g.TrackFiles = append(g.TrackFiles, d.tracks(c, -254, 254)...) },
	}
	d.notifyHandlers(h, &g.Notify)
	d.walk(n.Block, h, []string{"track_process", "track_bfd", "notify_priority_changes",
		"global_tracking", "sync_group_tracking_weight", "notify_deleted"}, &g.Other)
	if len(g.Instances) == 0 {
		d.warnf(n.Pos, "vrrp_sync_group %s has no group { } of instances", g.Name)
	}
	d.cfg.VRRPSyncGroups = append(d.cfg.VRRPSyncGroups, g)
}

func (d *decoder) vrrpInstance(n *Node) {
	if !d.args(n, 1, 1) || !d.block(n) {
		return
	}
	in := VRRPInstance{Pos: n.Pos, Name: n.Args[0], Priority: DefaultPriority,
		AdvertInt: DefaultAdvertInt, Preempt: true, Garp: unsetGarp()}
	vridSet := false
	h := map[string]handler{
		"state": func(c *Node) {
			v, ok := d.str(c)
			if !ok {
				return
			}
			v = strings.ToUpper(v)
			if v != "MASTER" && v != "BACKUP" {
				d.errorf(c.Pos, "state: unknown state '%s': use MASTER or BACKUP", c.Args[0])
				return
			}
			in.State = v
		},
		"interface": d.setStr(&in.Interface),
		"virtual_router_id": func(c *Node) {
			if v, ok := d.int(c, 1, 255); ok {
				in.VirtualRouterID, vridSet = uint8(v), true
			}
		},
		"priority": func(c *Node) {
			if v, ok := d.int(c, 1, 255); ok {
				in.Priority = uint8(v)
			}
		},
		"advert_int": func(c *Node) {
			if v, ok := d.timer(c, 10*time.Millisecond, 255*time.Second); ok {
				in.AdvertInt = v
			}
		},
		"version": func(c *Node) {
			if v, ok := d.int(c, 2, 3); ok {
				in.Version = int(v)
			}
		},
		"authentication": func(c *Node) {
			if !d.block(c) {
				return
			}
			a := &VRRPAuth{}
			d.walk(c.Block, map[string]handler{
				"auth_type": func(x *Node) {
					v, ok := d.str(x)
					if !ok {
						return
					}
					v = strings.ToUpper(v)
					if v != "PASS" && v != "AH" {
						d.errorf(x.Pos, "auth_type: unknown type '%s': use PASS or AH", x.Args[0])
						return
					}
					a.Type = v
				},
				"auth_pass": func(x *Node) {
					v, ok := d.str(x)
					if !ok {
						return
					}
					if len(v) > 8 {
						d.warnf(x.Pos, "auth_pass is longer than 8 characters; only '%s' is used", v[:8])
						v = v[:8]
					}
					a.Pass = v
				},
			}, nil, nil)
			if a.Type == "" {
				d.errorf(c.Pos, "authentication needs auth_type PASS or AH")
				return
			}
			in.Auth = a
		},
		"virtual_ipaddress": func(c *Node) {
			in.VirtualIPAddresses = append(in.VirtualIPAddresses, d.ipAddresses(c)...)
		},
		"virtual_ipaddress_excluded": func(c *Node) {
			in.VirtualIPAddressesExcluded = append(in.VirtualIPAddressesExcluded, d.ipAddresses(c)...)
		},
		"virtual_routes": func(c *Node) { in.VirtualRoutes = append(in.VirtualRoutes, d.routes(c)...) },
		"nopreempt":      func(c *Node) { d.scalar(c, 0, 0); in.Preempt = false },
		"preempt":        func(c *Node) { d.scalar(c, 0, 0); in.Preempt = true },
		"preempt_delay": func(c *Node) {
			if v, ok := d.timer(c, 0, 1000*time.Second); ok {
				in.PreemptDelay = v
			}
		},
		"accept":             func(c *Node) { d.scalar(c, 0, 0); t := true; in.Accept = &t },
		"no_accept":          func(c *Node) { d.scalar(c, 0, 0); f := false; in.Accept = &f },
		"unicast_src_ip":     d.setAddr(&in.UnicastSrcIP),
		"mcast_src_ip":       d.setAddr(&in.McastSrcIP),
		"dont_track_primary": d.flag(&in.DontTrackPrimary),
		"unicast_peer": func(c *Node) {
			if !d.block(c) {
				return
			}
			for _, p := range c.Block {
				a, ok := parseAddr(p.Name)
				if !ok {
					d.errorf(p.Pos, "unicast_peer: invalid IP address '%s'", p.Name)
					continue
				}
				up := UnicastPeer{Pos: p.Pos, Addr: a}
				for i := 0; i+1 < len(p.Args); i += 2 {
					v, ok := parseInt(p.Args[i+1], 0, 255)
					switch {
					case !ok:
						d.errorf(p.Pos, "unicast_peer %s: invalid %s '%s'", p.Name, p.Args[i], p.Args[i+1])
					case p.Args[i] == "min_ttl":
						up.MinTTL = int(v)
					case p.Args[i] == "max_ttl":
						up.MaxTTL = int(v)
					default:
						d.warnf(p.Pos, "unicast_peer %s: unknown option '%s' ignored", p.Name, p.Args[i])
					}
				}
				in.UnicastPeers = append(in.UnicastPeers, up)
			}
		},
		"track_interface": func(c *Node) { in.TrackInterfaces = append(in.TrackInterfaces, d.tracks(c, -253, 253)...) },
		"track_script":    func(c *Node) { in.TrackScripts = append(in.TrackScripts, d.tracks(c, -253, 253)...) },
		"track_file":      func(c *Node) { in.TrackFiles = append(in.TrackFiles, d.tracks(c, -254, 254)...) },
		"smtp_alert":      d.flag(&in.SMTPAlert),
		"strict_mode":     d.flag(&in.Strict),
		// A virtual_server inside a vrrp_instance is a common mistake of
		// copied tutorials; keepalived skips it as an unknown keyword.
		"virtual_server": func(c *Node) {
			d.warnf(c.Pos, "virtual_server inside vrrp_instance %s: keepalived ignores it; govs reads it as a top-level virtual_server (move it after the closing '}')", in.Name)
			d.virtualServer(c)
		},
	}
	d.notifyHandlers(h, &in.Notify)
	d.garpHandlers(h, &in.Garp, "")
	d.walk(n.Block, h, ignoredInstance, &in.Other)
	if !vridSet {
		d.errorf(n.Pos, "vrrp_instance %s needs virtual_router_id (1-255)", in.Name)
		return
	}
	d.cfg.VRRPInstances = append(d.cfg.VRRPInstances, in)
}
