package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/internal/testutil"
)

// tsharkStream is one line of `tshark -q -z rtp,streams`.
type tsharkStream struct {
	src, dst   string
	ssrc       uint32
	pkts, lost int64
	maxDelta   float64
	maxJitter  float64
	meanJitter float64
}

func runTshark(t *testing.T, path string) map[string]tsharkStream {
	t.Helper()
	out, err := exec.Command("tshark", "-r", path, "-o", "rtp.heuristic_rtp:TRUE", "-q", "-z", "rtp,streams").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	got := map[string]tsharkStream{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// start end src sport dst dport ssrc payload pkts lost (pct) minΔ meanΔ maxΔ minJ meanJ maxJ [X]
		if len(f) < 17 || !strings.HasPrefix(f[6], "0x") {
			continue
		}
		ssrc, _ := strconv.ParseUint(f[6][2:], 16, 32)
		num := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
		s := tsharkStream{
			src: joinHostPort(f[2], f[3]), dst: joinHostPort(f[4], f[5]), ssrc: uint32(ssrc),
			pkts: int64(num(f[8])), lost: int64(num(f[9])),
			maxDelta: num(f[13]), meanJitter: num(f[15]), maxJitter: num(f[16]),
		}
		got[streamID(s.src, s.dst, s.ssrc)] = s
	}
	return got
}

func joinHostPort(h, p string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]:" + p
	}
	return h + ":" + p
}

func streamID(src, dst string, ssrc uint32) string { return fmt.Sprintf("%s>%s/%08x", src, dst, ssrc) }

// TestAnalyzeMatchesTshark writes generator captures with every kind of
// impairment and checks that capture.Analyze gives tshark's Pkts, Lost,
// Max Delta, Max Jitter and Mean Jitter to 3 decimals, stream by stream.
func TestAnalyzeMatchesTshark(t *testing.T) {
	testutil.NeedTool(t, "tshark")
	tests := []struct {
		name  string
		build gen.BuildConfig
		imp   gen.Impairments
		nano  bool
	}{
		{"clean", gen.BuildConfig{Calls: 4, Duration: 3 * time.Second}, gen.Impairments{}, false},
		{"loss", gen.BuildConfig{Calls: 4, Duration: 5 * time.Second, VLAN: 85}, gen.Impairments{Loss: 0.03}, false},
		{"burst loss", gen.BuildConfig{Calls: 4, Duration: 5 * time.Second}, gen.Impairments{BurstRate: 0.01, BurstLen: 7}, true},
		{"jitter", gen.BuildConfig{Calls: 4, Duration: 5 * time.Second}, gen.Impairments{Jitter: 15 * time.Millisecond}, true},
		{"jitter beyond ptime", gen.BuildConfig{Calls: 4, Duration: 5 * time.Second}, gen.Impairments{Jitter: 45 * time.Millisecond}, false},
		{"reorder", gen.BuildConfig{Calls: 4, Duration: 5 * time.Second}, gen.Impairments{Reorder: 0.03}, false},
		{"duplicates", gen.BuildConfig{Calls: 4, Duration: 5 * time.Second}, gen.Impairments{Duplicate: 0.03}, false},
		{"sequence wrap", gen.BuildConfig{Calls: 3, Duration: 4 * time.Second, FixedSeq: true, StartSeq: 65500}, gen.Impairments{Loss: 0.02}, false},
		{"everything, wrap, QinQ, PCMA", gen.BuildConfig{Calls: 6, Duration: 6 * time.Second, FixedSeq: true, StartSeq: 65400, VLAN: 85, OuterVLAN: 300, Codec: gen.PCMA},
			gen.Impairments{Loss: 0.02, BurstRate: 0.005, Jitter: 30 * time.Millisecond, Reorder: 0.02, Duplicate: 0.02}, true},
		{"everything, IPv6", gen.BuildConfig{Calls: 4, Duration: 5 * time.Second, IPv6: true, VLAN: 85},
			gen.Impairments{Loss: 0.02, BurstRate: 0.005, Jitter: 30 * time.Millisecond, Reorder: 0.02, Duplicate: 0.02}, false},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.build.Seed = uint64(i + 1)
			calls, err := gen.Build(tt.build)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, fmt.Sprintf("c%d.pcap", i))
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := gen.Write(f, &gen.Config{Calls: calls, Impair: tt.imp, Seed: uint64(i + 7), Nanosecond: tt.nano}); err != nil {
				t.Fatal(err)
			}
			f.Close()
			want := runTshark(t, path)
			src, err := capture.OpenFile(path, capture.FileOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			a, err := capture.Analyze(src, capture.AnalyzeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Streams) != len(want) || len(want) != 2*tt.build.Calls {
				t.Fatalf("%d streams, tshark %d, want %d", len(a.Streams), len(want), 2*tt.build.Calls)
			}
			for _, s := range a.Streams {
				id := streamID(s.Src.String(), s.Dst.String(), s.SSRC)
				w, ok := want[id]
				if !ok {
					t.Errorf("stream %s not in tshark's output", id)
					continue
				}
				r3 := func(v float64) float64 { return math.Round(v*1000) / 1000 }
				if int64(s.Packets) != w.pkts || s.WSLost != w.lost || r3(s.WSMaxDelta) != w.maxDelta ||
					r3(s.WSMaxJitter) != w.maxJitter || r3(s.WSMeanJitter) != w.meanJitter {
					t.Errorf("stream %s: pkts %d lost %d maxΔ %.3f maxJ %.3f meanJ %.3f; tshark %d %d %.3f %.3f %.3f",
						id, s.Packets, s.WSLost, s.WSMaxDelta, s.WSMaxJitter, s.WSMeanJitter,
						w.pkts, w.lost, w.maxDelta, w.maxJitter, w.meanJitter)
				}
			}
		})
	}
}
