package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Config is one vrrp_instance. Field names follow keepalived.conf's
// keywords so that mapping the parsed configuration is one line each.
type Config struct {
	// Name is the vrrp_instance name, used in logs and notify scripts.
	Name string
	// State is the initial state, "MASTER" or "BACKUP" (default). As in
	// keepalived, MASTER only shortens the first master down timer to one
	// advert interval; only priority 255 takes over at once.
	State string
	// Interface is the interface adverts go out and virtual addresses are
	// added on.
	Interface string
	// VirtualRouterID is the VRID, 1-255.
	VirtualRouterID uint8
	// Priority is the base priority, 1-255 (255: address owner).
	// Zero means the default, 100.
	Priority uint8
	// AdvertInt is the advert interval. Default 1s. VRRPv2 needs whole
	// seconds; v3 has a resolution of 10ms.
	AdvertInt time.Duration
	// Version is the VRRP version, 2 (default) or 3. IPv6 needs 3.
	Version int
	// AuthType is "" (none) or "PASS" (VRRPv2 only); AuthPass is the
	// password, of which the first eight bytes are used.
	AuthType string
	AuthPass string

	// VirtualIPAddresses are announced in adverts and added on the
	// interface while master. All must be of one family.
	VirtualIPAddresses []netip.Prefix
	// VirtualIPAddressesExcluded are added while master but not
	// announced (virtual_ipaddress_excluded).
	VirtualIPAddressesExcluded []netip.Prefix

	// NoPreempt keeps a higher priority backup from taking over from a
	// live master (nopreempt).
	NoPreempt bool
	// PreemptDelay delays the preemption of a lower priority master,
	// counted from the first of its adverts heard (preempt_delay).
	PreemptDelay time.Duration
	// PreemptGate, when set, is asked before the instance preempts a
	// live lower priority master (and before an address owner takes over
	// at start): while it returns false the instance behaves as
	// nopreempt. It never delays a takeover from a master that went
	// silent. The connection sync daemon holds it closed until a
	// returning director has learnt the connections (see package
	// connsync). It is called from the node's goroutine and must not
	// block.
	PreemptGate func() bool

	// UnicastSrcIP is the source address of unicast adverts; McastSrcIP
	// that of multicast ones. Zero: the interface's primary address.
	UnicastSrcIP netip.Addr
	McastSrcIP   netip.Addr
	// UnicastPeer lists the peers adverts are sent to instead of the
	// multicast group. The TTL check is skipped in unicast mode, as
	// keepalived does.
	UnicastPeer []netip.Addr
	// CheckUnicastSrc drops unicast adverts from addresses not in
	// UnicastPeer (vrrp_check_unicast_src).
	CheckUnicastSrc bool
	// SkipCheckAdvAddr skips the check that adverts list the same virtual
	// addresses (vrrp_skip_check_adv_addr).
	SkipCheckAdvAddr bool

	// TrackInterface and TrackScript change the priority or put the
	// instance in FAULT; their state comes in through Node.SetTracked.
	TrackInterface []Track
	TrackScript    []Track
	// DontTrackPrimary keeps a down Interface from causing FAULT.
	DontTrackPrimary bool

	// Garp are the gratuitous ARP / unsolicited NA settings. The zero
	// value means keepalived's defaults (DefaultGarp).
	Garp Garp
}

// Track is a tracked interface or script. Weight 0 puts the instance
// in FAULT while the object is down; otherwise a positive weight is added
// to the priority while it is up and a negative one while it is down.
// Reverse swaps up and down. The address owner's priority never changes.
type Track struct {
	Name    string
	Weight  int
	Reverse bool
}

// Garp are the gratuitous ARP / unsolicited NA settings of an instance
// (keepalived's garp_* and vrrp_garp_* keywords).
type Garp struct {
	// MasterDelay is the delay before the second burst after becoming
	// master (garp_master_delay, default 5s; 0: no second burst).
	MasterDelay time.Duration
	// MasterRepeat is the number of announcements per burst
	// (garp_master_repeat, default 5).
	MasterRepeat int
	// LowerPrioDelay and LowerPrioRepeat are the same for a master that
	// hears a lower priority advert (default: MasterDelay and
	// MasterRepeat).
	LowerPrioDelay  time.Duration
	LowerPrioRepeat int
	// MasterRefresh is the period of refresh bursts while master
	// (garp_master_refresh, default 0: none) of MasterRefreshRepeat
	// announcements (default 1).
	MasterRefresh       time.Duration
	MasterRefreshRepeat int
	// Interval and NAInterval are the gaps between two ARPs and two NAs
	// of a burst (vrrp_garp_interval, vrrp_gna_interval).
	Interval   time.Duration
	NAInterval time.Duration
}

// DefaultGarp returns keepalived's default announcement settings.
func DefaultGarp() Garp {
	return Garp{
		MasterDelay: 5 * time.Second, MasterRepeat: 5,
		LowerPrioDelay: 5 * time.Second, LowerPrioRepeat: 5,
		MasterRefreshRepeat: 1,
	}
}

// Defaults used when a Config field is zero.
const (
	DefaultPriority  = 100
	DefaultAdvertInt = time.Second
	DefaultVersion   = 2
)

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Priority == 0 {
		c.Priority = DefaultPriority
	}
	if c.AdvertInt == 0 {
		c.AdvertInt = DefaultAdvertInt
	}
	if c.Version == 0 {
		c.Version = DefaultVersion
		if len(c.VirtualIPAddresses) > 0 && c.VirtualIPAddresses[0].Addr().Is6() {
			c.Version = 3
		}
	}
	if c.State == "" {
		c.State = "BACKUP"
	}
	if c.Garp == (Garp{}) {
		c.Garp = DefaultGarp()
	}
	return c
}

// Is6 reports whether the instance runs over IPv6: its virtual addresses,
// else its unicast peers, are IPv6.
func (c *Config) Is6() bool {
	if len(c.VirtualIPAddresses) > 0 {
		return c.VirtualIPAddresses[0].Addr().Is6()
	}
	if len(c.UnicastPeer) > 0 {
		return c.UnicastPeer[0].Is6()
	}
	return false
}

// Validate reports every problem of the (defaulted) configuration.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("vrrp_instance %s: "+format, append([]any{c.Name}, args...)...))
	}
	if c.Interface == "" {
		bad("needs an interface")
	}
	if c.VirtualRouterID == 0 {
		bad("virtual_router_id must be 1-255")
	}
	if c.State != "MASTER" && c.State != "BACKUP" {
		bad("state %q: use MASTER or BACKUP", c.State)
	}
	switch c.Version {
	case 2:
		if c.AdvertInt%time.Second != 0 || c.AdvertInt < time.Second || c.AdvertInt > 255*time.Second {
			bad("advert_int %v: VRRPv2 needs whole seconds 1-255 (or use version 3)", c.AdvertInt)
		}
		if c.Is6() {
			bad("IPv6 needs version 3")
		}
	case 3:
		if c.AdvertInt%(10*time.Millisecond) != 0 || c.AdvertInt < 10*time.Millisecond || c.AdvertInt > maxAdvertIntV3*10*time.Millisecond {
			bad("advert_int %v: VRRPv3 needs 10ms-40.95s in steps of 10ms", c.AdvertInt)
		}
		if c.AuthType != "" {
			bad("authentication is VRRPv2 only (RFC 5798 removed it)")
		}
	default:
		bad("version %d: use 2 or 3", c.Version)
	}
	switch c.AuthType {
	case "", "PASS":
	case "AH":
		bad("auth_type AH is not supported: use PASS or none")
	default:
		bad("auth_type %q: use PASS", c.AuthType)
	}
	v6 := c.Is6()
	if len(c.VirtualIPAddresses) > 255 {
		bad("%d virtual_ipaddress, at most 255 fit in an advert", len(c.VirtualIPAddresses))
	}
	for _, p := range c.VirtualIPAddresses {
		if !p.IsValid() || p.Addr().Is6() != v6 {
			bad("virtual_ipaddress %v: all must be of one family (move others to virtual_ipaddress_excluded)", p)
		}
	}
	for _, a := range c.UnicastPeer {
		if a.Is6() != v6 {
			bad("unicast_peer %v: not of the family of the instance", a)
		}
	}
	for _, a := range []netip.Addr{c.UnicastSrcIP, c.McastSrcIP} {
		if a.IsValid() && a.Is6() != v6 {
			bad("source address %v: not of the family of the instance", a)
		}
	}
	for _, t := range append(append([]Track(nil), c.TrackInterface...), c.TrackScript...) {
		if t.Weight < -254 || t.Weight > 254 {
			bad("track %s: weight %d out of -254..254", t.Name, t.Weight)
		}
	}
	return errors.Join(errs...)
}
