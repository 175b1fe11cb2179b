package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRealCaptures renders every capture in the directory named by
// SILENTMON_REAL_CAPTURES (pcap or pcapng files recorded by others: public
// sample captures, a site's own calls) and checks what a user hears
// against what smctl analyze finds in the file: every capture with a
// decodable RTP stream renders without error, and the audio lasts as long
// as the longest such stream (a stray packet, an SSRC change or a second
// call must not cut it short). It skips when the variable is unset; the
// repository ships no captures it did not write.
//
//	SILENTMON_REAL_CAPTURES=/path/to/captures go test -run TestRealCaptures -v ./internal/e2e
func TestRealCaptures(t *testing.T) {
	dir := os.Getenv("SILENTMON_REAL_CAPTURES")
	if dir == "" {
		t.Skip("skipping: set SILENTMON_REAL_CAPTURES to a directory of pcap or pcapng files")
	}
	var files []string
	for _, pat := range []string{"*.pcap", "*.pcapng"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatalf("no pcap or pcapng file in %s", dir)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			so, se, code := runCmd(t, nil, "smctl", "analyze", "--json", f)
			if code != 0 {
				t.Fatalf("smctl analyze exited %d: %s", code, se)
			}
			var an struct {
				Streams []struct {
					Codec   string    `json:"codec"`
					Packets int       `json:"packets"`
					Start   time.Time `json:"start"`
					End     time.Time `json:"end"`
				} `json:"streams"`
			}
			if err := json.Unmarshal([]byte(so), &an); err != nil {
				t.Fatalf("smctl analyze --json: %v", err)
			}
			longest := 0.0
			for _, s := range an.Streams {
				switch s.Codec {
				case "PCMU", "PCMA", "G729":
					if s.Packets > 1 {
						longest = max(longest, s.End.Sub(s.Start).Seconds())
					}
				}
			}
			out := filepath.Join(t.TempDir(), "out.wav")
			so, se, code = runCmd(t, nil, "smctl", "render", f, "--out", out)
			if longest == 0 {
				if code != 1 {
					t.Errorf("no decodable RTP stream, yet smctl render exited %d: %s%s", code, so, se)
				}
				t.Logf("no decodable stream: %s", strings.TrimSpace(se))
				return
			}
			if code != 0 {
				t.Fatalf("smctl render exited %d: %s", code, se)
			}
			secs := float64(len(readWAV(t, out))) / 8000
			t.Logf("longest decodable stream %.2f s, rendered %.2f s\n%s%s", longest, secs, se, so)
			if secs < 0.95*longest {
				t.Errorf("rendered %.2f s, the longest decodable stream lasts %.2f s", secs, longest)
			}
		})
	}
}
