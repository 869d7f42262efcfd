package ebpf

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/ipvs"
)

// DefaultPinPath is where maps and links are pinned.
const DefaultPinPath = "/sys/fs/bpf/govs"

// Options configure the eBPF data plane.
type Options struct {
	// Interfaces are the devices whose ingress gets the program: those
	// that receive client traffic for the VIPs and, for NAT, the
	// realservers' replies.
	Interfaces []string
	// XDP also attaches govs_xdp in native (driver) XDP mode: the fast
	// path, with TC behind it for what XDP passes on (see the package
	// documentation, "XDP"). The devices' drivers must support native
	// XDP; on veth, the peer of every egress device needs an XDP program
	// or GRO, and senders on veth must not use checksum offload.
	XDP bool
	// PinPath is the bpffs directory for maps and links (DefaultPinPath
	// when empty). It is mounted if /sys/fs/bpf is not a bpffs.
	PinPath string
	// MaxConns sizes the connection table (default 262144).
	MaxConns uint32
	// MaxServices is the most virtual services (default 16384). Each
	// costs ~100 B plus 40 B per CPU of counters.
	MaxServices uint32
	// MaxDests is the most destinations of all services together,
	// counting removed ones whose connections still drain (default
	// 65536). Each costs ~130 B plus 40 B per CPU of counters; a
	// service has at most 1024.
	MaxDests uint32
	// MaxHashServices is the most services that use sh, dh or mh at the
	// same time (default 256): each has an 8 KB lookup table.
	MaxHashServices uint32
	// SweepInterval is how often expired connections are removed and
	// their destinations' counters decremented (default 1s).
	SweepInterval time.Duration
	// MarkRules give firewall marks to packets that have none, in order,
	// first match wins (at most MaxMarkRules): how firewall-mark
	// services see their traffic, as govs runs before netfilter and a
	// mark nftables or iptables sets comes too late. New writes them;
	// they are not pinned.
	MarkRules []MarkRule
}

// Dataplane is the eBPF data plane: govs_tc attached at TC ingress of the
// configured interfaces, fed by the maps that tables keeps in step with
// the control plane.
type Dataplane struct {
	log  *slog.Logger
	opts Options

	mu    sync.Mutex
	objs  govsObjects
	tab   *tables
	links []link.Link
	nh    *nhWatch

	stop chan struct{}
	done chan struct{}
}

var _ dataplane.Dataplane = (*Dataplane)(nil)

// New loads the BPF objects, adopting the maps pinned by a previous run
// (so connections survive a restart), attaches to opts.Interfaces (an
// existing pinned link is updated in place to the new program, so
// forwarding never stops) and starts the expiry sweeper.
func New(opts Options, log *slog.Logger) (*Dataplane, error) {
	if err := validateMarkRules(opts.MarkRules); err != nil {
		return nil, err
	}
	if opts.PinPath == "" {
		opts.PinPath = DefaultPinPath
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = time.Second
	}
	if err := ensureBPFFS(filepath.Dir(opts.PinPath)); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.PinPath, 0o700); err != nil {
		return nil, fmt.Errorf("create pin directory: %w", err)
	}
	spec, err := loadGovs()
	if err != nil {
		return nil, fmt.Errorf("load BPF spec: %w", err)
	}
	for name, m := range spec.Maps {
		// Per-CPU scratch and the next-hop cache are not state worth
		// keeping: a restart starts them empty. The mark rules are
		// configuration: New writes them from Options.
		if strings.HasSuffix(name, "scratch") || name == "nexthop" || name == "nh_gen" || strings.HasPrefix(name, "mark_") || name == ".rodata" || m.Name == "govs_bpf.rodata" {
			continue
		}
		m.Pinning = ebpf.PinByName
	}
	setMapSizes(spec, opts)
	d := &Dataplane{log: log, opts: opts, stop: make(chan struct{}), done: make(chan struct{})}
	if err := spec.LoadAndAssign(&d.objs, &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: opts.PinPath}}); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load BPF objects: %+v", ve)
		}
		return nil, fmt.Errorf("load BPF objects (a map pinned by an incompatible version? remove %s with govsd --ebpf-remove): %w", opts.PinPath, err)
	}
	if err := writeMarkRules(&d.objs, opts.MarkRules); err != nil {
		d.objs.Close()
		return nil, err
	}
	d.nh, err = startNHWatch(d.objs.NhGen, log)
	if err != nil {
		d.objs.Close()
		return nil, fmt.Errorf("start next-hop cache: %w", err)
	}
	d.tab = newTables(&d.objs)
	if err := d.tab.adopt(); err != nil {
		d.nh.close()
		d.objs.Close()
		return nil, fmt.Errorf("adopt pinned state: %w", err)
	}
	if d.tab.timeouts == (conn.Timeouts{}) {
		if err := d.tab.setTimeouts(conn.DefaultTimeouts); err != nil {
			d.nh.close()
			d.objs.Close()
			return nil, err
		}
	}
	for _, ifname := range opts.Interfaces {
		l, err := d.attach(ifname)
		if err != nil {
			d.closeLocked()
			return nil, err
		}
		d.links = append(d.links, l)
		if opts.XDP {
			l, err := d.attachXDP(ifname)
			if err != nil {
				d.closeLocked()
				return nil, err
			}
			d.links = append(d.links, l)
		}
	}
	go d.sweeper()
	return d, nil
}

// setMapSizes sizes the maps Options name; zero keeps the object's
// default (structs.h). A pinned map of another size is refused at load,
// like one of another layout.
func setMapSizes(spec *ebpf.CollectionSpec, opts Options) {
	set := func(n uint32, names ...string) {
		if n == 0 {
			return
		}
		for _, name := range names {
			spec.Maps[name].MaxEntries = n
		}
	}
	set(opts.MaxConns, "conns", "nat")
	set(opts.MaxServices, "services", "svc_state", "svc_stats", "twos_rng")
	set(opts.MaxDests, "dests", "dest_live", "dest_stats", "nexthop")
	set(2*opts.MaxDests, "svc_dests")
	set(opts.MaxHashServices*schedTableSlots, "sched_table")
}

// ensureBPFFS mounts a bpffs at dir unless one is there.
func ensureBPFFS(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount bpffs at %s: %w", dir, err)
	}
	return nil
}

// attach attaches govs_tc at TCX ingress of ifname, or moves the pinned
// link of a previous run to the new program.
func (d *Dataplane) attach(ifname string) (link.Link, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("attach to %s: %w", ifname, err)
	}
	pin := filepath.Join(d.opts.PinPath, "tcx_"+ifname)
	if l, err := link.LoadPinnedLink(pin, nil); err == nil {
		if err := l.Update(d.objs.GovsTc); err == nil {
			d.log.Info("adopted TC link", "interface", ifname)
			return l, nil
		}
		// A stale link (the device was re-created): replace it.
		_ = l.Unpin()
		l.Close()
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: ifi.Index, Program: d.objs.GovsTc, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		return nil, fmt.Errorf("attach tcx ingress to %s: %w", ifname, err)
	}
	if err := l.Pin(pin); err != nil {
		l.Close()
		return nil, fmt.Errorf("pin link of %s: %w", ifname, err)
	}
	d.log.Info("attached TC program", "interface", ifname)
	return l, nil
}

// attachXDP attaches govs_xdp in native mode to ifname, or moves the
// pinned link of a previous run to the new program.
func (d *Dataplane) attachXDP(ifname string) (link.Link, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("attach XDP to %s: %w", ifname, err)
	}
	if err := setIfMAC(d.objs.Ifmac, ifi.Index, ifi.HardwareAddr); err != nil {
		return nil, fmt.Errorf("attach XDP to %s: %w", ifname, err)
	}
	pin := filepath.Join(d.opts.PinPath, "xdp_"+ifname)
	if l, err := link.LoadPinnedLink(pin, nil); err == nil {
		if err := l.Update(d.objs.GovsXdp); err == nil {
			d.log.Info("adopted XDP link", "interface", ifname)
			return l, nil
		}
		_ = l.Unpin()
		l.Close()
	}
	l, err := link.AttachXDP(link.XDPOptions{Interface: ifi.Index, Program: d.objs.GovsXdp, Flags: link.XDPDriverMode})
	if err != nil {
		return nil, fmt.Errorf("attach native XDP to %s (does its driver support XDP? use TC, without --xdp): %w", ifname, err)
	}
	if err := l.Pin(pin); err != nil {
		l.Close()
		return nil, fmt.Errorf("pin XDP link of %s: %w", ifname, err)
	}
	d.log.Info("attached XDP program", "interface", ifname)
	return l, nil
}

// setIfMAC records an interface's MAC address for govs_xdp, which passes
// frames addressed to any other (XDP has no pkt_type; see xdp.h). An
// address changed later makes XDP pass everything on that interface to
// TC, which still forwards: restart govsd to take the fast path again.
func setIfMAC(m *ebpf.Map, index int, mac net.HardwareAddr) error {
	if len(mac) != 6 {
		return fmt.Errorf("record MAC address of interface %d: %q is not an Ethernet address (XDP needs Ethernet)", index, mac)
	}
	var v govsIfmac
	copy(v.Addr[:], mac)
	if err := m.Update(uint32(index), &v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("record MAC address of interface %d: %w", index, err)
	}
	return nil
}

// Remove detaches the data plane and removes everything pinned under
// pinPath (DefaultPinPath when empty): forwarding stops and the
// connection table is gone. It is what `govsd --ebpf-remove` runs.
func Remove(pinPath string) error {
	if pinPath == "" {
		pinPath = DefaultPinPath
	}
	entries, err := os.ReadDir(pinPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", pinPath, err)
	}
	var errs []error
	for _, e := range entries {
		p := filepath.Join(pinPath, e.Name())
		if l, err := link.LoadPinnedLink(p, nil); err == nil {
			// Unpinning the last reference detaches the program.
			if err := l.Unpin(); err != nil {
				errs = append(errs, fmt.Errorf("unpin %s: %w", p, err))
			}
			l.Close()
			continue
		}
		if err := os.Remove(p); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
		}
	}
	if err := os.Remove(pinPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove %s: %w", pinPath, err))
	}
	return errors.Join(errs...)
}

// Name implements dataplane.Dataplane.
func (d *Dataplane) Name() string { return "ebpf" }

// CheckService implements dataplane.Dataplane.
func (d *Dataplane) CheckService(svc ipvs.Service) error { return checkService(svc) }

// CheckDest implements dataplane.Dataplane.
func (d *Dataplane) CheckDest(svc ipvs.Service, dst ipvs.Destination) error {
	return checkDest(svc, dst)
}

func (d *Dataplane) locked(f func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return f()
}

// AddService implements dataplane.Dataplane. A service adopted from a
// previous run is updated in place.
func (d *Dataplane) AddService(svc ipvs.Service) error {
	return d.locked(func() error {
		if _, ok := d.tab.svcs[svc.ServiceKey]; ok {
			return d.tab.editService(svc)
		}
		return d.tab.addService(svc)
	})
}

// EditService implements dataplane.Dataplane.
func (d *Dataplane) EditService(svc ipvs.Service) error {
	return d.locked(func() error { return d.tab.editService(svc) })
}

// DelService implements dataplane.Dataplane.
func (d *Dataplane) DelService(k ipvs.ServiceKey) error {
	return d.locked(func() error { return d.tab.delService(k) })
}

// AddDest implements dataplane.Dataplane. A destination adopted from a
// previous run is updated in place.
func (d *Dataplane) AddDest(k ipvs.ServiceKey, dst ipvs.Destination) error {
	return d.locked(func() error {
		if _, _, err := d.tab.findDest(k, dst.Key()); err == nil {
			return d.tab.editDest(k, dst)
		}
		return d.tab.addDest(k, dst)
	})
}

// EditDest implements dataplane.Dataplane.
func (d *Dataplane) EditDest(k ipvs.ServiceKey, dst ipvs.Destination) error {
	return d.locked(func() error { return d.tab.editDest(k, dst) })
}

// DelDest implements dataplane.Dataplane.
func (d *Dataplane) DelDest(k ipvs.ServiceKey, dk ipvs.DestKey) error {
	return d.locked(func() error { return d.tab.delDest(k, dk) })
}

// Flush implements dataplane.Dataplane.
func (d *Dataplane) Flush() error { return d.locked(d.tab.flush) }

// SetTimeouts implements dataplane.Dataplane.
func (d *Dataplane) SetTimeouts(t conn.Timeouts) error {
	return d.locked(func() error { return d.tab.setTimeouts(t) })
}

// Zero implements dataplane.Dataplane.
func (d *Dataplane) Zero(k *ipvs.ServiceKey) error {
	return d.locked(func() error { return d.tab.zero(k) })
}

// Services implements dataplane.Dataplane.
func (d *Dataplane) Services() ([]ipvs.ServiceState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.tab.services()
}

// Conns implements dataplane.Dataplane.
func (d *Dataplane) Conns() ([]conn.Info, error) {
	return d.tab.conns(monotonicNow())
}

// Health implements dataplane.Dataplane: every link must still be
// attached.
func (d *Dataplane) Health() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, l := range d.links {
		if _, err := l.Info(); err != nil {
			return fmt.Errorf("link %v: %w", l, err)
		}
	}
	return nil
}

// Close stops the sweeper and releases the data plane's file
// descriptors. The pinned maps and links stay: the kernel keeps
// forwarding with the last configuration, and the next New adopts them.
// Use Remove to take everything away.
func (d *Dataplane) Close() error {
	close(d.stop)
	<-d.done
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closeLocked()
	return nil
}

func (d *Dataplane) closeLocked() {
	for _, l := range d.links {
		l.Close() // pinned: stays attached
	}
	d.links = nil
	if d.nh != nil {
		d.nh.close()
		d.nh = nil
	}
	d.objs.Close()
}

func (d *Dataplane) sweeper() {
	defer close(d.done)
	tk := time.NewTicker(d.opts.SweepInterval)
	defer tk.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-tk.C:
			if n, err := d.tab.sweep(monotonicNow()); err != nil {
				d.log.Warn("sweep connection table", "err", err)
			} else if n > 0 {
				d.log.Debug("expired connections", "count", n)
			}
			if err := d.locked(func() error { return d.tab.lbGC(monotonicNow()) }); err != nil {
				d.log.Warn("expire lblc entries", "err", err)
			}
			if err := d.locked(func() error { return d.tab.sampleRates(time.Now()) }); err != nil {
				d.log.Warn("estimate rates", "err", err)
			}
		}
	}
}

// monotonicNow is bpf_ktime_get_ns() as seen from user space.
func monotonicNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}
