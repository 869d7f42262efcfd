package config

import (
	"reflect"
	"strings"
	"testing"
)

func services(t *testing.T, in string) []ServiceConfig {
	t.Helper()
	cfg, _, err := Parse("k.conf", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	s, err := cfg.IPVS()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func summary(c Changes) []string {
	var out []string
	for _, s := range c.AddServices {
		out = append(out, "+svc "+s.ServiceKey.String())
	}
	for _, e := range c.EditServices {
		out = append(out, "~svc "+e.New.ServiceKey.String()+" "+strings.Join(e.Fields, ","))
	}
	for _, d := range c.AddDests {
		out = append(out, "+dst "+d.Service.String()+" "+d.Dest.AddrPort().String())
	}
	for _, e := range c.EditDests {
		out = append(out, "~dst "+e.Service.String()+" "+e.New.AddrPort().String()+" "+strings.Join(e.Fields, ","))
	}
	for _, d := range c.RemoveDests {
		out = append(out, "-dst "+d.Service.String()+" "+d.Dest.AddrPort().String())
	}
	for _, s := range c.RemoveServices {
		out = append(out, "-svc "+s.ServiceKey.String())
	}
	return out
}

func TestDiff(t *testing.T) {
	base := `virtual_server 10.0.0.1 80 {
    protocol TCP
    lb_algo rr
    real_server 10.0.1.1 80 {
        weight 1
    }
    real_server 10.0.1.2 80 {
        weight 1
    }
}
virtual_server 10.0.0.2 53 {
    protocol UDP
    real_server 10.0.1.9 53 {
    }
}
`
	tests := []struct {
		name string
		new  string
		want []string
	}{
		{"same", base, nil},
		{"weight and scheduler", strings.Replace(strings.Replace(base, "lb_algo rr", "lb_algo wrr", 1), "weight 1\n    }\n    real_server 10.0.1.2", "weight 5\n    }\n    real_server 10.0.1.2", 1),
			[]string{"~svc tcp 10.0.0.1:80 scheduler", "~dst tcp 10.0.0.1:80 10.0.1.1:80 weight"}},
		{"add and remove", `virtual_server 10.0.0.1 80 {
    protocol TCP
    lb_algo rr
    real_server 10.0.1.3 80 {
    }
    real_server 10.0.1.2 80 {
    }
}
virtual_server 10.0.0.3 80 {
    protocol TCP
    real_server 10.0.1.4 80 {
    }
}
`, []string{"+svc tcp 10.0.0.3:80", "+dst tcp 10.0.0.1:80 10.0.1.3:80", "+dst tcp 10.0.0.3:80 10.0.1.4:80",
			"-dst tcp 10.0.0.1:80 10.0.1.1:80", "-svc udp 10.0.0.2:53"}},
		{"proxy_protocol", strings.Replace(base, "weight 1\n    }\n    real_server 10.0.1.2", "weight 1\n        proxy_protocol 2\n    }\n    real_server 10.0.1.2", 1),
			[]string{"~dst tcp 10.0.0.1:80 10.0.1.1:80 proxy_protocol"}},
	}
	old := services(t, base)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := Diff(old, services(t, tc.new))
			if got := summary(ch); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
			if (len(tc.want) == 0) != ch.Empty() {
				t.Errorf("Empty() = %v", ch.Empty())
			}
		})
	}
}
