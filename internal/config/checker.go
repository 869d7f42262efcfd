package config

import (
	"errors"
	"math"
	"strings"
	"time"
)

var errSyntax = errors.New("syntax error")

// DNS query types DNS_CHECK accepts.
var dnsTypes = []string{"A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA"}

func (d *decoder) checker(kind CheckerKind, n *Node) (Checker, ckRaw, bool) {
	c := Checker{Pos: n.Pos, Kind: kind, Timing: unsetTiming()}
	var raw ckRaw
	if len(n.Args) > 0 {
		d.warnf(n.Pos, "%s: extra arguments %q ignored", kind, strings.Join(n.Args, " "))
	}
	if !n.HasBlock {
		// keepalived accepts "TCP_CHECK" with no block only with a warning;
		// an empty block means all defaults.
		d.warnf(n.Pos, "%s has no { } block; using defaults", kind)
	}
	h := map[string]handler{}
	common := kind != MiscCheck && kind != FileCheck && kind != BFDCheck
	if common {
		h["connect_ip"] = d.setAddr(&c.ConnectIP)
		h["connect_port"] = d.setPort(&c.ConnectPort)
		h["bindto"] = d.setAddr(&c.BindTo)
		h["bind_if"] = d.setStr(&c.BindIf)
		h["bind_port"] = d.setPort(&c.BindPort)
		h["fwmark"] = func(x *Node) {
			if v, ok := d.int(x, 0, math.MaxUint32); ok {
				c.FWMark = uint32(v)
			}
		}
	}
	if kind != FileCheck && kind != BFDCheck {
		h["alpha"] = func(x *Node) {
			if v, ok := d.boolArg(x); ok {
				c.Alpha, raw.alphaSet = v, true
			}
		}
		h["log_all_failures"] = d.flag(&c.LogAllFailures)
		d.timingHandlers(h, &c.Timing)
	}
	switch kind {
	case HTTPGet, SSLGet:
		c.HTTP = &HTTPCheck{TLS: kind == SSLGet}
		hc := c.HTTP
		h["http_protocol"] = func(x *Node) {
			v, ok := d.str(x)
			if !ok {
				return
			}
			switch strings.ToUpper(v) {
			case "1.0", "1.0C", "1.1":
				hc.HTTPProtocol = strings.ToUpper(v)
			default:
				d.errorf(x.Pos, "http_protocol: unknown version '%s': use 1.0, 1.0C or 1.1", v)
			}
		}
		h["fast_recovery"] = d.flag(&hc.FastRecovery)
		h["virtualhost"] = d.setStr(&hc.VirtualHost)
		h["enable_sni"] = d.flag(&hc.EnableSNI)
		h["sni_name"] = d.setStr(&hc.SNIName)
		h["tls_compliant"] = d.flag(&hc.TLSCompliant)
		h["url"] = func(x *Node) {
			if u, ok := d.url(x, hc); ok {
				hc.URLs = append(hc.URLs, u)
			}
		}
	case SMTPCheck:
		c.SMTP = &SMTPCheckConfig{}
		h["helo_name"] = d.setStr(&c.SMTP.HeloName)
		h["host"] = func(x *Node) {
			if !d.block(x) {
				return
			}
			ch := CheckerHost{Pos: x.Pos}
			d.walk(x.Block, map[string]handler{
				"connect_ip":   d.setAddr(&ch.ConnectIP),
				"connect_port": d.setPort(&ch.ConnectPort),
				"bindto":       d.setAddr(&ch.BindTo),
				"bind_port":    d.setPort(&ch.BindPort),
			}, []string{"bind_if", "fwmark"}, nil)
			c.SMTP.Hosts = append(c.SMTP.Hosts, ch)
		}
	case DNSCheck:
		c.DNS = &DNSCheckConfig{Type: "SOA", Name: "."}
		h["type"] = func(x *Node) {
			v, ok := d.str(x)
			if !ok {
				return
			}
			v = strings.ToUpper(v)
			if !contains(dnsTypes, v) {
				d.errorf(x.Pos, "DNS_CHECK type: unknown type '%s': use one of %s", v, strings.Join(dnsTypes, ", "))
				return
			}
			c.DNS.Type = v
		}
		h["name"] = d.setStr(&c.DNS.Name)
	case MiscCheck:
		c.Misc = &MiscCheckConfig{}
		h["misc_path"] = d.setStr(&c.Misc.Path)
		h["misc_timeout"] = func(x *Node) {
			if v, ok := d.timer(x, time.Millisecond, 24*time.Hour); ok {
				c.Misc.Timeout = v
			}
		}
		h["misc_dynamic"] = d.flag(&c.Misc.Dynamic)
		h["user"] = func(x *Node) {
			if d.scalar(x, 1, 2) {
				c.Misc.User, c.Misc.Group = splitUserGroup(x.Args)
			}
		}
	case UDPCheck:
		c.UDP = &UDPCheckConfig{MaxReplyLength: DefaultUDPMaxReplyLength}
		u := c.UDP
		h["payload"] = func(x *Node) {
			if !d.scalar(x, 1, -1) {
				return
			}
			b, _, err := parseHex(x.Args, false)
			if err != nil {
				d.errorf(x.Pos, "payload: %v", err)
				return
			}
			u.Payload = b
		}
		h["require_reply"] = func(x *Node) {
			if x.HasBlock {
				d.warnf(x.Pos, "'require_reply' does not take a { } block; the block is ignored")
			}
			u.RequireReply = true
			if len(x.Args) > 0 {
				b, m, err := parseHex(x.Args, true)
				if err != nil {
					d.errorf(x.Pos, "require_reply: %v", err)
					return
				}
				u.Reply, u.ReplyMask = b, m
			}
		}
		h["min_reply_length"] = func(x *Node) {
			if v, ok := d.int(x, 0, 65535); ok {
				u.MinReplyLength = int(v)
			}
		}
		h["max_reply_length"] = func(x *Node) {
			if v, ok := d.int(x, 0, 65535); ok {
				u.MaxReplyLength = int(v)
			}
		}
	case FileCheck:
		c.File = &FileCheckConfig{Weight: 1}
		f := c.File
		h["track_file"] = d.setStr(&f.TrackFile)
		h["file"] = d.setStr(&f.TrackFile)
		h["dynamic"] = d.flag(&f.Dynamic)
		h["weight"] = func(x *Node) {
			if !d.scalar(x, 1, 2) {
				return
			}
			if v, ok := d.intArgAt(x, 0, -2147483647, 2147483647); ok {
				f.Weight = int(v)
			}
			f.Reverse = len(x.Args) == 2 && x.Args[1] == "reverse"
		}
	case BFDCheck:
		h["name"] = d.setStr(&c.BFD)
		h["weight"] = func(x *Node) { d.scalar(x, 1, 2) }
	}
	d.walk(n.Block, h, nil, nil)

	ok := true
	switch kind {
	case MiscCheck:
		if c.Misc.Path == "" {
			d.errorf(n.Pos, "MISC_CHECK needs misc_path")
			ok = false
		}
	case FileCheck:
		if c.File.TrackFile == "" {
			d.errorf(n.Pos, "FILE_CHECK needs track_file")
			ok = false
		}
	case BFDCheck:
		d.warnf(n.Pos, "BFD_CHECK is not supported by govs; the checker is ignored")
		ok = false
	case HTTPGet, SSLGet:
		if len(c.HTTP.URLs) == 0 {
			d.errorf(n.Pos, "%s needs at least one url { path ... } block", kind)
			ok = false
		}
	case UDPCheck:
		if c.UDP.MinReplyLength > c.UDP.MaxReplyLength {
			d.errorf(n.Pos, "UDP_CHECK: min_reply_length %d is above max_reply_length %d", c.UDP.MinReplyLength, c.UDP.MaxReplyLength)
			ok = false
		}
	}
	return c, raw, ok
}

func (d *decoder) url(n *Node, hc *HTTPCheck) (URL, bool) {
	u := URL{Pos: n.Pos}
	if !d.block(n) {
		return u, false
	}
	d.walk(n.Block, map[string]handler{
		"path": d.setStr(&u.Path),
		"digest": func(x *Node) {
			v, ok := d.str(x)
			if !ok {
				return
			}
			v = strings.ToLower(v)
			if len(v) != 32 || strings.Trim(v, "0123456789abcdef") != "" {
				d.errorf(x.Pos, "digest: '%s' is not an MD5 digest (32 hex digits, as genhash prints)", x.Args[0])
				return
			}
			u.Digest = v
		},
		"status_code": func(x *Node) {
			if !d.scalar(x, 1, -1) {
				return
			}
			for _, a := range x.Args {
				lo, hi, found := strings.Cut(a, "-")
				l, ok1 := parseInt(lo, 100, 999)
				h := l
				ok2 := true
				if found {
					h, ok2 = parseInt(hi, 100, 999)
				}
				if !ok1 || !ok2 || h < l {
					d.errorf(x.Pos, "status_code: invalid code or range '%s': use e.g. 200 or 200-299", a)
					continue
				}
				u.StatusCodes = append(u.StatusCodes, StatusRange{Min: int(l), Max: int(h)})
			}
		},
		"virtualhost":    d.setStr(&u.VirtualHost),
		"regex":          d.setStr(&u.Regex),
		"regex_no_match": d.flag(&u.RegexNoMatch),
		"regex_options": func(x *Node) {
			if d.scalar(x, 1, -1) {
				u.RegexOptions = append(u.RegexOptions, x.Args...)
			}
		},
		"tls_compliant": d.flag(&hc.TLSCompliant),
	}, []string{"regex_stack", "regex_min_offset", "regex_max_offset"}, nil)
	if u.Path == "" {
		d.errorf(n.Pos, "url needs a path")
		return u, false
	}
	if len(u.StatusCodes) == 0 {
		u.StatusCodes = []StatusRange{{200, 299}}
	}
	return u, true
}

// parseHex reads keepalived's free-format hex string: each word is split
// into byte pairs from the left, a lone last digit is the low nibble of a
// byte. With wild, X or x is a nibble to ignore; mask has 0 bits there.
func parseHex(words []string, wild bool) (data, mask []byte, err error) {
	nib := func(c byte) (v, m byte, ok bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', 0xf, true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, 0xf, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, 0xf, true
		case wild && (c == 'x' || c == 'X'):
			return 0, 0, true
		}
		return 0, 0, false
	}
	for _, w := range words {
		for i := 0; i < len(w); i += 2 {
			hv, hm, ok := nib(w[i])
			if !ok {
				return nil, nil, errors.New("invalid hex digit in '" + w + "'")
			}
			if i+1 == len(w) {
				data, mask = append(data, hv), append(mask, hm)
				break
			}
			lv, lm, ok := nib(w[i+1])
			if !ok {
				return nil, nil, errors.New("invalid hex digit in '" + w + "'")
			}
			data, mask = append(data, hv<<4|lv), append(mask, hm<<4|lm)
		}
	}
	return data, mask, nil
}
