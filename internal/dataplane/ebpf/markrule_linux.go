package ebpf

import (
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf"
)

// writeMarkRules fills mark_rules with rules (validated) and sets their
// count, which govs_tc and govs_xdp read first: the count is written
// last, so a program never reads a rule not written yet.
func writeMarkRules(objs *govsObjects, rules []MarkRule) error {
	if err := validateMarkRules(rules); err != nil {
		return err
	}
	zero := uint32(0)
	if err := objs.MarkNrules.Update(zero, uint32(0), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write firewall-mark rules: %w", err)
	}
	for i, r := range rules {
		p := r.Dst.Masked()
		v := govsMarkRule{Mark: r.Mark, DportMin: r.PortMin, DportMax: r.PortMax, Proto: uint8(r.Proto), Plen: uint8(p.Bits())}
		a := p.Addr().As16()
		b := a[:]
		v.Family = afInet6
		if p.Addr().Is4() {
			v.Family = afInet
			b = a[12:]
		}
		for w := 0; w < len(b)/4; w++ {
			v.Daddr[w] = binary.NativeEndian.Uint32(b[4*w:])
		}
		if err := objs.MarkRules.Update(uint32(i), &v, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("write firewall-mark rule %d: %w", i+1, err)
		}
	}
	if err := objs.MarkNrules.Update(zero, uint32(len(rules)), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write firewall-mark rules: %w", err)
	}
	return nil
}
