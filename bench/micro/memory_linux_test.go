package micro

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/govs/govs/internal/netns"
)

// govsObject is the data plane's compiled BPF object, beside its loader.
const govsObject = "../../internal/dataplane/ebpf/govs_bpfel.o"

// memlock is the kernel's accounting of a map's memory (fdinfo).
func memlock(m *ebpf.Map) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/self/fdinfo/%d", m.FD()))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if v, ok := strings.CutPrefix(sc.Text(), "memlock:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no memlock in fdinfo")
}

// BenchmarkConnTableMemory creates the data plane's connection table
// (conns, a plain hash: preallocated, so its memory is all there at
// creation) and NAT reply table at 1M and 10M entries and reports the
// kernel's memlock per entry next to the key and value sizes. A NAT
// connection uses one entry in each; DR and TUN only conns. The kernel's
// per-entry cost is the element header (48 B), the key and the value
// (each rounded up to 8 B) and a bucket (16 B) per entry of the next
// power of two: 16.8 B at 1M, 26.8 B at 10M.
func BenchmarkConnTableMemory(b *testing.B) {
	netns.RequireRoot(b)
	spec, err := ebpf.LoadCollectionSpec(govsObject)
	if err != nil {
		b.Fatalf("load %s: %v", govsObject, err)
	}
	for _, n := range []uint32{1_000_000, 10_000_000} {
		for _, name := range []string{"conns", "nat"} {
			b.Run(fmt.Sprintf("%s/entries=%d", name, n), func(b *testing.B) {
				ms := spec.Maps[name].Copy()
				ms.MaxEntries = n
				ms.Pinning = ebpf.PinNone
				var per float64
				for range b.N {
					m, err := ebpf.NewMap(ms)
					if err != nil {
						b.Fatalf("create %s with %d entries: %v", name, n, err)
					}
					ml, err := memlock(m)
					m.Close()
					if err != nil {
						b.Fatal(err)
					}
					per = float64(ml) / float64(n)
				}
				b.ReportMetric(per, "B/entry")
				b.ReportMetric(float64(ms.KeySize+ms.ValueSize), "B/key+value")
				b.Logf("%s %s: key %d B, value %d B, memlock %.1f B/entry at %d entries", name, ms.Type, ms.KeySize, ms.ValueSize, per, n)
			})
		}
	}
}
