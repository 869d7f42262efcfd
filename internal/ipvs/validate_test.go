package ipvs

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestServiceValidate(t *testing.T) {
	vip := netip.MustParseAddrPort("192.168.1.110:80")
	base := func() Service {
		s := Service{ServiceKey: TCPService(vip), Scheduler: "wrr"}
		s.SetDefaults()
		return s
	}
	tests := []struct {
		name string
		mod  func(*Service)
		want []string // substrings, one per expected problem; nil = valid
	}{
		{"plain tcp", func(*Service) {}, nil},
		{"persistent with default timeout", func(s *Service) { s.Persistent = true; s.SetDefaults() }, nil},
		{"ipv6", func(s *Service) {
			*s = Service{ServiceKey: UDPService(netip.MustParseAddrPort("[2001:db8::1]:53")), Scheduler: "rr"}
			s.SetDefaults()
		}, nil},
		{"fwmark", func(s *Service) { *s = Service{ServiceKey: FWMarkService(7, IPv4), Scheduler: "rr"}; s.SetDefaults() }, nil},
		{"fwmark with address", func(s *Service) { s.FWMark = 7 }, []string{"service fwmark 7", "no protocol, address or port (got tcp 192.168.1.110:80)"}},
		{"fwmark without family", func(s *Service) { *s = Service{ServiceKey: ServiceKey{FWMark: 3}, Scheduler: "rr", Netmask: 32} }, []string{"service.family none"}},
		{"bad protocol", func(s *Service) { s.Protocol = 47 }, []string{"service.protocol proto47: must be tcp, udp or sctp"}},
		{"no address", func(s *Service) { s.Addr = netip.Addr{} }, []string{"a virtual service needs an address"}},
		{"family mismatch", func(s *Service) { s.Family = IPv6 }, []string{"does not match address 192.168.1.110"}},
		{"zero port not persistent", func(s *Service) { s.Port = 0 }, []string{"service.port 0", "only allowed for a persistent service"}},
		{"zero port persistent", func(s *Service) { s.Port = 0; s.Persistent = true; s.Timeout = 300 }, nil},
		{"no scheduler", func(s *Service) { s.Scheduler = "" }, []string{"a scheduler is required"}},
		{"long scheduler", func(s *Service) { s.Scheduler = strings.Repeat("x", 16) }, []string{"longer than 15"}},
		{"bad sched flags", func(s *Service) { s.SchedFlags = 0x40 }, []string{"only flag-1, flag-2 and flag-3"}},
		{"timeout too long", func(s *Service) { s.Persistent = true; s.Timeout = MaxPersistTimeout + 1 }, []string{"persistence timeout must be 1..2678400"}},
		{"timeout without persistence", func(s *Service) { s.Timeout = 60 }, []string{"only meaningful with persistence"}},
		{"netmask too long for v4", func(s *Service) { s.Netmask = 33 }, []string{"service.netmask 33", "1..32 for ipv4"}},
		{"unknown pe", func(s *Service) { s.Persistent = true; s.Timeout = 1; s.PE = "foo" }, []string{`unknown persistence engine`}},
		{"pe without persistence", func(s *Service) { s.PE = "sip" }, []string{"needs a persistent service"}},
		{"every problem at once", func(s *Service) { s.Protocol = 1; s.Scheduler = ""; s.Netmask = 0 }, []string{"service.protocol", "service.scheduler", "service.netmask"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base()
			tt.mod(&s)
			err := s.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors containing %q", tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestDestinationValidate(t *testing.T) {
	svc := Service{ServiceKey: TCPService(netip.MustParseAddrPort("10.0.0.1:80")), Scheduler: "rr"}
	svc.SetDefaults()
	rip := netip.MustParseAddr("10.0.1.1")
	tests := []struct {
		name string
		d    Destination
		want []string
	}{
		{"masq with port mapping", Destination{Addr: rip, Port: 8080, Fwd: Masq, Weight: 1}, nil},
		{"route same port", Destination{Addr: rip, Port: 80, Fwd: Route, Weight: 1}, nil},
		{"route port mapping", Destination{Addr: rip, Port: 8080, Fwd: Route, Weight: 1}, []string{"destination.port 8080", "only NAT (masq) destinations can map ports"}},
		{"negative weight", Destination{Addr: rip, Port: 80, Weight: -1, Fwd: Route}, []string{"server weight less than zero"}},
		{"lower above upper", Destination{Addr: rip, Port: 80, Fwd: Route, Weight: 1, Upper: 10, Lower: 11}, []string{"lower threshold is higher than upper threshold 10"}},
		{"lower without upper", Destination{Addr: rip, Port: 80, Fwd: Route, Weight: 1, Lower: 5}, []string{"lower threshold is higher"}},
		{"upper above INT_MAX", Destination{Addr: rip, Port: 80, Fwd: Route, Weight: 1, Upper: 1 << 31}, []string{"must be at most 2147483647"}},
		{"no address", Destination{Port: 80, Fwd: Route}, []string{"a realserver address is required"}},
		{"unspecified", Destination{Addr: netip.IPv4Unspecified(), Port: 80, Fwd: Route}, []string{"unspecified address"}},
		{"family mismatch for DR", Destination{Addr: netip.MustParseAddr("2001:db8::2"), Port: 80, Fwd: Route, Weight: 1}, []string{"is ipv6 but the service is ipv4"}},
		{"family mismatch for tunnel is fine", Destination{Addr: netip.MustParseAddr("2001:db8::2"), Port: 80, Fwd: Tunnel, Weight: 1}, nil},
		{"gue needs port", Destination{Addr: rip, Port: 80, Fwd: Tunnel, Weight: 1, TunType: TunGUE}, []string{"tunnel port is zero"}},
		{"gue with port and remcsum", Destination{Addr: rip, Port: 80, Fwd: Tunnel, Weight: 1, TunType: TunGUE, TunPort: 6080, TunFlags: TunRemCsum}, nil},
		{"ipip with port", Destination{Addr: rip, Port: 80, Fwd: Tunnel, Weight: 1, TunPort: 6080}, []string{"only GUE tunnels use a port"}},
		{"csum and remcsum", Destination{Addr: rip, Port: 80, Fwd: Tunnel, Weight: 1, TunType: TunGUE, TunPort: 1, TunFlags: TunCsum | TunRemCsum}, []string{"choose one of --tun-csum and --tun-remcsum"}},
		{"remcsum on gre", Destination{Addr: rip, Port: 80, Fwd: Tunnel, Weight: 1, TunType: TunGRE, TunFlags: TunRemCsum}, []string{"remote checksum offload needs a GUE tunnel"}},
		{"tunnel options without tunnel", Destination{Addr: rip, Port: 80, Fwd: Route, Weight: 1, TunType: TunGUE}, []string{"need the tunnel forwarding method"}},
		{"proxy protocol v1 on tcp", Destination{Addr: rip, Port: 8080, Fwd: Masq, Weight: 1, ProxyProtocol: ProxyProtocolV1}, nil},
		{"proxy protocol v2 on tcp", Destination{Addr: rip, Port: 8080, Fwd: Masq, Weight: 1, ProxyProtocol: ProxyProtocolV2}, nil},
		{"proxy protocol v3", Destination{Addr: rip, Port: 80, Fwd: Masq, Weight: 1, ProxyProtocol: 3}, []string{"destination.proxy_protocol 3: PROXY protocol version must be 1 or 2 (0 for none)"}},
		{"proxy protocol 255", Destination{Addr: rip, Port: 80, Fwd: Masq, Weight: 1, ProxyProtocol: 255}, []string{"destination.proxy_protocol 255"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.d.Validate(&svc)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate() = %v, want an ErrInvalid containing %q", err, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// TestDestinationProxyProtocol: version 1 is a TCP line, so only a TCP
// service may ask for it; version 2 has a datagram form.
func TestDestinationProxyProtocol(t *testing.T) {
	svc := func(k ServiceKey) *Service {
		s := &Service{ServiceKey: k, Scheduler: "rr"}
		s.SetDefaults()
		return s
	}
	vip := netip.MustParseAddrPort("10.0.0.1:53")
	tcp := svc(TCPService(vip))
	udp := svc(UDPService(vip))
	sctp := svc(ServiceKey{Family: IPv4, Protocol: ProtoSCTP, Addr: vip.Addr(), Port: 53})
	mark := svc(FWMarkService(7, IPv4))
	rip := netip.MustParseAddr("10.0.1.1")
	tests := []struct {
		name string
		svc  *Service
		ver  uint8
		want string // "" = valid
	}{
		{"v1 tcp", tcp, 1, ""},
		{"v2 tcp", tcp, 2, ""},
		{"v2 udp", udp, 2, ""},
		{"v2 fwmark", mark, 2, ""},
		{"none udp", udp, 0, ""},
		{"v1 without a service", nil, 1, ""},
		{"v1 udp", udp, 1, "destination.proxy_protocol 1: PROXY protocol version 1 is for TCP services only and has no UDP form: use version 2"},
		{"v1 sctp", sctp, 1, "has no SCTP form: use version 2"},
		{"v1 fwmark", mark, 1, "firewall-mark service fwmark 7 may carry other protocols: use version 2"},
		{"v3 udp", udp, 3, "PROXY protocol version must be 1 or 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Destination{Addr: rip, Port: 5353, Fwd: Masq, Weight: 1, ProxyProtocol: tt.ver}
			err := d.Validate(tt.svc)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

func TestParseProxyProtocol(t *testing.T) {
	for in, want := range map[string]uint8{"1": 1, "2": 2, "v1": 1, "V2": 2} {
		if got, err := ParseProxyProtocol(in); err != nil || got != want {
			t.Errorf("ParseProxyProtocol(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "3", "v3", "none", "01", " 1"} {
		if got, err := ParseProxyProtocol(in); err == nil {
			t.Errorf("ParseProxyProtocol(%q) = %d, want an error", in, got)
		}
	}
}

func TestNormalize(t *testing.T) {
	svc := Service{ServiceKey: TCPService(netip.MustParseAddrPort("10.0.0.1:80"))}
	d := Destination{Addr: netip.MustParseAddr("::ffff:10.0.1.1"), Port: 8080, Fwd: Route}
	d.Normalize(&svc)
	if d.Port != 80 || d.Addr != netip.MustParseAddr("10.0.1.1") {
		t.Fatalf("Normalize = %v:%d, want 10.0.1.1:80 (DR takes the service port; mapped addresses unmapped)", d.Addr, d.Port)
	}
	m := Destination{Addr: netip.MustParseAddr("10.0.1.1"), Port: 8080, Fwd: Masq}
	m.Normalize(&svc)
	if m.Port != 8080 {
		t.Fatalf("NAT port changed to %d", m.Port)
	}
}

func TestMasks(t *testing.T) {
	for _, tt := range []struct {
		mask string
		bits uint8
	}{{"255.255.255.255", 32}, {"255.255.255.0", 24}, {"255.255.240.0", 20}, {"0.0.0.0", 0}, {"128.0.0.0", 1}} {
		got, err := Mask4ToPrefix(netip.MustParseAddr(tt.mask))
		if err != nil || got != tt.bits {
			t.Errorf("Mask4ToPrefix(%s) = %d, %v; want %d", tt.mask, got, err, tt.bits)
		}
		if back := PrefixToMask4(tt.bits).String(); back != tt.mask {
			t.Errorf("PrefixToMask4(%d) = %s, want %s", tt.bits, back, tt.mask)
		}
	}
	if _, err := Mask4ToPrefix(netip.MustParseAddr("255.0.255.0")); err == nil || !strings.Contains(err.Error(), "non-contiguous") {
		t.Errorf("non-contiguous mask: err = %v", err)
	}
	if got := MaskAddr(netip.MustParseAddr("10.1.2.3"), 24); got != netip.MustParseAddr("10.1.2.0") {
		t.Errorf("MaskAddr = %s", got)
	}
	if got := MaskAddr(netip.MustParseAddr("2001:db8::1:2"), 64); got != netip.MustParseAddr("2001:db8::") {
		t.Errorf("MaskAddr v6 = %s", got)
	}
}

// TestOverload checks the kernel's overload rule: set when active+inactive
// reaches the upper threshold; cleared below the lower threshold, or below
// 3/4 of the upper one when no lower is set (ip_vs_bind_dest and
// ip_vs_unbind_dest).
func TestOverload(t *testing.T) {
	t.Run("lower threshold", func(t *testing.T) {
		d := NewDest(Destination{Weight: 1, Upper: 4, Lower: 2})
		for range 3 {
			d.Bind(false, true)
		}
		if d.Overloaded {
			t.Fatal("overloaded at 3 < upper 4")
		}
		d.Bind(false, false) // 4 = upper
		if !d.Overloaded {
			t.Fatal("not overloaded at upper 4")
		}
		d.Unbind(false, true) // 3
		d.Unbind(false, true) // 2, not < lower 2
		if !d.Overloaded {
			t.Fatal("cleared at 2, but only below lower 2 should clear")
		}
		d.Unbind(false, true) // 1 < 2
		if d.Overloaded {
			t.Fatal("still overloaded at 1 < lower 2")
		}
	})
	t.Run("three quarters of upper", func(t *testing.T) {
		d := NewDest(Destination{Weight: 1, Upper: 10})
		for range 10 {
			d.Bind(false, false)
		}
		if !d.Overloaded {
			t.Fatal("not overloaded at 10")
		}
		d.Unbind(false, false) // 9: 36 < 30? no
		d.Unbind(false, false) // 8: 32 < 30? no
		if !d.Overloaded {
			t.Fatal("cleared at 8, want only when conns*4 < upper*3 (conns <= 7)")
		}
		d.Unbind(false, false) // 7: 28 < 30
		if d.Overloaded {
			t.Fatal("still overloaded at 7")
		}
	})
	t.Run("templates do not count", func(t *testing.T) {
		d := NewDest(Destination{Weight: 1, Upper: 1})
		d.Bind(true, false)
		if d.Overloaded || d.PersistConns != 1 {
			t.Fatalf("template: overloaded=%v persist=%d", d.Overloaded, d.PersistConns)
		}
	})
}

// FuzzServiceValidate checks Validate never panics and that everything it
// accepts is self-consistent.
func FuzzServiceValidate(f *testing.F) {
	f.Add(uint32(0), uint8(6), []byte{10, 0, 0, 1}, uint16(80), "wrr", uint32(0), true, uint32(300), uint8(32), false, "")
	f.Add(uint32(7), uint8(0), []byte{}, uint16(0), "rr", uint32(8), false, uint32(0), uint8(128), true, "sip")
	f.Add(uint32(0), uint8(17), []byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint16(53), "mh", uint32(0x18), false, uint32(0), uint8(64), false, "")
	f.Fuzz(func(t *testing.T, mark uint32, proto uint8, addr []byte, port uint16, sched string, flags uint32, persistent bool, timeout uint32, netmask uint8, ops bool, pe string) {
		a, _ := netip.AddrFromSlice(addr)
		s := Service{
			ServiceKey: ServiceKey{FWMark: mark, Family: FamilyOf(a), Protocol: Protocol(proto), Addr: a, Port: port},
			Scheduler:  sched, SchedFlags: SchedFlags(flags), Persistent: persistent, Timeout: timeout,
			Netmask: netmask, OnePacket: ops, PE: pe,
		}
		if mark != 0 && s.Family == FamilyNone {
			s.Family = IPv4
		}
		err := s.Validate()
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if s.Persistent && (s.Timeout == 0 || s.Timeout > MaxPersistTimeout) {
			t.Fatalf("accepted timeout %d", s.Timeout)
		}
		if !s.IsFWMark() && (!s.Addr.IsValid() || FamilyOf(s.Addr) != s.Family) {
			t.Fatalf("accepted inconsistent address %v family %v", s.Addr, s.Family)
		}
		if s.Netmask == 0 || s.Netmask > FullNetmask(s.Family) {
			t.Fatalf("accepted netmask %d for %v", s.Netmask, s.Family)
		}
	})
}

// FuzzDestinationValidate checks Validate never panics and that what it
// accepts is forwardable by the kernel's rules.
func FuzzDestinationValidate(f *testing.F) {
	f.Add([]byte{10, 0, 1, 1}, uint16(80), uint8(3), int32(1), uint32(0), uint32(0), uint8(0), uint16(0), uint16(0), uint8(0), uint8(6))
	f.Add([]byte{10, 0, 1, 1}, uint16(80), uint8(2), int32(5), uint32(10), uint32(5), uint8(1), uint16(6080), uint16(2), uint8(0), uint8(6))
	f.Add([]byte{10, 0, 1, 1}, uint16(8080), uint8(0), int32(1), uint32(0), uint32(0), uint8(0), uint16(0), uint16(0), uint8(1), uint8(6))
	f.Add([]byte{10, 0, 1, 1}, uint16(8080), uint8(0), int32(1), uint32(0), uint32(0), uint8(0), uint16(0), uint16(0), uint8(2), uint8(17))
	f.Add([]byte{10, 0, 1, 1}, uint16(8080), uint8(0), int32(1), uint32(0), uint32(0), uint8(0), uint16(0), uint16(0), uint8(1), uint8(0))
	f.Fuzz(func(t *testing.T, addr []byte, port uint16, fwd uint8, weight int32, upper, lower uint32, tt uint8, tport, tflags uint16, pp, proto uint8) {
		// proto picks the service: 6 TCP, 17 UDP, 132 SCTP, else a mark.
		var svc Service
		switch p := Protocol(proto); p {
		case ProtoTCP, ProtoUDP, ProtoSCTP:
			svc = Service{ServiceKey: addrKey(p, netip.MustParseAddrPort("10.0.0.1:80")), Scheduler: "rr"}
		default:
			svc = Service{ServiceKey: FWMarkService(7, IPv4), Scheduler: "rr"}
		}
		svc.SetDefaults()
		a, _ := netip.AddrFromSlice(addr)
		d := Destination{Addr: a, Port: port, Fwd: FwdMethod(fwd), Weight: weight, Upper: upper, Lower: lower,
			TunType: TunnelType(tt), TunPort: tport, TunFlags: TunFlags(tflags), ProxyProtocol: pp}
		err := d.Validate(&svc)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if d.Weight < 0 || d.Lower > d.Upper || (d.Fwd != Masq && !svc.IsFWMark() && d.Port != svc.Port) {
			t.Fatalf("accepted %+v", d)
		}
		if d.Fwd == Tunnel && d.TunType == TunGUE && d.TunPort == 0 {
			t.Fatalf("accepted GUE without port")
		}
		if d.ProxyProtocol > ProxyProtocolV2 {
			t.Fatalf("accepted PROXY protocol version %d", d.ProxyProtocol)
		}
		if d.ProxyProtocol == ProxyProtocolV1 && (svc.IsFWMark() || svc.Protocol != ProtoTCP) {
			t.Fatalf("accepted PROXY protocol version 1 for %s", svc.ServiceKey)
		}
	})
}
