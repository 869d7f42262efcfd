package config

import (
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/govs/govs/internal/ipvs"
)

// Defaults of the LVS part (keepalived's check_data.c, check_api.c and the
// checkers' parsers).
const (
	DefaultDelayLoop            = 60 * time.Second // delay_loop
	DefaultConnectTimeout       = 5 * time.Second  // connect_timeout
	DefaultRetry                = 1                // retry, all checkers but DNS_CHECK and MISC_CHECK
	DefaultDNSRetry             = 3                // DNS_CHECK retry
	DefaultMiscRetry            = 0                // MISC_CHECK retry
	DefaultDelayBeforeRetry     = 1 * time.Second  // delay_before_retry; DNS_CHECK: delay_loop
	DefaultHTTPDelayBeforeRetry = 3 * time.Second  // HTTP_GET and SSL_GET
	DefaultPersistenceTimeout   = 360              // persistence_timeout without a value, seconds
	DefaultWeight               = 1
	DefaultQuorum               = 1
	DefaultScheduler            = "wlc"
	DefaultUDPMaxReplyLength    = 255
)

// unset marks a Timing field not given at that level.
const unset = -1

func unsetTiming() Timing {
	return Timing{DelayLoop: unset, ConnectTimeout: unset, Retry: unset, DelayBeforeRetry: unset, Warmup: unset}
}

// raw inheritance state the typed structs do not carry.
type vsRaw struct {
	fwdSet bool
	rs     []rsRaw
	// viaVIP and viaVIPIf are where check_via_vip and
	// check_via_vip_interface are, for messages.
	viaVIP, viaVIPIf *Pos
}

type rsRaw struct {
	fwdSet, inhibitSet, alphaSet, smtpSet, weightSet bool
	ck                                               []ckRaw
}

type ckRaw struct{ alphaSet bool }

func (d *decoder) timingHandlers(h map[string]handler, t *Timing) {
	dur := func(dst *time.Duration, min time.Duration) handler {
		return func(n *Node) {
			if v, ok := d.timer(n, min, 24*time.Hour); ok {
				*dst = v
			}
		}
	}
	h["delay_loop"] = dur(&t.DelayLoop, time.Millisecond)
	h["connect_timeout"] = dur(&t.ConnectTimeout, time.Millisecond)
	h["delay_before_retry"] = dur(&t.DelayBeforeRetry, 0)
	h["warmup"] = dur(&t.Warmup, 0)
	retry := func(n *Node) {
		if v, ok := d.int(n, 0, math.MaxInt32); ok {
			t.Retry = int(v)
		}
	}
	h["retry"] = retry
	h["nb_get_retry"] = retry
}

func (d *decoder) virtualServerGroup(n *Node) {
	if !d.args(n, 1, 1) || !d.block(n) {
		return
	}
	g := VirtualServerGroup{Pos: n.Pos, Name: n.Args[0]}
	for _, c := range n.Block {
		if c.HasBlock {
			d.warnf(c.Pos, "unexpected block after '%s' in virtual_server_group; ignored", c.Name)
		}
		e := GroupEntry{Pos: c.Pos}
		if c.Name == "fwmark" {
			if !d.scalar(c, 1, 2) {
				continue
			}
			v, ok := d.intArgAt(c, 0, 1, math.MaxUint32)
			if !ok {
				continue
			}
			e.FWMark = uint32(v)
			if len(c.Args) == 2 {
				switch c.Args[1] {
				case "inet":
					e.Family = ipvs.IPv4
				case "inet6":
					e.Family = ipvs.IPv6
				default:
					d.errorf(c.Pos, "fwmark %d: unknown family '%s': use inet or inet6", v, c.Args[1])
					continue
				}
			}
			g.Entries = append(g.Entries, e)
			continue
		}
		first, last, ok := parseRange(c.Name)
		if !ok {
			d.errorf(c.Pos, "virtual_server_group %s: invalid address or range '%s': use IP, IP-LAST, IP-IP or IP/LEN", g.Name, c.Name)
			continue
		}
		e.First, e.Last = first, last
		if len(c.Args) > 0 {
			if len(c.Args) > 1 {
				d.warnf(c.Pos, "virtual_server_group %s: extra arguments %q ignored", g.Name, strings.Join(c.Args[1:], " "))
			}
			p, ok := parseInt(c.Args[0], 0, 65535)
			if !ok {
				d.errorf(c.Pos, "virtual_server_group %s: invalid port '%s'", g.Name, c.Args[0])
				continue
			}
			e.Port = uint16(p)
		}
		g.Entries = append(g.Entries, e)
	}
	for _, o := range d.cfg.VirtualServerGroups {
		if o.Name == g.Name {
			d.errorf(n.Pos, "virtual_server_group %s is already defined at %s", g.Name, o.Pos)
			return
		}
	}
	d.cfg.VirtualServerGroups = append(d.cfg.VirtualServerGroups, g)
}

// maxRange bounds how many addresses one group entry may expand to.
const maxRange = 1 << 16

// parseRange reads "A", "A-N" (last octet or last IPv6 group, hex), "A-B"
// or "A/LEN".
func parseRange(s string) (first, last netip.Addr, ok bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return first, last, false
		}
		p = p.Masked()
		host := p.Addr().BitLen() - p.Bits()
		if host > 16 {
			return first, last, false
		}
		first = p.Addr().Unmap()
		last = first
		for i := 0; i < (1<<host)-1; i++ {
			last = last.Next()
		}
		return first, last, true
	}
	i := strings.LastIndexByte(s, '-')
	if i < 0 {
		a, ok := parseAddr(s)
		return a, a, ok
	}
	first, ok = parseAddr(s[:i])
	if !ok {
		return first, last, false
	}
	end := s[i+1:]
	if b, ok2 := parseAddr(end); ok2 {
		last = b
	} else {
		base, bits := 10, 8
		if first.Is6() {
			base, bits = 16, 16
		}
		v, err := parseUint(end, base, bits)
		if err != nil {
			return first, last, false
		}
		bs := first.AsSlice()
		if first.Is4() {
			bs[3] = byte(v)
		} else {
			bs[14], bs[15] = byte(v>>8), byte(v)
		}
		last, _ = netip.AddrFromSlice(bs)
	}
	if first.BitLen() != last.BitLen() || last.Less(first) {
		return first, last, false
	}
	// Bound the size: count up to maxRange.
	a := first
	for n := 0; a != last; n++ {
		if n >= maxRange {
			return first, last, false
		}
		a = a.Next()
	}
	return first, last, true
}

func parseUint(s string, base, bits int) (uint64, error) {
	var v uint64
	if s == "" {
		return 0, errSyntax
	}
	for _, c := range s {
		var x uint64
		switch {
		case c >= '0' && c <= '9':
			x = uint64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			x = uint64(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			x = uint64(c-'A') + 10
		default:
			return 0, errSyntax
		}
		v = v*uint64(base) + x
		if v >= 1<<bits {
			return 0, errSyntax
		}
	}
	return v, nil
}

// parseForwarding reads "NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]".
func (d *decoder) parseForwarding(n *Node) (Forwarding, bool) {
	var f Forwarding
	if !d.scalar(n, 1, 6) {
		return f, false
	}
	switch strings.ToUpper(n.Args[0]) {
	case "NAT":
		f.Method = ipvs.Masq
	case "DR":
		f.Method = ipvs.Route
	case "TUN":
		f.Method = ipvs.Tunnel
	default:
		d.errorf(n.Pos, "%s: unknown forwarding method '%s': use NAT, DR or TUN", n.Name, n.Args[0])
		return f, false
	}
	args := n.Args[1:]
	if f.Method != ipvs.Tunnel && len(args) > 0 {
		d.errorf(n.Pos, "%s: options %q are only for TUN", n.Name, strings.Join(args, " "))
		return f, false
	}
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "type":
			if i+1 >= len(args) {
				d.errorf(n.Pos, "%s: 'type' needs ipip, gue or gre", n.Name)
				return f, false
			}
			i++
			t, err := ipvs.ParseTunnelType(args[i])
			if err != nil {
				d.errorf(n.Pos, "%s: %v", n.Name, err)
				return f, false
			}
			f.TunType = t
		case "port":
			if i+1 >= len(args) {
				d.errorf(n.Pos, "%s: 'port' needs a value", n.Name)
				return f, false
			}
			i++
			p, ok := parseInt(args[i], 1, 65535)
			if !ok {
				d.errorf(n.Pos, "%s: invalid tunnel port '%s'", n.Name, args[i])
				return f, false
			}
			f.TunPort = uint16(p)
		case "nocsum":
			f.TunFlags = ipvs.TunNoCsum
		case "csum":
			f.TunFlags = ipvs.TunCsum
		case "remcsum":
			f.TunFlags = ipvs.TunRemCsum
		default:
			d.errorf(n.Pos, "%s: unknown tunnel option '%s': use type, port, nocsum, csum or remcsum", n.Name, args[i])
			return f, false
		}
	}
	if f.TunType == ipvs.TunGUE && f.TunPort == 0 {
		d.errorf(n.Pos, "%s: a GUE tunnel needs 'port N'", n.Name)
		return f, false
	}
	if f.TunType != ipvs.TunGUE && f.TunPort != 0 {
		d.errorf(n.Pos, "%s: only GUE tunnels take a port", n.Name)
		return f, false
	}
	return f, true
}

func (d *decoder) virtualServer(n *Node) {
	vs := VirtualServer{Pos: n.Pos, Quorum: DefaultQuorum, Timing: unsetTiming()}
	raw := vsRaw{}
	if !d.block(n) || len(n.Args) == 0 {
		if len(n.Args) == 0 {
			d.errorf(n.Pos, "virtual_server needs 'IP [PORT]', 'fwmark N' or 'group NAME'")
		}
		return
	}
	switch n.Args[0] {
	case "fwmark":
		if !d.args(n, 2, 2) {
			return
		}
		v, ok := d.intArgAt(n, 1, 1, math.MaxUint32)
		if !ok {
			return
		}
		vs.FWMark = uint32(v)
	case "group":
		if !d.args(n, 2, 2) {
			return
		}
		vs.Group = n.Args[1]
	default:
		if !d.args(n, 1, 2) {
			return
		}
		a, ok := d.addrAt(n, 0)
		if !ok {
			return
		}
		vs.Addr = a
		if len(n.Args) == 2 {
			p, ok := d.intArgAt(n, 1, 0, 65535)
			if !ok {
				return
			}
			vs.Port = uint16(p)
		}
	}
	flag := func(f ipvs.SchedFlags) handler {
		return func(c *Node) {
			if v, ok := d.boolArg(c); ok && v {
				vs.SchedFlags |= f
			}
		}
	}
	method := func(c *Node) {
		if f, ok := d.parseForwarding(c); ok {
			vs.Forwarding, raw.fwdSet = f, true
		}
	}
	sched := func(c *Node) {
		if v, ok := d.str(c); ok {
			if len(v) > ipvs.MaxSchedNameLen {
				d.errorf(c.Pos, "%s: scheduler name '%s' is too long", c.Name, v)
				return
			}
			vs.Scheduler = v
		}
	}
	var sorryInhibit bool
	var sorryFwd *Forwarding
	h := map[string]handler{
		"lvs_sched":          sched,
		"lb_algo":            sched,
		"flag-1":             flag(ipvs.SchedFlag1),
		"flag-2":             flag(ipvs.SchedFlag2),
		"flag-3":             flag(ipvs.SchedFlag3),
		"sh-fallback":        flag(ipvs.SchedFallback),
		"sh-port":            flag(ipvs.SchedPort),
		"mh-fallback":        flag(ipvs.SchedFallback),
		"mh-port":            flag(ipvs.SchedPort),
		"ops":                d.flag(&vs.OnePacket),
		"lvs_method":         method,
		"lb_kind":            method,
		"persistence_engine": d.setStr(&vs.PersistenceEngine),
		"persistence_timeout": func(c *Node) {
			if !d.scalar(c, 0, 1) {
				return
			}
			vs.Persistent, vs.PersistenceTimeout = true, DefaultPersistenceTimeout
			if len(c.Args) == 1 {
				if v, ok := d.intArgAt(c, 0, 1, ipvs.MaxPersistTimeout); ok {
					vs.PersistenceTimeout = uint32(v)
				}
			}
		},
		"persistence_granularity": func(c *Node) {
			v, ok := d.str(c)
			if !ok {
				return
			}
			if m, ok := parseAddr(v); ok && m.Is4() {
				p, err := ipvs.Mask4ToPrefix(m)
				if err != nil || p == 0 {
					d.errorf(c.Pos, "persistence_granularity: %s is not a valid netmask: use one like 255.255.255.0", v)
					return
				}
				vs.PersistenceGranularity = p
				return
			}
			p, ok := parseInt(strings.TrimPrefix(v, "/"), 1, 128)
			if !ok {
				d.errorf(c.Pos, "persistence_granularity: invalid '%s': use a netmask (255.255.255.0) or a prefix length", v)
				return
			}
			vs.PersistenceGranularity = uint8(p)
		},
		"protocol": func(c *Node) {
			v, ok := d.str(c)
			if !ok {
				return
			}
			p, err := ipvs.ParseProtocol(v)
			if err != nil {
				d.errorf(c.Pos, "protocol: %v", err)
				return
			}
			vs.Protocol = p
		},
		"ha_suspend":  d.flag(&vs.HASuspend),
		"smtp_alert":  d.flag(&vs.SMTPAlert),
		"virtualhost": d.setStr(&vs.VirtualHost),
		"alpha":       d.flag(&vs.Alpha),
		"omega":       d.flag(&vs.Omega),
		"quorum": func(c *Node) {
			if v, ok := d.int(c, 1, math.MaxUint32); ok {
				vs.Quorum = uint32(v)
			}
		},
		"hysteresis": func(c *Node) {
			if v, ok := d.int(c, 0, math.MaxUint32); ok {
				vs.Hysteresis = uint32(v)
			}
		},
		"quorum_up":   d.setScript(&vs.QuorumUp),
		"quorum_down": d.setScript(&vs.QuorumDown),
		"ip_family": func(c *Node) {
			v, ok := d.str(c)
			if !ok {
				return
			}
			switch v {
			case "inet":
				vs.IPFamily = ipvs.IPv4
			case "inet6":
				vs.IPFamily = ipvs.IPv6
			default:
				d.errorf(c.Pos, "ip_family: unknown family '%s': use inet or inet6", v)
			}
		},
		"sorry_server": func(c *Node) {
			if !d.scalar(c, 1, 2) {
				return
			}
			a, ok := d.addrAt(c, 0)
			if !ok {
				return
			}
			s := &SorryServer{Pos: c.Pos, Addr: a}
			if len(c.Args) == 2 {
				p, ok := d.intArgAt(c, 1, 0, 65535)
				if !ok {
					return
				}
				s.Port = uint16(p)
			}
			vs.SorryServer = s
		},
		"sorry_server_inhibit": d.flag(&sorryInhibit),
		"sorry_server_lvs_method": func(c *Node) {
			if f, ok := d.parseForwarding(c); ok {
				sorryFwd = &f
			}
		},
		"inhibit_on_failure": d.flag(&vs.InhibitOnFailure),
		"check_via_vip": func(c *Node) {
			if v, ok := d.boolArg(c); ok {
				vs.CheckViaVIP, raw.viaVIP = v, &c.Pos
			}
		},
		"check_via_vip_interface": func(c *Node) {
			if v, ok := d.str(c); ok {
				vs.CheckViaVIPInterface, raw.viaVIPIf = v, &c.Pos
			}
		},
		"real_server": func(c *Node) {
			rs, r, ok := d.realServer(c)
			if ok {
				vs.RealServers = append(vs.RealServers, rs)
				raw.rs = append(raw.rs, r)
			}
		},
	}
	d.timingHandlers(h, &vs.Timing)
	d.walk(n.Block, h, []string{"snmp_name", "weight"}, &vs.Other)
	if vs.SorryServer != nil {
		vs.SorryServer.Inhibit = sorryInhibit
		if sorryFwd != nil {
			vs.SorryServer.Forwarding = *sorryFwd
		} else {
			vs.SorryServer.Forwarding.Method = fwdUnset
		}
	} else if sorryFwd != nil || sorryInhibit {
		d.warnf(n.Pos, "sorry_server_inhibit/sorry_server_lvs_method without sorry_server; ignored")
	}
	d.cfg.VirtualServers = append(d.cfg.VirtualServers, vs)
	d.vsRaw = append(d.vsRaw, raw)
}

// fwdUnset marks a sorry server forwarding method to take from the
// virtual server.
const fwdUnset ipvs.FwdMethod = 0xff

func (d *decoder) realServer(n *Node) (RealServer, rsRaw, bool) {
	rs := RealServer{Pos: n.Pos, Weight: DefaultWeight, Timing: unsetTiming()}
	var raw rsRaw
	if len(n.Args) < 1 {
		d.errorf(n.Pos, "real_server needs 'IP [PORT]'")
		return rs, raw, false
	}
	if len(n.Args) > 2 {
		d.warnf(n.Pos, "real_server: extra arguments %q ignored", strings.Join(n.Args[2:], " "))
	}
	a, ok := d.addrAt(n, 0)
	if !ok {
		return rs, raw, false
	}
	rs.Addr = a
	if len(n.Args) >= 2 {
		p, ok := d.intArgAt(n, 1, 0, 65535)
		if !ok {
			return rs, raw, false
		}
		rs.Port = uint16(p)
	}
	set := func(dst *bool, was *bool) handler {
		return func(c *Node) {
			if v, ok := d.boolArg(c); ok {
				*dst, *was = v, true
			}
		}
	}
	method := func(c *Node) {
		if f, ok := d.parseForwarding(c); ok {
			rs.Forwarding, raw.fwdSet = f, true
		}
	}
	h := map[string]handler{
		"weight": func(c *Node) {
			if v, ok := d.int(c, 0, 65535); ok {
				rs.Weight, raw.weightSet = int32(v), true
			}
		},
		"lvs_method":         method,
		"lb_kind":            method,
		"notify_up":          d.setScript(&rs.NotifyUp),
		"notify_down":        d.setScript(&rs.NotifyDown),
		"uthreshold":         func(c *Node) { d.threshold(c, &rs.UThreshold) },
		"lthreshold":         func(c *Node) { d.threshold(c, &rs.LThreshold) },
		"proxy_protocol":     func(c *Node) { d.proxyProtocol(c, &rs.ProxyProtocol) },
		"smtp_alert":         set(&rs.SMTPAlert, &raw.smtpSet),
		"virtualhost":        d.setStr(&rs.VirtualHost),
		"alpha":              set(&rs.Alpha, &raw.alphaSet),
		"inhibit_on_failure": set(&rs.InhibitOnFailure, &raw.inhibitSet),
	}
	d.timingHandlers(h, &rs.Timing)
	for _, k := range []CheckerKind{TCPCheck, HTTPGet, SSLGet, SMTPCheck, DNSCheck, MiscCheck, UDPCheck, PingCheck, FileCheck, BFDCheck} {
		h[string(k)] = func(c *Node) {
			if ck, r, ok := d.checker(k, c); ok {
				rs.Checkers = append(rs.Checkers, ck)
				raw.ck = append(raw.ck, r)
			}
		}
	}
	d.walk(n.Block, h, []string{"snmp_name", "track_bfd"}, &rs.Other)
	return rs, raw, true
}

// proxyProtocol reads govs's proxy_protocol 1|2 (or v1|v2). Whether the
// version suits the service (1 is TCP only) is the destination's
// validation, in IPVS.
func (d *decoder) proxyProtocol(n *Node, dst *uint8) {
	if !d.scalar(n, 1, 1) {
		return
	}
	v, err := ipvs.ParseProxyProtocol(n.Args[0])
	if err != nil {
		d.errorf(n.Pos, "%s: invalid version '%s': use 1 or 2 (v1 or v2)", n.Name, n.Args[0])
		return
	}
	*dst = v
}

func (d *decoder) threshold(n *Node, dst *uint32) {
	if v, ok := d.int(n, 0, math.MaxInt32); ok {
		*dst = uint32(v)
	}
}
