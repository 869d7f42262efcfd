package ipvsadm_test

import (
	"strings"
	"testing"

	"github.com/govs/govs/internal/api/apitest"
)

// wantSave follows print_service_entry's FMT_RULE formats:
// "-A %s -s %s" + " -p %u" + " -M %s" + " --pe %s" + " -o" + " -b %s";
// "-a %s -r %s %s -w %d\n"; tunnels
// "-a %s -r %s %s -w %d --tun-type %s --tun-port %d %s\n" (gue).
// svc_name is "-t %s", "-u %s", "-f %u", "-f %u -6".
var wantSave = golden(`
	-A -t 192.168.1.110:80 -s wrr -p 360$
	-a -t 192.168.1.110:80 -r 192.168.1.11:80 -g -w 1$
	-a -t 192.168.1.110:80 -r 192.168.1.12:80 -g -w 2$
	-A -u 10.0.0.1:53 -s rr -o$
	-a -u 10.0.0.1:53 -r 10.1.0.1:5353 -m -w 5$
	-A -t [2001:db8::1]:443 -s sh -p 300 -M 64 -b sh-port$
	-a -t [2001:db8::1]:443 -r [2001:db8::10]:443 -g -w 1$
	-A -f 7 -s wlc -p 300 -M 255.255.255.0$
	-a -f 7 -r 10.2.0.1:0 -g -w 1$
	-A -f 8 -6 -s lc$
	-a -f 8 -6 -r [2001:db8::20]:0 -i -w 3 --tun-type gue --tun-port 6080 --tun-csum$
`)

// wantSaveNames is -S without -n: names where the resolver has them.
var wantSaveNames = golden(`
	-A -t www.example.com:http -s wrr -p 360$
	-a -t www.example.com:http -r rs1.example.com:http -g -w 1$
	-a -t www.example.com:http -r 192.168.1.12:http -g -w 2$
	-A -u 10.0.0.1:domain -s rr -o$
	-a -u 10.0.0.1:domain -r 10.1.0.1:5353 -m -w 5$
	-A -t [v6.example.com]:https -s sh -p 300 -M 64 -b sh-port$
	-a -t [v6.example.com]:https -r [2001:db8::10]:https -g -w 1$
	-A -f 7 -s wlc -p 300 -M 255.255.255.0$
	-a -f 7 -r 10.2.0.1:0 -g -w 1$
	-A -f 8 -6 -s lc$
	-a -f 8 -6 -r [2001:db8::20]:0 -i -w 3 --tun-type gue --tun-port 6080 --tun-csum$
`)

func TestSave(t *testing.T) {
	diff(t, "-S -n", run(t, fixture(), nil, "", "ipvsadm", "-S", "-n").stdout, wantSave)
	diff(t, "--save --numeric", run(t, fixture(), nil, "", "ipvsadm", "--save", "--numeric").stdout, wantSave)
	diff(t, "-S", run(t, fixture(), newFakeResolver(), "", "ipvsadm", "-S").stdout, wantSaveNames)
}

func TestSaveRestoreRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		names bool
	}{
		{"numeric", []string{"-S", "-n"}, false},
		{"names", []string{"-S"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r *fakeResolver
			if tc.names {
				// ipvsadm saves an IPv6 name as "[name]:port" but parses
				// only IPv4 names back, so the round trip needs IPv6
				// addresses without names.
				r = newFakeResolver()
				delete(r.hosts, "v6.example.com")
			}
			save := func(f *apitest.Director) string {
				if r == nil {
					return run(t, f, nil, "", append([]string{"ipvsadm"}, tc.args...)...).stdout
				}
				return run(t, f, r, "", append([]string{"ipvsadm"}, tc.args...)...).stdout
			}
			first := save(fixture())
			f := apitest.New()
			var res result
			if r == nil {
				res = run(t, f, nil, first, "ipvsadm", "-R")
			} else {
				res = run(t, f, r, first, "ipvsadm", "-R")
			}
			if res.code != 0 || res.stderr != "" {
				t.Fatalf("restore: %+v", res)
			}
			diff(t, "save after restore", save(f), first)
		})
	}
}

func TestRestore(t *testing.T) {
	in := "# a comment line\n" +
		"\n" +
		"ipvsadm -A -t 10.0.0.1:80 -s rr   # trailing comment\n" +
		"  \t-a -t 10.0.0.1:80 -r 10.0.0.2 -m\r\n" +
		"-a -t 10.0.0.1:80 -r 10.0.0.2 -m\n" + // refused: reported, restore goes on
		"-a -t 10.0.0.1:80 -r 10.0.0.3:8080 -m -w 4" // no final newline
	f := apitest.New()
	res := run(t, f, nil, in, "ipvsadm", "-R")
	if res.stderr != "Destination already exists\n" || res.code != 0 {
		t.Errorf("restore: %+v", res)
	}
	want := golden(`
		-A -t 10.0.0.1:80 -s rr$
		-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 1$
		-a -t 10.0.0.1:80 -r 10.0.0.3:8080 -m -w 4$
	`)
	diff(t, "restored", run(t, f, nil, "", "ipvsadm", "-Sn").stdout, want)

	// The exit code is the last command's; a parse error stops the restore.
	res = run(t, apitest.New(), nil, "-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80\n", "ipvsadm", "-R")
	if res.code != 255 || res.stderr != "Service already exists\n" {
		t.Errorf("last fails: %+v", res)
	}
	f = apitest.New()
	res = run(t, f, nil, "-A -t 10.0.0.1:80 -w 3\n-A -t 10.0.0.2:80\n", "ipvsadm", "-R")
	if calls := f.Calls(); res.code != 2 || res.stderr != "Illegal 'weight' option with the 'add-service' command\n" || len(calls) != 1 || calls[0].Method != "Info" {
		t.Errorf("parse error: %+v calls %v", res, f.Calls())
	}
	res = run(t, apitest.New(), nil, "-R\n", "ipvsadm", "-R")
	if res.code != 255 || res.stderr != "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n" {
		t.Errorf("nested -R: %+v", res)
	}
	if res := run(t, apitest.New(), nil, "-L -n\n", "ipvsadm", "-R"); !strings.HasPrefix(res.stdout, "IP Virtual Server") {
		t.Errorf("-L in restore: %+v", res)
	}
}
