package ebpf

import (
	"fmt"
	"net"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Decap is the realserver side of TUN mode: govs_decap attached at TC
// ingress of the realserver's interface, stripping IPIP, IPv6-in-IPv6 and
// GUE (to one UDP port) so that no tunnel kernel module is needed.
type Decap struct {
	objs decapObjects
	link link.Link
}

// newDecapObjects loads govs_decap for GUE port guePort (0: IPIP and
// IPv6-in-IPv6 only).
func newDecapObjects(guePort uint16) (*decapObjects, error) {
	spec, err := loadDecap()
	if err != nil {
		return nil, fmt.Errorf("load decap spec: %w", err)
	}
	if err := spec.Variables["gue_port"].Set(guePort); err != nil {
		return nil, fmt.Errorf("set gue_port: %w", err)
	}
	var objs decapObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return nil, fmt.Errorf("load decap program: %w", err)
	}
	return &objs, nil
}

// AttachDecap attaches the decapsulator to ifname. Close detaches it. When
// pin is not empty the link is pinned there and outlives the process
// (remove the pin to detach).
func AttachDecap(ifname string, guePort uint16, pin string) (*Decap, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("attach decap to %s: %w", ifname, err)
	}
	objs, err := newDecapObjects(guePort)
	if err != nil {
		return nil, err
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: ifi.Index, Program: objs.GovsDecap, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		objs.Close()
		return nil, fmt.Errorf("attach tcx ingress to %s: %w", ifname, err)
	}
	if pin != "" {
		if err := l.Pin(pin); err != nil {
			l.Close()
			objs.Close()
			return nil, fmt.Errorf("pin decap link: %w", err)
		}
	}
	return &Decap{objs: *objs, link: l}, nil
}

// Close detaches the decapsulator (unless its link is pinned) and frees it.
func (d *Decap) Close() error {
	err := d.link.Close()
	d.objs.Close()
	return err
}
