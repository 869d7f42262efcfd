package conn

import (
	"errors"
	"testing"
	"time"

	"github.com/govs/govs/internal/ipvs"
)

type seg struct {
	dir   Dir
	flags TCPFlags
	want  State
}

func in(f TCPFlags, want State) seg  { return seg{DirIn, f, want} }
func out(f TCPFlags, want State) seg { return seg{DirOut, f, want} }

func TestTCPStateMachine(t *testing.T) {
	to := DefaultTimeouts
	tests := []struct {
		name     string
		noOutput bool // DR/TUN connection (input-only table until a reply)
		segs     []seg
		// wantActive is how many times the connection became active
		// minus how many times it became inactive, at the end.
		wantActive int
	}{
		{
			name: "NAT client closes",
			segs: []seg{
				in(SYN, TCPSynRecv),
				out(SYN|ACK, TCPSynRecv),
				in(ACK, TCPEstablished),
				in(ACK, TCPEstablished),
				out(ACK, TCPEstablished),
				in(FIN|ACK, TCPCloseWait),
				out(ACK, TCPCloseWait),
				out(FIN|ACK, TCPTimeWait),
				in(ACK, TCPTimeWait),
			},
		},
		{
			name: "NAT server closes",
			segs: []seg{
				in(SYN, TCPSynRecv),
				out(SYN|ACK, TCPSynRecv),
				in(ACK, TCPEstablished),
				out(FIN|ACK, TCPFinWait),
				in(ACK, TCPFinWait),
				in(FIN|ACK, TCPTimeWait),
				out(ACK, TCPTimeWait),
			},
		},
		{
			name: "NAT simultaneous close",
			segs: []seg{
				in(SYN, TCPSynRecv),
				out(SYN|ACK, TCPSynRecv),
				in(ACK, TCPEstablished),
				in(FIN|ACK, TCPCloseWait),
				out(FIN|ACK, TCPTimeWait),
				in(ACK, TCPTimeWait),
				out(ACK, TCPTimeWait),
			},
		},
		{
			name: "NAT client resets",
			segs: []seg{
				in(SYN, TCPSynRecv),
				out(SYN|ACK, TCPSynRecv),
				in(ACK, TCPEstablished),
				in(RST|ACK, TCPClose),
			},
		},
		{
			name: "NAT server resets",
			segs: []seg{
				in(SYN, TCPSynRecv),
				out(SYN|ACK, TCPSynRecv),
				in(ACK, TCPEstablished),
				out(RST, TCPClose),
			},
		},
		{
			name: "NAT server refuses",
			segs: []seg{
				in(SYN, TCPSynRecv),
				out(RST|ACK, TCPClose),
			},
		},
		{
			name: "half-open: SYN only",
			segs: []seg{in(SYN, TCPSynRecv)},
		},
		{
			name: "retransmitted SYN",
			segs: []seg{
				in(SYN, TCPSynRecv),
				in(SYN, TCPSynRecv),
				in(SYN, TCPSynRecv),
				out(SYN|ACK, TCPSynRecv),
				in(ACK, TCPEstablished),
			},
			wantActive: 1,
		},
		{
			name: "RST beats SYN",
			segs: []seg{
				in(SYN, TCPSynRecv),
				in(SYN|RST, TCPSynRecv), // rst row, sSR column stays SYN_RECV
				in(ACK, TCPEstablished),
				in(SYN|RST, TCPClose),
			},
		},
		{
			name: "no flags closes",
			segs: []seg{
				in(SYN, TCPSynRecv),
				in(ACK, TCPEstablished),
				in(0, TCPClose),
			},
		},
		{
			name:     "DR normal close (input only)",
			noOutput: true,
			segs: []seg{
				in(SYN, TCPSynRecv),
				in(ACK, TCPEstablished),
				in(ACK, TCPEstablished),
				in(FIN|ACK, TCPFinWait),
				in(ACK, TCPFinWait),
			},
		},
		{
			name:     "DR reset",
			noOutput: true,
			segs: []seg{
				in(SYN, TCPSynRecv),
				in(ACK, TCPEstablished),
				in(RST, TCPClose),
			},
		},
		{
			name:     "DR established data keeps ESTABLISHED",
			noOutput: true,
			segs: []seg{
				in(SYN, TCPSynRecv),
				in(ACK, TCPEstablished),
				in(ACK, TCPEstablished),
			},
			wantActive: 1,
		},
		{
			name:     "input-only clears on first reply",
			noOutput: true,
			segs: []seg{
				in(SYN, TCPSynRecv),
				out(SYN|ACK, TCPSynRecv),
				in(ACK, TCPEstablished),
				// Now the full INPUT table: FIN from the client is CLOSE_WAIT,
				// not the input-only FIN_WAIT.
				in(FIN|ACK, TCPCloseWait),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &Entry{key: Key{Proto: ipvs.ProtoTCP}, Flags: FlagInactive}
			if tc.noOutput {
				e.Flags |= FlagNoOutput
			}
			active := 0
			for i, s := range tc.segs {
				active += e.Update(s.dir, s.flags, &to)
				if e.State != s.want {
					t.Fatalf("segment %d (%s %#x): state %s, want %s", i, s.dir, s.flags, e.State.TCPString(), s.want.TCPString())
				}
				if got, want := e.Timeout, to.For(ipvs.ProtoTCP, s.want); got != want {
					t.Fatalf("segment %d: timeout %v, want %v", i, got, want)
				}
				if (active == 1) != (e.State == TCPEstablished) || active < 0 || active > 1 {
					t.Fatalf("segment %d: active %d in state %s", i, active, e.State.TCPString())
				}
				if e.Active() != (e.State == TCPEstablished) {
					t.Fatalf("segment %d: Active() %v in state %s", i, e.Active(), e.State.TCPString())
				}
			}
			if active != tc.wantActive {
				t.Errorf("active = %d, want %d", active, tc.wantActive)
			}
		})
	}
}

func TestNoOutputFlag(t *testing.T) {
	to := DefaultTimeouts
	e := &Entry{key: Key{Proto: ipvs.ProtoTCP}, Flags: FlagInactive | FlagNoOutput}
	e.Update(DirIn, SYN, &to)
	if e.Flags&FlagNoOutput == 0 {
		t.Fatal("input segment cleared NOOUTPUT")
	}
	e.Update(DirOut, SYN|ACK, &to)
	if e.Flags&FlagNoOutput != 0 {
		t.Fatal("output segment did not clear NOOUTPUT")
	}
}

func TestTimeouts(t *testing.T) {
	to := DefaultTimeouts
	want := map[State]time.Duration{
		TCPNone: 2 * time.Second, TCPEstablished: 900 * time.Second, TCPSynSent: 120 * time.Second,
		TCPSynRecv: 60 * time.Second, TCPFinWait: 120 * time.Second, TCPTimeWait: 120 * time.Second,
		TCPClose: 10 * time.Second, TCPCloseWait: 60 * time.Second, TCPLastAck: 30 * time.Second,
		TCPListen: 120 * time.Second, TCPSynAck: 120 * time.Second,
	}
	for s, d := range want {
		if got := to.For(ipvs.ProtoTCP, s); got != d {
			t.Errorf("%s: %v, want %v", s.TCPString(), got, d)
		}
	}
	if got := to.For(ipvs.ProtoUDP, UDPNormal); got != 300*time.Second {
		t.Errorf("udp: %v", got)
	}
	set := to.Merge(Timeouts{TCP: time.Hour, UDP: 10 * time.Second})
	if set.TCP != time.Hour || set.TCPFin != 120*time.Second || set.UDP != 10*time.Second {
		t.Errorf("Merge: %+v", set)
	}
	if set.For(ipvs.ProtoTCP, TCPEstablished) != time.Hour || set.For(ipvs.ProtoTCP, TCPTimeWait) != 120*time.Second {
		t.Error("--set must change ESTABLISHED only, not TIME_WAIT")
	}
	if got := set.String(); got != "Timeout (tcp tcpfin udp): 3600 120 10" {
		t.Errorf("String: %q", got)
	}
	if err := (Timeouts{TCP: -1}).Validate(); !errors.Is(err, ipvs.ErrInvalid) {
		t.Errorf("negative timeout: %v", err)
	}
	if (Timeouts{}).Filled() != DefaultTimeouts {
		t.Error("Filled")
	}
}

func TestStateNames(t *testing.T) {
	for s := State(0); s < NumTCPStates; s++ {
		if s.TCPString() == "" {
			t.Errorf("state %d has no name", s)
		}
	}
	if got := StateName(ipvs.ProtoUDP, false, 0); got != "UDP" {
		t.Errorf("udp: %q", got)
	}
	if got := StateName(ipvs.ProtoTCP, true, 0); got != "NONE" {
		t.Errorf("template: %q", got)
	}
	if got := StateName(ipvs.ProtoTCP, false, TCPSynRecv); got != "SYN_RECV" {
		t.Errorf("tcp: %q", got)
	}
	if State(99).TCPString() != "ERR!" {
		t.Error("out of range")
	}
}

func TestCheckProtocol(t *testing.T) {
	for _, p := range []ipvs.Protocol{ipvs.ProtoTCP, ipvs.ProtoUDP, ipvs.ProtoNone} {
		if err := CheckProtocol(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	err := CheckProtocol(ipvs.ProtoSCTP)
	if !errors.Is(err, ErrUnsupportedProtocol) || !errors.Is(err, ipvs.ErrInvalid) {
		t.Fatalf("sctp: %v", err)
	}
	t.Log(err)
}

// TestUDPTimeout: a UDP entry lives for the UDP timeout after its last
// packet.
func TestUDPTimeoutRefresh(t *testing.T) {
	to := DefaultTimeouts.Merge(Timeouts{UDP: 30 * time.Second})
	tab := NewTable(0)
	t0 := time.Unix(1000, 0)
	k := MakeKey(ipvs.ProtoUDP, ap("10.0.0.1:5000"), ap("192.0.2.1:53"))
	e := tab.Insert(Params{Key: k, Dest: ap("10.1.0.1:53"), Fwd: ipvs.Route, Flags: FlagInactive | FlagNoOutput, Timeout: InitialTimeout}, t0)
	e.Update(DirIn, 0, &to)
	tab.Touch(e, t0)
	if e.State != UDPNormal || e.Timeout != 30*time.Second {
		t.Fatalf("state %d timeout %v", e.State, e.Timeout)
	}
	// Refresh at +20 s; alive at +49 s, gone at +50 s.
	if tab.Lookup(k, t0.Add(20*time.Second)) != e {
		t.Fatal("lost before timeout")
	}
	e.Update(DirIn, 0, &to)
	tab.Touch(e, t0.Add(20*time.Second))
	if n := tab.Expire(t0.Add(49 * time.Second)); n != 0 || tab.Lookup(k, t0.Add(49*time.Second)) == nil {
		t.Fatalf("expired early (%d)", n)
	}
	if n := tab.Expire(t0.Add(50 * time.Second)); n != 1 {
		t.Fatalf("Expire freed %d, want 1", n)
	}
	if tab.Lookup(k, t0.Add(50*time.Second)) != nil || tab.Len() != 0 {
		t.Fatal("still there")
	}
}
