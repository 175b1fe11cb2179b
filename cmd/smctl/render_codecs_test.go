package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRenderRealUnsupportedCodec: a real iLBC call (the Wireshark sample
// capture, SDP rtpmap:99 iLBC/8000) is not rendered as silence: render
// names the stream and its codec from the SDP on stderr ("payload type
// 99 (iLBC, named by the SDP), which this build cannot play"), exits 1
// and writes no WAV. Before, it told the user to map 99 with --codec as
// if the capture did not say what 99 is.
func TestRenderRealUnsupportedCodec(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.wav")
	for _, sel := range [][]string{nil, {"--endpoint", "10.0.2.15"}} {
		args := append([]string{"render", filepath.Join("testdata", "captures", "sip-rtp-ilbc.pcap"), "--out", out}, sel...)
		stdout, stderr, code := runSmctl(args...)
		if code != 1 {
			t.Fatalf("smctl %s exited %d, want 1: %s", strings.Join(args, " "), code, stderr)
		}
		for _, want := range []string{
			"render: skipped stream ssrc 0x043eefa7 10.0.2.15:25256->10.0.2.20:6000 (from-agent): 284 packets of payload type 99 (iLBC, named by the SDP), which this build cannot play; not rendered",
			"no RTP to or from 10.0.2.15 could be decoded (1 stream of payload type 99 (iLBC) skipped)",
		} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr %q lacks %q", stderr, want)
			}
		}
		if strings.Contains(stdout, "wrote") || strings.Contains(stdout, "rendered") {
			t.Errorf("stdout %q", stdout)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("a failed render wrote %s", out)
		}
	}
}
