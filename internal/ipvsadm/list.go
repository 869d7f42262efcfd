package ipvsadm

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

// Lister prints ipvsadm's listings. Every format string below is
// ipvsadm.c's (v1.31), cited next to its use.
type Lister struct {
	W        io.Writer
	Resolver Resolver
	Format   Format
}

func (l *Lister) printf(format string, a ...any) { fmt.Fprintf(l.W, format, a...) }

func (l *Lister) resolver() Resolver {
	if l.Resolver == nil {
		return NumericResolver{}
	}
	return l.Resolver
}

// addrPort is ipvsadm's addrport_to_anyname: "%s%s%s:%u" with brackets
// for IPv6, names unless -n, cut to the 59 bytes of its buffer.
func (l *Lister) addrPort(ctx context.Context, a netip.Addr, port uint16, proto ipvs.Protocol) string {
	a = a.Unmap()
	lb, rb := "", ""
	if !a.Is4() {
		lb, rb = "[", "]"
	}
	var s string
	if l.Format&FmtNumeric != 0 {
		s = lb + a.String() + rb + ":" + strconv.Itoa(int(port))
	} else {
		host, ok := l.resolver().HostName(ctx, a)
		if !ok {
			host = a.String()
		}
		pn := ""
		if n := protoName(proto); n != "" {
			pn, ok = l.resolver().PortName(ctx, n, port)
		}
		if !ok || pn == "" {
			pn = strconv.Itoa(int(port))
		}
		s = lb + host + rb + ":" + pn
	}
	return truncate(s, 59)
}

// largeNum is ipvsadm's print_largenum.
func largeNum(i uint64, format Format) string {
	if format&FmtExact != 0 {
		s := strconv.FormatUint(i, 10)
		w := 9
		if len(s) > 8 {
			w = len(s) + 1
		}
		return fmt.Sprintf("%*d", w, i) // printf("%*llu", len <= 8 ? 9 : len + 1, i)
	}
	switch {
	case i < 100000000:
		return fmt.Sprintf("%9d", i) // "%9llu"
	case i < 1000000000:
		return fmt.Sprintf("%8dK", i/1000) // "%8lluK"
	case i < 100000000000:
		return fmt.Sprintf("%8dM", i/1000000) // "%8lluM"
	case i < 100000000000000:
		return fmt.Sprintf("%8dG", i/1000000000) // "%8lluG"
	}
	return fmt.Sprintf("%8dT", i/1000000000000) // "%8lluT"
}

// schedFlags is ipvsadm's print_sched_flags.
func schedFlags(s *ipvs.Service) string {
	var names []string
	f := s.SchedFlags
	switch s.Scheduler {
	case "sh", "mh":
		if f&ipvs.SchedFallback != 0 {
			names = append(names, s.Scheduler+"-fallback")
		}
		if f&ipvs.SchedPort != 0 {
			names = append(names, s.Scheduler+"-port")
		}
	default:
		for i, b := range []ipvs.SchedFlags{ipvs.SchedFlag1, ipvs.SchedFlag2, ipvs.SchedFlag3} {
			if f&b != 0 {
				names = append(names, "flag-"+strconv.Itoa(i+1))
			}
		}
	}
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ","
		}
		out += n
	}
	return out
}

// Header prints list_all's first line:
// "IP Virtual Server version %d.%d.%d (size=%d)\n".
func (l *Lister) Header(info api.Info) {
	v := info.Version
	if v == "" {
		v = "1.2.1"
	}
	l.printf("IP Virtual Server version %s (size=%d)\n", v, info.ConnTabSize)
}

// Title is ipvsadm's print_title.
func (l *Lister) Title() {
	f := l.Format
	switch {
	case f&FmtStats != 0:
		// "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n"
		l.printf("%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
	case f&FmtRate != 0:
		l.printf("%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
	case f&FmtThresholds != 0:
		// "%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n"
		l.printf("%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn")
	case f&FmtPersistentConn != 0:
		// "%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n"
		l.printf("%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn")
	case f&FmtTunInfo != 0:
		l.printf("Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n")
	case f&FmtRule == 0:
		l.printf("Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
	}
}

// svcName is the service part of print_service_entry's lines.
func (l *Lister) svcName(ctx context.Context, s *ipvs.ServiceState) string {
	k := &s.ServiceKey
	fam := family(k)
	rule := l.Format&FmtRule != 0
	if k.IsFWMark() {
		switch {
		case rule && fam == ipvs.IPv6:
			return fmt.Sprintf("-f %d -6", k.FWMark) // "-f %u -6"
		case rule:
			return fmt.Sprintf("-f %d", k.FWMark) // "-f %u"
		case fam == ipvs.IPv6:
			return fmt.Sprintf("FWM  %d IPv6", k.FWMark) // "FWM  %u IPv6"
		}
		return fmt.Sprintf("FWM  %d", k.FWMark) // "FWM  %u"
	}
	vname := l.addrPort(ctx, k.Addr, k.Port, k.Protocol)
	if rule {
		opt := map[ipvs.Protocol]string{ipvs.ProtoTCP: "-t", ipvs.ProtoUDP: "-u", ipvs.ProtoSCTP: "--sctp-service"}[k.Protocol]
		if opt == "" {
			opt = "--xxx-service"
		}
		return opt + " " + vname // "%s %s"
	}
	name := "?"
	switch k.Protocol {
	case ipvs.ProtoTCP, ipvs.ProtoUDP, ipvs.ProtoSCTP:
		name = k.Protocol.String()
	}
	out := fmt.Sprintf("%-4s %s", name, vname) // "%-4s %s"
	if fam != ipvs.IPv6 {
		out = truncate(out, 33)
	}
	return out
}

// netmaskSuffix returns the mask ipvsadm prints after "mask" or "-M", ""
// for the default (/32 or /128).
func netmaskSuffix(s *ipvs.Service) string {
	fam := family(&s.ServiceKey)
	full := ipvs.FullNetmask(fam)
	if s.Netmask == 0 || s.Netmask == full {
		return ""
	}
	if fam == ipvs.IPv6 {
		return strconv.Itoa(int(s.Netmask)) // "%i"
	}
	return ipvs.PrefixToMask4(s.Netmask).String() // inet_ntoa
}

// Service is ipvsadm's print_service_entry: the service line and its
// destinations (sorted unless --nosort).
func (l *Lister) Service(ctx context.Context, s *ipvs.ServiceState) {
	f := l.Format
	name := l.svcName(ctx, s)
	svc := &s.Service
	switch {
	case f&FmtRule != 0:
		l.printf("-A %s -s %s", name, svc.Scheduler) // "-A %s -s %s"
		if svc.Persistent {
			l.printf(" -p %d", svc.Timeout) // " -p %u"
			if m := netmaskSuffix(svc); m != "" {
				l.printf(" -M %s", m) // " -M %s" / " -M %i"
			}
		}
		if svc.PE != "" {
			l.printf(" --pe %s", svc.PE)
		}
		if svc.OnePacket {
			l.printf(" -o")
		}
		if svc.SchedFlags != 0 {
			l.printf(" -b %s", schedFlags(svc))
		}
	case f&FmtStats != 0:
		st := s.Stats
		l.printf("%-33s%s%s%s%s%s", name, largeNum(st.Conns, f), largeNum(st.InPkts, f),
			largeNum(st.OutPkts, f), largeNum(st.InBytes, f), largeNum(st.OutBytes, f))
	case f&FmtRate != 0:
		r := s.Rates
		l.printf("%-33s%s%s%s%s%s", name, largeNum(r.CPS, f), largeNum(r.InPPS, f),
			largeNum(r.OutPPS, f), largeNum(r.InBPS, f), largeNum(r.OutBPS, f))
	default:
		l.printf("%s %s", name, svc.Scheduler) // "%s %s"
		if svc.SchedFlags != 0 {
			l.printf(" (%s)", schedFlags(svc))
		}
		if svc.Persistent {
			l.printf(" persistent %d", svc.Timeout) // " persistent %u"
			if m := netmaskSuffix(svc); m != "" {
				l.printf(" mask %s", m) // " mask %s" / " mask %i"
			}
			if svc.PE != "" {
				l.printf(" pe %s", svc.PE) // " pe %s"
			}
		}
		if svc.OnePacket {
			l.printf(" ops")
		}
	}
	l.printf("\n")

	dests := s.Dests
	if f&FmtNoSort == 0 {
		dests = append([]ipvs.DestState(nil), dests...)
		msort(dests, cmpDests)
	}
	for i := range dests {
		l.dest(ctx, name, s, &dests[i])
	}
}

func fwdSwitch(m ipvs.FwdMethod) string {
	switch m {
	case ipvs.Masq:
		return "-m"
	case ipvs.Tunnel:
		return "-i"
	}
	return "-g"
}

func tunFlagIndex(f ipvs.TunFlags) int {
	switch {
	case f&ipvs.TunRemCsum != 0:
		return 2
	case f&ipvs.TunCsum != 0:
		return 1
	}
	return 0
}

// tunInfo is ipvsadm's fwd_tun_info, "" for n/a.
func tunInfo(d *ipvs.DestState) string {
	if d.Fwd != ipvs.Tunnel {
		return ""
	}
	switch d.TunType {
	case ipvs.TunIPIP:
		return "ipip"
	case ipvs.TunGUE:
		return truncate(fmt.Sprintf("gue:%d:%s", d.TunPort, tunFlagNames[tunFlagIndex(d.TunFlags)]), 15) // "%s:%d:%s"
	case ipvs.TunGRE:
		return fmt.Sprintf("gre:%s", tunFlagNames[tunFlagIndex(d.TunFlags)]) // "%s:%s"
	}
	return ""
}

func (l *Lister) dest(ctx context.Context, svcName string, s *ipvs.ServiceState, d *ipvs.DestState) {
	f := l.Format
	proto := kernelProto(&s.ServiceKey)
	dname := l.addrPort(ctx, d.Addr, d.Port, proto)
	if f&FmtRule == 0 && d.Addr.Unmap().Is4() {
		dname = truncate(dname, 28)
	}
	switch {
	case f&FmtRule != 0:
		l.rule(svcName, dname, d)
	case f&FmtStats != 0:
		st := d.Stats
		// "  -> %-28s" then print_largenum five times
		l.printf("  -> %-28s%s%s%s%s%s\n", dname, largeNum(st.Conns, f), largeNum(st.InPkts, f),
			largeNum(st.OutPkts, f), largeNum(st.InBytes, f), largeNum(st.OutBytes, f))
	case f&FmtRate != 0:
		r := d.Rates
		// "  -> %-28s %8llu %8llu %8llu" then print_largenum twice
		l.printf("  -> %-28s %8d %8d %8d%s%s\n", dname, r.CPS, r.InPPS, r.OutPPS,
			largeNum(r.InBPS, f), largeNum(r.OutBPS, f))
	case f&FmtThresholds != 0:
		// "  -> %-28s %-10u %-10u %-10u %-10u\n"
		l.printf("  -> %-28s %-10d %-10d %-10d %-10d\n", dname, d.Upper, d.Lower, d.ActiveConns, d.InactConns)
	case f&FmtPersistentConn != 0:
		// "  -> %-28s %-9u %-11u %-10u %-10u\n"
		l.printf("  -> %-28s %-9d %-11d %-10d %-10d\n", dname, uint32(d.Weight), d.PersistConns, d.ActiveConns, d.InactConns)
	case f&FmtTunInfo != 0:
		ti := tunInfo(d)
		if ti == "" {
			ti = "n/a"
		}
		// "  -> %-28s %-7s %-13s %-6d %-10u %-10u\n"
		l.printf("  -> %-28s %-7s %-13s %-6d %-10d %-10d\n", dname, d.Fwd, ti, d.Weight, d.ActiveConns, d.InactConns)
	default:
		// "  -> %-28s %-7s %-6d %-10u %-10u\n"
		l.printf("  -> %-28s %-7s %-6d %-10d %-10d\n", dname, d.Fwd, d.Weight, d.ActiveConns, d.InactConns)
	}
}

// rule prints a destination as -S does. The formats are ipvsadm's, less
// their "\n", which comes after govs's --proxy-protocol: it is printed
// only for a destination that has it, so a table without it saves
// exactly as ipvsadm saves it, and govsadm -R reads it back.
func (l *Lister) rule(svcName, dname string, d *ipvs.DestState) {
	sw := fwdSwitch(d.Fwd)
	flag := tunFlagOpts[tunFlagIndex(d.TunFlags)]
	switch {
	case d.Fwd != ipvs.Tunnel:
		l.printf("-a %s -r %s %s -w %d", svcName, dname, sw, d.Weight) // "-a %s -r %s %s -w %d\n"
	case d.TunType == ipvs.TunGRE:
		// "-a %s -r %s %s -w %d --tun-type %s %s\n"
		l.printf("-a %s -r %s %s -w %d --tun-type %s %s", svcName, dname, sw, d.Weight, d.TunType, flag)
	case d.TunType == ipvs.TunGUE:
		// "-a %s -r %s %s -w %d --tun-type %s --tun-port %d %s\n"
		l.printf("-a %s -r %s %s -w %d --tun-type %s --tun-port %d %s", svcName, dname, sw, d.Weight, d.TunType, d.TunPort, flag)
	case d.TunType == ipvs.TunIPIP:
		// "-a %s -r %s %s -w %d --tun-type %s\n"
		l.printf("-a %s -r %s %s -w %d --tun-type %s", svcName, dname, sw, d.Weight, d.TunType)
	default:
		l.printf("-a %s -r %s %s -w %d", svcName, dname, sw, d.Weight)
	}
	if d.ProxyProtocol != 0 {
		l.printf(" --proxy-protocol %d", d.ProxyProtocol)
	}
	l.printf("\n")
}

// All is ipvsadm's list_all: the header (unless saving), the title and
// every service, sorted unless --nosort.
func (l *Lister) All(ctx context.Context, info api.Info, svcs []ipvs.ServiceState) {
	if l.Format&FmtRule == 0 {
		l.Header(info)
	}
	svcs = append([]ipvs.ServiceState(nil), svcs...)
	if l.Format&FmtNoSort == 0 {
		msort(svcs, cmpServices)
	}
	l.Title()
	for i := range svcs {
		l.Service(ctx, &svcs[i])
	}
}

// One is ipvsadm's list_service: the title and one service, no header.
func (l *Lister) One(ctx context.Context, s *ipvs.ServiceState) {
	l.Title()
	l.Service(ctx, s)
}

// Timeouts is ipvsadm's list_timeout: "Timeout (tcp tcpfin udp): %d %d %d\n".
func (l *Lister) Timeouts(t conn.Timeouts) {
	l.printf("Timeout (tcp tcpfin udp): %d %d %d\n",
		int64(t.TCP/time.Second), int64(t.TCPFin/time.Second), int64(t.UDP/time.Second))
}

// Daemons is ipvsadm's list_daemon.
func (l *Lister) Daemons(ds []api.SyncDaemon) {
	for _, d := range ds {
		if d.State != "master" && d.State != "backup" {
			continue
		}
		// "%s sync daemon (mcast=%s, syncid=%d"
		l.printf("%s sync daemon (mcast=%s, syncid=%d", d.State, d.Interface, d.SyncID)
		if d.SyncMaxLen != 0 {
			l.printf(", maxlen=%d", d.SyncMaxLen) // ", maxlen=%u"
		}
		if d.Group.IsValid() {
			l.printf(", group=%s", d.Group) // ", group=%s"
		}
		if d.Port != 0 {
			l.printf(", port=%d", d.Port) // ", port=%u"
		}
		if d.TTL != 0 {
			l.printf(", ttl=%d", d.TTL) // ", ttl=%u"
		}
		l.printf(")\n")
	}
}

// Conns is ipvsadm's list_conn over the connection table.
func (l *Lister) Conns(ctx context.Context, cs []conn.Info) {
	l.printf("IPVS connection entries\n")
	if l.Format&FmtPersistentConn != 0 {
		// "pro expire %-11s %-18s %-18s %-18s %-16s %s\n"
		l.printf("pro expire %-11s %-18s %-18s %-18s %-16s %s\n",
			"state", "source", "virtual", "destination", "pe name", "pe_data")
	} else {
		// "pro expire %-11s %-18s %-18s %s\n"
		l.printf("pro expire %-11s %-18s %-18s %s\n", "state", "source", "virtual", "destination")
	}
	for i := range cs {
		l.conn(ctx, &cs[i])
	}
}

// connProto is the protocol name the kernel's /proc/net/ip_vs_conn shows
// (ip_vs_proto_name): "IP" for a firewall-mark template.
func connProto(c *conn.Info) (string, ipvs.Protocol) {
	if c.Template && c.FWMark != 0 {
		return "IP", ipvs.ProtoNone
	}
	switch c.Proto {
	case ipvs.ProtoTCP, ipvs.ProtoUDP, ipvs.ProtoSCTP:
		return c.Proto.String(), c.Proto
	case ipvs.ProtoNone:
		return "IP", ipvs.ProtoNone
	}
	return "IP_" + strconv.Itoa(int(c.Proto)), c.Proto
}

func (l *Lister) conn(ctx context.Context, c *conn.Info) {
	name, proto := connProto(c)
	state := c.State
	if state == "" {
		state = "NONE"
	}
	virt := c.Virtual
	if !virt.IsValid() && c.Template && c.FWMark != 0 {
		// The kernel keys a mark's template by the mark as an address.
		m := c.FWMark
		virt = netip.AddrPortFrom(addr4(m), 0)
		if c.Client.Addr().Is6() && !c.Client.Addr().Is4In6() {
			var b [16]byte
			b[0], b[1], b[2], b[3] = byte(m>>24), byte(m>>16), byte(m>>8), byte(m)
			virt = netip.AddrPortFrom(netip.AddrFrom16(b), 0)
		}
	}
	cname := l.addrPort(ctx, c.Client.Addr(), c.Client.Port(), proto)
	vname := l.addrPort(ctx, virt.Addr(), virt.Port(), proto)
	dname := l.addrPort(ctx, c.Dest.Addr(), c.Dest.Port(), proto)
	secs := int64(c.Expires / time.Second)
	if secs < 0 {
		secs = 0
	}
	expire := fmt.Sprintf("%02d:%02d", secs/60, secs%60) // "%02d:%02d"
	// "%-3s %-6s %-11s %-18s %-18s %s\n"
	l.printf("%-3s %-6s %-11s %-18s %-18s %s\n", name, expire, state, cname, vname, dname)
}
