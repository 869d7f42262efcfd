package ipvsadm

import "strings"

// The scanner walks a command line the way libpopt does for ipvsadm
// (poptGetNextOpt with context flags 0): options may come in any order
// and are interleaved with plain arguments, which are kept as leftovers;
// short options cluster ("-Ln"), a short option's argument may be attached
// ("-w3", "-w=3"), a long option's may follow "=" ("--weight=3"); "--" ends
// the options; an optional argument (-p) is taken from the next word only
// when that word does not start with '-'.

// popt's error codes and messages (poptStrerror).
const (
	poptDone          = -1
	poptNoArg         = -10
	poptBadOpt        = -11
	poptUnwantedArg   = -12
	poptNoArgMsg      = "missing argument"
	poptBadOptMsg     = "unknown option"
	poptUnwantedArgMs = "option does not take an argument"
)

func poptStrerror(rc int) string {
	switch rc {
	case poptNoArg:
		return poptNoArgMsg
	case poptBadOpt:
		return poptBadOptMsg
	case poptUnwantedArg:
		return poptUnwantedArgMs
	}
	return "unknown error"
}

type scanner struct {
	args      []string // argv without argv[0]
	next      int      // index of the next word
	pending   bool     // inside a cluster of short options
	charArg   string   // the rest of that cluster
	rest      bool     // after "--": everything is a leftover
	leftovers []string
	ext       bool // accept govsadm's extension options
}

// option is one option found: its definition and argument.
type option struct {
	def    *optDef
	arg    string
	hasArg bool
}

// badOption is popt's poptBadOption: the last word consumed.
func (s *scanner) badOption() string {
	if s.next == 0 {
		return ""
	}
	return s.args[s.next-1]
}

func (s *scanner) findLong(name string) *optDef {
	for i := range options {
		d := &options[i]
		if d.long == name && (s.ext || !d.ext) {
			return d
		}
	}
	return nil
}

func (s *scanner) findShort(c byte) *optDef {
	if c == 0 {
		return nil
	}
	for i := range options {
		d := &options[i]
		if d.short == c && (s.ext || !d.ext) {
			return d
		}
	}
	return nil
}

// nextOpt returns the next option, or rc poptDone at the end, or a popt
// error code.
func (s *scanner) nextOpt() (o option, rc int) {
	var longArg string
	hasLong := false
	var def *optDef
	for def == nil {
		if !s.pending {
			if s.next == len(s.args) {
				return o, poptDone
			}
			w := s.args[s.next]
			s.next++
			if s.rest || w == "" || w[0] != '-' || w == "-" {
				s.leftovers = append(s.leftovers, w)
				continue
			}
			if w == "--" {
				s.rest = true
				continue
			}
			if w[1] == '-' {
				name := w[2:]
				if i := strings.IndexByte(name, '='); i >= 0 {
					longArg, hasLong = name[i+1:], true
					name = name[:i]
				}
				if def = s.findLong(name); def == nil {
					return o, poptBadOpt
				}
				break
			}
			s.pending, s.charArg = true, w[1:]
		}
		// A short option from the cluster.
		c := byte(0)
		if s.charArg != "" {
			c = s.charArg[0]
		}
		rest := ""
		if len(s.charArg) > 1 {
			rest = s.charArg[1:]
		}
		s.pending, s.charArg = false, ""
		if def = s.findShort(c); def == nil {
			return o, poptBadOpt
		}
		if rest != "" {
			if rest[0] == '=' {
				rest = rest[1:]
			}
			s.pending, s.charArg = true, rest
		}
	}
	o.def = def
	switch def.arg {
	case argNone:
		if hasLong || (s.pending && strings.HasPrefix(s.charArg, "=")) {
			return o, poptUnwantedArg
		}
	default:
		switch {
		case hasLong:
			o.arg, o.hasArg = longArg, true
		case s.pending:
			o.arg, o.hasArg = strings.TrimPrefix(s.charArg, "="), true
			s.pending, s.charArg = false, ""
		case s.next == len(s.args):
			if def.arg != argOptional {
				return o, poptNoArg
			}
		case def.arg == argOptional && strings.HasPrefix(s.args[s.next], "-"):
			// popt leaves a word starting with '-' to be an option.
		default:
			o.arg, o.hasArg = s.args[s.next], true
			s.next++
		}
	}
	return o, 0
}

// arg returns the next leftover argument (poptGetArg).
func (s *scanner) arg() (string, bool) {
	if len(s.leftovers) == 0 {
		return "", false
	}
	a := s.leftovers[0]
	s.leftovers = s.leftovers[1:]
	return a, true
}
