package bench

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/capture/capturetest"
	"github.com/silentmon/silentmon/internal/testutil"
)

// TestScenariosMatchTshark: on every call-flow scenario's capture (holds,
// SSRC changes, a stray packet, two VLANs, G.729B silences, loss with
// jitter and reordering, DNS and NBNS beside the calls), smctl analyze's
// streams and their packets, loss, and jitter figures equal tshark's RTP
// statistics to 3 decimals.
func TestScenariosMatchTshark(t *testing.T) {
	testutil.NeedTool(t, "tshark")
	for _, name := range gen.ScenarioNames() {
		t.Run(name, func(t *testing.T) {
			spec, err := gen.Scenario(name, 1)
			if errors.Is(err, gen.ErrCodecUnavailable) {
				t.Skipf("skipping: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), name+".pcap")
			if _, err := spec.WriteFile(path); err != nil {
				t.Fatal(err)
			}
			checkAgainstTshark(t, path, capturetest.AnalyzeFile(t, path))
		})
	}
}
