package realserver

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
)

// Kind is the kind of thing an Item is.
type Kind string

// The kinds of items setup manages, applied in this order.
const (
	KindSysctl Kind = "sysctl"
	KindAddr   Kind = "address"
	KindRoute  Kind = "route"
	KindDecap  Kind = "decap"
)

// Values of items that are not numbers.
const (
	valPresent = "present"
	valAbsent  = "absent"
	valNone    = "none"
)

// Item is one thing setup manages: a sysctl, an address, a route's
// advmss or a decapsulator, with its value before and after. The state
// file is a list of the Items setup changed.
type Item struct {
	Kind   Kind   `json:"kind"`
	Target string `json:"target"`
	Before string `json:"before"`
	After  string `json:"after"`

	Key    string    `json:"key,omitempty"`     // sysctl: path under /proc/sys
	Dev    string    `json:"dev,omitempty"`     // address, decap
	Prefix string    `json:"prefix,omitempty"`  // address
	Route  *RouteKey `json:"route,omitempty"`   // route
	BPFDir string    `json:"bpf_dir,omitempty"` // decap
}

func (it Item) id() string { return string(it.Kind) + " " + it.Target }

// check is one desired item compared with the system: it.Before is the
// current value, it.After what setup would set, ok whether the current
// value already does the job.
type check struct {
	Item
	ok bool
}

// arp_ignore values that keep a VIP on lo unanswered on other devices:
// 1 and 2 answer only for addresses of the receiving device, 8 never.
// 3 answers for global addresses anywhere, so it does not hide a VIP.
var hidingARPIgnore = []string{"1", "2", "8"}

// rp_filter values that let TUN traffic in: 0 (off) and 2 (loose). The
// kernel uses max(all, device), so both must be one of them.
var relaxedRPFilter = []string{"0", "2"}

// plan compares cfg (defaulted and valid) with the system and returns
// every item it manages, in the order they are applied.
func plan(sys System, cfg Config) ([]check, error) {
	dev, err := sys.Link(cfg.Dev)
	if err != nil {
		return nil, fmt.Errorf("device for the VIPs: %w", err)
	}
	if !dev.Loopback && !dev.NoARP {
		return nil, fmt.Errorf("put the VIPs on %s: %w: arp_ignore only hides addresses from the devices that do not hold them, so a VIP there would be answered for; use lo (the default) or a device without ARP (ip link set %s arp off)", cfg.Dev, ErrDevAnswersARP, cfg.Dev)
	}
	var ingress []Link
	if cfg.Mode == ModeTUN {
		if ingress, err = ingressLinks(sys, cfg); err != nil {
			return nil, err
		}
	}

	var checks []check
	add := func(it Item, cur string, ok bool) {
		it.Before = cur
		checks = append(checks, check{Item: it, ok: ok})
	}
	sysctl := func(key, set string, good []string) error {
		cur, err := sys.Sysctl(key)
		if err != nil {
			return fmt.Errorf("read sysctl %s: %w", sysctlName(key), err)
		}
		add(Item{Kind: KindSysctl, Target: sysctlName(key), Key: key, After: set}, cur, slices.Contains(good, cur))
		return nil
	}

	// The seeds' "ARP problem": the realserver must not answer ARP for the
	// VIP nor use it as the source of its own requests. The kernel uses
	// max(all, device); the seeds set both all and the VIP's device.
	if cfg.hasFamily(true) {
		for _, d := range uniq("all", cfg.Dev) {
			if err := sysctl(confKey("ipv4", d, "arp_ignore"), "1", hidingARPIgnore); err != nil {
				return nil, err
			}
			if err := sysctl(confKey("ipv4", d, "arp_announce"), "2", []string{"2"}); err != nil {
				return nil, err
			}
		}
		if cfg.Mode == ModeTUN {
			for _, d := range append([]string{"all"}, names(ingress)...) {
				if err := sysctl(confKey("ipv4", d, "rp_filter"), "2", relaxedRPFilter); err != nil {
					return nil, err
				}
			}
		}
	}

	addrs, err := sys.Addrs()
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, vip := range cfg.VIPs {
		want := netip.PrefixFrom(vip, vip.BitLen())
		it := Item{Kind: KindAddr, Target: want.String() + " dev " + cfg.Dev, Dev: cfg.Dev, Prefix: want.String(), After: valPresent}
		cur := valAbsent
		for _, a := range addrs {
			if a.Prefix.Addr() != vip {
				continue
			}
			if a.Dev != cfg.Dev {
				return nil, fmt.Errorf("VIP %s is on %s as %s: %w; a realserver holds it only on %s so it does not answer ARP for it: remove it (ip addr del %s dev %s) and run setup again", vip, a.Dev, a.Prefix, ErrVIPElsewhere, cfg.Dev, a.Prefix, a.Dev)
			}
			if a.Prefix.Bits() != vip.BitLen() {
				return nil, fmt.Errorf("VIP %s is on %s as %s, not /%d: a wider prefix makes the whole subnet local; remove it (ip addr del %s dev %s) and run setup again", vip, a.Dev, a.Prefix, vip.BitLen(), a.Prefix, a.Dev)
			}
			cur = valPresent
		}
		add(it, cur, cur == valPresent)
	}

	if cfg.Mode != ModeTUN {
		return checks, nil
	}
	for _, v4 := range []bool{true, false} {
		if !cfg.hasFamily(v4) {
			continue
		}
		routes, err := sys.Routes(v4)
		if err != nil {
			return nil, fmt.Errorf("list routes: %w", err)
		}
		for _, r := range routes {
			i := slices.IndexFunc(ingress, func(l Link) bool { return l.Name == r.Dev })
			if i < 0 || !clampable(r.Dst) {
				continue
			}
			mss := clampFor(cfg, ingress[i], r)
			key := r.RouteKey
			it := Item{Kind: KindRoute, Target: key.String() + " advmss", Route: &key, After: strconv.Itoa(mss)}
			add(it, mssValue(r.AdvMSS), r.AdvMSS > 0 && r.AdvMSS <= mss)
		}
	}
	mode := decapMode(cfg)
	for _, l := range ingress {
		cur, err := sys.Decap(cfg.BPFDir, l.Name)
		if err != nil {
			return nil, fmt.Errorf("check the decapsulator on %s: %w", l.Name, err)
		}
		if cur == "" {
			cur = valNone
		}
		add(Item{Kind: KindDecap, Target: "dev " + l.Name, Dev: l.Name, BPFDir: cfg.BPFDir, After: mode}, cur, cur == mode)
	}
	return checks, nil
}

// ingressLinks returns the TUN ingress devices: the configured ones, or
// those of the default routes of the VIPs' families.
func ingressLinks(sys System, cfg Config) ([]Link, error) {
	devs := cfg.IngressDevs
	if len(devs) == 0 {
		for _, v4 := range []bool{true, false} {
			if !cfg.hasFamily(v4) {
				continue
			}
			routes, err := sys.Routes(v4)
			if err != nil {
				return nil, fmt.Errorf("list routes: %w", err)
			}
			for _, r := range routes {
				if r.Dst.Bits() == 0 && r.Dev != "" && !slices.Contains(devs, r.Dev) {
					devs = append(devs, r.Dev)
				}
			}
		}
		if len(devs) == 0 {
			return nil, fmt.Errorf("%w: there is no default route to take it from; name the device the tunnelled packets arrive on with --ingress-dev", ErrNoIngress)
		}
	}
	var links []Link
	for _, d := range devs {
		l, err := sys.Link(d)
		if err != nil {
			return nil, fmt.Errorf("ingress device: %w", err)
		}
		if l.Loopback {
			return nil, fmt.Errorf("ingress device %s is a loopback device: name the interface the tunnelled packets arrive on", d)
		}
		links = append(links, l)
	}
	return links, nil
}

// clampable reports whether a route can lead to clients: not link-local
// or multicast.
func clampable(dst netip.Prefix) bool {
	a := dst.Addr()
	if dst.Bits() == 0 {
		return true
	}
	return !a.IsLinkLocalUnicast() && !a.IsMulticast()
}

// clampFor is the advmss for route r out of l: what is left of the path
// MTU after the outer header (IPv4 for IPv4, IPv6 for IPv6, plus UDP and
// GUE for GUE) and the inner IP and TCP headers.
func clampFor(cfg Config, l Link, r Route) int {
	if cfg.MSS != 0 {
		return cfg.MSS
	}
	mtu := l.MTU
	if r.MTU != 0 {
		mtu = r.MTU
	}
	if cfg.MTU != 0 {
		mtu = cfg.MTU
	}
	ip := 20
	if r.Dst.Addr().Is6() {
		ip = 40
	}
	outer := ip
	if cfg.TunType == TunGUE {
		outer += 8 + 4
	}
	return mtu - outer - ip - 20
}

// decapMode names what the decapsulator strips: IPIP (and IPv6-in-IPv6)
// always, GUE on one port.
func decapMode(cfg Config) string {
	if cfg.TunType == TunGUE {
		return "gue:" + strconv.Itoa(int(cfg.GUEPort))
	}
	return "ipip"
}

// parseDecapMode is decapMode's inverse: the GUE port, 0 for IPIP only.
func parseDecapMode(mode string) (uint16, error) {
	if mode == "ipip" {
		return 0, nil
	}
	if len(mode) > 4 && mode[:4] == "gue:" {
		p, err := strconv.ParseUint(mode[4:], 10, 16)
		if err == nil && p != 0 {
			return uint16(p), nil
		}
	}
	return 0, fmt.Errorf("bad decapsulator mode %q", mode)
}

func mssValue(mss int) string {
	if mss == 0 {
		return valNone
	}
	return strconv.Itoa(mss)
}

func parseMSS(v string) (int, error) {
	if v == valNone {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad advmss %q", v)
	}
	return n, nil
}

// errGone is what read returns for a route that no longer exists.
var errGone = errors.New("gone")

// read returns the current value of it on sys.
func read(sys System, it Item) (string, error) {
	switch it.Kind {
	case KindSysctl:
		return sys.Sysctl(it.Key)
	case KindAddr:
		p, err := netip.ParsePrefix(it.Prefix)
		if err != nil {
			return "", fmt.Errorf("bad address %q in state", it.Prefix)
		}
		addrs, err := sys.Addrs()
		if err != nil {
			return "", err
		}
		if slices.Contains(addrs, Addr{Dev: it.Dev, Prefix: p}) {
			return valPresent, nil
		}
		return valAbsent, nil
	case KindRoute:
		if it.Route == nil {
			return "", errors.New("route item without a route in state")
		}
		routes, err := sys.Routes(it.Route.Dst.Addr().Is4())
		if err != nil {
			return "", err
		}
		for _, r := range routes {
			if r.RouteKey == *it.Route {
				return mssValue(r.AdvMSS), nil
			}
		}
		return "", errGone
	case KindDecap:
		cur, err := sys.Decap(it.BPFDir, it.Dev)
		if cur == "" {
			cur = valNone
		}
		return cur, err
	}
	return "", fmt.Errorf("unknown item kind %q", it.Kind)
}

// write sets it on sys to value.
func write(sys System, it Item, value string) error {
	switch it.Kind {
	case KindSysctl:
		return sys.SetSysctl(it.Key, value)
	case KindAddr:
		p, err := netip.ParsePrefix(it.Prefix)
		if err != nil {
			return fmt.Errorf("bad address %q", it.Prefix)
		}
		if value == valPresent {
			return sys.AddAddr(it.Dev, p)
		}
		return sys.DelAddr(it.Dev, p)
	case KindRoute:
		mss, err := parseMSS(value)
		if err != nil {
			return err
		}
		return sys.SetAdvMSS(*it.Route, mss)
	case KindDecap:
		if value == valNone {
			return sys.DetachDecap(it.BPFDir, it.Dev)
		}
		if _, err := parseDecapMode(value); err != nil {
			return err
		}
		return sys.AttachDecap(it.BPFDir, it.Dev, value)
	}
	return fmt.Errorf("unknown item kind %q", it.Kind)
}

func uniq(s ...string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func names(ls []Link) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Name)
	}
	return out
}
