package config

import (
	"fmt"
	"time"

	"github.com/govs/govs/internal/ipvs"
)

// defaults applies keepalived's defaults and its corrections (each
// correction warns, as keepalived logs it), then validates cross
// references. It runs once after decoding.
func (d *decoder) defaults() {
	g := &d.cfg.Global
	if g.SMTPPort == 0 {
		g.SMTPPort = DefaultSMTPPort
	}
	if g.SMTPConnectTimeout == 0 {
		g.SMTPConnectTimeout = DefaultSMTPConnectTimeout
	}
	if g.DefaultInterface == "" {
		g.DefaultInterface = DefaultInterface
	}
	if g.VRRPVersion == 0 {
		g.VRRPVersion = DefaultVRRPVersion
	}
	if !g.VRRPMcastGroup4.IsValid() {
		g.VRRPMcastGroup4 = DefaultVRRPMcastGroup4
	}
	if !g.VRRPMcastGroup6.IsValid() {
		g.VRRPMcastGroup6 = DefaultVRRPMcastGroup6
	}
	garpDefaults(&g.Garp, Garp{MasterDelay: DefaultGarpMasterDelay, MasterRepeat: DefaultGarpMasterRepeat,
		LowerPrioDelay: unset, LowerPrioRepeat: unset, MasterRefresh: 0, MasterRefreshRepeat: 1})
	for i := range d.cfg.VirtualServers {
		d.vsDefaults(&d.cfg.VirtualServers[i], &d.vsRaw[i])
	}
	d.vrrpDefaults()
	if s := g.LVSSyncDaemon; s != nil {
		if s.Port == 0 {
			s.Port = DefaultSyncPort
		}
		if s.TTL == 0 {
			s.TTL = 1
		}
		if !s.Group.IsValid() {
			s.Group = DefaultSyncGroup
		}
		if s.Instance != "" {
			found := false
			for _, in := range d.cfg.VRRPInstances {
				if in.Name == s.Instance {
					found = true
					if !s.SyncIDSet {
						s.SyncID = in.VirtualRouterID
					}
				}
			}
			if !found {
				d.errorf(s.Pos, "lvs_sync_daemon: vrrp_instance %s does not exist", s.Instance)
			}
		}
	}
}

// garpDefaults fills the unset fields of g from def.
func garpDefaults(g *Garp, def Garp) {
	if g.MasterDelay == unset {
		g.MasterDelay = def.MasterDelay
	}
	if g.MasterRepeat == unset {
		g.MasterRepeat = def.MasterRepeat
	}
	if g.LowerPrioDelay == unset {
		g.LowerPrioDelay = def.LowerPrioDelay
		if g.LowerPrioDelay == unset {
			g.LowerPrioDelay = g.MasterDelay
		}
	}
	if g.LowerPrioRepeat == unset {
		g.LowerPrioRepeat = def.LowerPrioRepeat
		if g.LowerPrioRepeat == unset {
			g.LowerPrioRepeat = g.MasterRepeat
		}
	}
	if g.MasterRefresh == unset {
		g.MasterRefresh = def.MasterRefresh
	}
	if g.MasterRefreshRepeat == unset {
		g.MasterRefreshRepeat = def.MasterRefreshRepeat
	}
	if g.Interval == unset {
		g.Interval = def.Interval
	}
	if g.NAInterval == unset {
		g.NAInterval = def.NAInterval
	}
}

func unsetGarp() Garp {
	return Garp{MasterDelay: unset, MasterRepeat: unset, LowerPrioDelay: unset, LowerPrioRepeat: unset,
		MasterRefresh: unset, MasterRefreshRepeat: unset, Interval: unset, NAInterval: unset}
}

func vsName(vs *VirtualServer) string {
	switch {
	case vs.Group != "":
		return "group " + vs.Group
	case vs.FWMark != 0:
		return fmt.Sprintf("fwmark %d", vs.FWMark)
	}
	return fmt.Sprintf("%s %d", vs.Addr, vs.Port)
}

func (d *decoder) findGroup(name string) *VirtualServerGroup {
	for i := range d.cfg.VirtualServerGroups {
		if d.cfg.VirtualServerGroups[i].Name == name {
			return &d.cfg.VirtualServerGroups[i]
		}
	}
	return nil
}

func (d *decoder) vsDefaults(vs *VirtualServer, raw *vsRaw) {
	name := vsName(vs)
	var grp *VirtualServerGroup
	if vs.Group != "" {
		if grp = d.findGroup(vs.Group); grp == nil {
			d.errorf(vs.Pos, "virtual_server group %s: no virtual_server_group %s is defined", vs.Group, vs.Group)
		}
	}
	hasAddrs, hasMarks := vs.Group == "" && vs.FWMark == 0, vs.FWMark != 0
	if grp != nil {
		for _, e := range grp.Entries {
			if e.FWMark != 0 {
				hasMarks = true
			} else {
				hasAddrs = true
			}
		}
	}
	if len(vs.RealServers) == 0 {
		d.warnf(vs.Pos, "virtual_server %s has no real servers; keepalived ignores it (so does govs)", name)
	}
	if vs.HASuspend && hasMarks {
		d.warnf(vs.Pos, "virtual_server %s: cannot use ha_suspend with fwmarks - clearing ha_suspend", name)
		vs.HASuspend = false
	}
	if hasAddrs {
		if vs.Protocol == ipvs.ProtoNone {
			d.warnf(vs.Pos, "virtual_server %s: no protocol set - defaulting to UDP as keepalived does; add 'protocol TCP' if that is what you mean", name)
			vs.Protocol = ipvs.ProtoUDP
		}
		if vs.OnePacket && vs.Protocol != ipvs.ProtoUDP {
			d.warnf(vs.Pos, "virtual_server %s: one packet scheduling (ops) requires UDP - resetting", name)
			vs.OnePacket = false
		}
		zeroPort := vs.Group == "" && vs.Port == 0
		if grp != nil {
			for _, e := range grp.Entries {
				zeroPort = zeroPort || (e.FWMark == 0 && e.Port == 0)
			}
		}
		if zeroPort && !vs.Persistent {
			d.warnf(vs.Pos, "virtual_server %s: zero port only valid for persistent services - setting persistence_timeout %d", name, DefaultPersistenceTimeout)
			vs.Persistent, vs.PersistenceTimeout = true, DefaultPersistenceTimeout
		}
	} else if vs.Protocol != ipvs.ProtoNone {
		d.warnf(vs.Pos, "virtual_server %s: protocol specified for fwmark - protocol will be ignored", name)
		vs.Protocol = ipvs.ProtoNone
	}
	if vs.Scheduler == "" {
		vs.Scheduler = DefaultScheduler
	}
	if vs.PersistenceEngine != "" && !vs.Persistent {
		d.errorf(vs.Pos, "virtual_server %s: persistence_engine needs persistence_timeout", name)
	}
	smtp := false
	if g := d.cfg.Global; g.SMTPAlertChecker != nil {
		smtp = *g.SMTPAlertChecker
	} else if g.SMTPAlert != nil {
		smtp = *g.SMTPAlert
	}
	if !vs.SMTPAlert {
		vs.SMTPAlert = smtp
	}
	t := &vs.Timing
	if t.DelayLoop == unset {
		t.DelayLoop = DefaultDelayLoop
	}
	if t.ConnectTimeout == unset {
		t.ConnectTimeout = DefaultConnectTimeout
	}
	if !raw.fwdSet {
		needs := vs.SorryServer != nil && vs.SorryServer.Forwarding.Method == fwdUnset
		for _, r := range raw.rs {
			needs = needs || !r.fwdSet
		}
		if needs {
			d.warnf(vs.Pos, "virtual_server %s: no forwarding method set, setting default NAT", name)
		}
		vs.Forwarding = Forwarding{Method: ipvs.Masq}
	}
	if s := vs.SorryServer; s != nil && s.Forwarding.Method == fwdUnset {
		s.Forwarding = vs.Forwarding
	}
	var weightSum uint64
	seen := map[ipvs.DestKey]Pos{}
	kept := vs.RealServers[:0]
	keptRaw := raw.rs[:0]
	for i := range vs.RealServers {
		rs, r := vs.RealServers[i], raw.rs[i]
		k := ipvs.DestKey{Addr: rs.Addr, Port: rs.Port}
		if p, dup := seen[k]; dup {
			d.warnf(rs.Pos, "virtual_server %s: real server %s is duplicated (first at %s) - removing second rs", name, rs.Addr, p)
			continue
		}
		seen[k] = rs.Pos
		d.rsDefaults(vs, &rs, &r, name, hasMarks && vs.Group == "")
		weightSum += uint64(rs.Weight)
		kept = append(kept, rs)
		keptRaw = append(keptRaw, r)
	}
	vs.RealServers, raw.rs = kept, keptRaw
	d.checkViaVIP(vs, raw, name)
	if len(vs.RealServers) > 0 && uint64(vs.Quorum) > weightSum {
		d.warnf(vs.Pos, "virtual_server %s: quorum %d exceeds total weight of real servers %d, reducing quorum to %d", name, vs.Quorum, weightSum, weightSum)
		vs.Quorum = uint32(weightSum)
	}
	if vs.Quorum > 0 && vs.Hysteresis >= vs.Quorum {
		d.warnf(vs.Pos, "virtual_server %s: hysteresis %d >= quorum %d; setting hysteresis to %d", name, vs.Hysteresis, vs.Quorum, vs.Quorum-1)
		vs.Hysteresis = vs.Quorum - 1
	}
	if s := vs.SorryServer; s != nil && s.Forwarding.Method != ipvs.Masq && grp == nil {
		switch {
		case vs.FWMark != 0 && s.Port != 0:
			d.warnf(s.Pos, "virtual_server %s: sorry server has port specified - clearing", name)
			s.Port = 0
		case vs.FWMark == 0 && s.Port == 0:
			s.Port = vs.Port
		case vs.FWMark == 0 && s.Port != vs.Port:
			d.warnf(s.Pos, "virtual_server %s and sorry server ports don't match - resetting", name)
			s.Port = vs.Port
		}
	}
}

func (d *decoder) rsDefaults(vs *VirtualServer, rs *RealServer, r *rsRaw, name string, fwmark bool) {
	if !r.fwdSet {
		rs.Forwarding = vs.Forwarding
	}
	if !r.alphaSet {
		rs.Alpha = vs.Alpha
	}
	if !r.inhibitSet {
		rs.InhibitOnFailure = vs.InhibitOnFailure
	}
	if !r.smtpSet {
		g := d.cfg.Global
		switch {
		case g.SMTPAlertChecker != nil:
			rs.SMTPAlert = *g.SMTPAlertChecker
		case g.SMTPAlert != nil:
			rs.SMTPAlert = *g.SMTPAlert
		default:
			rs.SMTPAlert = true
		}
	}
	if rs.VirtualHost == "" {
		rs.VirtualHost = vs.VirtualHost
	}
	t, vt := &rs.Timing, vs.Timing
	if t.Retry == unset {
		t.Retry = vt.Retry
	}
	if t.ConnectTimeout == unset {
		t.ConnectTimeout = vt.ConnectTimeout
	}
	if t.DelayLoop == unset {
		t.DelayLoop = vt.DelayLoop
	}
	if t.Warmup == unset {
		t.Warmup = vt.Warmup
	}
	if t.DelayBeforeRetry == unset {
		t.DelayBeforeRetry = vt.DelayBeforeRetry
	}
	if rs.LThreshold > rs.UThreshold && rs.UThreshold != 0 {
		d.errorf(rs.Pos, "real_server %s: lthreshold %d is above uthreshold %d", rs.Addr, rs.LThreshold, rs.UThreshold)
	}
	// Ports: keepalived gives a real server without a port the virtual
	// server's, and resets a non-NAT one that differs (only NAT maps ports).
	if vs.Group == "" {
		switch {
		case rs.Forwarding.Method == ipvs.Masq:
			if !fwmark && rs.Port == 0 {
				rs.Port = vs.Port
			}
		case fwmark:
			if rs.Port != 0 {
				d.warnf(rs.Pos, "fwmark virtual_server %s, real server %s has port specified - clearing", name, rs.Addr)
				rs.Port = 0
			}
		case rs.Port == 0:
			rs.Port = vs.Port
		case rs.Port != vs.Port:
			d.warnf(rs.Pos, "virtual_server %s and real server %s ports don't match - resetting to %d (only NAT can map ports)", name, rs.Addr, vs.Port)
			rs.Port = vs.Port
		}
	}
	for i := range rs.Checkers {
		c := &rs.Checkers[i]
		if !r.ck[i].alphaSet {
			c.Alpha = rs.Alpha
		}
		ct := &c.Timing
		if ct.Retry == unset {
			ct.Retry = t.Retry
		}
		if ct.Retry == unset {
			switch c.Kind {
			case DNSCheck:
				ct.Retry = DefaultDNSRetry
			case MiscCheck:
				ct.Retry = DefaultMiscRetry
			default:
				ct.Retry = DefaultRetry
			}
		}
		if ct.ConnectTimeout == unset {
			ct.ConnectTimeout = t.ConnectTimeout
		}
		if ct.DelayLoop == unset {
			ct.DelayLoop = t.DelayLoop
		}
		if ct.Warmup == unset {
			ct.Warmup = t.Warmup
		}
		if ct.Warmup == unset {
			ct.Warmup = ct.DelayLoop
		}
		if ct.DelayBeforeRetry == unset {
			ct.DelayBeforeRetry = t.DelayBeforeRetry
		}
		if ct.DelayBeforeRetry == unset {
			switch c.Kind {
			case HTTPGet, SSLGet:
				ct.DelayBeforeRetry = DefaultHTTPDelayBeforeRetry
			case DNSCheck:
				ct.DelayBeforeRetry = ct.DelayLoop
			default:
				ct.DelayBeforeRetry = DefaultDelayBeforeRetry
			}
		}
		if c.HTTP != nil {
			if c.HTTP.VirtualHost == "" {
				c.HTTP.VirtualHost = rs.VirtualHost
			}
			for j := range c.HTTP.URLs {
				if c.HTTP.URLs[j].VirtualHost == "" {
					c.HTTP.URLs[j].VirtualHost = c.HTTP.VirtualHost
				}
			}
		}
		if c.Misc != nil && c.Misc.Timeout == 0 {
			c.Misc.Timeout = ct.DelayLoop
		}
		if c.File != nil && !d.hasTrackFile(c.File.TrackFile) {
			d.errorf(c.Pos, "FILE_CHECK: track_file %s is not defined; add a track_file %s { file PATH } block", c.File.TrackFile, c.File.TrackFile)
		}
	}
}

func (d *decoder) hasTrackFile(name string) bool {
	for _, t := range d.cfg.TrackFiles {
		if t.Name == name {
			return true
		}
	}
	return false
}

func (d *decoder) vrrpDefaults() {
	g := d.cfg.Global
	scripts := map[string]bool{}
	for _, s := range d.cfg.VRRPScripts {
		if scripts[s.Name] {
			d.errorf(s.Pos, "vrrp_script %s is defined twice", s.Name)
		}
		scripts[s.Name] = true
	}
	names := map[string]Pos{}
	type vrKey struct {
		ifname string
		vrid   uint8
		v6     bool
	}
	vrids := map[vrKey]string{}
	for i := range d.cfg.VRRPInstances {
		in := &d.cfg.VRRPInstances[i]
		if p, dup := names[in.Name]; dup {
			d.errorf(in.Pos, "vrrp_instance %s is already defined at %s", in.Name, p)
		}
		names[in.Name] = in.Pos
		if in.State == "" {
			in.State = DefaultState
		}
		v6 := len(in.VirtualIPAddresses) > 0 && in.VirtualIPAddresses[0].Prefix.Addr().Is6()
		for _, a := range in.VirtualIPAddresses {
			if a.Prefix.Addr().Is6() != v6 {
				d.errorf(a.Pos, "vrrp_instance %s: all virtual_ipaddress entries must be one address family; put the others in virtual_ipaddress_excluded", in.Name)
				break
			}
		}
		if in.Version == 0 {
			in.Version = g.VRRPVersion
		}
		if v6 && in.Version == 2 {
			in.Version = 3
		}
		if in.Version == 2 && in.AdvertInt%time.Second != 0 {
			d.errorf(in.Pos, "vrrp_instance %s: VRRPv2 advert_int must be whole seconds; use version 3 for sub-second adverts", in.Name)
		}
		if in.Auth != nil && in.Version == 3 {
			d.warnf(in.Pos, "vrrp_instance %s: authentication is not part of VRRPv3; ignored", in.Name)
			in.Auth = nil
		}
		if in.Interface == "" && len(in.UnicastPeers) == 0 {
			d.errorf(in.Pos, "vrrp_instance %s needs an interface (or unicast_peer)", in.Name)
		}
		if in.State == "MASTER" && !in.Preempt {
			d.warnf(in.Pos, "vrrp_instance %s: nopreempt needs state BACKUP to have an effect", in.Name)
		}
		if len(in.VirtualIPAddresses) == 0 {
			d.warnf(in.Pos, "vrrp_instance %s has no virtual_ipaddress", in.Name)
		}
		k := vrKey{in.Interface, in.VirtualRouterID, v6}
		if other, dup := vrids[k]; dup && len(in.UnicastPeers) == 0 {
			d.errorf(in.Pos, "vrrp_instance %s: virtual_router_id %d is already used by %s on interface %s", in.Name, in.VirtualRouterID, other, in.Interface)
		}
		vrids[k] = in.Name
		garpDefaults(&in.Garp, g.Garp)
		kept := in.TrackScripts[:0]
		for _, t := range in.TrackScripts {
			if !scripts[t.Name] {
				d.warnf(t.Pos, "vrrp_instance %s: track_script %s not found, ignoring", in.Name, t.Name)
				continue
			}
			kept = append(kept, t)
		}
		in.TrackScripts = kept
		for _, t := range in.TrackFiles {
			if !d.hasTrackFile(t.Name) {
				d.errorf(t.Pos, "vrrp_instance %s: track_file %s is not defined", in.Name, t.Name)
			}
		}
	}
	for i := range d.cfg.VRRPSyncGroups {
		sg := &d.cfg.VRRPSyncGroups[i]
		kept := sg.Instances[:0]
		for _, n := range sg.Instances {
			if _, ok := names[n]; !ok {
				d.warnf(sg.Pos, "virtual router %s specified in sync group %s doesn't exist - ignoring", n, sg.Name)
				continue
			}
			kept = append(kept, n)
		}
		sg.Instances = kept
	}
}

// checkViaVIP validates govs's check_via_vip: it checks the DR and TUN
// forwarding paths to one VIP, so it needs a virtual server with an
// address and no NAT real server (whose path is the RIP, which its
// checks already take).
func (d *decoder) checkViaVIP(vs *VirtualServer, raw *vsRaw, name string) {
	if !vs.CheckViaVIP {
		if raw.viaVIPIf != nil {
			d.warnf(*raw.viaVIPIf, "virtual_server %s: check_via_vip_interface without check_via_vip; ignored", name)
		}
		return
	}
	at := *raw.viaVIP
	if vs.FWMark != 0 || vs.Group != "" {
		d.errorf(at, "check_via_vip: virtual_server %s has no single VIP to check: use it in a 'virtual_server IP PORT' block", name)
		return
	}
	for _, rs := range vs.RealServers {
		switch f := rs.Forwarding; {
		case f.Method == ipvs.Masq:
			d.errorf(at, "check_via_vip: real server %s (%s) of virtual_server %s uses NAT, whose forwarding path is the RIP its checks already connect to: "+
				"remove check_via_vip or use lb_kind DR or TUN", rs.Addr, rs.Pos, name)
		case f.Method == ipvs.Tunnel && f.TunType != ipvs.TunIPIP && f.TunType != ipvs.TunGUE:
			d.errorf(at, "check_via_vip: real server %s (%s) of virtual_server %s uses a %s tunnel: check_via_vip supports ipip and gue",
				rs.Addr, rs.Pos, name, f.TunType)
		case rs.Addr.Is4() != vs.Addr.Is4():
			d.errorf(at, "check_via_vip: real server %s (%s) and VIP %s are of different families: check_via_vip needs the same family",
				rs.Addr, rs.Pos, vs.Addr)
		}
	}
}
