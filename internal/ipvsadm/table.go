package ipvsadm

// This file holds ipvsadm's tables: its commands, its options (the popt
// table of ipvsadm.c, v1.31) and the legal combinations of the two.

// Cmd is an ipvsadm command: the first option on the command line.
type Cmd int

// Commands, in ipvsadm's CMD_* order (the order indexes cmdNames and the
// commands-versus-options table).
const (
	CmdNone Cmd = iota
	CmdAdd
	CmdEdit
	CmdDel
	CmdFlush
	CmdList
	CmdAddDest
	CmdDelDest
	CmdEditDest
	CmdTimeout
	CmdStartDaemon
	CmdStopDaemon
	CmdRestore
	CmdSave
	CmdZero
	// CmdHelp and CmdVersion are -h and -v: ipvsadm handles them while
	// parsing and they take no options.
	CmdHelp
	CmdVersion
)

// cmdNames are ipvsadm's names for CmdAdd..CmdZero, as its messages print them.
var cmdNames = [...]string{
	"add-service", "edit-service", "delete-service", "flush", "list",
	"add-server", "delete-server", "edit-server", "set", "start-daemon",
	"stop-daemon", "restore", "save", "zero",
}

// String returns ipvsadm's name of the command.
func (c Cmd) String() string {
	switch {
	case c >= CmdAdd && c <= CmdZero:
		return cmdNames[c-1]
	case c == CmdHelp:
		return "help"
	case c == CmdVersion:
		return "version"
	}
	return "none"
}

// Opt is a column of the commands-versus-options table (ipvsadm's OPTC_*).
type Opt int

// Options, in ipvsadm's OPTC_* order; OptJSON and OptProxyProtocol are
// govsadm's extensions.
const (
	OptNumeric Opt = iota
	OptConnection
	OptService
	OptScheduler
	OptPersistent
	OptNetmask
	OptServer
	OptForward
	OptWeight
	OptUThreshold
	OptLThreshold
	OptMcast
	OptTimeout
	OptDaemon
	OptStats
	OptRate
	OptThresholds
	OptPersistentConn
	OptNoSort
	OptSyncID
	OptExact
	OptOnePacket
	OptPE
	OptSchedFlags
	OptMcastGroup
	OptMcastPort
	OptMcastTTL
	OptSyncMaxLen
	OptTunInfo
	OptTunType
	OptTunPort
	OptTunNoCsum
	OptTunCsum
	OptTunRemCsum
	OptJSON
	OptProxyProtocol
	numOpts
)

// optNames are the option names ipvsadm's messages print.
var optNames = [numOpts]string{
	"numeric", "connection", "service-address", "scheduler", "persistent",
	"netmask", "real-server", "forwarding-method", "weight", "u-threshold",
	"l-threshold", "mcast-interface", "timeout", "daemon", "stats", "rate",
	"thresholds", "persistent-conn", "nosort", "syncid", "exact", "ops", "pe",
	"sched-flags", "mcast-group", "mcast-port", "mcast-ttl", "sync-maxlen",
	"tun-info", "tun-type", "tun-port", "tun-nocsum", "tun-csum",
	"tun-remcsum", "json", "proxy-protocol",
}

// String returns ipvsadm's name of the option.
func (o Opt) String() string {
	if o >= 0 && o < numOpts {
		return optNames[o]
	}
	return "?"
}

// OptSet is a set of options seen on one command line.
type OptSet uint64

// Has reports whether o is in s.
func (s OptSet) Has(o Opt) bool { return s&(1<<o) != 0 }

// commandsVsOptions is ipvsadm's commands_v_options table, one string per
// command (CmdAdd..CmdZero), one byte per option
// (OptNumeric..OptProxyProtocol): '+' compulsory, 'x' illegal, '1'
// exclusive (at most one of the '1' options), ' ' optional. The last two
// columns (json, proxy-protocol) are govsadm's.
//
//	-n -c svc -s -p -M -r fwd -w -x -y -mc tot dmn -st -rt thr -pc srt sid -ex ops -pe -b grp port ttl size tinf type tprt nocs csum remc json pp
var commandsVsOptions = [CmdZero][numOpts]byte{
	row("xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx" + "xx"), // ADD
	row("xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx" + "xx"), // EDIT
	row("xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" + "xx"), // DEL
	row("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" + "xx"), // FLUSH
	row(" 11xxxxxxxxx11       xxxxxxx xxxxx" + " x"), // LIST
	row("xx+xxx+    xxxxxxxxxxxxxxxxxx     " + "x "), // ADDSRV
	row("xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx" + "xx"), // DELSRV
	row("xx+xxx+    xxxxxxxxxxxxxxxxxx     " + "x "), // EDITSRV
	row("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" + "xx"), // TIMEOUT
	row("xxxxxxxxxxx xxxxxxx xxxx    xxxxxx" + "xx"), // STARTD
	row("xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx" + "xx"), // STOPD
	row("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" + "xx"), // RESTORE
	row(" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" + "xx"), // SAVE
	row("xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" + "xx"), // ZERO
}

func row(s string) (r [numOpts]byte) {
	if len(s) != int(numOpts) {
		panic("ipvsadm: commands_v_options row has the wrong length: " + s)
	}
	copy(r[:], s)
	return r
}

// Tunnel types and the tunnel options each allows (tunnel_types_v_options):
// columns tun-port, tun-nocsum, tun-csum, tun-remcsum.
var (
	tunNames       = [...]string{"ipip", "gue", "gre"}
	tunOpts        = [...]Opt{OptTunPort, OptTunNoCsum, OptTunCsum, OptTunRemCsum}
	tunnelVsOption = [...][4]byte{
		{'x', 'x', 'x', 'x'}, // ipip
		{'+', '1', '1', '1'}, // gue
		{'x', '1', '1', 'x'}, // gre
	}
	// tunFlagNames are the listing's names of the tunnel flags (-c, +c,
	// r+c) and tunFlagOpts the options that set them, indexed by flags.
	tunFlagNames = [...]string{"-c", "+c", "r+c"}
	tunFlagOpts  = [...]string{"--tun-nocsum", "--tun-csum", "--tun-remcsum"}
)

// argKind says whether an option takes an argument.
type argKind uint8

const (
	argNone argKind = iota
	argRequired
	argOptional
)

// tag identifies an option of the command line (several options may share
// a table column, e.g. -t, -u, --sctp-service and -f).
type tag int

const (
	tAdd tag = iota
	tEdit
	tDel
	tClear
	tList
	tZero
	tAddDest
	tEditDest
	tDelDest
	tSet
	tHelp
	tVersion
	tRestore
	tSave
	tStartDaemon
	tStopDaemon
	tTCP
	tUDP
	tSCTP
	tFWMark
	tSched
	tPersistent
	tNetmask
	tReal
	tMasq
	tIPIP
	tGate
	tWeight
	tUThr
	tLThr
	tNumeric
	tConn
	tMcastIf
	tSyncID
	tTimeout
	tDaemon
	tStats
	tRate
	tThresholds
	tPersistConn
	tNoSort
	tSort
	tExact
	tIPv6
	tOps
	tPE
	tSchedFlags
	tMcastGroup
	tMcastPort
	tMcastTTL
	tSyncMaxLen
	tTunInfo
	tTunType
	tTunPort
	tTunNoCsum
	tTunCsum
	tTunRemCsum
	// govsadm's extensions, unknown under the name ipvsadm.
	tJSON
	tSocket
	tProxyProtocol
)

type optDef struct {
	long  string
	short byte
	arg   argKind
	tag   tag
	ext   bool // a govsadm extension
}

// options is ipvsadm's popt table, in its order (popt finds the first
// match, so "--list" is -L).
var options = []optDef{
	{"add-service", 'A', argNone, tAdd, false},
	{"edit-service", 'E', argNone, tEdit, false},
	{"delete-service", 'D', argNone, tDel, false},
	{"clear", 'C', argNone, tClear, false},
	{"list", 'L', argNone, tList, false},
	{"list", 'l', argNone, tList, false},
	{"zero", 'Z', argNone, tZero, false},
	{"add-server", 'a', argNone, tAddDest, false},
	{"edit-server", 'e', argNone, tEditDest, false},
	{"delete-server", 'd', argNone, tDelDest, false},
	{"set", 0, argNone, tSet, false},
	{"help", 'h', argNone, tHelp, false},
	{"version", 'v', argNone, tVersion, false},
	{"restore", 'R', argNone, tRestore, false},
	{"save", 'S', argNone, tSave, false},
	{"start-daemon", 0, argRequired, tStartDaemon, false},
	{"stop-daemon", 0, argRequired, tStopDaemon, false},
	{"tcp-service", 't', argRequired, tTCP, false},
	{"udp-service", 'u', argRequired, tUDP, false},
	{"sctp-service", 0, argRequired, tSCTP, false},
	{"fwmark-service", 'f', argRequired, tFWMark, false},
	{"scheduler", 's', argRequired, tSched, false},
	{"persistent", 'p', argOptional, tPersistent, false},
	{"netmask", 'M', argRequired, tNetmask, false},
	{"real-server", 'r', argRequired, tReal, false},
	{"masquerading", 'm', argNone, tMasq, false},
	{"ipip", 'i', argNone, tIPIP, false},
	{"gatewaying", 'g', argNone, tGate, false},
	{"weight", 'w', argRequired, tWeight, false},
	{"u-threshold", 'x', argRequired, tUThr, false},
	{"l-threshold", 'y', argRequired, tLThr, false},
	{"numeric", 'n', argNone, tNumeric, false},
	{"connection", 'c', argNone, tConn, false},
	{"mcast-interface", 0, argRequired, tMcastIf, false},
	{"syncid", 0, argRequired, tSyncID, false},
	{"timeout", 0, argNone, tTimeout, false},
	{"daemon", 0, argNone, tDaemon, false},
	{"stats", 0, argNone, tStats, false},
	{"rate", 0, argNone, tRate, false},
	{"thresholds", 0, argNone, tThresholds, false},
	{"persistent-conn", 0, argNone, tPersistConn, false},
	{"nosort", 0, argNone, tNoSort, false},
	{"sort", 0, argNone, tSort, false},
	{"exact", 'X', argNone, tExact, false},
	{"ipv6", '6', argNone, tIPv6, false},
	{"ops", 'o', argNone, tOps, false},
	{"pe", 0, argRequired, tPE, false},
	{"sched-flags", 'b', argRequired, tSchedFlags, false},
	{"mcast-group", 0, argRequired, tMcastGroup, false},
	{"mcast-port", 0, argRequired, tMcastPort, false},
	{"mcast-ttl", 0, argRequired, tMcastTTL, false},
	{"sync-maxlen", 0, argRequired, tSyncMaxLen, false},
	{"tun-info", 0, argNone, tTunInfo, false},
	{"tun-type", 0, argRequired, tTunType, false},
	{"tun-port", 0, argRequired, tTunPort, false},
	{"tun-nocsum", 0, argNone, tTunNoCsum, false},
	{"tun-csum", 0, argNone, tTunCsum, false},
	{"tun-remcsum", 0, argNone, tTunRemCsum, false},
	{"json", 0, argNone, tJSON, true},
	{"socket", 0, argRequired, tSocket, true},
	{"proxy-protocol", 0, argRequired, tProxyProtocol, true},
}
