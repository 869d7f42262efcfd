package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/govs/govs/internal/realserver"
)

// Exit codes of `govsadm realserver`.
const (
	rsExitOK      = 0
	rsExitFailed  = 1 // a change failed, or status found something missing
	rsExitUsage   = 2
	rsUsageHeader = `Usage:
  %[1]s realserver setup --vip ADDR[,ADDR...] [--mode dr|tun] [--dev lo]
        [--ingress-dev DEV[,DEV...]] [--tun-type ipip|gue] [--gue-port N]
        [--mss N | --mtu N] [--bpf-dir DIR] [--state FILE] [--dry-run]
  %[1]s realserver status [--vip ... and the other setup flags] [--state FILE]
  %[1]s realserver teardown [--state FILE] [--dry-run]
  ("rs" is short for "realserver")

Prepares this host as an LVS realserver for the DR or TUN forwarding
method: the VIPs on lo as host addresses, arp_ignore=1 and arp_announce=2,
and for TUN rp_filter loose, the BPF decapsulator for IPIP/GUE on the
ingress devices and the TCP MSS clamp (route advmss). setup changes only
what is not already right and saves the previous values in the state
file; teardown restores them; status exits 1 when something is missing.

Flags:
`
)

// isRealserver reports whether argv is a realserver command line: never
// under the name ipvsadm, which must stay exactly ipvsadm.
func isRealserver(argv []string) bool {
	return len(argv) > 1 && filepath.Base(argv[0]) != "ipvsadm" && (argv[1] == "realserver" || argv[1] == "rs")
}

// listFlag collects comma-separated values over repeated flags.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v == "" {
			return errors.New("empty item in list")
		}
		*l = append(*l, v)
	}
	return nil
}

// rsCommand is a parsed realserver command line.
type rsCommand struct {
	sub  string // setup, teardown, status, help
	cfg  *realserver.Config
	opts realserver.Options
}

// parseRealserver parses the arguments after "realserver".
func parseRealserver(prog string, args []string, stderr io.Writer) (*rsCommand, error) {
	fs := flag.NewFlagSet(prog+" realserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), rsUsageHeader, prog)
		fs.PrintDefaults()
	}
	if len(args) == 0 {
		fs.Usage()
		return nil, errors.New("missing command: setup, teardown or status")
	}
	c := &rsCommand{sub: args[0]}
	switch c.sub {
	case "setup", "teardown", "status":
	case "help", "-h", "-help", "--help":
		fs.Usage()
		c.sub = "help"
		return c, nil
	default:
		return nil, fmt.Errorf("unknown command %q: want setup, teardown or status (see %s realserver help)", c.sub, prog)
	}
	var (
		vip, ingress listFlag
		cfg          realserver.Config
		mode, tun    string
		guePort      uint
	)
	fs.Var(&vip, "vip", "virtual IP `addresses` to hold, comma-separated or repeated")
	fs.StringVar(&mode, "mode", "dr", "forwarding method of the director: dr (-g) or tun (-i)")
	fs.StringVar(&cfg.Dev, "dev", realserver.DefaultDev, "`device` for the VIPs: lo or a device without ARP")
	fs.Var(&ingress, "ingress-dev", "tun: `devices` the tunnelled packets arrive on (default: those of the default routes)")
	fs.StringVar(&tun, "tun-type", "", "tun: encapsulation, ipip or gue (default ipip, gue when --gue-port is given)")
	fs.UintVar(&guePort, "gue-port", 0, "tun: UDP `port` of GUE (the director's --tun-port)")
	fs.IntVar(&cfg.MSS, "mss", 0, "tun: advmss for the routes to clients (default: from the MTU)")
	fs.IntVar(&cfg.MTU, "mtu", 0, "tun: path MTU from the director, to derive the MSS from (default: the device's)")
	fs.StringVar(&cfg.BPFDir, "bpf-dir", realserver.DefaultBPFDir, "tun: bpffs `directory` for the decapsulator's pins")
	fs.StringVar(&c.opts.StatePath, "state", realserver.DefaultStatePath, "state `file` recording what setup changed")
	fs.BoolVar(&c.opts.DryRun, "dry-run", false, "print the plan, change nothing")
	if err := fs.Parse(args[1:]); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	if c.sub == "teardown" {
		for name := range set {
			if name != "state" && name != "dry-run" {
				return nil, fmt.Errorf("teardown takes only --state and --dry-run (it undoes what the state file records), not --%s", name)
			}
		}
		return c, nil
	}
	if c.sub == "status" && c.opts.DryRun {
		return nil, errors.New("status changes nothing: --dry-run is for setup and teardown")
	}
	if c.sub == "status" && len(vip) == 0 {
		if len(set) > 1 || (len(set) == 1 && !set["state"]) {
			return nil, errors.New("status: give --vip with the other setup flags, or none to check the last setup")
		}
		return c, nil // check against the state file's configuration
	}
	for _, v := range vip {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("--vip %q is not an IP address", v)
		}
		cfg.VIPs = append(cfg.VIPs, a)
	}
	cfg.Mode = realserver.Mode(mode)
	cfg.IngressDevs = ingress
	cfg.TunType = realserver.TunType(tun)
	if guePort > 65535 {
		return nil, fmt.Errorf("--gue-port %d out of range 1..65535", guePort)
	}
	cfg.GUEPort = uint16(guePort)
	if cfg.Mode != realserver.ModeTUN {
		// The TUN-only defaults are not "given": leave them to Validate.
		cfg.BPFDir = ""
		if set["bpf-dir"] {
			return nil, errors.New("--bpf-dir is for --mode tun only")
		}
	}
	c.cfg = &cfg
	return c, nil
}

// runRealserver runs `govsadm realserver ARGS` and returns the exit code.
func runRealserver(prog string, args []string, stdout, stderr io.Writer, newSystem func() (realserver.System, error)) int {
	prog = filepath.Base(prog)
	c, err := parseRealserver(prog, args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return rsExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s realserver: %v\n", prog, err)
		return rsExitUsage
	}
	if c.sub == "help" {
		return rsExitOK
	}
	sys, err := newSystem()
	if err != nil {
		fmt.Fprintf(stderr, "%s realserver: %v\n", prog, err)
		return rsExitFailed
	}
	var rep *realserver.Report
	switch c.sub {
	case "setup":
		rep, err = realserver.Setup(sys, *c.cfg, c.opts)
	case "teardown":
		rep, err = realserver.Teardown(sys, c.opts)
	case "status":
		rep, err = realserver.StatusOf(sys, c.cfg, c.opts)
	}
	if rep != nil {
		rep.WriteTo(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s realserver %s: %v\n", prog, c.sub, err)
		return rsExitFailed
	}
	if !rep.OK() {
		return rsExitFailed
	}
	return rsExitOK
}
