package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("testdata/keepalived.conf"); err == nil {
		f.Add(string(b))
	}
	f.Add("global_defs {\n router_id x\n}\n")
	f.Add("$A=$A$A\n$A\nvirtual_server_group g {\n 10.0.0.1-255 80\n fe80::1-ffff 80\n}\n")
	f.Add("@x y {\n}\n}\n{\n\"")
	f.Add("virtual_server 10.0.0.1 53 {\n protocol UDP\n real_server 10.0.0.2 53 {\n  proxy_protocol v1\n }\n}\n")
	f.Fuzz(func(t *testing.T, in string) {
		cfg, _, err := Parse("f.conf", strings.NewReader(in))
		if err != nil {
			var e *Error
			for _, x := range unwrapAll(err) {
				if !errors.As(x, &e) || e.Pos.Line == 0 {
					t.Fatalf("error without position: %v", x)
				}
			}
			return
		}
		if _, err := cfg.IPVS(); err != nil {
			for _, x := range unwrapAll(err) {
				var e *Error
				if !errors.As(x, &e) || e.Pos.Line == 0 {
					t.Fatalf("IPVS error without position: %v", x)
				}
			}
		}
	})
}

func unwrapAll(err error) []error {
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		return u.Unwrap()
	}
	return []error{err}
}
