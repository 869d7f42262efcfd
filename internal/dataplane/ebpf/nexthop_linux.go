package ebpf

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// nhGenOff in nh_gen turns the next-hop cache off (maps.h NH_GEN_OFF).
const nhGenOff = ^uint32(0)

// nhWatch keeps the BPF next-hop cache honest (see fwd.h): it listens to
// the namespace's routing notifications (neighbours, routes, addresses,
// links, rules, netconf) and bumps nh_gen on each, which invalidates every
// cached next hop; while the namespace has routing rules beyond the three
// default ones (whose answers may depend on the source, the mark or the
// ingress device, which the cache does not key on) it turns the cache off.
type nhWatch struct {
	log *slog.Logger
	gen *ebpf.Map
	h   *netlink.Handle
	f   *os.File
	cur uint32
	off bool
	// done is closed when run returns; nil if it never started.
	done chan struct{}
}

// startNHWatch subscribes in the calling thread's network namespace.
func startNHWatch(gen *ebpf.Map, log *slog.Logger) (*nhWatch, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink handle: %w", err)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	groups := uint32(unix.RTMGRP_LINK | unix.RTMGRP_NEIGH | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV4_ROUTE |
		unix.RTMGRP_IPV6_IFADDR | unix.RTMGRP_IPV6_ROUTE)
	for _, g := range []uint32{unix.RTNLGRP_IPV4_RULE, unix.RTNLGRP_IPV6_RULE, unix.RTNLGRP_IPV4_NETCONF, unix.RTNLGRP_IPV6_NETCONF} {
		groups |= 1 << (g - 1)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		h.Close()
		return nil, fmt.Errorf("subscribe to routing changes: %w", err)
	}
	w := &nhWatch{log: log, gen: gen, h: h, f: os.NewFile(uintptr(fd), "netlink-route")}
	if err := w.gen.Lookup(uint32(0), &w.cur); err != nil {
		w.close()
		return nil, fmt.Errorf("read nh_gen: %w", err)
	}
	if w.cur == nhGenOff {
		w.cur = 0
	}
	if err := w.checkRules(); err != nil {
		w.close()
		return nil, err
	}
	if err := w.bump(); err != nil {
		w.close()
		return nil, err
	}
	w.done = make(chan struct{})
	go w.run()
	return w, nil
}

func (w *nhWatch) run() {
	defer close(w.done)
	buf := make([]byte, 1<<16)
	for {
		n, err := w.f.Read(buf)
		if errors.Is(err, os.ErrClosed) {
			return
		}
		if err != nil {
			// ENOBUFS: notifications were lost; the bump below covers
			// them (and the rules are read again).
			if !errors.Is(err, unix.ENOBUFS) {
				w.log.Warn("read routing notifications", "err", err)
			}
			_ = w.checkRules()
		} else if msgs, perr := syscall.ParseNetlinkMessage(buf[:n]); perr == nil {
			for _, m := range msgs {
				if m.Header.Type == unix.RTM_NEWRULE || m.Header.Type == unix.RTM_DELRULE {
					if err := w.checkRules(); err != nil {
						w.log.Warn("read routing rules", "err", err)
					}
					break
				}
			}
		}
		if err := w.bump(); err != nil {
			w.log.Warn("invalidate next-hop cache", "err", err)
		}
	}
}

// checkRules turns the cache off while rules other than the defaults
// (local, main, default) exist.
func (w *nhWatch) checkRules() error {
	off := false
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rules, err := w.h.RuleList(fam)
		if err != nil {
			return fmt.Errorf("list routing rules: %w", err)
		}
		for _, r := range rules {
			if !defaultRule(r) {
				off = true
			}
		}
	}
	if off != w.off {
		w.log.Info("next-hop cache", "on", !off, "why", "routing rules beyond the defaults")
	}
	w.off = off
	return nil
}

func defaultRule(r netlink.Rule) bool {
	if r.Src != nil || r.Dst != nil || r.Mark != 0 || r.IifName != "" || r.OifName != "" {
		return false
	}
	switch {
	case r.Priority == 0 && r.Table == unix.RT_TABLE_LOCAL,
		r.Priority == 32766 && r.Table == unix.RT_TABLE_MAIN,
		r.Priority == 32767 && r.Table == unix.RT_TABLE_DEFAULT:
		return true
	}
	return false
}

// bump invalidates every cached next hop.
func (w *nhWatch) bump() error {
	v := nhGenOff
	if !w.off {
		w.cur++
		if w.cur == nhGenOff {
			w.cur = 0
		}
		v = w.cur
	}
	if err := w.gen.Update(uint32(0), v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write nh_gen: %w", err)
	}
	return nil
}

// close stops the watch; the cache keeps its last generation (entries
// then live up to NH_TTL_NS).
func (w *nhWatch) close() {
	w.f.Close()
	if w.done != nil {
		<-w.done
	}
	w.h.Close()
}
