package ipvsadm_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/api/apitest"
	"github.com/govs/govs/internal/ipvsadm"
)

// TestOptionOrder: ipvsadm 1.31 takes the command from the first option
// popt returns and every other option in any order after it (words that
// are not options may come first); govsadm's --socket and --json may also
// come before the command.
func TestOptionOrder(t *testing.T) {
	const try = "Try `govsadm -h' or 'govsadm --help' for more information.\n"
	for _, tc := range []struct {
		args   []string
		compat bool
		cmd    ipvsadm.Cmd
		socket string
		json   bool
		err    string
	}{
		{args: []string{"-L", "-n"}, compat: true, cmd: ipvsadm.CmdList},
		{args: []string{"-Ln", "--stats", "-t", "10.0.0.1:80"}, compat: true, cmd: ipvsadm.CmdList},
		{args: []string{"-L", "-t", "10.0.0.1:80", "-n"}, compat: true, cmd: ipvsadm.CmdList},
		{args: []string{"-a", "-w", "3", "-r", "10.0.0.2", "-m", "-t", "10.0.0.1:80"}, compat: true, cmd: ipvsadm.CmdAddDest},
		{args: []string{"-A", "-s", "rr", "-t", "10.0.0.1:80"}, compat: true, cmd: ipvsadm.CmdAdd},
		{args: []string{"--set", "1", "-n", "2", "3"}, compat: true, err: "Illegal 'numeric' option with the 'set' command\n"},
		// As in ipvsadm: the command first.
		{args: []string{"-n", "-L"}, compat: true, err: strings.ReplaceAll(try, "govsadm", "ipvsadm")},
		{args: []string{"-n", "-L"}, err: try},
		{args: []string{"-t", "10.0.0.1:80", "-A"}, err: try},

		// govsadm's own options, anywhere.
		{args: []string{"--socket", "/tmp/x", "-Ln"}, cmd: ipvsadm.CmdList, socket: "/tmp/x"},
		{args: []string{"--socket=/tmp/x", "-L", "-n"}, cmd: ipvsadm.CmdList, socket: "/tmp/x"},
		{args: []string{"-Ln", "--socket", "/tmp/x"}, cmd: ipvsadm.CmdList, socket: "/tmp/x"},
		{args: []string{"--json", "-L"}, cmd: ipvsadm.CmdList, json: true},
		{args: []string{"--json", "--socket", "/tmp/x", "-L", "-n"}, cmd: ipvsadm.CmdList, json: true, socket: "/tmp/x"},
		{args: []string{"--socket", "/tmp/x", "-A", "-t", "10.0.0.1:80"}, cmd: ipvsadm.CmdAdd, socket: "/tmp/x"},
		{args: []string{"--socket", "/tmp/x", "-R"}, cmd: ipvsadm.CmdRestore, socket: "/tmp/x"},
		{args: []string{"--socket", "/tmp/x", "-h"}, cmd: ipvsadm.CmdHelp},
		// Alone, they mean what no arguments mean: list.
		{args: []string{"--socket", "/tmp/x"}, cmd: ipvsadm.CmdList, socket: "/tmp/x"},
		{args: []string{"--json"}, cmd: ipvsadm.CmdList, json: true},
		{args: []string{"--json", "-A", "-t", "10.0.0.1:80"}, err: "Illegal 'json' option with the 'add-service' command\n"},
		{args: []string{"--socket", "/tmp/x", "-n", "-L"}, err: try},
		{args: []string{"--socket"}, err: try},
		{args: []string{"--json", "foo"}, err: try},
		// Not under the name ipvsadm.
		{args: []string{"--socket", "/tmp/x", "-Ln"}, compat: true, err: strings.ReplaceAll(try, "govsadm", "ipvsadm")},
	} {
		prog := "govsadm"
		if tc.compat {
			prog = "ipvsadm"
		}
		p := &ipvsadm.Parser{Prog: prog, Compat: tc.compat}
		c, err := p.Parse(context.Background(), tc.args)
		if tc.err != "" {
			if err == nil || err.(*ipvsadm.ExitError).Msg != tc.err {
				t.Errorf("%s %q: got %v, want %q", prog, tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %q: %v", prog, tc.args, err)
			continue
		}
		if c.Cmd != tc.cmd || c.Socket != tc.socket || c.JSON != tc.json {
			t.Errorf("%s %q: cmd %s socket %q json %v, want %s %q %v", prog, tc.args, c.Cmd, c.Socket, c.JSON, tc.cmd, tc.socket, tc.json)
		}
	}
}

// TestSocketBeforeCommand is the bug report: govsadm --socket X -Ln
// exited 255 with "Try --help" while govsadm -Ln --socket X worked.
func TestSocketBeforeCommand(t *testing.T) {
	for _, args := range [][]string{{"--socket", "/run/x.sock", "-Ln"}, {"-Ln", "--socket", "/run/x.sock"}} {
		var dialed string
		var out, errb bytes.Buffer
		code := ipvsadm.Main(context.Background(), append([]string{"govsadm"}, args...), ipvsadm.Env{
			Stdout: &out, Stderr: &errb,
			Dial: func(s string) api.Director { dialed = s; return apitest.New() },
		})
		if code != 0 || dialed != "/run/x.sock" || !strings.HasPrefix(out.String(), "IP Virtual Server version") || errb.Len() != 0 {
			t.Errorf("govsadm %q: exit %d, dialed %q, stdout %q, stderr %q", args, code, dialed, out.String(), errb.String())
		}
	}
}
