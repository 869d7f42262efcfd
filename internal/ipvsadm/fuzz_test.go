package ipvsadm_test

import (
	"context"
	"strings"
	"testing"

	"github.com/govs/govs/internal/api/apitest"
	"github.com/govs/govs/internal/ipvsadm"
)

// FuzzParseArgs: no command line panics the parser, and every failure is
// an *ExitError with ipvsadm's codes.
func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{
		"-A -t 10.0.0.1:80 -s rr -p 60 -M 255.255.255.0",
		"-a -t [2001:db8::1]:443 -r [2001:db8::2] -i --tun-type gue --tun-port 6080 --tun-csum",
		"-Ln --stats --exact",
		"--set 1 2 3",
		"--start-daemon master --mcast-group 224.0.0.81 --syncid 3",
		"-A -f 1 -6 -M 64 -p",
		"-L -w= -p=-- --x=y -",
		"-A -t 0x1.2:+80 -b sh-port,,flag-1",
		"-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m --proxy-protocol v1",
		"-e -u 10.0.0.1:53 -r 10.0.0.2 -m --proxy-protocol=2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, " ")
		for _, compat := range []bool{true, false} {
			p := &ipvsadm.Parser{Prog: "ipvsadm", Compat: compat, Resolver: newFakeResolver()}
			c, err := p.Parse(context.Background(), args)
			if err != nil {
				ee, ok := err.(*ipvsadm.ExitError)
				if !ok || (ee.Code != 2 && ee.Code != 255) || !strings.HasSuffix(ee.Msg, "\n") {
					t.Fatalf("%q: %v", args, err)
				}
				continue
			}
			_ = c.String()
		}
	})
}

// FuzzRestore: any input to -R runs without panicking, and a restore of
// -S's output reproduces it, under either name (govsadm's -S and -R carry
// --proxy-protocol).
func FuzzRestore(f *testing.F) {
	f.Add("-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 3\n")
	f.Add("# comment\nipvsadm -A -u 10.0.0.1:53 -o\n\n-a -u 10.0.0.1:53 -r 10.0.0.2 -x 5 -y 1\r\n")
	f.Add("-A -f 7 -6 -s sh -b sh-fallback\n-a -f 7 -6 -r [::2]:0 -i --tun-type gre --tun-csum\n")
	f.Add("-C\n-L -n\n--set 1 2 3\n-R\n")
	f.Add("-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2:81 -m --proxy-protocol 1\n-a -t 10.0.0.1:80 -r 10.0.0.3 -m --proxy-protocol v2\n")
	f.Fuzz(func(t *testing.T, in string) {
		for _, name := range []string{"ipvsadm", "govsadm"} {
			d := apitest.New()
			run(t, d, nil, in, name, "-R")
			saved := run(t, d, nil, "", name, "-S", "-n").stdout
			d2 := apitest.New()
			if r := run(t, d2, nil, saved, name, "-R"); r.code != 0 {
				t.Fatalf("%s: restoring saved rules failed: %+v\n%s", name, r, saved)
			}
			if again := run(t, d2, nil, "", name, "-S", "-n").stdout; again != saved {
				t.Fatalf("%s: save/restore not stable:\n%s\nvs\n%s", name, saved, again)
			}
		}
	})
}
