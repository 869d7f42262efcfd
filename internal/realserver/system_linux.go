package realserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/dataplane/ebpf"
)

// NewSystem returns the System of the calling thread's network namespace:
// netlink for devices, addresses and routes, /proc/sys for sysctls, and
// the BPF decapsulator pinned in bpffs. Each call opens its own netlink
// socket, so a test that locks its thread into a namespace configures
// that namespace.
func NewSystem() (System, error) { return linuxSystem{}, nil }

type linuxSystem struct{}

func (linuxSystem) Root() bool { return os.Geteuid() == 0 }

func (linuxSystem) Link(name string) (Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return Link{}, fmt.Errorf("%s: %w (ip link lists the devices)", name, ErrNoDevice)
		}
		return Link{}, fmt.Errorf("find device %s: %w", name, err)
	}
	a := l.Attrs()
	return Link{
		Name:     a.Name,
		Index:    a.Index,
		MTU:      a.MTU,
		NoARP:    a.RawFlags&unix.IFF_NOARP != 0,
		Loopback: a.Flags&net.FlagLoopback != 0,
	}, nil
}

func linkNames() (map[int]string, error) {
	ls, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	m := make(map[int]string, len(ls))
	for _, l := range ls {
		m[l.Attrs().Index] = l.Attrs().Name
	}
	return m, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones), true
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func (linuxSystem) Addrs() ([]Addr, error) {
	idx, err := linkNames()
	if err != nil {
		return nil, err
	}
	as, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []Addr
	for _, a := range as {
		if p, ok := prefixOf(a.IPNet); ok {
			out = append(out, Addr{Dev: idx[a.LinkIndex], Prefix: p})
		}
	}
	return out, nil
}

func (s linuxSystem) addr(dev string, p netip.Prefix) (netlink.Link, *netlink.Addr, error) {
	l, err := netlink.LinkByName(dev)
	if err != nil {
		return nil, nil, fmt.Errorf("find device %s: %w", dev, err)
	}
	a := &netlink.Addr{IPNet: ipNet(p)}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD // usable at once; lo does not do DAD anyway
	}
	return l, a, nil
}

func (s linuxSystem) AddAddr(dev string, p netip.Prefix) error {
	l, a, err := s.addr(dev, p)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(l, a); err != nil {
		return fmt.Errorf("add %s to %s: %w", p, dev, err)
	}
	return nil
}

func (s linuxSystem) DelAddr(dev string, p netip.Prefix) error {
	l, a, err := s.addr(dev, p)
	if err != nil {
		return err
	}
	if err := netlink.AddrDel(l, a); err != nil {
		return fmt.Errorf("delete %s from %s: %w", p, dev, err)
	}
	return nil
}

func sysctlPath(key string) (string, error) {
	if key == "" || strings.Contains(key, "..") || strings.HasPrefix(key, "/") {
		return "", fmt.Errorf("bad sysctl key %q", key)
	}
	return filepath.Join("/proc/sys", key), nil
}

func (linuxSystem) Sysctl(key string) (string, error) {
	p, err := sysctlPath(key)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func (linuxSystem) SetSysctl(key, value string) error {
	p, err := sysctlPath(key)
	if err != nil {
		return err
	}
	return os.WriteFile(p, []byte(value), 0o644)
}

// mainRoutes lists the main table's unicast single-path routes of one
// family, with their netlink form for SetAdvMSS.
func mainRoutes(v4 bool) ([]Route, []netlink.Route, error) {
	fam := netlink.FAMILY_V6
	if v4 {
		fam = netlink.FAMILY_V4
	}
	idx, err := linkNames()
	if err != nil {
		return nil, nil, err
	}
	rs, err := netlink.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, nil, fmt.Errorf("list routes: %w", err)
	}
	var out []Route
	var raw []netlink.Route
	for _, r := range rs {
		if r.Type != unix.RTN_UNICAST || r.LinkIndex == 0 || len(r.MultiPath) > 0 {
			continue
		}
		dst := netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		if v4 {
			dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
		if r.Dst != nil {
			p, ok := prefixOf(r.Dst)
			if !ok {
				continue
			}
			dst = p
		}
		gw, _ := netip.AddrFromSlice(r.Gw)
		out = append(out, Route{
			RouteKey: RouteKey{Dst: dst, Dev: idx[r.LinkIndex], Table: r.Table, Priority: r.Priority, Tos: r.Tos},
			Gw:       gw.Unmap(),
			MTU:      r.MTU,
			AdvMSS:   r.AdvMSS,
		})
		raw = append(raw, r)
	}
	return out, raw, nil
}

func (linuxSystem) Routes(v4 bool) ([]Route, error) {
	rs, _, err := mainRoutes(v4)
	return rs, err
}

func (linuxSystem) SetAdvMSS(k RouteKey, mss int) error {
	rs, raw, err := mainRoutes(k.Dst.Addr().Is4())
	if err != nil {
		return err
	}
	for i, r := range rs {
		if r.RouteKey != k {
			continue
		}
		nr := raw[i]
		nr.AdvMSS = mss
		// The kernel reports these but refuses them in a request.
		nr.Flags &^= unix.RTNH_F_DEAD | unix.RTNH_F_LINKDOWN
		if err := netlink.RouteReplace(&nr); err != nil {
			return fmt.Errorf("set advmss of route %s: %w", k, err)
		}
		return nil
	}
	return fmt.Errorf("set advmss of route %s: %w", k, errGone)
}

// Decapsulators are pinned as <dir>/netns-<inode>/<dev>/<mode>, mode
// "ipip" or "gue-<port>", so the pin says what was attached. bpffs is
// shared by every network namespace of the host while device names are
// not, hence the namespace in the path (its inode, as in
// /proc/self/ns/net).
func pinName(mode string) string   { return strings.Replace(mode, ":", "-", 1) }
func modeOfPin(name string) string { return strings.Replace(name, "-", ":", 1) }

// devPinDir is the directory of dev's pins in the calling thread's
// network namespace.
func devPinDir(dir, dev string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return "", fmt.Errorf("find network namespace: %w", err)
	}
	return filepath.Join(dir, "netns-"+strconv.FormatUint(st.Ino, 10), dev), nil
}

// Decap finds the pinned decapsulator of dev. A pin whose link is no
// longer attached to dev (the device was re-created) does not count.
func (linuxSystem) Decap(dir, dev string) (string, error) {
	pd, err := devPinDir(dir, dev)
	if err != nil {
		return "", err
	}
	ents, err := os.ReadDir(pd)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read pins: %w", err)
	}
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return "", fmt.Errorf("find device %s: %w", dev, err)
	}
	for _, e := range ents {
		mode := modeOfPin(e.Name())
		if _, err := parseDecapMode(mode); err != nil {
			continue
		}
		if attachedTo(filepath.Join(pd, e.Name()), ifi.Index) {
			return mode, nil
		}
	}
	return "", nil
}

func attachedTo(pin string, ifindex int) bool {
	l, err := link.LoadPinnedLink(pin, nil)
	if err != nil {
		return false
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		return false
	}
	tcx := info.TCX()
	return tcx != nil && int(tcx.Ifindex) == ifindex
}

func (s linuxSystem) AttachDecap(dir, dev, mode string) error {
	port, err := parseDecapMode(mode)
	if err != nil {
		return err
	}
	if err := ensureBPFFS(dir); err != nil {
		return err
	}
	pd, err := devPinDir(dir, dev)
	if err != nil {
		return err
	}
	pin := filepath.Join(pd, pinName(mode))
	// A stale pin of the same name (the device was re-created) goes first.
	if err := unpin(pin); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(pin), 0o700); err != nil {
		return fmt.Errorf("attach decap: %w", err)
	}
	d, err := ebpf.AttachDecap(dev, port, pin)
	if err != nil {
		return err
	}
	// The pinned link keeps the program attached after govsadm exits.
	d.Close()
	// Then the one it replaces, so the device is never without one.
	ents, err := os.ReadDir(filepath.Dir(pin))
	if err != nil {
		return fmt.Errorf("attach decap: %w", err)
	}
	for _, e := range ents {
		if e.Name() != filepath.Base(pin) {
			if err := unpin(filepath.Join(filepath.Dir(pin), e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

func (linuxSystem) DetachDecap(dir, dev string) error {
	d, err := devPinDir(dir, dev)
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(d)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("detach decap: %w", err)
	}
	for _, e := range ents {
		if err := unpin(filepath.Join(d, e.Name())); err != nil {
			return err
		}
	}
	// The directories go with their last device; other devices and
	// namespaces may still use them.
	for _, p := range []string{d, filepath.Dir(d), dir} {
		if err := os.Remove(p); err != nil {
			if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) || errors.Is(err, unix.EBUSY) {
				return nil
			}
			return fmt.Errorf("detach decap: %w", err)
		}
	}
	return nil
}

// unpin removes a pinned link, which detaches it (the pin is its last
// reference), or any other file at pin.
func unpin(pin string) error {
	if l, err := link.LoadPinnedLink(pin, nil); err == nil {
		err := l.Unpin()
		l.Close()
		if err != nil {
			return fmt.Errorf("unpin %s: %w", pin, err)
		}
		return nil
	}
	if err := os.Remove(pin); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", pin, err)
	}
	return nil
}

// ensureBPFFS makes dir a directory on a bpffs, mounting one there if
// its parent is not one (as package ebpf does for the director).
func ensureBPFFS(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount bpffs at %s: %w", dir, err)
	}
	return nil
}
