package ipvsadm_test

// Golden listings for the fixture below. Every line follows ipvsadm.c's
// (v1.31) printf formats; the texts were formatted from those format
// strings with an independent printf (Python's %-formatting), not with
// this package:
//
//	header:        "IP Virtual Server version %d.%d.%d (size=%d)\n"
//	title:         "Prot LocalAddress:Port Scheduler Flags\n"
//	               "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
//	service:       "%s %s" (svc_name, sched) + " (%s)" flags + " persistent %u" + " mask %s" + " pe %s" + " ops"
//	svc_name:      "%-4s %s" (proto, addr:port) cut at 33 bytes unless IPv6; "FWM  %u", "FWM  %u IPv6"
//	dest:          "  -> %-28s %-7s %-6d %-10u %-10u\n" (dest cut at 28 bytes unless IPv6)
//	--stats title: "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n"
//	--stats lines: "%-33s" / "  -> %-28s" then print_largenum x5:
//	               "%9llu" < 1e8, "%8lluK" < 1e9, "%8lluM" < 1e11, "%8lluG" < 1e14, else "%8lluT";
//	               --exact: "%*llu" with width 9, or digits+1 past 8 digits
//	--rate dest:   "  -> %-28s %8llu %8llu %8llu" then print_largenum x2
//	--thresholds:  "%-33s %-10s %-10s %-10s %-10s\n..." / "  -> %-28s %-10u %-10u %-10u %-10u\n"
//	--persistent-conn: "%-33s %-9s %-11s %-10s %-10s\n..." / "  -> %-28s %-9u %-11u %-10u %-10u\n"
//	--tun-info:    "  -> %-28s %-7s %-13s %-6d %-10u %-10u\n", tunnel info "%s:%d:%s" (gue)
//
// A '$' ends every line so that trailing spaces show.

// wantListNumeric
var wantListNumeric = golden(`
	IP Virtual Server version 1.2.1 (size=4096)$
	Prot LocalAddress:Port Scheduler Flags$
	  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn$
	TCP  192.168.1.110:80 wrr persistent 360$
	  -> 192.168.1.11:80              Route   1      0          0         $
	  -> 192.168.1.12:80              Route   2      3          7         $
	UDP  10.0.0.1:53 rr ops$
	  -> 10.1.0.1:5353                Masq    5      0          0         $
	TCP  [2001:db8::1]:443 sh (sh-port) persistent 300 mask 64$
	  -> [2001:db8::10]:443           Route   1      0          0         $
	FWM  7 wlc persistent 300 mask 255.255.255.0$
	  -> 10.2.0.1:0                   Route   1      0          0         $
	FWM  8 IPv6 lc$
	  -> [2001:db8::20]:0             Tunnel  3      0          0         $
`)

// wantListNames
var wantListNames = golden(`
	IP Virtual Server version 1.2.1 (size=4096)$
	Prot LocalAddress:Port Scheduler Flags$
	  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn$
	TCP  www.example.com:http wrr persistent 360$
	  -> rs1.example.com:http         Route   1      0          0         $
	  -> 192.168.1.12:http            Route   2      3          7         $
	UDP  10.0.0.1:domain rr ops$
	  -> 10.1.0.1:5353                Masq    5      0          0         $
	TCP  [v6.example.com]:https sh (sh-port) persistent 300 mask 64$
	  -> [2001:db8::10]:https         Route   1      0          0         $
	FWM  7 wlc persistent 300 mask 255.255.255.0$
	  -> 10.2.0.1:0                   Route   1      0          0         $
	FWM  8 IPv6 lc$
	  -> [2001:db8::20]:0             Tunnel  3      0          0         $
`)

// wantStats
var wantStats = golden(`
	IP Virtual Server version 1.2.1 (size=4096)$
	Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes$
	  -> RemoteAddress:Port$
	TCP  192.168.1.110:80                12345  123456K 99999999   12345M     123T$
	  -> 192.168.1.11:80                     1        0        0        0        0$
	  -> 192.168.1.12:80                     0        0        0        0        0$
	UDP  10.0.0.1:53                         0        0        0        0        0$
	  -> 10.1.0.1:5353                       0        0        0        0        0$
	TCP  [2001:db8::1]:443                   0        0        0        0        0$
	  -> [2001:db8::10]:443                  0        0        0        0        0$
	FWM  7                                   0        0        0        0        0$
	  -> 10.2.0.1:0                          0        0        0        0        0$
	FWM  8 IPv6                              0        0        0        0        0$
	  -> [2001:db8::20]:0                    0        0        0        0        0$
`)

// wantStatsExact
var wantStatsExact = golden(`
	IP Virtual Server version 1.2.1 (size=4096)$
	Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes$
	  -> RemoteAddress:Port$
	TCP  192.168.1.110:80                12345 123456789 99999999 12345678901 123456789012345$
	  -> 192.168.1.11:80                     1        0        0        0        0$
	  -> 192.168.1.12:80                     0        0        0        0        0$
	UDP  10.0.0.1:53                         0        0        0        0        0$
	  -> 10.1.0.1:5353                       0        0        0        0        0$
	TCP  [2001:db8::1]:443                   0        0        0        0        0$
	  -> [2001:db8::10]:443                  0        0        0        0        0$
	FWM  7                                   0        0        0        0        0$
	  -> 10.2.0.1:0                          0        0        0        0        0$
	FWM  8 IPv6                              0        0        0        0        0$
	  -> [2001:db8::20]:0                    0        0        0        0        0$
`)

// wantRate
var wantRate = golden(`
	IP Virtual Server version 1.2.1 (size=4096)$
	Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS$
	  -> RemoteAddress:Port$
	TCP  192.168.1.110:80                    5      100       90    1234M       99$
	  -> 192.168.1.11:80                     1        2        3        4        5$
	  -> 192.168.1.12:80                     0        0        0        0        0$
	UDP  10.0.0.1:53                         0        0        0        0        0$
	  -> 10.1.0.1:5353                       0        0        0        0        0$
	TCP  [2001:db8::1]:443                   0        0        0        0        0$
	  -> [2001:db8::10]:443                  0        0        0        0        0$
	FWM  7                                   0        0        0        0        0$
	  -> 10.2.0.1:0                          0        0        0        0        0$
	FWM  8 IPv6                              0        0        0        0        0$
	  -> [2001:db8::20]:0                    0        0        0        0        0$
`)

// wantRateExact
var wantRateExact = golden(`
	IP Virtual Server version 1.2.1 (size=4096)$
	Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS$
	  -> RemoteAddress:Port$
	TCP  192.168.1.110:80                    5      100       90 1234567890       99$
	  -> 192.168.1.11:80                     1        2        3        4        5$
	  -> 192.168.1.12:80                     0        0        0        0        0$
	UDP  10.0.0.1:53                         0        0        0        0        0$
	  -> 10.1.0.1:5353                       0        0        0        0        0$
	TCP  [2001:db8::1]:443                   0        0        0        0        0$
	  -> [2001:db8::10]:443                  0        0        0        0        0$
	FWM  7                                   0        0        0        0        0$
	  -> 10.2.0.1:0                          0        0        0        0        0$
	FWM  8 IPv6                              0        0        0        0        0$
	  -> [2001:db8::20]:0                    0        0        0        0        0$
`)

// wantThresholds
var wantThresholds = golden(`
	IP Virtual Server version 1.2.1 (size=4096)$
	Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn $
	  -> RemoteAddress:Port$
	TCP  192.168.1.110:80 wrr persistent 360$
	  -> 192.168.1.11:80              0          0          0          0         $
	  -> 192.168.1.12:80              100        50         3          7         $
	UDP  10.0.0.1:53 rr ops$
	  -> 10.1.0.1:5353                0          0          0          0         $
	TCP  [2001:db8::1]:443 sh (sh-port) persistent 300 mask 64$
	  -> [2001:db8::10]:443           0          0          0          0         $
	FWM  7 wlc persistent 300 mask 255.255.255.0$
	  -> 10.2.0.1:0                   0          0          0          0         $
	FWM  8 IPv6 lc$
	  -> [2001:db8::20]:0             0          0          0          0         $
`)

// wantPersistentConn
var wantPersistentConn = golden(`
	IP Virtual Server version 1.2.1 (size=4096)$
	Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn $
	  -> RemoteAddress:Port$
	TCP  192.168.1.110:80 wrr persistent 360$
	  -> 192.168.1.11:80              1         0           0          0         $
	  -> 192.168.1.12:80              2         2           3          7         $
	UDP  10.0.0.1:53 rr ops$
	  -> 10.1.0.1:5353                5         0           0          0         $
	TCP  [2001:db8::1]:443 sh (sh-port) persistent 300 mask 64$
	  -> [2001:db8::10]:443           1         0           0          0         $
	FWM  7 wlc persistent 300 mask 255.255.255.0$
	  -> 10.2.0.1:0                   1         0           0          0         $
	FWM  8 IPv6 lc$
	  -> [2001:db8::20]:0             3         0           0          0         $
`)

// wantTunInfo
var wantTunInfo = golden(`
	IP Virtual Server version 1.2.1 (size=4096)$
	Prot LocalAddress:Port Scheduler Flags$
	  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn$
	TCP  192.168.1.110:80 wrr persistent 360$
	  -> 192.168.1.11:80              Route   n/a           1      0          0         $
	  -> 192.168.1.12:80              Route   n/a           2      3          7         $
	UDP  10.0.0.1:53 rr ops$
	  -> 10.1.0.1:5353                Masq    n/a           5      0          0         $
	TCP  [2001:db8::1]:443 sh (sh-port) persistent 300 mask 64$
	  -> [2001:db8::10]:443           Route   n/a           1      0          0         $
	FWM  7 wlc persistent 300 mask 255.255.255.0$
	  -> 10.2.0.1:0                   Route   n/a           1      0          0         $
	FWM  8 IPv6 lc$
	  -> [2001:db8::20]:0             Tunnel  gue:6080:+c   3      0          0         $
`)
