package ebpf

import (
	"testing"
	"time"

	"github.com/govs/govs/internal/ipvs"
	"github.com/govs/govs/internal/stats"
)

// TestFixtureRates checks --rate: the estimator of package stats runs over
// the per-CPU counters, sampled every two seconds, so a service's and its
// destination's rates are exactly what stats.Estimator computes from the
// same counters.
func TestFixtureRates(t *testing.T) {
	f := newFixture(t)
	f.addService(udpService(vipv4, 53, "rr"), ipvs.Destination{Addr: rs1v4, Port: 53, Fwd: ipvs.Masq, Weight: 1})
	t0 := time.Unix(1000, 0)
	if err := f.tab.sampleRates(t0); err != nil { // starts the clock
		t.Fatal(err)
	}
	var want stats.Estimator
	port := uint16(1000)
	for round := 1; round <= 5; round++ {
		for range 20 * round {
			in := frame(macClient, macCL0, false, ipPacket(t, cipv4, vipv4, l4{proto: ipvs.ProtoUDP, sport: port, dport: 53, payload: []byte("query")}))
			port++
			if ret, _ := f.run(in, 0); ret != actRedirect {
				t.Fatalf("verdict %d", ret)
			}
		}
		if err := f.tab.sampleRates(t0.Add(time.Duration(round) * stats.Interval)); err != nil {
			t.Fatal(err)
		}
		st, err := f.tab.services()
		if err != nil {
			t.Fatal(err)
		}
		want.Sample(st[0].Stats)
		if st[0].Rates != want.Rates() || st[0].Dests[0].Rates != want.Rates() {
			t.Errorf("round %d: service rates %+v, destination %+v, want %+v", round, st[0].Rates, st[0].Dests[0].Rates, want.Rates())
		}
		if st[0].Rates.CPS == 0 || st[0].Rates.InBPS == 0 {
			t.Errorf("round %d: zero rates %+v", round, st[0].Rates)
		}
	}
	// Zero resets the estimators with the counters.
	if err := f.tab.zero(nil); err != nil {
		t.Fatal(err)
	}
	st, _ := f.tab.services()
	if st[0].Rates != (ipvs.Rates{}) {
		t.Errorf("after zero: rates %+v", st[0].Rates)
	}
}
