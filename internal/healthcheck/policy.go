package healthcheck

import (
	"errors"
	"fmt"
	"math"

	"github.com/govs/govs/internal/ipvs"
)

// ActionKind is what an Action does to the IPVS table.
type ActionKind uint8

// Action kinds: ipvsadm -a, -e and -d.
const (
	AddDest ActionKind = iota + 1
	EditDest
	DelDest
)

func (k ActionKind) String() string {
	switch k {
	case AddDest:
		return "add"
	case EditDest:
		return "edit"
	case DelDest:
		return "delete"
	}
	return fmt.Sprintf("action%d", uint8(k))
}

// Action is one change the director applies to a service's destinations.
type Action struct {
	Kind    ActionKind
	Service ipvs.ServiceKey
	Dest    ipvs.Destination
	Sorry   bool   // Dest is the sorry server
	Reason  string // for logs
}

func (a Action) String() string {
	s := fmt.Sprintf("%s %s -> %s weight %d", a.Kind, a.Service, a.Dest.AddrPort(), a.Dest.Weight)
	if a.Sorry {
		s += " (sorry server)"
	}
	return s
}

// NotifyKind says which script a Notification is for.
type NotifyKind uint8

// Notification kinds.
const (
	NotifyQuorumUp NotifyKind = iota + 1
	NotifyQuorumDown
	NotifyUp   // realserver notify_up
	NotifyDown // realserver notify_down
)

func (k NotifyKind) String() string {
	switch k {
	case NotifyQuorumUp:
		return "quorum_up"
	case NotifyQuorumDown:
		return "quorum_down"
	case NotifyUp:
		return "notify_up"
	case NotifyDown:
		return "notify_down"
	}
	return fmt.Sprintf("notify%d", uint8(k))
}

// Notification is a state change that has a script in keepalived. It is
// sent even when no script is configured (Script empty), so it can feed
// logs or a notify FIFO.
type Notification struct {
	Kind    NotifyKind
	Service ipvs.ServiceKey
	Dest    ipvs.DestKey // zero for quorum notifications
	Script  string
	// Stopping is set for the notifications omega sends at shutdown.
	Stopping bool
}

// Notifier runs (or records) notifications. ExecNotifier runs scripts.
type Notifier interface {
	Notify(Notification)
}

// PolicyRealServer is a realserver as the policy sees it.
type PolicyRealServer struct {
	Dest             ipvs.Destination // Dest.Weight is the configured weight
	InhibitOnFailure bool
	NotifyUp         string
	NotifyDown       string
}

// PolicyConfig is a virtual service's health policy, keepalived's
// virtual_server options.
type PolicyConfig struct {
	Service ipvs.ServiceKey
	// Quorum is the minimum total weight of live realservers (keepalived's
	// default is 1; 0 is taken literally).
	Quorum     int
	Hysteresis int
	QuorumUp   string // quorum_up script
	QuorumDown string // quorum_down script
	// SorryServer replaces all realservers while the quorum is lost.
	SorryServer *ipvs.Destination
	// SorryInhibit is sorry_server_inhibit: the sorry server stays in the
	// table with weight 0 instead of being removed.
	SorryInhibit bool
	// Omega runs the down notifications at shutdown.
	Omega       bool
	RealServers []PolicyRealServer
}

type rsState struct {
	cfg     PolicyRealServer
	inhibit bool
	alive   bool // counted as up (keepalived's ISALIVE)
	set     bool // present in the IPVS table
	failed  bool // a checker is down
	weight  int  // effective weight
}

// Policy is keepalived's ipwrapper logic for one virtual service, with no
// I/O: it is fed realserver state changes and returns the destination
// changes to apply, and hands script runs to a Notifier. It is not safe
// for concurrent use.
type Policy struct {
	cfg      PolicyConfig
	notifier Notifier
	rs       []*rsState
	byKey    map[ipvs.DestKey]*rsState
	sorry    *rsState
	quorumUp bool
	started  bool
}

// NewPolicy returns the policy for cfg; notifier may be nil.
func NewPolicy(cfg PolicyConfig, notifier Notifier) (*Policy, error) {
	var errs []error
	if cfg.Quorum < 0 || cfg.Hysteresis < 0 {
		errs = append(errs, fmt.Errorf("%w: %s: quorum %d and hysteresis %d must not be negative", ErrConfig, cfg.Service, cfg.Quorum, cfg.Hysteresis))
	}
	p := &Policy{cfg: cfg, notifier: notifier, byKey: map[ipvs.DestKey]*rsState{}}
	for _, r := range cfg.RealServers {
		if _, dup := p.byKey[r.Dest.Key()]; dup {
			errs = append(errs, fmt.Errorf("%w: %s: realserver %s given twice", ErrConfig, cfg.Service, r.Dest.AddrPort()))
			continue
		}
		s := &rsState{cfg: r, inhibit: r.InhibitOnFailure, weight: int(r.Dest.Weight)}
		p.rs = append(p.rs, s)
		p.byKey[r.Dest.Key()] = s
	}
	if cfg.SorryServer != nil {
		p.sorry = &rsState{cfg: PolicyRealServer{Dest: *cfg.SorryServer}, inhibit: cfg.SorryInhibit, weight: int(cfg.SorryServer.Weight)}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

func realWeight(w int) int { return max(0, min(w, math.MaxInt32)) }

func (p *Policy) notify(n Notification) {
	n.Service = p.cfg.Service
	if p.notifier != nil {
		p.notifier.Notify(n)
	}
}

func (p *Policy) rsNotify(s *rsState, stopping bool) {
	n := Notification{Kind: NotifyDown, Dest: s.cfg.Dest.Key(), Script: s.cfg.NotifyDown, Stopping: stopping}
	if s.alive {
		n.Kind, n.Script = NotifyUp, s.cfg.NotifyUp
	}
	p.notify(n)
}

// cmd is keepalived's ipvs_cmd for a destination: removing an inhibited
// one sets its weight to 0, adding it back restores the weight.
func (p *Policy) cmd(acts *[]Action, add bool, s *rsState, force bool, reason string) {
	d := s.cfg.Dest
	d.Weight = int32(realWeight(s.weight))
	a := Action{Service: p.cfg.Service, Dest: d, Sorry: s == p.sorry, Reason: reason}
	inhibit := s.inhibit && !force
	switch {
	case !add && inhibit:
		a.Kind, a.Dest.Weight = EditDest, 0
		if !s.set {
			a.Kind, s.set = AddDest, true
		}
	case add && inhibit && s.set:
		a.Kind = EditDest
	case add && !s.set:
		a.Kind, s.set = AddDest, true
		if s.inhibit && s.failed {
			a.Dest.Weight = 0
		}
	case !add && s.set:
		a.Kind, s.set = DelDest, false
	default:
		return // already as wanted (keepalived ignores EEXIST / ENOENT)
	}
	*acts = append(*acts, a)
}

// Init returns the actions that set the service up at start: up maps
// each realserver to its initial state (a missing entry counts as up; a
// realserver with an alpha checker starts down).
func (p *Policy) Init(up map[ipvs.DestKey]bool) []Action {
	var acts []Action
	p.started = true
	for _, s := range p.rs {
		u, ok := up[s.cfg.Dest.Key()]
		s.failed = ok && !u
		if (!s.failed && !s.alive) || (s.inhibit && !s.set) {
			p.cmd(&acts, true, s, false, "start")
			if !s.failed {
				s.alive = true
			}
		}
	}
	p.updateQuorum(&acts, true)
	if p.sorry != nil && p.sorry.inhibit && !p.sorry.set {
		p.sorry.failed = true // added with weight 0
		p.cmd(&acts, true, p.sorry, false, "sorry server inhibited until quorum is lost")
		p.sorry.failed = false
	}
	return acts
}

// SetState applies a realserver's new health state. initial marks the
// first verdict of an alpha checker confirming down (see Event.Initial).
func (p *Policy) SetState(key ipvs.DestKey, up, initial bool) []Action {
	s := p.byKey[key]
	if s == nil {
		return nil
	}
	s.failed = !up
	if s.alive == up {
		if initial && !up {
			p.rsNotify(s, false)
		}
		return nil
	}
	var acts []Action
	if p.quorumUp || p.sorry == nil || !p.sorry.alive {
		reason := "realserver down"
		if up {
			reason = "realserver up"
		}
		p.cmd(&acts, up, s, false, reason)
	}
	s.alive = up
	p.rsNotify(s, false)
	p.updateQuorum(&acts, false)
	return acts
}

// SetWeight applies a realserver's new effective weight (dynamic
// checkers).
func (p *Policy) SetWeight(key ipvs.DestKey, weight int) []Action {
	s := p.byKey[key]
	if s == nil {
		return nil
	}
	old := realWeight(s.weight)
	s.weight = weight
	if realWeight(weight) == old {
		return nil
	}
	var acts []Action
	if s.set && s.alive && (p.quorumUp || p.sorry == nil || !p.sorry.alive) {
		d := s.cfg.Dest
		d.Weight = int32(realWeight(weight))
		acts = append(acts, Action{Kind: EditDest, Service: p.cfg.Service, Dest: d, Reason: "dynamic weight"})
	}
	p.updateQuorum(&acts, false)
	return acts
}

// HandleEvent applies a Runner event.
func (p *Policy) HandleEvent(e Event) []Action {
	if e.Kind == EventWeight {
		return p.SetWeight(e.Dest, e.Weight)
	}
	acts := p.SetWeight(e.Dest, e.Weight)
	return append(acts, p.SetState(e.Dest, e.Up, e.Initial)...)
}

func (p *Policy) liveWeight() int {
	sum := 0
	for _, s := range p.rs {
		if s.alive {
			sum += realWeight(s.weight)
		}
	}
	return sum
}

// updateQuorum is keepalived's update_quorum_state: the quorum is gained
// at quorum+hysteresis and lost below quorum-hysteresis (or at weight 0);
// the sorry server replaces the realservers while it is lost.
func (p *Policy) updateQuorum(acts *[]Action, init bool) {
	sum := p.liveWeight()
	threshold := p.cfg.Quorum + p.cfg.Hysteresis
	if p.quorumUp {
		threshold = p.cfg.Quorum - p.cfg.Hysteresis
	}
	switch {
	case !p.quorumUp && sum >= threshold:
		p.quorumUp = true
		if p.sorry != nil && p.sorry.alive {
			p.cmd(acts, false, p.sorry, false, "quorum gained")
			p.sorry.alive = false
			for _, s := range p.rs {
				if s.alive {
					p.cmd(acts, true, s, false, "quorum gained")
				}
			}
		}
		p.notify(Notification{Kind: NotifyQuorumUp, Script: p.cfg.QuorumUp})
	case (p.quorumUp && (sum == 0 || sum < threshold)) ||
		(init && !p.quorumUp && p.sorry != nil && !p.sorry.alive):
		p.quorumUp = false
		if p.sorry != nil && !p.sorry.alive {
			for _, s := range p.rs {
				if s.alive {
					p.cmd(acts, false, s, false, "quorum lost")
				}
			}
			p.cmd(acts, true, p.sorry, false, "quorum lost")
			p.sorry.alive = true
		}
		p.notify(Notification{Kind: NotifyQuorumDown, Script: p.cfg.QuorumDown})
	}
}

// Shutdown returns the actions that take the service's destinations out
// at stop, removing inhibited ones too; with omega it also sends the
// realservers' and the quorum's down notifications.
func (p *Policy) Shutdown() []Action {
	var acts []Action
	if p.sorry != nil && p.sorry.set {
		p.cmd(&acts, false, p.sorry, true, "shutdown")
		p.sorry.alive = false
	}
	for _, s := range p.rs {
		p.cmd(&acts, false, s, true, "shutdown")
		if s.alive {
			s.alive = false
			if p.cfg.Omega {
				p.rsNotify(s, true)
			}
		}
	}
	p.quorumUp = false
	if p.cfg.Omega {
		p.notify(Notification{Kind: NotifyQuorumDown, Script: p.cfg.QuorumDown, Stopping: true})
	}
	return acts
}

// QuorumUp reports whether the service has its quorum.
func (p *Policy) QuorumUp() bool { return p.quorumUp }

// SorryActive reports whether the sorry server is serving.
func (p *Policy) SorryActive() bool { return p.sorry != nil && p.sorry.alive }
