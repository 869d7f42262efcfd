package ha

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/vrrp"
)

// Instance is one vrrp_instance ready to run: the state machine's
// configuration, its socket's and its notify scripts.
type Instance struct {
	VRRP   vrrp.Config
	Conn   vrrp.ConnConfig
	Notify vrrp.NotifyScripts
	// Group is the vrrp_sync_group the instance belongs to ("" if none).
	Group string
	// ScriptWeights are the track_script entries with their resolved
	// weight (the script's own when the entry has none).
	Scripts []vrrp.Track
}

// Group is a vrrp_sync_group: its instances change state together.
type Group struct {
	Name      string
	Instances []string
	Notify    vrrp.NotifyScripts
}

// Script is a vrrp_script.
type Script = config.VRRPScript

// Plan is what a keepalived.conf asks of HA.
type Plan struct {
	Instances []Instance
	Groups    []Group
	Scripts   []Script
	// Sync is lvs_sync_daemon (nil if none): its State is filled in by
	// the role the followed instance takes.
	Sync *api.SyncDaemon
	// SyncInstance is the instance whose state the sync role follows.
	SyncInstance string
}

// syncGroup returns the sync group of the instance the sync role follows,
// "" if it is in none.
func (p *Plan) syncGroup() string {
	for _, in := range p.Instances {
		if in.VRRP.Name == p.SyncInstance {
			return in.Group
		}
	}
	return ""
}

// groupTrack is the tracked object through which a sync group shares
// FAULT: every member tracks it with weight 0.
func groupTrack(group string) string { return "\x00vrrp_sync_group " + group }

func notifyScripts(n config.Notify) vrrp.NotifyScripts {
	cmd := func(s *config.Script) string {
		if s == nil {
			return ""
		}
		return s.Command
	}
	return vrrp.NotifyScripts{Master: cmd(n.Master), Backup: cmd(n.Backup), Fault: cmd(n.Fault), Stop: cmd(n.Stop), Any: cmd(n.Any)}
}

// NewPlan maps a parsed keepalived.conf onto the VRRP instances, sync
// groups, scripts and sync daemon govsd runs. Every problem is reported.
func NewPlan(cfg *config.Config) (*Plan, error) {
	p := &Plan{Scripts: cfg.VRRPScripts}
	g := &cfg.Global
	scripts := map[string]config.VRRPScript{}
	for _, s := range cfg.VRRPScripts {
		scripts[s.Name] = s
	}
	groupOf := map[string]string{}
	for _, sg := range cfg.VRRPSyncGroups {
		p.Groups = append(p.Groups, Group{Name: sg.Name, Instances: sg.Instances, Notify: notifyScripts(sg.Notify)})
		for _, n := range sg.Instances {
			groupOf[n] = sg.Name
		}
	}
	var errs []error
	for _, in := range cfg.VRRPInstances {
		vc := vrrp.Config{
			Name: in.Name, State: in.State, Interface: in.Interface, VirtualRouterID: in.VirtualRouterID,
			Priority: in.Priority, AdvertInt: in.AdvertInt, Version: in.Version,
			NoPreempt: !in.Preempt, PreemptDelay: in.PreemptDelay,
			UnicastSrcIP: in.UnicastSrcIP, McastSrcIP: in.McastSrcIP,
			CheckUnicastSrc: g.VRRPCheckUnicastSrc, SkipCheckAdvAddr: g.VRRPSkipCheckAdvAddr,
			DontTrackPrimary: in.DontTrackPrimary,
			Garp: vrrp.Garp{
				MasterDelay: in.Garp.MasterDelay, MasterRepeat: in.Garp.MasterRepeat,
				LowerPrioDelay: in.Garp.LowerPrioDelay, LowerPrioRepeat: in.Garp.LowerPrioRepeat,
				MasterRefresh: in.Garp.MasterRefresh, MasterRefreshRepeat: in.Garp.MasterRefreshRepeat,
				Interval: in.Garp.Interval, NAInterval: in.Garp.NAInterval,
			},
		}
		if in.Auth != nil {
			vc.AuthType, vc.AuthPass = in.Auth.Type, in.Auth.Pass
		}
		for _, a := range in.VirtualIPAddresses {
			vc.VirtualIPAddresses = append(vc.VirtualIPAddresses, a.Prefix)
		}
		for _, a := range in.VirtualIPAddressesExcluded {
			vc.VirtualIPAddressesExcluded = append(vc.VirtualIPAddressesExcluded, a.Prefix)
		}
		for _, u := range in.UnicastPeers {
			vc.UnicastPeer = append(vc.UnicastPeer, u.Addr)
		}
		for _, t := range in.TrackInterfaces {
			w := 0
			if t.Weight != nil {
				w = *t.Weight
			}
			vc.TrackInterface = append(vc.TrackInterface, vrrp.Track{Name: t.Name, Weight: w, Reverse: t.Reverse})
		}
		inst := Instance{Group: groupOf[in.Name], Notify: notifyScripts(in.Notify)}
		for _, t := range in.TrackScripts {
			s, ok := scripts[t.Name]
			if !ok {
				continue // the parser warned already
			}
			tr := vrrp.Track{Name: t.Name, Weight: s.Weight, Reverse: s.Reverse}
			if t.Weight != nil {
				tr.Weight, tr.Reverse = *t.Weight, t.Reverse
			}
			vc.TrackScript = append(vc.TrackScript, tr)
			inst.Scripts = append(inst.Scripts, tr)
		}
		if inst.Group != "" {
			vc.TrackScript = append(vc.TrackScript, vrrp.Track{Name: groupTrack(inst.Group)})
		}
		if len(in.TrackFiles) > 0 {
			errs = append(errs, fmt.Errorf("%s: vrrp_instance %s: track_file is not supported by govs's VRRP yet; use a vrrp_script that tests the file", in.Pos, in.Name))
		}
		for _, o := range in.Other {
			if o.Name == "use_vmac" || o.Name == "use_vmac_addr" {
				errs = append(errs, fmt.Errorf("%s: vrrp_instance %s: %s (virtual MAC) is not supported: govs uses the interface's MAC, as keepalived does by default", o.Pos, in.Name, o.Name))
			}
		}
		if in.Auth != nil && in.Auth.Type == "AH" {
			errs = append(errs, fmt.Errorf("%s: vrrp_instance %s: auth_type AH is not supported: use PASS or none", in.Pos, in.Name))
		}
		inst.VRRP = vc
		inst.Conn = vrrp.ConnConfig{Interface: in.Interface, IPv6: vc.Is6(), Unicast: len(vc.UnicastPeer) > 0}
		switch {
		case in.UnicastSrcIP.IsValid() && len(vc.UnicastPeer) > 0:
			inst.Conn.Src = in.UnicastSrcIP
		case in.McastSrcIP.IsValid():
			inst.Conn.Src = in.McastSrcIP
		}
		if !inst.Conn.Unicast {
			if inst.Conn.IPv6 && g.VRRPMcastGroup6 != config.DefaultVRRPMcastGroup6 {
				inst.Conn.Group = g.VRRPMcastGroup6
			} else if !inst.Conn.IPv6 && g.VRRPMcastGroup4 != config.DefaultVRRPMcastGroup4 {
				inst.Conn.Group = g.VRRPMcastGroup4
			}
		}
		p.Instances = append(p.Instances, inst)
	}
	if sd := g.LVSSyncDaemon; sd != nil {
		p.Sync = &api.SyncDaemon{Interface: sd.Interface, SyncID: sd.SyncID, SyncMaxLen: sd.MaxLen,
			Group: sd.Group, Port: sd.Port, TTL: sd.TTL}
		p.SyncInstance = sd.Instance
		if p.SyncInstance == "" && len(p.Instances) == 1 {
			p.SyncInstance = p.Instances[0].VRRP.Name
		}
		if p.SyncInstance == "" {
			errs = append(errs, fmt.Errorf("%s: lvs_sync_daemon %s: name the vrrp_instance whose state selects master or backup (lvs_sync_daemon IF INSTANCE)", sd.Pos, sd.Interface))
		}
	}
	return p, errors.Join(errs...)
}

// vips returns all the addresses an instance adds while master.
func (in *Instance) vips() []netip.Prefix {
	return append(append([]netip.Prefix(nil), in.VRRP.VirtualIPAddresses...), in.VRRP.VirtualIPAddressesExcluded...)
}
