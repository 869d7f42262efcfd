package config

import (
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// decoder turns the statement tree into a Config. Each block has a table
// of keyword handlers; keywords keepalived knows but govs does not act on
// are listed so they warn as unsupported rather than unknown.
type decoder struct {
	*diag
	cfg Config

	// raw per-level timing and inheritance state, resolved by defaults().
	vsRaw []vsRaw
}

type handler func(n *Node)

// walk dispatches every statement of block. ignored lists keywords
// keepalived accepts there that govs does not implement; they are kept in
// *other (if non-nil) and warned about.
func (d *decoder) walk(block []*Node, h map[string]handler, ignored []string, other *[]Setting) {
	for _, n := range block {
		if f, ok := h[n.Name]; ok {
			f(n)
			continue
		}
		if contains(ignored, n.Name) {
			d.warnf(n.Pos, "'%s' is not supported by govs; ignored", n.Name)
			if other != nil {
				*other = append(*other, Setting{Pos: n.Pos, Name: n.Name, Args: n.Args})
			}
			continue
		}
		d.warnf(n.Pos, "Unknown keyword '%s'", n.Name)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// scalar checks that n has no block and at least min and at most max
// arguments (max < 0: unlimited). Extra arguments are warned about, as
// keepalived ignores them.
func (d *decoder) scalar(n *Node, min, max int) bool {
	if n.HasBlock {
		d.warnf(n.Pos, "'%s' does not take a { } block; the block is ignored", n.Name)
	}
	return d.args(n, min, max)
}

// args checks the argument count of n, which may have a block.
func (d *decoder) args(n *Node, min, max int) bool {
	if len(n.Args) < min {
		if min == 1 {
			d.errorf(n.Pos, "'%s' needs a value", n.Name)
		} else {
			d.errorf(n.Pos, "'%s' needs %d values", n.Name, min)
		}
		return false
	}
	if max >= 0 && len(n.Args) > max {
		d.warnf(n.Pos, "'%s': extra arguments %q ignored (keepalived reads one keyword per line)", n.Name, strings.Join(n.Args[max:], " "))
	}
	return true
}

// block checks that n has a { } block.
func (d *decoder) block(n *Node) bool {
	if !n.HasBlock {
		d.errorf(n.Pos, "'%s' needs a { } block", n.Name)
		return false
	}
	return true
}

func (d *decoder) str(n *Node) (string, bool) {
	if !d.scalar(n, 1, 1) {
		return "", false
	}
	return n.Args[0], true
}

func parseInt(s string, min, max int64) (int64, bool) {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || v < min || v > max {
		return 0, false
	}
	return v, true
}

func (d *decoder) intArgAt(n *Node, i int, min, max int64) (int64, bool) {
	v, ok := parseInt(n.Args[i], min, max)
	if !ok {
		d.errorf(n.Pos, "%s: invalid number '%s': use an integer in [%d, %d]", n.Name, n.Args[i], min, max)
	}
	return v, ok
}

func (d *decoder) int(n *Node, min, max int64) (int64, bool) {
	if !d.scalar(n, 1, 1) {
		return 0, false
	}
	return d.intArgAt(n, 0, min, max)
}

// parseTimer reads keepalived's TIMER: seconds with an optional fraction,
// microsecond resolution.
func parseTimer(s string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e9 {
		return 0, false
	}
	return time.Duration(f*1e6) * time.Microsecond, true
}

func (d *decoder) timer(n *Node, min, max time.Duration) (time.Duration, bool) {
	if !d.scalar(n, 1, 1) {
		return 0, false
	}
	v, ok := parseTimer(n.Args[0])
	if !ok || v < min || v > max {
		d.errorf(n.Pos, "%s: invalid time '%s': use seconds in [%g, %g]", n.Name, n.Args[0], min.Seconds(), max.Seconds())
		return 0, false
	}
	return v, true
}

// boolArg reads an optional <BOOL>; a bare keyword means true.
func (d *decoder) boolArg(n *Node) (bool, bool) {
	if !d.scalar(n, 0, 1) {
		return false, false
	}
	if len(n.Args) == 0 {
		return true, true
	}
	switch strings.ToLower(n.Args[0]) {
	case "on", "true", "yes":
		return true, true
	case "off", "false", "no":
		return false, true
	}
	d.errorf(n.Pos, "%s: invalid boolean '%s': use on|off|true|false|yes|no", n.Name, n.Args[0])
	return false, false
}

func (d *decoder) flag(dst *bool) handler {
	return func(n *Node) {
		if v, ok := d.boolArg(n); ok {
			*dst = v
		}
	}
}

func (d *decoder) optFlag(dst **bool) handler {
	return func(n *Node) {
		if v, ok := d.boolArg(n); ok {
			*dst = &v
		}
	}
}

func (d *decoder) setStr(dst *string) handler {
	return func(n *Node) {
		if v, ok := d.str(n); ok {
			*dst = v
		}
	}
}

func parseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func (d *decoder) addrAt(n *Node, i int) (netip.Addr, bool) {
	a, ok := parseAddr(n.Args[i])
	if !ok {
		d.errorf(n.Pos, "%s: invalid IP address '%s'", n.Name, n.Args[i])
	}
	return a, ok
}

func (d *decoder) addr(n *Node) (netip.Addr, bool) {
	if !d.scalar(n, 1, 1) {
		return netip.Addr{}, false
	}
	return d.addrAt(n, 0)
}

func (d *decoder) setAddr(dst *netip.Addr) handler {
	return func(n *Node) {
		if v, ok := d.addr(n); ok {
			*dst = v
		}
	}
}

func (d *decoder) setPort(dst *uint16) handler {
	return func(n *Node) {
		if v, ok := d.int(n, 0, 65535); ok {
			*dst = uint16(v)
		}
	}
}

// script reads "CMD [user [:][group]]".
func (d *decoder) script(n *Node) *Script {
	if !d.scalar(n, 1, 3) {
		return nil
	}
	s := &Script{Pos: n.Pos, Command: n.Args[0]}
	if len(n.Args) > 1 {
		s.User, s.Group = splitUserGroup(n.Args[1:])
	}
	return s
}

func splitUserGroup(args []string) (user, group string) {
	user = args[0]
	if i := strings.IndexByte(user, ':'); i >= 0 {
		user, group = user[:i], user[i+1:]
	}
	if len(args) > 1 {
		group = strings.TrimPrefix(args[1], ":")
	}
	return user, group
}

func (d *decoder) setScript(dst **Script) handler {
	return func(n *Node) {
		if s := d.script(n); s != nil {
			*dst = s
		}
	}
}

// values returns every word of a value block (notification_email,
// group, ...).
func (d *decoder) values(n *Node) []string {
	if !d.block(n) {
		return nil
	}
	if len(n.Args) > 0 {
		d.warnf(n.Pos, "'%s': extra arguments %q ignored", n.Name, strings.Join(n.Args, " "))
	}
	var out []string
	for _, c := range n.Block {
		if c.HasBlock {
			d.warnf(c.Pos, "unexpected block after '%s' in %s; ignored", c.Name, n.Name)
		}
		out = append(out, c.Words()...)
	}
	return out
}
