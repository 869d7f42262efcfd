package ebpf

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/cilium/ebpf"
)

func TestVerifierLog(t *testing.T) {
	if os.Getenv("GOVS_VLOG") == "" {
		t.Skip("set GOVS_VLOG to dump the verifier log")
	}
	spec, err := loadGovs()
	if err != nil {
		t.Fatal(err)
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelBranch, LogSizeStart: 1 << 30}})
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		f, _ := os.Create("/tmp/vlog.txt")
		for _, l := range ve.Log {
			fmt.Fprintln(f, l)
		}
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	coll.Close()
}
