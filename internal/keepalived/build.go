package keepalived

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/healthcheck"
	"github.com/govs/govs/internal/ipvs"
)

// Plan is one checker of one realserver, resolved from the configuration:
// what to construct ([Plan.New]) and with which timing. Options holds the
// checker's option struct (healthcheck.TCPOptions, HTTPOptions, ...), with
// keepalived's defaults filled in: connect_ip and connect_port from the
// realserver, the track_file's path and weight, the SSL block.
type Plan struct {
	Kind    config.CheckerKind
	Name    string
	Timing  healthcheck.Timing
	Alpha   bool
	Options any
	// Pos is where the checker is configured, for messages.
	Pos config.Pos
}

// New constructs the checker the plan describes.
func (p Plan) New() (healthcheck.Checker, error) {
	var c healthcheck.Checker
	var err error
	switch o := p.Options.(type) {
	case healthcheck.TCPOptions:
		c, err = healthcheck.NewTCP(o)
	case healthcheck.HTTPOptions:
		c, err = healthcheck.NewHTTP(o)
	case healthcheck.SMTPOptions:
		c, err = healthcheck.NewSMTP(o)
	case healthcheck.DNSOptions:
		c, err = healthcheck.NewDNS(o)
	case healthcheck.MiscOptions:
		c, err = healthcheck.NewMisc(o)
	case healthcheck.UDPOptions:
		c, err = healthcheck.NewUDP(o)
	case healthcheck.PingOptions:
		c, err = healthcheck.NewPing(o)
	case healthcheck.FileOptions:
		c, err = healthcheck.NewFile(o)
	case healthcheck.PathOptions:
		c, err = healthcheck.NewPath(o)
	default:
		return nil, fmt.Errorf("%s: %s: no checker for options %T", p.Pos, p.Kind, p.Options)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", p.Pos, p.Kind, err)
	}
	return c, nil
}

// PlanCheckers resolves the checkers of real server rs of virtual server
// vs. port is the realserver's port as the IPVS destination has it (the
// default connect_port); cfg gives the track_file and SSL blocks.
func PlanCheckers(cfg *config.Config, vs *config.VirtualServer, rs *config.RealServer, port uint16) ([]Plan, error) {
	var plans []Plan
	var errs []error
	for _, c := range rs.Checkers {
		p, err := planChecker(cfg, rs, c, port)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ps, err := viaVIP(vs, rs, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		plans = append(plans, ps...)
	}
	return plans, errors.Join(errs...)
}

// viaVIP applies govs's check_via_vip to plan p of a DR or TUN real
// server: a TCP_CHECK becomes the VIP path check (a SYN to VIP:port sent
// the way the director forwards, healthcheck.Path), which checks
// everything it did and the path besides; HTTP_GET, SSL_GET and
// SMTP_CHECK keep their check at the RIP and get a path check of their
// port next to them. Other checkers, and checkers whose connect_ip is
// another host, are left as they are.
func viaVIP(vs *config.VirtualServer, rs *config.RealServer, p Plan) ([]Plan, error) {
	if !vs.CheckViaVIP || (rs.Forwarding.Method != ipvs.Route && rs.Forwarding.Method != ipvs.Tunnel) {
		return []Plan{p}, nil
	}
	var conn healthcheck.ConnOptions
	switch o := p.Options.(type) {
	case healthcheck.TCPOptions:
		conn = o.ConnOptions
	case healthcheck.HTTPOptions:
		conn = o.ConnOptions
	case healthcheck.SMTPOptions:
		conn = o.ConnOptions
	default:
		return []Plan{p}, nil
	}
	if conn.ConnectIP.Unmap() != rs.Addr.Unmap() {
		return []Plan{p}, nil
	}
	o := healthcheck.PathOptions{
		ConnOptions: conn,
		VIP:         vs.Addr,
		Method:      rs.Forwarding.Method,
		Interface:   vs.CheckViaVIPInterface,
	}
	if o.Interface == "" {
		o.Interface = conn.BindIf
	}
	if o.Method == ipvs.Tunnel {
		o.TunType, o.TunPort = rs.Forwarding.TunType, rs.Forwarding.TunPort
	}
	// Construct it once here, so `govsd -t` reports what is wrong.
	if _, err := healthcheck.NewPath(o); err != nil {
		return nil, &config.Error{Pos: p.Pos, Msg: fmt.Sprintf("%s with check_via_vip: %v", p.Kind, err)}
	}
	path := Plan{Kind: p.Kind, Name: p.Name + " via VIP", Timing: p.Timing, Alpha: p.Alpha, Options: o, Pos: p.Pos}
	if p.Kind == config.TCPCheck {
		return []Plan{path}, nil
	}
	return []Plan{p, path}, nil
}

func planChecker(cfg *config.Config, rs *config.RealServer, c config.Checker, port uint16) (Plan, error) {
	p := Plan{
		Kind: c.Kind, Name: string(c.Kind), Alpha: c.Alpha, Pos: c.Pos,
		Timing: healthcheck.Timing{
			DelayLoop:        c.Timing.DelayLoop,
			Retry:            c.Timing.Retry,
			DelayBeforeRetry: c.Timing.DelayBeforeRetry,
			Warmup:           c.Timing.Warmup,
		},
	}
	conn := healthcheck.ConnOptions{
		ConnectIP:   c.ConnectIP,
		ConnectPort: c.ConnectPort,
		BindTo:      c.BindTo,
		BindPort:    c.BindPort,
		BindIf:      c.BindIf,
		FWMark:      c.FWMark,
		Timeout:     c.Timing.ConnectTimeout,
	}
	if !conn.ConnectIP.IsValid() {
		conn.ConnectIP = rs.Addr
	}
	if conn.ConnectPort == 0 {
		conn.ConnectPort = port
	}
	fail := func(format string, args ...any) (Plan, error) {
		return Plan{}, &config.Error{Pos: c.Pos, Msg: fmt.Sprintf(string(c.Kind)+": "+format, args...)}
	}
	needPort := func() bool { return conn.ConnectPort != 0 }
	switch c.Kind {
	case config.TCPCheck:
		if !needPort() {
			return fail("no port to connect to: set connect_port (a fwmark real server has none)")
		}
		p.Options = healthcheck.TCPOptions{ConnOptions: conn}
	case config.HTTPGet, config.SSLGet:
		if !needPort() {
			return fail("no port to connect to: set connect_port (a fwmark real server has none)")
		}
		h := c.HTTP
		o := healthcheck.HTTPOptions{
			ConnOptions:  conn,
			TLS:          h.TLS,
			HTTPProtocol: h.HTTPProtocol,
			VirtualHost:  h.VirtualHost,
			EnableSNI:    h.EnableSNI,
			SNIName:      h.SNIName,
		}
		for _, u := range h.URLs {
			hu := healthcheck.URL{Path: u.Path, Digest: u.Digest, VirtualHost: u.VirtualHost, Regex: u.Regex, RegexNoMatch: u.RegexNoMatch}
			for _, s := range u.StatusCodes {
				hu.StatusCodes = append(hu.StatusCodes, healthcheck.StatusRange{Min: s.Min, Max: s.Max})
			}
			o.URLs = append(o.URLs, hu)
		}
		if h.TLS && cfg.SSL != nil {
			tc, err := tlsConfig(cfg.SSL)
			if err != nil {
				return fail("SSL block: %v", err)
			}
			o.TLSConfig = tc
		}
		p.Options = o
		if len(h.URLs) > 0 {
			p.Name += " " + h.URLs[0].Path
		}
	case config.SMTPCheck:
		if !needPort() {
			return fail("no port to connect to: set connect_port (a fwmark real server has none)")
		}
		if len(c.SMTP.Hosts) > 0 {
			return fail("legacy host { } blocks are not supported by govs: give each host its own SMTP_CHECK with connect_ip and connect_port")
		}
		p.Options = healthcheck.SMTPOptions{ConnOptions: conn, HeloName: c.SMTP.HeloName}
	case config.DNSCheck:
		if conn.ConnectPort == 0 {
			conn.ConnectPort = 53
		}
		p.Options = healthcheck.DNSOptions{ConnOptions: conn, Type: c.DNS.Type, Name: c.DNS.Name}
	case config.MiscCheck:
		m := c.Misc
		timeout := m.Timeout
		if timeout == 0 {
			timeout = c.Timing.DelayLoop
		}
		p.Options = healthcheck.MiscOptions{Path: m.Path, Timeout: timeout, Dynamic: m.Dynamic, User: m.User, Group: m.Group}
		p.Name += " " + m.Path
	case config.UDPCheck:
		if !needPort() {
			return fail("no port to connect to: set connect_port (a fwmark real server has none)")
		}
		u := c.UDP
		p.Options = healthcheck.UDPOptions{ConnOptions: conn, Payload: u.Payload, RequireReply: u.RequireReply,
			Reply: u.Reply, ReplyMask: u.ReplyMask, MinReplyLength: u.MinReplyLength, MaxReplyLength: u.MaxReplyLength}
	case config.PingCheck:
		conn.ConnectPort = 0
		p.Options = healthcheck.PingOptions{ConnOptions: conn}
	case config.FileCheck:
		f := c.File
		var tf *config.TrackFile
		for i := range cfg.TrackFiles {
			if cfg.TrackFiles[i].Name == f.TrackFile {
				tf = &cfg.TrackFiles[i]
			}
		}
		if tf == nil {
			return fail("track_file %s is not defined; add a track_file %s { file PATH } block", f.TrackFile, f.TrackFile)
		}
		// FILE_CHECK's own weight wins; left at its default (1, not
		// reversed) the track_file block's applies.
		w, rev := f.Weight, f.Reverse
		if w == 1 && !rev {
			w, rev = tf.Weight, tf.Reverse
		}
		p.Options = healthcheck.FileOptions{Path: tf.File, Weight: w, Reverse: rev}
		p.Name += " " + tf.Name
	default:
		return fail("not supported by govs")
	}
	return p, nil
}

// tlsConfig builds SSL_GET's TLS settings from the SSL block: certificate
// and key are the client certificate, ca the roots the server's chain must
// verify against (host names are not checked: realservers are reached by
// address). Without ca, as in keepalived, the server is not verified.
func tlsConfig(s *config.SSL) (*tls.Config, error) {
	tc := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // keepalived's default: checks do not verify
	if s.Certificate != "" || s.Key != "" {
		if s.Password != "" {
			return nil, errors.New("a password-protected key is not supported: decrypt the key file")
		}
		key := s.Key
		if key == "" {
			key = s.Certificate
		}
		cert, err := tls.LoadX509KeyPair(s.Certificate, key)
		if err != nil {
			return nil, fmt.Errorf("load certificate %s and key %s: %w", s.Certificate, key, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if s.CA != "" {
		pem, err := os.ReadFile(s.CA)
		if err != nil {
			return nil, fmt.Errorf("read ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca %s holds no PEM certificate", s.CA)
		}
		tc.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("the server sent no certificate")
			}
			certs := make([]*x509.Certificate, len(raw))
			for i, r := range raw {
				c, err := x509.ParseCertificate(r)
				if err != nil {
					return fmt.Errorf("parse server certificate: %w", err)
				}
				certs[i] = c
			}
			inter := x509.NewCertPool()
			for _, c := range certs[1:] {
				inter.AddCert(c)
			}
			_, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter})
			return err
		}
	}
	return tc, nil
}

// destPort is the port the IPVS destination of rs has in service svc: the
// real server's, else the service's; none for a fwmark service unless NAT.
func destPort(rs *config.RealServer, svc *ipvs.Service, svcPort uint16) uint16 {
	d := ipvs.Destination{Addr: rs.Addr, Port: rs.Port, Fwd: rs.Forwarding.Method}
	if d.Port == 0 && !svc.IsFWMark() {
		d.Port = svcPort
	}
	if svc.IsFWMark() && d.Fwd != ipvs.Masq {
		d.Port = 0
	}
	d.Normalize(svc)
	return d.Port
}

// fingerprint identifies a configuration value regardless of where it is
// written: positions are dropped, so moving a block or editing another
// line of the file does not count as a change.
func fingerprint(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		return string(b)
	}
	b, _ = json.Marshal(dropPos(x))
	return string(b)
}

func dropPos(x any) any {
	switch v := x.(type) {
	case map[string]any:
		delete(v, "pos")
		for k, e := range v {
			v[k] = dropPos(e)
		}
	case []any:
		for i, e := range v {
			v[i] = dropPos(e)
		}
	}
	return x
}

// vsID names a virtual server across reloads.
func vsID(vs *config.VirtualServer) string {
	switch {
	case vs.FWMark != 0:
		return fmt.Sprintf("fwmark %d %s", vs.FWMark, vs.IPFamily)
	case vs.Group != "":
		return "group " + vs.Group
	}
	return fmt.Sprintf("%s %s", vs.Protocol, netip.AddrPortFrom(vs.Addr, vs.Port))
}

// rsID names a real server of a virtual server across reloads.
func rsID(vs *config.VirtualServer, rs *config.RealServer) string {
	return vsID(vs) + " -> " + netip.AddrPortFrom(rs.Addr, rs.Port).String()
}

// checkerInputs is what a realserver's runner is built from; equal inputs
// keep the runner across a reload.
func checkerInputs(cfg *config.Config, vs *config.VirtualServer, rs *config.RealServer) string {
	var b strings.Builder
	b.WriteString(fingerprint(rs.Checkers))
	if vs.CheckViaVIP {
		fmt.Fprintf(&b, "check_via_vip %s %q", vs.Addr, vs.CheckViaVIPInterface)
	}
	for _, c := range rs.Checkers {
		switch {
		case c.File != nil:
			for _, tf := range cfg.TrackFiles {
				if tf.Name == c.File.TrackFile {
					b.WriteString(fingerprint(tf))
				}
			}
		case c.HTTP != nil && c.HTTP.TLS:
			b.WriteString(fingerprint(cfg.SSL))
		}
	}
	return b.String()
}
