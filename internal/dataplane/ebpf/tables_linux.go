package ebpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/cilium/ebpf"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/sched"
	"github.com/govs/govs/internal/stats"
)

// Limits of the BPF programs (structs.h). The map sizes (services,
// destination ids, list slots, sh/dh/mh tables) are the loaded maps'
// (Options), read back by newTables.
const (
	maxDests      = 1024 // per service: the schedulers' loop bound
	numTimeouts   = 16
	timeoutUDP    = 11
	connFInact    = 0x0100
	connFNoOut    = 0x0200
	connFDeferred = 0x1000
	connStateMsk  = 0x00ff
	destFAvail    = 0x1
	svcFPersist   = 0x01
	svcFOnePkt    = 0x04
)

// schedCodes are the schedulers the BPF program runs (structs.h enum
// govs_sched).
var schedCodes = map[string]uint8{
	"rr": 0, "wrr": 1, "lc": 2, "wlc": 3, "sed": 4, "nq": 5, "fo": 6, "ovf": 7,
	"sh": 8, "dh": 9, "mh": 10, "lblc": 11, "lblcr": 12, "twos": 13,
}

// schedTableSlots is GOVS_SCHED_TABLE, the sched_table slots per service.
const schedTableSlots = 4096

// tcpStateNames are the kernel's names of the TCP states, by number.
var tcpStateNames = [...]string{"NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT",
	"TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK"}

// defaultTCPTimeouts are the kernel's tcp_timeouts, seconds, by state.
var defaultTCPTimeouts = [11]uint32{2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120}

type svcEntry struct {
	svc   ipvs.Service
	id    uint32
	dests []*destEntry // the kernel's order: newest first
	// list, listCap: the service's range of svc_dests.
	list, listCap uint32
	// table: the service's sh/dh/mh table in sched_table (hasTable).
	table    uint32
	hasTable bool
	// lblc/lblcr garbage collection: the next minute tick (monotonic ns,
	// 0: not started) and the kernel's tick counter.
	gcNext    uint64
	gcCounter int
	// est estimates the rates from the per-CPU counters (--rate).
	est stats.Estimator
}

type destEntry struct {
	d  ipvs.Destination
	id uint32
	// last is the kernel's last_weight: the latest non-zero weight (mh
	// builds its table from it, so quiescing moves no slot).
	last int32
	est  stats.Estimator
}

// tables mirrors the control plane's services and destinations into the
// BPF maps. It is not safe for concurrent use; Dataplane serialises.
type tables struct {
	objs     *govsObjects
	svcs     map[ipvs.ServiceKey]*svcEntry
	svcIDs   []bool // in use
	destIDs  []bool // in use by a configured destination
	tableIDs []bool // sched_table tables in use
	lists    *slotAlloc
	nextDest uint32
	timeouts conn.Timeouts
	// clock schedules the rate estimator's two-second samples.
	clock stats.Clock
	// prog serialises the syscall programs Go runs (govs_expire from the
	// sweeper and sync's Remove, govs_sync): each is atomic against the
	// data path, and this keeps them from racing each other on one entry
	// (see bpf/sync.h). Not mu: the sweeper runs without it.
	prog sync.Mutex
}

func newTables(objs *govsObjects) *tables {
	return &tables{
		objs:     objs,
		svcs:     make(map[ipvs.ServiceKey]*svcEntry),
		svcIDs:   make([]bool, objs.SvcState.MaxEntries()),
		destIDs:  make([]bool, objs.Dests.MaxEntries()),
		tableIDs: make([]bool, objs.SchedTable.MaxEntries()/schedTableSlots),
		lists:    newSlotAlloc(objs.SvcDests.MaxEntries()),
	}
}

// addrWords renders a as the four network-order words of structs.h.
func addrWords(a netip.Addr) [4]uint32 {
	var w [4]uint32
	if !a.IsValid() {
		return w
	}
	a = a.Unmap()
	var b []byte
	if a.Is4() {
		v := a.As4()
		b = append(v[:], make([]byte, 12)...)
	} else {
		v := a.As16()
		b = v[:]
	}
	for i := range w {
		w[i] = binary.NativeEndian.Uint32(b[i*4:])
	}
	return w
}

func wordsAddr(w [4]uint32, family uint8) netip.Addr {
	var b [16]byte
	for i := range w {
		binary.NativeEndian.PutUint32(b[i*4:], w[i])
	}
	if family == afInet {
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrFrom16(b)
}

// htons converts a port to the network-order value the C side stores.
func htons(p uint16) uint16 { return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, p)) }
func ntohs(p uint16) uint16 { return htons(p) }

const (
	afInet  = 2
	afInet6 = 10
)

func family(f ipvs.Family) uint8 {
	if f == ipvs.IPv6 {
		return afInet6
	}
	return afInet
}

func svcKeyOf(k ipvs.ServiceKey) govsSvcKey {
	sk := govsSvcKey{Family: family(k.Family)}
	if k.IsFWMark() {
		sk.Fwmark = k.FWMark
		return sk
	}
	sk.Addr = addrWords(k.Addr)
	sk.Port = htons(k.Port)
	sk.Proto = uint8(k.Protocol)
	return sk
}

// checkService reports what the BPF program cannot do for svc.
func checkService(svc ipvs.Service) error {
	if _, ok := schedCodes[svc.Scheduler]; !ok {
		return fmt.Errorf("ebpf data plane: scheduler %q: %w (it runs rr, wrr, lc, wlc, sed, nq, lblc, lblcr, dh, sh, fo, ovf, mh and twos)",
			svc.Scheduler, dataplane.ErrUnsupported)
	}
	if svc.Protocol == ipvs.ProtoSCTP {
		return fmt.Errorf("ebpf data plane: SCTP services: %w (use --dataplane proxy)", dataplane.ErrUnsupported)
	}
	if svc.PE != "" {
		return fmt.Errorf("ebpf data plane: persistence engine %q: %w", svc.PE, dataplane.ErrUnsupported)
	}
	return nil
}

// checkDest reports what the BPF program cannot do for d.
func checkDest(svc ipvs.Service, d ipvs.Destination) error {
	if d.ProxyProtocol != 0 {
		return fmt.Errorf("ebpf data plane: destination %s: PROXY protocol header (--proxy-protocol %d): %w (BPF forwards packets and cannot insert one; use govsd --dataplane proxy with -m)", d.AddrPort(), d.ProxyProtocol, dataplane.ErrUnsupported)
	}
	if d.Fwd == ipvs.Tunnel {
		if d.TunType == ipvs.TunGRE {
			return fmt.Errorf("ebpf data plane: GRE tunnels: %w (use ipip or gue)", dataplane.ErrUnsupported)
		}
		if d.TunFlags != ipvs.TunNoCsum {
			return fmt.Errorf("ebpf data plane: tunnel checksum options: %w (GUE is sent without checksum)", dataplane.ErrUnsupported)
		}
		svcFam := svc.Family
		if svcFam != ipvs.FamilyNone && ipvs.FamilyOf(d.Addr) != svcFam {
			return fmt.Errorf("ebpf data plane: %s tunnel to %s realserver %s: %w (the outer header has the inner family)",
				svcFam, ipvs.FamilyOf(d.Addr), d.Addr, dataplane.ErrUnsupported)
		}
	}
	return nil
}

func (t *tables) allocSvcID() (uint32, error) {
	for i, used := range t.svcIDs {
		if !used {
			t.svcIDs[i] = true
			return uint32(i), nil
		}
	}
	return 0, fmt.Errorf("ebpf data plane: more than %d services (raise Options.MaxServices)", len(t.svcIDs))
}

// allocDestID returns an id no configured destination and no connection
// uses. Ids are handed out round robin so that a removed destination's id
// (whose connections drain) is reused as late as possible.
func (t *tables) allocDestID() (uint32, error) {
	n := uint32(len(t.destIDs))
	for range n {
		id := t.nextDest
		t.nextDest = (t.nextDest + 1) % n
		if t.destIDs[id] {
			continue
		}
		var live govsDestLive
		if err := t.objs.DestLive.Lookup(id, &live); err != nil {
			return 0, fmt.Errorf("read dest_live: %w", err)
		}
		if live.Active != 0 || live.Inact != 0 || live.Persist != 0 {
			continue // still referenced by connections of a removed dest
		}
		if err := t.objs.DestLive.Update(id, govsDestLive{}, ebpf.UpdateAny); err != nil {
			return 0, fmt.Errorf("reset dest_live: %w", err)
		}
		if err := zeroPerCPU(t.objs.DestStats, id); err != nil {
			return 0, err
		}
		// The id's next hop was another destination's.
		if err := t.objs.Nexthop.Update(id, govsNexthop{}, ebpf.UpdateAny); err != nil {
			return 0, fmt.Errorf("reset next hop: %w", err)
		}
		t.destIDs[id] = true
		return id, nil
	}
	return 0, fmt.Errorf("ebpf data plane: more than %d destinations in all services, counting removed ones whose connections drain (raise Options.MaxDests)", n)
}

func zeroPerCPU(m *ebpf.Map, key uint32) error {
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("count CPUs: %w", err)
	}
	if err := m.Update(key, make([]govsStats, n), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("zero %s: %w", m, err)
	}
	return nil
}

func (t *tables) svcValue(e *svcEntry) govsSvc {
	s := e.svc
	v := govsSvc{
		Id:      e.id,
		Timeout: s.Timeout,
		Flags:   uint16(s.Flags()),
		Sched:   schedCodes[s.Scheduler],
		Netmask: s.Netmask,
		Ndests:  uint16(len(e.dests)),
		Fwmark:  s.FWMark,
		Port:    htons(s.Port),
		List:    e.list,
		ListCap: uint16(e.listCap),
		Table:   e.table,
	}
	v.WrrMw, v.WrrGcd = wrrParams(e.dests)
	return v
}

// wrrParams are ip_vs_wrr's mark->mw and mark->di for a list.
func wrrParams(list []*destEntry) (mw, di int32) {
	g, m := int32(0), int32(0)
	for _, d := range list {
		w := d.d.Weight
		if w > 0 {
			if g > 0 {
				g = gcd(w, g)
			} else {
				g = w
			}
		}
		m = max(m, w)
	}
	if g == 0 {
		g = 1
	}
	return m - (g - 1), g
}

func gcd(a, b int32) int32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func (t *tables) writeSvc(e *svcEntry) error {
	if err := t.objs.Services.Update(svcKeyOf(e.svc.ServiceKey), t.svcValue(e), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("update service %s: %w", e.svc.ServiceKey, err)
	}
	return nil
}

// writeList writes e's destination list to its range of svc_dests,
// first moving it to a larger range if it outgrew its own. The caller
// then writes the service, whose list, list_cap and ndests tell BPF
// where to read; a packet scheduled in the instant between the two sees
// the old service value with the new list (as it did when lists were
// written in place), and a moved list's old range is not written again
// until another service is given it.
func (t *tables) writeList(e *svcEntry) error {
	if err := t.writeTable(e); err != nil {
		return err
	}
	if need := listCap(len(e.dests)); e.listCap < need {
		off, ok := t.lists.alloc(need)
		if !ok {
			return fmt.Errorf("ebpf data plane: no room for the destination list of %s (%d slots; raise Options.MaxDests)", e.svc.ServiceKey, need)
		}
		t.lists.release(e.list, e.listCap)
		e.list, e.listCap = off, need
	}
	if len(e.dests) == 0 {
		return nil
	}
	keys := make([]uint32, len(e.dests))
	ids := make([]uint32, len(e.dests))
	for i, d := range e.dests {
		keys[i] = e.list + uint32(i)
		ids[i] = d.id
	}
	if _, err := t.objs.SvcDests.BatchUpdate(keys, ids, nil); err != nil {
		return fmt.Errorf("update destination list of %s: %w", e.svc.ServiceKey, err)
	}
	return nil
}

// freeList gives e's list range and table back.
func (t *tables) freeList(e *svcEntry) {
	t.lists.release(e.list, e.listCap)
	e.list, e.listCap = 0, 0
	if e.hasTable {
		t.tableIDs[e.table] = false
		e.table, e.hasTable = 0, false
	}
}

// writeTable stores the lookup table of sh, dh and mh, built by package
// sched itself, as list indexes.
func (t *tables) writeTable(e *svcEntry) error {
	name := e.svc.Scheduler
	if name != "sh" && name != "dh" && name != "mh" {
		if e.hasTable {
			t.tableIDs[e.table] = false
			e.table, e.hasTable = 0, false
		}
		return nil
	}
	if !e.hasTable {
		i := slices.Index(t.tableIDs, false)
		if i < 0 {
			return fmt.Errorf("ebpf data plane: more than %d services with sh, dh or mh (raise Options.MaxHashServices)", len(t.tableIDs))
		}
		t.tableIDs[i] = true
		e.table, e.hasTable = uint32(i), true
	}
	list := make([]*ipvs.Dest, len(e.dests))
	idx := make(map[*ipvs.Dest]uint16, len(e.dests))
	for i, d := range e.dests {
		list[i] = ipvs.NewDest(d.d)
		list[i].LastWeight = d.last
		idx[list[i]] = uint16(i)
	}
	n, err := sched.Lookup(name)
	if err != nil {
		return err
	}
	var table []*ipvs.Dest
	switch s := n(sched.Config{}, list).(type) {
	case *sched.SH:
		table = s.Table()
	case *sched.DH:
		table = s.Table()
	case *sched.MH:
		table = s.Table()
	default:
		return fmt.Errorf("scheduler %s exports no table", name)
	}
	keys := make([]uint32, len(table))
	vals := make([]uint16, len(table))
	for i, d := range table {
		keys[i] = e.table*schedTableSlots + uint32(i)
		vals[i] = 0xffff
		if j, ok := idx[d]; ok {
			vals[i] = j
		}
	}
	if _, err := t.objs.SchedTable.BatchUpdate(keys, vals, nil); err != nil {
		for i := range keys {
			if err := t.objs.SchedTable.Update(keys[i], vals[i], ebpf.UpdateAny); err != nil {
				return fmt.Errorf("write %s table: %w", name, err)
			}
		}
	}
	return nil
}

// destValue is d's dests entry in service e (whose id and mark
// connections find through it).
func destValue(e *svcEntry, d ipvs.Destination, avail bool) govsDest {
	v := govsDest{
		Addr:     addrWords(d.Addr),
		Weight:   d.Weight,
		Upper:    d.Upper,
		Lower:    d.Lower,
		Port:     htons(d.Port),
		TunPort:  htons(d.TunPort),
		Fwd:      uint8(d.Fwd),
		Family:   family(ipvs.FamilyOf(d.Addr)),
		TunType:  uint8(d.TunType),
		TunFlags: uint8(d.TunFlags),
		SvcId:    e.id,
		Fwmark:   e.svc.FWMark,
	}
	if avail {
		v.Flags = destFAvail
	}
	return v
}

func (t *tables) state(e *svcEntry) (govsSvcState, error) {
	var st govsSvcState
	if err := t.objs.SvcState.Lookup(e.id, &st); err != nil {
		return st, fmt.Errorf("read scheduler state: %w", err)
	}
	return st, nil
}

func (t *tables) setState(e *svcEntry, st govsSvcState) error {
	if err := t.objs.SvcState.Update(e.id, st, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write scheduler state: %w", err)
	}
	return nil
}

// wrrChanged is ip_vs_wrr_dest_changed: back to the head of the list, cw
// adjusted to the new weights.
func (t *tables) wrrChanged(e *svcEntry, st govsSvcState) govsSvcState {
	mw, di := wrrParams(e.dests)
	st.Last = -1
	if st.Cw > mw || st.Cw == 0 {
		st.Cw = mw
	} else if di > 1 {
		st.Cw = (st.Cw/di)*di + 1
	}
	return st
}

func (t *tables) addService(svc ipvs.Service) error {
	if _, ok := t.svcs[svc.ServiceKey]; ok {
		return fmt.Errorf("service %s: %w", svc.ServiceKey, ipvs.ErrServiceExists)
	}
	if err := checkService(svc); err != nil {
		return err
	}
	id, err := t.allocSvcID()
	if err != nil {
		return err
	}
	e := &svcEntry{svc: svc, id: id}
	if err := zeroPerCPU(t.objs.SvcStats, id); err != nil {
		return err
	}
	if err := t.setState(e, govsSvcState{Last: -1}); err != nil {
		return err
	}
	if err := t.resetSchedState(e); err != nil {
		return err
	}
	if err := t.writeList(e); err != nil {
		return err
	}
	if err := t.writeSvc(e); err != nil {
		return err
	}
	t.svcs[svc.ServiceKey] = e
	return nil
}

func (t *tables) editService(svc ipvs.Service) error {
	e, ok := t.svcs[svc.ServiceKey]
	if !ok {
		return fmt.Errorf("service %s: %w", svc.ServiceKey, ipvs.ErrNoService)
	}
	if err := checkService(svc); err != nil {
		return err
	}
	changed := e.svc.Scheduler != svc.Scheduler
	e.svc = svc
	if err := t.writeTable(e); err != nil {
		return err
	}
	if changed {
		// A new scheduler starts fresh (the kernel's init_service).
		mw, _ := wrrParams(e.dests)
		if err := t.setState(e, govsSvcState{Last: -1, Cw: mw}); err != nil {
			return err
		}
		if err := t.resetSchedState(e); err != nil {
			return err
		}
	}
	return t.writeSvc(e)
}

func (t *tables) delService(k ipvs.ServiceKey) error {
	e, ok := t.svcs[k]
	if !ok {
		return fmt.Errorf("service %s: %w", k, ipvs.ErrNoService)
	}
	if err := t.objs.Services.Delete(svcKeyOf(k)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete service %s: %w", k, err)
	}
	for _, d := range e.dests {
		if err := t.retireDest(e, d); err != nil {
			return err
		}
	}
	if err := t.purgeLB(e.id); err != nil {
		return err
	}
	t.svcIDs[e.id] = false
	t.freeList(e)
	delete(t.svcs, k)
	return nil
}

// retireDest marks d unavailable: its connections continue, persistence
// templates pointing at it are not used again, and its id is reused once
// no connection counts on it.
func (t *tables) retireDest(e *svcEntry, d *destEntry) error {
	if err := t.objs.Dests.Update(d.id, destValue(e, d.d, false), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("retire destination %s: %w", d.d.AddrPort(), err)
	}
	t.destIDs[d.id] = false
	return nil
}

func (t *tables) addDest(k ipvs.ServiceKey, d ipvs.Destination) error {
	e, ok := t.svcs[k]
	if !ok {
		return fmt.Errorf("service %s: %w", k, ipvs.ErrNoService)
	}
	if err := checkDest(e.svc, d); err != nil {
		return err
	}
	if slices.ContainsFunc(e.dests, func(x *destEntry) bool { return x.d.Key() == d.Key() }) {
		return fmt.Errorf("destination %s: %w", d.AddrPort(), ipvs.ErrDestExists)
	}
	if len(e.dests) >= maxDests {
		return fmt.Errorf("ebpf data plane: service %s has %d destinations, the most a service can have", k, maxDests)
	}
	id, err := t.allocDestID()
	if err != nil {
		return err
	}
	if err := t.objs.Dests.Update(id, destValue(e, d, true), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("add destination %s: %w", d.AddrPort(), err)
	}
	st, err := t.state(e)
	if err != nil {
		return err
	}
	e.dests = slices.Insert(e.dests, 0, &destEntry{d: d, id: id, last: d.Weight})
	switch e.svc.Scheduler {
	case "rr":
		// sched_data points at a list node; a new head shifts indexes.
		if st.Last >= 0 {
			st.Last++
		}
	case "wrr":
		st = t.wrrChanged(e, st)
	}
	if err := t.writeList(e); err != nil {
		return err
	}
	if err := t.setState(e, st); err != nil {
		return err
	}
	return t.writeSvc(e)
}

func (t *tables) findDest(k ipvs.ServiceKey, dk ipvs.DestKey) (*svcEntry, int, error) {
	e, ok := t.svcs[k]
	if !ok {
		return nil, 0, fmt.Errorf("service %s: %w", k, ipvs.ErrNoService)
	}
	i := slices.IndexFunc(e.dests, func(x *destEntry) bool { return x.d.Key() == dk })
	if i < 0 {
		return nil, 0, fmt.Errorf("destination %s: %w", netip.AddrPortFrom(dk.Addr, dk.Port), ipvs.ErrNoDest)
	}
	return e, i, nil
}

func (t *tables) editDest(k ipvs.ServiceKey, d ipvs.Destination) error {
	e, i, err := t.findDest(k, d.Key())
	if err != nil {
		return err
	}
	if err := checkDest(e.svc, d); err != nil {
		return err
	}
	de := e.dests[i]
	de.d = d
	if d.Weight != 0 {
		de.last = d.Weight
	}
	if err := t.objs.Dests.Update(de.id, destValue(e, d, true), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("edit destination %s: %w", d.AddrPort(), err)
	}
	// Thresholds changed: recompute the overload flag (UpdateOverload).
	var live govsDestLive
	if err := t.objs.DestLive.Lookup(de.id, &live); err == nil {
		ld := ipvs.Dest{Destination: d, ActiveConns: live.Active, InactConns: live.Inact, Overloaded: live.Overloaded != 0}
		ld.UpdateOverload()
		if ov := boolU32(ld.Overloaded); ov != live.Overloaded {
			live.Overloaded = ov
			_ = t.objs.DestLive.Update(de.id, live, ebpf.UpdateAny) // races only with the counters' atomics for one instant
		}
	}
	if err := t.writeTable(e); err != nil {
		return err
	}
	if e.svc.Scheduler == "wrr" {
		st, err := t.state(e)
		if err != nil {
			return err
		}
		if err := t.setState(e, t.wrrChanged(e, st)); err != nil {
			return err
		}
	}
	return t.writeSvc(e)
}

func boolU32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

func (t *tables) delDest(k ipvs.ServiceKey, dk ipvs.DestKey) error {
	e, at, err := t.findDest(k, dk)
	if err != nil {
		return err
	}
	d := e.dests[at]
	e.dests = slices.Delete(e.dests, at, at+1)
	st, err := t.state(e)
	if err != nil {
		return err
	}
	switch e.svc.Scheduler {
	case "rr":
		// ip_vs_rr_del_dest: a position on the removed dest moves to
		// the one before it (the head if it was first).
		switch {
		case int(st.Last) == at:
			st.Last = int32(at) - 1
		case int(st.Last) > at:
			st.Last--
		}
	case "wrr":
		st = t.wrrChanged(e, st)
	}
	if err := t.writeList(e); err != nil {
		return err
	}
	if err := t.setState(e, st); err != nil {
		return err
	}
	if err := t.writeSvc(e); err != nil {
		return err
	}
	return t.retireDest(e, d)
}

func (t *tables) flush() error {
	for k := range t.svcs {
		if err := t.delService(k); err != nil {
			return err
		}
	}
	return nil
}

// setTimeouts writes the --set timeouts (zero fields unchanged).
func (t *tables) setTimeouts(to conn.Timeouts) error {
	if to.TCP != 0 {
		t.timeouts.TCP = to.TCP
	}
	if to.TCPFin != 0 {
		t.timeouts.TCPFin = to.TCPFin
	}
	if to.UDP != 0 {
		t.timeouts.UDP = to.UDP
	}
	vals := make([]uint32, numTimeouts)
	copy(vals, defaultTCPTimeouts[:])
	vals[1] = uint32(t.timeouts.TCP / time.Second)
	vals[4] = uint32(t.timeouts.TCPFin / time.Second)
	vals[timeoutUDP] = uint32(t.timeouts.UDP / time.Second)
	for i, v := range vals {
		if err := t.objs.Timeouts.Update(uint32(i), v, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("update timeouts: %w", err)
		}
	}
	return nil
}
