package ha_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/netns"
	"github.com/govs/govs/internal/testenv"
)

// The NAT topology: the clients' segment (br0) and the realservers'
// segment (br1), two directors on both. The realservers' default gateway
// is the DIP 10.10.0.1, which VRRP moves with the VIP (both instances in
// one vrrp_sync_group), so replies always go to the director that holds
// the VIP and its NAT entries:
//
//	client 10.9.0.1 ---+                       +--- rs1 10.10.0.11
//	                    br0                   br1    default via 10.10.0.1
//	dirA 10.9.0.2 eth0 -+- eth1 10.10.0.2 ----+--- rs2 10.10.0.12
//	dirB 10.9.0.3 eth0 -+- eth1 10.10.0.3 ----+
//	VIP 10.9.0.100 (VI_1, eth0) and DIP 10.10.0.1 (VI_2, eth1) on the master
//
// Both bridges are hubs (ageing_time 0: every frame is flooded to every
// port, as a switch does for a MAC it has not learnt or has aged out), so
// the backup sees every frame addressed to the master: its data plane
// must leave them alone.
const (
	natVIP = "10.9.0.100"
	natDIP = "10.10.0.1"
)

// natConf: the VIP (VI_1, lvs_sync_daemon's instance) and the DIP (VI_2)
// are one vrrp_sync_group, as LVS-NAT with two directors needs. The
// readiness gate holds every member of that group, so a returning
// director preempts neither before it has learnt the connections.
const natConf = `global_defs {
    router_id %[1]s
    lvs_sync_daemon eth0 VI_1 id 51
}
vrrp_sync_group VG_NAT {
    group {
        VI_1
        VI_2
    }
}
vrrp_instance VI_1 {
    state %[2]s
    interface eth0
    virtual_router_id 51
    priority %[3]d
    advert_int 1
    garp_master_delay 1
    virtual_ipaddress {
        10.9.0.100/32
    }
}
vrrp_instance VI_2 {
    state %[2]s
    interface eth1
    virtual_router_id 52
    priority %[3]d
    advert_int 1
    garp_master_delay 1
    virtual_ipaddress {
        10.10.0.1/32
    }
}
virtual_server 10.9.0.100 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.10.0.11 80 { weight 1 }
    real_server 10.10.0.12 80 { weight 1 }
}
virtual_server 10.9.0.100 7 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.10.0.11 7 { weight 1 }
    real_server 10.10.0.12 7 { weight 1 }
}
`

type natTopo struct {
	*haTopo
}

func newNATTopo(t *testing.T) *natTopo {
	t.Helper()
	netns.RequireRoot(t)
	testenv.Command(t, "ip", "iproute2")
	testenv.Command(t, "nft", "nftables")
	h := &haTopo{t: t, govsd: govsdBinary(t), dir: t.TempDir(), vip: natVIP}
	h.lan = netns.New(t, "lan")
	brs := [2]*netns.Link{h.lan.Bridge("br0"), h.lan.Bridge("br1")}
	for _, br := range brs {
		h.run(h.lan, "ip", "link", "set", br.Name, "type", "bridge", "ageing_time", "0")
	}
	n := 0
	attach := func(ns *netns.NS, ifname string, br int, addr string) *netns.Link {
		n++
		l, p := netns.Veth(t, ns, ifname, nil, h.lan, fmt.Sprintf("p%d", n), nil)
		p.SetMaster(brs[br])
		l.AddAddr(addr + "/24")
		return l
	}
	h.client = netns.New(t, "client")
	attach(h.client, "eth0", 0, "10.9.0.1")
	for i := range h.dirs {
		h.dirs[i] = netns.New(t, fmt.Sprintf("dir%c", 'A'+i))
		h.dirLink[i] = attach(h.dirs[i], "eth0", 0, fmt.Sprintf("10.9.0.%d", 2+i))
		attach(h.dirs[i], "eth1", 1, fmt.Sprintf("10.10.0.%d", 2+i))
		h.dirs[i].EnableForwarding()
	}
	// serve listens on h.vip; a realserver behind NAT gets the traffic
	// on its own address: listen on all.
	rsServe := *h
	rsServe.vip = "0.0.0.0"
	for i := range h.rs {
		h.rs[i] = netns.New(t, fmt.Sprintf("rs%d", i+1))
		l := attach(h.rs[i], "eth0", 1, fmt.Sprintf("10.10.0.%d", 11+i))
		l.AddRoute("0.0.0.0/0", natDIP, 0)
		rsServe.serve(h.rs[i])
	}
	return &natTopo{h}
}

// start runs govsd for director i on natConf, on both interfaces.
func (h *natTopo) start(i int) *govsdProc {
	h.t.Helper()
	name, state, prio := role(i)
	return h.startWith(i, fmt.Sprintf(natConf, name, state, prio), "eth0,eth1", "/sys/fs/bpf/govs-hanat-"+name)
}

// crash is haTopo.crash on both of the director's interfaces, in one
// nft transaction, so the director falls silent at one instant.
func (h *natTopo) crash(i int) {
	h.t.Helper()
	script := "add table netdev crash\n"
	for _, dev := range []string{"eth0", "eth1"} {
		script += fmt.Sprintf("add chain netdev crash in_%[1]s { type filter hook ingress device %[1]s priority -500; policy drop; }\n"+
			"add chain netdev crash out_%[1]s { type filter hook egress device %[1]s priority -500; policy drop; }\n", dev)
	}
	f := filepath.Join(h.dir, "crash.nft")
	if err := os.WriteFile(f, []byte(script), 0o644); err != nil {
		h.t.Fatal(err)
	}
	h.run(h.dirs[i], "nft", "-f", f)
	h.procs[i].kill(h.t)
}

func (h *natTopo) reboot(i int) {
	h.run(h.dirs[i], "ip", "addr", "del", natVIP+"/32", "dev", "eth0")
	h.run(h.dirs[i], "ip", "addr", "del", natDIP+"/32", "dev", "eth1")
	h.nft(i, "delete table netdev crash")
}

// dump logs what helps to see where packets went: neighbours, addresses
// and director i's BPF counters.
func (h *natTopo) dump(i int) {
	t := h.t
	for _, x := range []struct {
		ns   *netns.NS
		args []string
	}{{h.client, []string{"neigh"}}, {h.rs[0], []string{"neigh"}}, {h.rs[1], []string{"neigh"}}, {h.dirs[i], []string{"addr"}},
		{h.dirs[i], []string{"neigh"}}, {h.lan, []string{"-s", "link"}}} {
		x.ns.Do(func() error {
			out, _ := exec.Command("ip", x.args...).CombinedOutput()
			t.Logf("%s: ip %v:\n%s", x.ns.Name, x.args, out)
			return nil
		})
	}
	pid := fmt.Sprint(h.procs[i].cmd.Process.Pid)
	for _, m := range []string{"ctr", "conns", "nat"} {
		out, _ := exec.Command("nsenter", "-t", pid, "-m", "bpftool", "map", "dump", "pinned",
			fmt.Sprintf("/sys/fs/bpf/govs-hanat-%c/%s", 'A'+i, m)).CombinedOutput()
		t.Logf("director %c map %s:\n%s", 'A'+i, m, out)
	}
}

// traffic sums the packet counters of a director's services.
func traffic(ctx context.Context, t *testing.T, c *api.Client) ipvs.Counters {
	t.Helper()
	svcs, err := c.Services(ctx)
	if err != nil {
		t.Fatalf("services: %v", err)
	}
	var sum ipvs.Counters
	for _, s := range svcs {
		sum.Add(s.Stats)
	}
	return sum
}

// TestNetnsHAFailoverNAT is TestNetnsHAFailoverDR in NAT mode: the
// realservers' gateway (the DIP) is a VRRP address in a vrrp_sync_group
// with the VIP, so it moves with it and replies follow the VIP to the
// director that has the connections' NAT entries (synced). A throttled
// download and a held-open connection run through the VIP; A crashes;
// B takes both addresses and translates both directions; A comes back,
// learns, takes the VIP back; both connections survive throughout. The
// segments are hubs: while backup, a director forwards nothing.
func TestNetnsHAFailoverNAT(t *testing.T) {
	h := newNATTopo(t)
	a := h.start(0)
	b := h.start(1)
	t0 := time.Now()
	tA0 := waitLog(t, a, 10*time.Second, "entering state", "to=MASTER", "instance=VI_1")
	waitLog(t, a, 10*time.Second, "entering state", "to=MASTER", "instance=VI_2")
	waitLog(t, b, 10*time.Second, "sync daemon started", "state=backup")
	t.Logf("A master after %v", tA0.Sub(t0).Round(10*time.Millisecond))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		n   int64
		err error
	}
	dl := make(chan result, 1)
	var sock net.Conn
	h.client.MustDo(func() error {
		var err error
		sock, err = net.DialTimeout("tcp4", natVIP+":80", 5*time.Second)
		return err
	})
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(context.Context, string, string) (net.Conn, error) { return sock, nil }}}
	resp, err := c.Get("http://" + natVIP + "/stream?mb=18&rate=768")
	if err != nil {
		t.Fatal(err)
	}
	tDL := time.Now()
	body := resp.Body
	go func() {
		n, err := io.Copy(io.Discard, body)
		body.Close()
		dl <- result{n, err}
	}()
	ec := h.echo(ctx)

	time.Sleep(3 * time.Second)
	ac, bc := api.NewClient(a.socket), api.NewClient(b.socket)
	defer ac.CloseIdleConnections()
	defer bc.CloseIdleConnections()
	conns, err := bc.Conns(ctx)
	if err != nil || len(conns) < 2 {
		t.Fatalf("B's connection table before the failover: %v, %v\n%s", conns, err, b.logText())
	}
	for _, cn := range conns {
		if cn.Fwd != ipvs.Masq {
			t.Errorf("B's synced connection %+v is not NAT", cn)
		}
	}
	// The hub delivered A's traffic to B too: B, backup, left it alone.
	if st := traffic(ctx, t, bc); st.InPkts != 0 || st.OutPkts != 0 || st.Conns != 0 {
		t.Errorf("B forwarded while backup: %+v", st)
	}
	if st := traffic(ctx, t, ac); st.InPkts == 0 || st.OutPkts == 0 {
		t.Errorf("A's counters while master: %+v", st)
	}

	tKill := time.Now()
	t.Logf("crash A at %s", tKill.Format("15:04:05.000"))
	h.crash(0)
	tB := waitLog(t, b, 10*time.Second, "entering state", "to=MASTER", "instance=VI_1")
	tB2 := waitLog(t, b, 10*time.Second, "entering state", "to=MASTER", "instance=VI_2")
	t.Logf("B took over %v (VIP) and %v (DIP) after A crashed (master down interval 3.61 s)",
		tB.Sub(tKill).Round(10*time.Millisecond), tB2.Sub(tKill).Round(10*time.Millisecond))
	if d := tB.Sub(tKill); d > 4500*time.Millisecond {
		t.Errorf("takeover took %v, more than the master down interval", d)
	}
	waitLog(t, b, 5*time.Second, "sync role follows VRRP", "sync=master")
	// Traffic resumes with the clients' and the realservers' next
	// retransmissions (TCP backs off while nobody answers).
	n0, _, _ := ec.result()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if n, _, _ := ec.result(); n > n0 {
			break
		}
	}
	tResume := time.Now()
	n1, _, eerr := ec.result()
	if eerr != nil || n1 <= n0 {
		h.dump(1)
		t.Fatalf("held-open connection after the takeover: %d -> %d echoes, %v", n0, n1, eerr)
	}
	t.Logf("held-open connection answered again %v after the crash", tResume.Sub(tKill).Round(10*time.Millisecond))
	time.Sleep(time.Second)
	// B translates both directions of the synced connections.
	if st := traffic(ctx, t, bc); st.InPkts == 0 || st.OutPkts == 0 {
		t.Errorf("B's counters after the takeover: %+v (NAT replies must go through B)", st)
		h.dump(1)
	} else {
		t.Logf("B after the takeover: %d packets in, %d out (NAT replies)", st.InPkts, st.OutPkts)
	}

	h.reboot(0)
	tBack := time.Now()
	a = h.start(0)
	ac = api.NewClient(a.socket)
	defer ac.CloseIdleConnections()
	tReady := waitLog(t, a, 15*time.Second, "readiness gate open")
	tA := waitLog(t, a, 15*time.Second, "entering state", "to=MASTER", "instance=VI_1")
	tA2 := waitLog(t, a, 15*time.Second, "entering state", "to=MASTER", "instance=VI_2")
	t.Logf("A back: gate open %v after restart, master %v (VIP) and %v (DIP) after restart",
		tReady.Sub(tBack).Round(10*time.Millisecond), tA.Sub(tBack).Round(10*time.Millisecond), tA2.Sub(tBack).Round(10*time.Millisecond))
	first := tA
	if tA2.Before(first) {
		first = tA2
	}
	if first.Before(tReady) {
		t.Errorf("A took the addresses back %v before its readiness gate opened: the sync group member without the gate preempted and pulled the gated one along",
			tReady.Sub(first).Round(10*time.Millisecond))
	}
	waitLog(t, b, 5*time.Second, "entering state", "from=MASTER", "to=BACKUP", "instance=VI_1")

	time.Sleep(2 * time.Second)
	n1, _, _ = ec.result()
	time.Sleep(time.Second)
	n2, gap, eerr := ec.result()
	if eerr != nil || n2 <= n1 {
		t.Fatalf("held-open connection after A's return: %d -> %d echoes, err %v", n1, n2, eerr)
	}
	t.Logf("held-open connection: %d echoes, longest wait %v, stalls %v", n2, gap.Round(10*time.Millisecond), ec.stalls)
	if st := traffic(ctx, t, ac); st.InPkts == 0 || st.OutPkts == 0 {
		t.Errorf("A's counters after it took the VIP back: %+v", st)
	}
	select {
	case r := <-dl:
		if r.err != nil || r.n != 18<<20 {
			t.Fatalf("download: %d bytes, %v", r.n, r.err)
		}
		t.Logf("download complete: %d bytes in %v", r.n, time.Since(tDL).Round(100*time.Millisecond))
	case <-time.After(30 * time.Second):
		t.Fatal("download did not finish")
	}
	if t.Failed() {
		for i, p := range h.procs {
			t.Logf("govsd %c log:\n%s", 'A'+i, strings.TrimSpace(p.logText()))
		}
	}
}
