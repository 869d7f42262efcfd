// Package realservertest provides a fake realserver.System: a host in
// memory that records every change made to it.
package realservertest

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/govs/govs/internal/realserver"
)

// Fake is an in-memory host. Its fields may be changed between calls to
// set up a scenario; Calls lists the changes made, in order.
type Fake struct {
	mu sync.Mutex

	IsRoot    bool
	Links     map[string]realserver.Link
	AddrList  []realserver.Addr
	Sysctls   map[string]string
	RouteList []realserver.Route
	// Decaps maps "<dir>/<dev>" to the attached decapsulator's mode.
	Decaps map[string]string
	// Fail, when set, is asked before each change ("SetSysctl <key>
	// <value>", "AddAddr <dev> <prefix>", ...); an error fails it.
	Fail  func(call string) error
	Calls []string
}

// New returns a typical single-homed host as root: lo and e0 (MTU 1500,
// 10.2.0.11/24, default route via 10.2.0.1), every ARP sysctl 0 and
// rp_filter strict (1) on all and e0, as several distributions ship it.
func New() *Fake {
	f := &Fake{
		IsRoot: true,
		Links: map[string]realserver.Link{
			"lo": {Name: "lo", Index: 1, MTU: 65536, Loopback: true},
			"e0": {Name: "e0", Index: 2, MTU: 1500},
		},
		AddrList: []realserver.Addr{
			{Dev: "lo", Prefix: netip.MustParsePrefix("127.0.0.1/8")},
			{Dev: "lo", Prefix: netip.MustParsePrefix("::1/128")},
			{Dev: "e0", Prefix: netip.MustParsePrefix("10.2.0.11/24")},
			{Dev: "e0", Prefix: netip.MustParsePrefix("fd00:2::11/64")},
		},
		Sysctls: map[string]string{},
		RouteList: []realserver.Route{
			{RouteKey: realserver.RouteKey{Dst: netip.MustParsePrefix("0.0.0.0/0"), Dev: "e0", Table: 254}, Gw: netip.MustParseAddr("10.2.0.1")},
			{RouteKey: realserver.RouteKey{Dst: netip.MustParsePrefix("10.2.0.0/24"), Dev: "e0", Table: 254}},
			{RouteKey: realserver.RouteKey{Dst: netip.MustParsePrefix("::/0"), Dev: "e0", Table: 254, Priority: 1024}, Gw: netip.MustParseAddr("fd00:2::1")},
			{RouteKey: realserver.RouteKey{Dst: netip.MustParsePrefix("fd00:2::/64"), Dev: "e0", Table: 254, Priority: 256}},
			{RouteKey: realserver.RouteKey{Dst: netip.MustParsePrefix("fe80::/64"), Dev: "e0", Table: 254, Priority: 256}},
		},
		Decaps: map[string]string{},
	}
	for _, d := range []string{"all", "default", "lo", "e0"} {
		f.Sysctls["net/ipv4/conf/"+d+"/arp_ignore"] = "0"
		f.Sysctls["net/ipv4/conf/"+d+"/arp_announce"] = "0"
		f.Sysctls["net/ipv4/conf/"+d+"/rp_filter"] = "0"
	}
	f.Sysctls["net/ipv4/conf/all/rp_filter"] = "1"
	f.Sysctls["net/ipv4/conf/e0/rp_filter"] = "1"
	return f
}

// Snapshot returns a copy of the host's state, to compare before and after.
func (f *Fake) Snapshot() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	keys := make([]string, 0, len(f.Sysctls))
	for k := range f.Sysctls {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "sysctl %s=%s\n", k, f.Sysctls[k])
	}
	for _, a := range f.AddrList {
		fmt.Fprintf(&b, "addr %s %s\n", a.Dev, a.Prefix)
	}
	for _, r := range f.RouteList {
		fmt.Fprintf(&b, "route %s advmss %d\n", r.RouteKey, r.AdvMSS)
	}
	dk := make([]string, 0, len(f.Decaps))
	for k := range f.Decaps {
		dk = append(dk, k)
	}
	slices.Sort(dk)
	for _, k := range dk {
		fmt.Fprintf(&b, "decap %s %s\n", k, f.Decaps[k])
	}
	return b.String()
}

func (f *Fake) change(call string) error {
	f.Calls = append(f.Calls, call)
	if f.Fail != nil {
		return f.Fail(call)
	}
	return nil
}

// Root implements realserver.System.
func (f *Fake) Root() bool { return f.IsRoot }

// Link implements realserver.System.
func (f *Fake) Link(name string) (realserver.Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.Links[name]
	if !ok {
		return l, fmt.Errorf("%s: %w", name, realserver.ErrNoDevice)
	}
	return l, nil
}

// Addrs implements realserver.System.
func (f *Fake) Addrs() ([]realserver.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.AddrList), nil
}

// AddAddr implements realserver.System.
func (f *Fake) AddAddr(dev string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.change("AddAddr " + dev + " " + p.String()); err != nil {
		return err
	}
	a := realserver.Addr{Dev: dev, Prefix: p}
	if slices.Contains(f.AddrList, a) {
		return fmt.Errorf("add %s to %s: %w", p, dev, os.ErrExist)
	}
	f.AddrList = append(f.AddrList, a)
	return nil
}

// DelAddr implements realserver.System.
func (f *Fake) DelAddr(dev string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.change("DelAddr " + dev + " " + p.String()); err != nil {
		return err
	}
	i := slices.Index(f.AddrList, realserver.Addr{Dev: dev, Prefix: p})
	if i < 0 {
		return fmt.Errorf("delete %s from %s: %w", p, dev, os.ErrNotExist)
	}
	f.AddrList = slices.Delete(f.AddrList, i, i+1)
	return nil
}

// Sysctl implements realserver.System.
func (f *Fake) Sysctl(key string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.Sysctls[key]
	if !ok {
		return "", fmt.Errorf("open /proc/sys/%s: %w", key, os.ErrNotExist)
	}
	return v, nil
}

// SetSysctl implements realserver.System.
func (f *Fake) SetSysctl(key, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.change("SetSysctl " + key + " " + value); err != nil {
		return err
	}
	if _, ok := f.Sysctls[key]; !ok {
		return fmt.Errorf("open /proc/sys/%s: %w", key, os.ErrNotExist)
	}
	f.Sysctls[key] = value
	return nil
}

// Routes implements realserver.System.
func (f *Fake) Routes(v4 bool) ([]realserver.Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []realserver.Route
	for _, r := range f.RouteList {
		if r.Dst.Addr().Is4() == v4 {
			out = append(out, r)
		}
	}
	return out, nil
}

// SetAdvMSS implements realserver.System.
func (f *Fake) SetAdvMSS(k realserver.RouteKey, mss int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.change(fmt.Sprintf("SetAdvMSS %s %d", k, mss)); err != nil {
		return err
	}
	for i := range f.RouteList {
		if f.RouteList[i].RouteKey == k {
			f.RouteList[i].AdvMSS = mss
			return nil
		}
	}
	return fmt.Errorf("route %s: %w", k, os.ErrNotExist)
}

// Decap implements realserver.System.
func (f *Fake) Decap(dir, dev string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Decaps[dir+"/"+dev], nil
}

// AttachDecap implements realserver.System.
func (f *Fake) AttachDecap(dir, dev, mode string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.change("AttachDecap " + dev + " " + mode); err != nil {
		return err
	}
	if _, ok := f.Links[dev]; !ok {
		return fmt.Errorf("attach decap to %s: %w", dev, realserver.ErrNoDevice)
	}
	f.Decaps[dir+"/"+dev] = mode
	return nil
}

// DetachDecap implements realserver.System.
func (f *Fake) DetachDecap(dir, dev string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.change("DetachDecap " + dev); err != nil {
		return err
	}
	delete(f.Decaps, dir+"/"+dev)
	return nil
}

var _ realserver.System = (*Fake)(nil)
