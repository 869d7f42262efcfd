package ipvsadm

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/govs/govs/internal/ipvs"
)

// ExitError is how ipvsadm ends on bad input: Msg goes to stderr as it is
// (newline included) and the process exits with Code (2 for ipvsadm's
// fail(), 255 for popt's errors and "Try ... -h").
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return strings.TrimRight(e.Msg, "\n") }

// fail is ipvsadm's fail(2, ...).
func fail(format string, a ...any) error {
	return &ExitError{Code: 2, Msg: fmt.Sprintf(format, a...) + "\n"}
}

func (p *Parser) tryHelp() error {
	return &ExitError{Code: 255, Msg: fmt.Sprintf("Try `%s -h' or '%s --help' for more information.\n", p.Prog, p.Prog)}
}

// Limits from ipvsadm.c.
const (
	maxTimeout   = 86400 * 31 // MAX_TIMEOUT
	intMax       = math.MaxInt32
	schedNameMax = 16 - 1 // IP_VS_SCHEDNAME_MAXLEN - 1
	peNameMax    = 32     // IP_VS_PENAME_MAXLEN
	ifNameMax    = 16 - 1 // IP_VS_IFNAME_MAXLEN - 1
	defMcastIfn  = "eth0"
	afInet       = 2
	afInet6      = 10
)

// Parser parses ipvsadm command lines.
type Parser struct {
	// Prog is argv[0] as given: ipvsadm's messages name it.
	Prog string
	// Compat makes the parser exactly ipvsadm's: govsadm's extensions
	// (--json, --socket, --proxy-protocol) are unknown options.
	Compat bool
	// Resolver resolves host and service names; nil resolves nothing.
	Resolver Resolver
}

func (p *Parser) resolver() Resolver {
	if p.Resolver == nil {
		return NumericResolver{}
	}
	return p.Resolver
}

// entry is ipvsadm's struct ipvs_command_entry while it is being filled:
// the C program's state, kept so that order-dependent behaviour (-6 after
// -f, -M before or after -t, -r's port taken from the service) matches.
type entry struct {
	cmd Cmd

	af      int
	proto   ipvs.Protocol
	addr    netip.Addr
	port    uint16
	fwmark  uint32
	sched   string
	flags   uint32
	timeout uint32
	netmask uint32 // an IPv4 mask (host order), or an IPv6 prefix length
	pe      string

	daf      int
	daddr    netip.Addr
	dport    uint16
	fwd      ipvs.FwdMethod
	weight   int64
	uthr     int64
	lthr     int64
	tunType  int
	tunPort  uint16
	tunFlags uint16
	// proxyProto is govsadm's --proxy-protocol, 0 when not given.
	proxyProto uint8

	timeouts [3]int64

	state      string
	mcastIfn   string
	syncID     int64
	syncMaxLen int64
	group      netip.Addr
	mcastPort  int64
	mcastTTL   int64

	opts   OptSet
	format Format
	json   bool
	socket string
}

// setOption is ipvsadm's set_option.
func (e *entry) setOption(o Opt) error {
	if e.opts.Has(o) {
		return fail("multiple '%s' options specified", optNames[o])
	}
	e.opts |= 1 << o
	return nil
}

// Parse parses args (argv without argv[0]) as ipvsadm's process_options
// does, up to the point where it would call the kernel. Bad input returns
// an *ExitError. -h and -v return CmdHelp and CmdVersion at once, as
// ipvsadm prints and exits when it meets them first.
func (p *Parser) Parse(ctx context.Context, args []string) (*Command, error) {
	e := &entry{
		weight:  1,
		fwd:     ipvs.Route,
		netmask: 0xffffffff,
	}
	s := &scanner{args: args, ext: !p.Compat}
	if err := p.parseOptions(ctx, s, e); err != nil {
		return nil, err
	}
	if e.cmd == CmdHelp || e.cmd == CmdVersion {
		return &Command{Cmd: e.cmd}, nil
	}
	if err := genericOptCheck(e.cmd, e.opts); err != nil {
		return nil, err
	}
	if e.cmd == CmdAdd || e.cmd == CmdEdit {
		if e.fwmark == 0 && e.port == 0 && e.flags&ipvs.SvcFlagPersistent == 0 {
			return nil, fail("Zero port specified for non-persistent service")
		}
		if e.flags&ipvs.SvcFlagOnePacket != 0 && e.fwmark == 0 && e.proto != ipvs.ProtoUDP {
			return nil, fail("One-Packet Scheduling is only for UDP virtual services")
		}
		if e.sched == "" {
			e.sched = ipvs.DefaultScheduler
		}
	}
	if e.cmd == CmdStartDaemon && e.mcastIfn == "" {
		e.mcastIfn = defMcastIfn
	}
	if e.cmd == CmdAddDest || e.cmd == CmdEditDest {
		// DR and tunnel destinations cannot map ports.
		if e.fwmark == 0 && (e.fwd == ipvs.Tunnel || e.fwd == ipvs.Route) {
			e.dport = e.port
		}
		if e.daf != e.af && e.fwd != ipvs.Tunnel {
			return nil, fail("Different address family is allowed only for tunneling servers")
		}
		tunAny := OptSet(1<<OptTunType | 1<<OptTunPort | 1<<OptTunNoCsum | 1<<OptTunCsum | 1<<OptTunRemCsum)
		if e.opts&tunAny != 0 && e.fwd != ipvs.Tunnel {
			return nil, fail("Tunnel options conflict with forward method")
		}
		if err := tunnelOptCheck(e.tunType, e.opts); err != nil {
			return nil, err
		}
		// In the spirit of -o's check above: version 1 is a TCP line. A
		// mark counts as TCP in ipvsadm's entry, but may match UDP.
		if e.proxyProto == ipvs.ProxyProtocolV1 && (e.fwmark != 0 || e.proto != ipvs.ProtoTCP) {
			return nil, fail("PROXY protocol version 1 is only for TCP virtual services: use --proxy-protocol 2")
		}
	}
	if e.cmd == CmdList {
		o := e.opts
		if (o&(1<<OptConnection|1<<OptTimeout|1<<OptDaemon) != 0 &&
			o&(1<<OptStats|1<<OptRate|1<<OptThresholds) != 0) ||
			(o&(1<<OptTimeout|1<<OptDaemon) != 0 && o.Has(OptPersistentConn)) {
			return nil, fail("options conflicts in the list command")
		}
	}
	return e.command()
}

// parseOptions is ipvsadm's parse_options.
//
// ipvsadm takes the command from the first option popt returns (words
// that are not options may come before it: they are leftovers), so
// "ipvsadm -n -L" is refused with "Try ... -h", and every other option may
// come in any order after the command. govsadm's own --socket and --json
// are not ipvsadm options and may also come before the command; with
// nothing else, they mean what no arguments do: list.
func (p *Parser) parseOptions(ctx context.Context, s *scanner, e *entry) error {
	o, rc := s.nextOpt()
	var schedFlagsArg string
	for rc == 0 && !p.Compat && (o.def.tag == tSocket || o.def.tag == tJSON) {
		if err := p.option(ctx, s, e, o, &schedFlagsArg); err != nil {
			return err
		}
		o, rc = s.nextOpt()
		if rc == poptDone && len(s.leftovers) == 0 {
			e.cmd = CmdList
			return nil
		}
	}
	if rc < 0 {
		return p.tryHelp()
	}
	switch o.def.tag {
	case tAdd:
		e.cmd = CmdAdd
	case tEdit:
		e.cmd = CmdEdit
	case tDel:
		e.cmd = CmdDel
	case tAddDest:
		e.cmd = CmdAddDest
	case tEditDest:
		e.cmd = CmdEditDest
	case tDelDest:
		e.cmd = CmdDelDest
	case tClear:
		e.cmd = CmdFlush
	case tList:
		e.cmd = CmdList
	case tZero:
		e.cmd = CmdZero
	case tSet:
		e.cmd = CmdTimeout
	case tRestore:
		e.cmd = CmdRestore
	case tSave:
		e.cmd = CmdSave
	case tStartDaemon, tStopDaemon:
		e.cmd = CmdStartDaemon
		msg := "illegal start-daemon parameter specified"
		if o.def.tag == tStopDaemon {
			e.cmd = CmdStopDaemon
			msg = "illegal start_daemon specified" // sic
		}
		if o.arg != "master" && o.arg != "backup" {
			return fail("%s", msg)
		}
		e.state = o.arg
	case tHelp:
		e.cmd = CmdHelp
		return nil
	case tVersion:
		e.cmd = CmdVersion
		return nil
	default:
		return p.tryHelp()
	}

	for {
		o, rc := s.nextOpt()
		if rc == poptDone {
			break
		}
		if rc < 0 {
			return &ExitError{Code: 255, Msg: fmt.Sprintf("%s: %s\n", s.badOption(), poptStrerror(rc))}
		}
		if err := p.option(ctx, s, e, o, &schedFlagsArg); err != nil {
			return err
		}
	}

	if e.cmd == CmdTimeout {
		a0, ok0 := s.arg()
		a1, ok1 := s.arg()
		a2, ok2 := s.arg()
		if !ok0 || !ok1 || !ok2 {
			return fail("--set option requires 3 timeout values")
		}
		for i, a := range []string{a0, a1, a2} {
			v, err := parseTimeout(a, 0, maxTimeout)
			if err != nil {
				return err
			}
			e.timeouts[i] = v
		}
	}
	if a, ok := s.arg(); ok {
		return fail("unexpected argument %s", a)
	}
	if schedFlagsArg != "" {
		f, err := parseSchedFlags(e.sched, schedFlagsArg)
		if err != nil {
			return err
		}
		e.flags &^= uint32(ipvs.SchedFlag1 | ipvs.SchedFlag2 | ipvs.SchedFlag3)
		e.flags |= f
	}
	return nil
}

// option handles one option after the command.
func (p *Parser) option(ctx context.Context, s *scanner, e *entry, o option, schedFlagsArg *string) error {
	r := p.resolver()
	switch o.def.tag {
	case tTCP, tUDP, tSCTP:
		if err := e.setOption(OptService); err != nil {
			return err
		}
		e.proto = map[tag]ipvs.Protocol{tTCP: ipvs.ProtoTCP, tUDP: ipvs.ProtoUDP, tSCTP: ipvs.ProtoSCTP}[o.def.tag]
		ps := parseService(ctx, r, o.arg, e.proto)
		if ps.result&serviceAddr == 0 {
			return fail("illegal virtual server address[:port] specified")
		}
		e.applyService(ps)
	case tFWMark:
		if err := e.setOption(OptService); err != nil {
			return err
		}
		// ipvsadm sets AF_INET and TCP "to sane values" for a mark.
		e.af = afInet
		e.proto = ipvs.ProtoTCP
		v, err := parseFWMark(o.arg)
		if err != nil {
			return err
		}
		e.fwmark = v
	case tSched:
		if err := e.setOption(OptScheduler); err != nil {
			return err
		}
		e.sched = truncate(o.arg, schedNameMax)
	case tPersistent:
		if err := e.setOption(OptPersistent); err != nil {
			return err
		}
		e.flags |= ipvs.SvcFlagPersistent
		e.timeout = ipvs.DefaultPersistTimeout
		if o.hasArg {
			v, err := parseTimeout(o.arg, 1, maxTimeout)
			if err != nil {
				return err
			}
			e.timeout = uint32(v)
		}
	case tNetmask:
		if err := e.setOption(OptNetmask); err != nil {
			return err
		}
		if e.af != afInet6 {
			m, ok := inetAton(o.arg)
			if !ok {
				if a, found := r.LookupHost(ctx, o.arg); found {
					b := a.As4()
					m, ok = uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3]), true
				}
			}
			if !ok {
				return fail("illegal virtual server persistent mask specified")
			}
			e.netmask = m
		} else {
			n := atoi(o.arg)
			if n < 1 || n > 128 {
				return fail("illegal ipv6 netmask specified")
			}
			e.netmask = uint32(n)
		}
	case tReal:
		if err := e.setOption(OptServer); err != nil {
			return err
		}
		ps := parseService(ctx, r, o.arg, e.proto)
		if ps.result&serviceAddr == 0 {
			return fail("illegal real server address[:port] specified")
		}
		e.daf, e.daddr, e.dport = ps.af, ps.addr, e.port
		if ps.result&servicePort != 0 {
			e.dport = ps.port
		}
	case tIPIP, tGate, tMasq:
		if err := e.setOption(OptForward); err != nil {
			return err
		}
		e.fwd = map[tag]ipvs.FwdMethod{tIPIP: ipvs.Tunnel, tGate: ipvs.Route, tMasq: ipvs.Masq}[o.def.tag]
	case tWeight:
		if err := e.setOption(OptWeight); err != nil {
			return err
		}
		v, ok := stringToNumber(o.arg, 0, 65535)
		if !ok {
			return fail("illegal weight specified")
		}
		e.weight = v
	case tUThr:
		if err := e.setOption(OptUThreshold); err != nil {
			return err
		}
		v, ok := stringToNumber(o.arg, 0, intMax)
		if !ok {
			return fail("illegal u_threshold specified")
		}
		e.uthr = v
	case tLThr:
		if err := e.setOption(OptLThreshold); err != nil {
			return err
		}
		v, ok := stringToNumber(o.arg, 0, intMax)
		if !ok {
			return fail("illegal l_threshold specified")
		}
		e.lthr = v
	case tConn:
		return e.setOption(OptConnection)
	case tNumeric:
		e.format |= FmtNumeric
		return e.setOption(OptNumeric)
	case tMcastIf:
		if err := e.setOption(OptMcast); err != nil {
			return err
		}
		e.mcastIfn = truncate(o.arg, ifNameMax)
	case tSyncID:
		if err := e.setOption(OptSyncID); err != nil {
			return err
		}
		v, ok := stringToNumber(o.arg, 0, 255)
		if !ok {
			return fail("illegal syncid specified")
		}
		e.syncID = v
	case tTimeout:
		return e.setOption(OptTimeout)
	case tDaemon:
		return e.setOption(OptDaemon)
	case tStats:
		e.format |= FmtStats
		return e.setOption(OptStats)
	case tRate:
		e.format |= FmtRate
		return e.setOption(OptRate)
	case tThresholds:
		e.format |= FmtThresholds
		return e.setOption(OptThresholds)
	case tPersistConn:
		e.format |= FmtPersistentConn
		return e.setOption(OptPersistentConn)
	case tNoSort:
		e.format |= FmtNoSort
		return e.setOption(OptNoSort)
	case tSort:
		// The default; accepted for compatibility.
	case tExact:
		e.format |= FmtExact
		return e.setOption(OptExact)
	case tIPv6:
		if e.fwmark == 0 {
			return fail("-6 used before -f\n")
		}
		e.af = afInet6
		e.netmask = 128
	case tOps:
		e.flags |= ipvs.SvcFlagOnePacket
		return e.setOption(OptOnePacket)
	case tPE:
		if err := e.setOption(OptPE); err != nil {
			return err
		}
		e.pe = truncate(o.arg, peNameMax)
	case tSchedFlags:
		if err := e.setOption(OptSchedFlags); err != nil {
			return err
		}
		*schedFlagsArg = truncate(o.arg, 127)
	case tMcastGroup:
		if err := e.setOption(OptMcastGroup); err != nil {
			return err
		}
		if strings.Contains(o.arg, ":") {
			a, err := netip.ParseAddr(o.arg)
			if err != nil || !a.Is6() || a.Zone() != "" || !a.IsMulticast() {
				return fail("invalid IPv6 mcast-group `%s'", o.arg)
			}
			e.group = a
		} else {
			a, err := netip.ParseAddr(o.arg)
			if err != nil || !a.Is4() || !a.IsMulticast() {
				return fail("invalid IPv4 mcast-group `%s'", o.arg)
			}
			e.group = a
		}
	case tMcastPort:
		if err := e.setOption(OptMcastPort); err != nil {
			return err
		}
		v, ok := stringToNumber(o.arg, 1, 65535)
		if !ok {
			return fail("illegal mcast-port specified")
		}
		e.mcastPort = v
	case tMcastTTL:
		if err := e.setOption(OptMcastTTL); err != nil {
			return err
		}
		v, ok := stringToNumber(o.arg, 1, 255)
		if !ok {
			return fail("illegal mcast-ttl specified")
		}
		e.mcastTTL = v
	case tSyncMaxLen:
		if err := e.setOption(OptSyncMaxLen); err != nil {
			return err
		}
		v, ok := stringToNumber(o.arg, 1, 65535-20-8)
		if !ok {
			return fail("illegal sync-maxlen specified")
		}
		e.syncMaxLen = v
	case tTunInfo:
		e.format |= FmtTunInfo
		return e.setOption(OptTunInfo)
	case tTunType:
		if err := e.setOption(OptTunType); err != nil {
			return err
		}
		t := -1
		for i, n := range tunNames {
			if n == o.arg {
				t = i
			}
		}
		if t < 0 {
			return fail("illegal tunnel type specified")
		}
		e.tunType = t
	case tTunPort:
		if err := e.setOption(OptTunPort); err != nil {
			return err
		}
		v, ok := stringToNumber(o.arg, 1, 65535)
		if !ok {
			return fail("illegal tunnel port specified")
		}
		e.tunPort = uint16(v)
	case tTunNoCsum:
		return e.setOption(OptTunNoCsum)
	case tTunCsum:
		e.tunFlags |= uint16(ipvs.TunCsum)
		return e.setOption(OptTunCsum)
	case tTunRemCsum:
		e.tunFlags |= uint16(ipvs.TunRemCsum)
		return e.setOption(OptTunRemCsum)
	case tJSON:
		e.json = true
		return e.setOption(OptJSON)
	case tSocket:
		e.socket = o.arg
	case tProxyProtocol:
		if err := e.setOption(OptProxyProtocol); err != nil {
			return err
		}
		v, err := ipvs.ParseProxyProtocol(o.arg)
		if err != nil {
			return fail("illegal proxy-protocol `%s' specified: use 1 or 2 (v1 or v2)", o.arg)
		}
		e.proxyProto = v
	default:
		// A second command, or -h or -v after the command.
		return fail("invalid option `%s'", s.badOption())
	}
	return nil
}

// applyService stores a parsed -t/-u/--sctp-service in the entry, with
// parse_service's side effect: an IPv6 address sets the netmask to 128.
func (e *entry) applyService(ps parsedService) {
	e.af, e.addr = ps.af, ps.addr
	if ps.af == afInet6 {
		e.netmask = 128
	}
	if ps.result&servicePort != 0 {
		e.port = ps.port
	}
}

// genericOptCheck is ipvsadm's generic_opt_check.
func genericOptCheck(cmd Cmd, opts OptSet) error {
	row := &commandsVsOptions[cmd-1]
	count, last := 0, Opt(0)
	for j := Opt(0); j < numOpts; j++ {
		if !opts.Has(j) {
			if row[j] == '+' {
				return fail("You need to supply the '%s' option for the '%s' command", optNames[j], cmd)
			}
			continue
		}
		switch row[j] {
		case 'x':
			return fail("Illegal '%s' option with the '%s' command", optNames[j], cmd)
		case '1':
			count++
			if count == 1 {
				last = j
				continue
			}
			return fail("The option '%s' conflicts with the '%s' option in the '%s' command", optNames[j], optNames[last], cmd)
		}
	}
	return nil
}

// tunnelOptCheck is ipvsadm's tunnel_opt_check.
func tunnelOptCheck(tunType int, opts OptSet) error {
	row := tunnelVsOption[tunType]
	count, last := 0, Opt(0)
	for j, k := range tunOpts {
		if !opts.Has(k) {
			if row[j] == '+' {
				return fail("You need to supply the '%s' option for the '%s' tunnel type", optNames[k], tunNames[tunType])
			}
			continue
		}
		switch row[j] {
		case 'x':
			return fail("Illegal '%s' option with the '%s' tunnel type", optNames[k], tunNames[tunType])
		case '1':
			count++
			if count == 1 {
				last = k
				continue
			}
			return fail("The option '%s' conflicts with the '%s' option in the '%s' tunnel type", optNames[k], optNames[last], tunNames[tunType])
		}
	}
	return nil
}

// parseSchedFlags is ipvsadm's parse_sched_flags: a comma-separated list
// checked against the scheduler given (wlc when none).
func parseSchedFlags(sched, arg string) (uint32, error) {
	if sched == "" {
		sched = ipvs.DefaultScheduler
	}
	var flags uint32
	toks := strings.FieldsFunc(arg, func(r rune) bool { return r == ',' })
	if len(toks) == 0 {
		// ipvsadm would crash on a list of commas.
		return 0, fail("invalid scheduler flag `%s'", arg)
	}
	for _, f := range toks {
		var bit ipvs.SchedFlags
		need := ""
		switch f {
		case "flag-1":
			bit = ipvs.SchedFlag1
		case "flag-2":
			bit = ipvs.SchedFlag2
		case "flag-3":
			bit = ipvs.SchedFlag3
		case "sh-fallback":
			bit, need = ipvs.SchedFallback, "sh"
		case "sh-port":
			bit, need = ipvs.SchedPort, "sh"
		case "mh-fallback":
			bit, need = ipvs.SchedFallback, "mh"
		case "mh-port":
			bit, need = ipvs.SchedPort, "mh"
		default:
			return 0, fail("invalid scheduler flag `%s'", f)
		}
		if need != "" && sched != need {
			return 0, fail("incompatible scheduler flag `%s'", f)
		}
		flags |= uint32(bit)
	}
	return flags, nil
}

// command turns the entry into a Command in govs's model.
func (e *entry) command() (*Command, error) {
	c := &Command{Cmd: e.cmd, Opts: e.opts, Format: e.format, JSON: e.json, Socket: e.socket}
	if e.opts.Has(OptService) {
		c.HasService = true
		if e.fwmark != 0 {
			fam := ipvs.IPv4
			if e.af == afInet6 {
				fam = ipvs.IPv6
			}
			c.Service.ServiceKey = ipvs.FWMarkService(e.fwmark, fam)
		} else {
			c.Service.ServiceKey = ipvs.ServiceKey{
				Family: ipvs.FamilyOf(e.addr), Protocol: e.proto, Addr: e.addr, Port: e.port,
			}
		}
	}
	if e.cmd == CmdAdd || e.cmd == CmdEdit {
		s := &c.Service
		s.Scheduler = e.sched
		s.SchedFlags = ipvs.SchedFlags(e.flags) & (ipvs.SchedFlag1 | ipvs.SchedFlag2 | ipvs.SchedFlag3)
		s.Persistent = e.flags&ipvs.SvcFlagPersistent != 0
		s.OnePacket = e.flags&ipvs.SvcFlagOnePacket != 0
		s.Timeout = e.timeout
		s.PE = e.pe
		if e.af == afInet6 {
			s.Netmask = uint8(e.netmask)
		} else {
			n, ok := maskToPrefix(e.netmask)
			if !ok {
				// The kernel takes any mask; govs keeps prefix lengths.
				return nil, fail("illegal virtual server persistent mask specified")
			}
			s.Netmask = n
		}
	}
	if e.cmd == CmdAddDest || e.cmd == CmdEditDest || e.cmd == CmdDelDest {
		c.Dest = ipvs.Destination{
			Addr: e.daddr, Port: e.dport, Fwd: e.fwd, Weight: int32(e.weight),
			Upper: uint32(e.uthr), Lower: uint32(e.lthr),
			TunType: ipvs.TunnelType(e.tunType), TunPort: e.tunPort, TunFlags: ipvs.TunFlags(e.tunFlags),
			ProxyProtocol: e.proxyProto,
		}
	}
	if e.cmd == CmdTimeout {
		c.Timeouts.TCP = time.Duration(e.timeouts[0]) * time.Second
		c.Timeouts.TCPFin = time.Duration(e.timeouts[1]) * time.Second
		c.Timeouts.UDP = time.Duration(e.timeouts[2]) * time.Second
	}
	if e.cmd == CmdStartDaemon || e.cmd == CmdStopDaemon {
		c.Daemon.State = e.state
		c.Daemon.Interface = e.mcastIfn
		c.Daemon.SyncID = uint8(e.syncID)
		c.Daemon.SyncMaxLen = uint16(e.syncMaxLen)
		c.Daemon.Group = e.group
		c.Daemon.Port = uint16(e.mcastPort)
		c.Daemon.TTL = uint8(e.mcastTTL)
	}
	return c, nil
}

func maskToPrefix(m uint32) (uint8, bool) {
	n := uint8(0)
	for m&0x80000000 != 0 {
		n++
		m <<= 1
	}
	return n, m == 0
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
