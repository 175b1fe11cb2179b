package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/capture/capturetest"
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
	// wrapTimestamps starts the streams' RTP timestamps shortly before 2^32
	// (one 50 packets before, the other 10 and off the packet grid).
	wrapTimestamps := func(calls []gen.Call) {
		for i := range calls {
			calls[i].FromAgent.Timestamp = 1<<32 - 160*50
			calls[i].ToAgent.Timestamp = 1<<32 - 160*10 + 100
		}
	}
	tests := []struct {
		name  string
		build gen.BuildConfig
		imp   gen.Impairments
		nano  bool
		edit  func([]gen.Call) // if not nil, changes the calls before writing
	}{
		{"clean", gen.BuildConfig{Calls: 4, Duration: 3 * time.Second}, gen.Impairments{}, false, nil},
		{"loss", gen.BuildConfig{Calls: 4, Duration: 5 * time.Second, VLAN: 85}, gen.Impairments{Loss: 0.03}, false, nil},
		{"burst loss", gen.BuildConfig{Calls: 4, Duration: 5 * time.Second}, gen.Impairments{BurstRate: 0.01, BurstLen: 7}, true, nil},
		{"jitter", gen.BuildConfig{Calls: 4, Duration: 5 * time.Second}, gen.Impairments{Jitter: 15 * time.Millisecond}, true, nil},
		{"jitter beyond ptime", gen.BuildConfig{Calls: 4, Duration: 5 * time.Second}, gen.Impairments{Jitter: 45 * time.Millisecond}, false, nil},
		{"reorder", gen.BuildConfig{Calls: 4, Duration: 5 * time.Second}, gen.Impairments{Reorder: 0.03}, false, nil},
		{"duplicates", gen.BuildConfig{Calls: 4, Duration: 5 * time.Second}, gen.Impairments{Duplicate: 0.03}, false, nil},
		{"sequence wrap", gen.BuildConfig{Calls: 3, Duration: 4 * time.Second, FixedSeq: true, StartSeq: 65500}, gen.Impairments{Loss: 0.02}, false, nil},
		{"everything, wrap, QinQ, PCMA", gen.BuildConfig{Calls: 6, Duration: 6 * time.Second, FixedSeq: true, StartSeq: 65400, VLAN: 85, OuterVLAN: 300, Codec: gen.PCMA},
			gen.Impairments{Loss: 0.02, BurstRate: 0.005, Jitter: 30 * time.Millisecond, Reorder: 0.02, Duplicate: 0.02}, true, nil},
		{"everything, IPv6", gen.BuildConfig{Calls: 4, Duration: 5 * time.Second, IPv6: true, VLAN: 85},
			gen.Impairments{Loss: 0.02, BurstRate: 0.005, Jitter: 30 * time.Millisecond, Reorder: 0.02, Duplicate: 0.02}, false, nil},
		{"timestamp wrap", gen.BuildConfig{Calls: 2, Duration: 4 * time.Second}, gen.Impairments{Jitter: 10 * time.Millisecond}, false, wrapTimestamps},
		{"timestamp wrap with duplicates", gen.BuildConfig{Calls: 3, Duration: 4 * time.Second},
			gen.Impairments{Duplicate: 0.05, Jitter: 10 * time.Millisecond}, true, wrapTimestamps},
		{"timestamp and sequence wrap, everything", gen.BuildConfig{Calls: 3, Duration: 5 * time.Second, FixedSeq: true, StartSeq: 65480},
			gen.Impairments{Loss: 0.02, Jitter: 25 * time.Millisecond, Reorder: 0.02, Duplicate: 0.03}, false, wrapTimestamps},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.build.Seed = uint64(i + 1)
			calls, err := gen.Build(tt.build)
			if err != nil {
				t.Fatal(err)
			}
			if tt.edit != nil {
				tt.edit(calls)
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
			a := capturetest.AnalyzeFile(t, path)
			if len(a.Streams) != 2*tt.build.Calls {
				t.Fatalf("%d streams, want %d", len(a.Streams), 2*tt.build.Calls)
			}
			checkAgainstTshark(t, path, a)
		})
	}
}

// checkAgainstTshark runs tshark on path and checks that a has the same
// streams with tshark's Pkts, Lost, Max Delta, Max Jitter and Mean Jitter
// to 3 decimals.
func checkAgainstTshark(t *testing.T, path string, a *capture.Analysis) {
	t.Helper()
	want := runTshark(t, path)
	if len(a.Streams) != len(want) {
		t.Errorf("%d streams, tshark %d", len(a.Streams), len(want))
	}
	for _, s := range a.Streams {
		id := streamID(s.Src.String(), s.Dst.String(), s.SSRC)
		w, ok := want[id]
		if !ok {
			t.Errorf("stream %s not in tshark's output", id)
			continue
		}
		delete(want, id)
		r3 := func(v float64) float64 { return math.Round(v*1000) / 1000 }
		if int64(s.Packets) != w.pkts || s.WSLost != w.lost || r3(s.WSMaxDelta) != w.maxDelta ||
			r3(s.WSMaxJitter) != w.maxJitter || r3(s.WSMeanJitter) != w.meanJitter {
			t.Errorf("stream %s: pkts %d lost %d maxΔ %.3f maxJ %.3f meanJ %.3f; tshark %d %d %.3f %.3f %.3f",
				id, s.Packets, s.WSLost, s.WSMaxDelta, s.WSMaxJitter, s.WSMeanJitter,
				w.pkts, w.lost, w.maxDelta, w.maxJitter, w.meanJitter)
		}
	}
	for id := range want {
		t.Errorf("tshark's stream %s not found", id)
	}
}

// TestAnalyzeMatchesTsharkWithServices checks capture's golden capture
// that mixes DNS, NBNS, mDNS, LLMNR, NTP, IKE, SNMP, syslog, DHCP and
// DHCPv6 datagrams whose first byte looks like RTP version 2 with two
// calls, and generator calls mixed with the same datagrams: capture.Analyze
// and tshark's RTP heuristic both find exactly the calls' streams, with the
// same figures.
func TestAnalyzeMatchesTsharkWithServices(t *testing.T) {
	testutil.NeedTool(t, "tshark")
	t.Run("golden", func(t *testing.T) {
		path := filepath.Join("..", "capture", "testdata", "services_and_calls.pcap")
		a := capturetest.AnalyzeFile(t, path)
		if len(a.Streams) != 4 {
			t.Errorf("%d streams, want the calls' 4", len(a.Streams))
		}
		checkAgainstTshark(t, path, a)
	})
	t.Run("generator calls with impairments", func(t *testing.T) {
		calls, err := gen.Build(gen.BuildConfig{Calls: 3, Duration: 3 * time.Second, Seed: 5})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := gen.Write(&buf, &gen.Config{Calls: calls, Seed: 5,
			Impair: gen.Impairments{Loss: 0.02, Jitter: 20 * time.Millisecond, Reorder: 0.02, Duplicate: 0.02}}); err != nil {
			t.Fatal(err)
		}
		frames, times := readAll(t, buf.Bytes())
		for i, s := range capturetest.Services(20) {
			frames = append(frames, capturetest.Build(s.Frame()))
			times = append(times, times[0].Add(time.Duration(i)*3*time.Second/260))
		}
		sort.Stable(byTime{frames, times})
		path := filepath.Join(t.TempDir(), "mixed.pcap")
		var out bytes.Buffer
		if err := capturetest.WritePcap(&out, capture.LinkEthernet, false, frames, times); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		a := capturetest.AnalyzeFile(t, path)
		if len(a.Streams) != 6 {
			t.Errorf("%d streams, want the calls' 6", len(a.Streams))
		}
		checkAgainstTshark(t, path, a)
	})
}

type byTime struct {
	frames [][]byte
	times  []time.Time
}

func (b byTime) Len() int           { return len(b.frames) }
func (b byTime) Less(i, j int) bool { return b.times[i].Before(b.times[j]) }
func (b byTime) Swap(i, j int) {
	b.frames[i], b.frames[j] = b.frames[j], b.frames[i]
	b.times[i], b.times[j] = b.times[j], b.times[i]
}

// readAll returns a copy of every frame of a pcap file with its capture
// time.
func readAll(t *testing.T, file []byte) ([][]byte, []time.Time) {
	t.Helper()
	src, err := capture.NewFileSource(bytes.NewReader(file), capture.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fb := make([][]byte, 64)
	ib := make([]capture.Info, 64)
	var frames [][]byte
	var times []time.Time
	for {
		n, err := src.ReadBatch(fb, ib)
		for i := 0; i < n; i++ {
			frames = append(frames, append([]byte(nil), fb[i]...))
			times = append(times, ib[i].Timestamp)
		}
		if err == io.EOF {
			return frames, times
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestStreamLossMatchesGenerator checks the stream table's loss figures
// against what the generator did (Config.Record): RFC 3550 cumulative loss,
// so that reordered packets that arrive are not lost, split into network
// and capture loss. Packets the "kernel" drops are taken out of the capture
// and counted on the drop counter the table reads, while the network loses,
// reorders and duplicates others.
func TestStreamLossMatchesGenerator(t *testing.T) {
	tests := []struct {
		name    string
		imp     gen.Impairments
		dropPer int // every dropPer-th written packet of the stream is dropped by the kernel (0: none)
		burst   int // packets the kernel drops each time
	}{
		{"loss and reordering", gen.Impairments{Loss: 0.03, Reorder: 0.05}, 0, 0},
		{"bursts, jitter beyond ptime, reordering", gen.Impairments{BurstRate: 0.01, BurstLen: 4, Jitter: 45 * time.Millisecond, Reorder: 0.03}, 0, 0},
		{"loss and duplicates", gen.Impairments{Loss: 0.03, Duplicate: 0.03}, 0, 0},
		{"kernel drops, no network loss", gen.Impairments{}, 37, 1},
		{"kernel drops with network loss and reordering", gen.Impairments{Loss: 0.03, Reorder: 0.05}, 41, 2},
		{"kernel bursts with network bursts", gen.Impairments{BurstRate: 0.01, BurstLen: 5, Reorder: 0.02}, 53, 3},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls, err := gen.Build(gen.BuildConfig{Calls: 1, Duration: 20 * time.Second, Seed: uint64(i + 3)})
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			res, err := gen.Write(&buf, &gen.Config{Calls: calls, Impair: tt.imp, Seed: uint64(i + 11), Record: true})
			if err != nil {
				t.Fatal(err)
			}
			st := res.Streams[0] // agent → far; the table sees only this stream
			frames, times := readAll(t, buf.Bytes())
			// The stream's packets in file order, and which came late
			// (after a higher sequence number).
			type written struct {
				k    int // frame index
				seq  uint16
				late bool
			}
			var ws []written
			var p capture.Packet
			var maxSeq uint16
			for k, f := range frames {
				if err := p.Decode(f, capture.LinkEthernet, nil); err != nil || p.Kind != capture.KindRTP || p.RTP.SSRC != st.SSRC {
					continue
				}
				late := len(ws) > 0 && int16(p.RTP.SequenceNumber-maxSeq) < 0
				if !late {
					maxSeq = p.RTP.SequenceNumber
				}
				ws = append(ws, written{k, p.RTP.SequenceNumber, late})
			}
			var drops atomic.Uint64
			tab := capture.NewStreamTable(capture.StreamTableConfig{Drops: &drops})
			dropped, entangled, pending := 0, 0, 0
			seen := map[uint16]int{} // sequence number → copies accounted
			for i, w := range ws {
				if tt.dropPer > 0 && (i+1)%tt.dropPer == 0 {
					pending = tt.burst
				}
				if pending > 0 {
					// The kernel drops it: the drop counter moves, the
					// table never sees the packet.
					pending--
					dropped++
					drops.Add(1)
					for j := max(i-2, 0); j < min(i+3, len(ws)); j++ {
						if ws[j].late {
							entangled++
							break
						}
					}
					continue
				}
				seen[w.seq]++
				if err := p.Decode(frames[w.k], capture.LinkEthernet, nil); err != nil {
					t.Fatal(err)
				}
				tab.Update(&p, times[w.k])
			}
			ss := tab.Snapshot(nil)
			if len(ss) != 1 {
				t.Fatalf("%d streams, want 1", len(ss))
			}
			s := ss[0]
			// The truth: sequence numbers between the first and the last
			// the table saw that it never saw.
			missing := 0
			for seq := uint16(s.BaseSeq); seq != uint16(s.HighestSeq); seq++ {
				if seen[seq] == 0 {
					missing++
				}
			}
			received := int64(s.Packets)
			if s.Expected-received != int64(missing)-int64(s.Duplicates) {
				t.Errorf("RFC 3550 loss %d, want %d missing less %d duplicates", s.Lost, missing, s.Duplicates)
			}
			netLost := st.Lost
			if tt.imp.Duplicate == 0 {
				if s.Duplicates != 0 {
					t.Errorf("%d duplicates counted, none written", s.Duplicates)
				}
				if int(s.LostNetwork)+int(s.LostCapture) != missing {
					t.Errorf("lost network %d + capture %d, want %d missing", s.LostNetwork, s.LostCapture, missing)
				}
				if tt.dropPer == 0 && (int(s.LostNetwork) != netLost || s.LostCapture != 0) {
					t.Errorf("lost network %d capture %d; the generator lost %d (reordered %d), the kernel none", s.LostNetwork, s.LostCapture, netLost, st.Reordered)
				}
				if tt.dropPer > 0 {
					// A kernel drop can coincide with a network gap; then
					// the capture may be blamed for up to the packets the
					// kernel dropped, never more. A packet the kernel
					// drops among reordered ones may be blamed on the
					// network: it came late, after its gap opened, or an
					// earlier packet came late in between and the drop
					// went by without a gap.
					if int(s.LostCapture) > dropped || int(s.LostNetwork) < netLost-dropped || int(s.LostNetwork) > netLost+entangled {
						t.Errorf("lost network %d capture %d; the generator lost %d, the kernel dropped %d (%d among reordered packets)", s.LostNetwork, s.LostCapture, netLost, dropped, entangled)
					}
				}
			} else if want := max(int64(netLost)-int64(st.Duplicates), 0); int64(s.LostNetwork) != want || s.LostCapture != 0 {
				t.Errorf("lost network %d capture %d, want %d (lost %d less duplicates %d, RFC 3550)", s.LostNetwork, s.LostCapture, want, netLost, st.Duplicates)
			}
			if st.Reordered > 0 && s.OutOfOrder == 0 {
				t.Errorf("the generator reordered %d packets, none counted out of order", st.Reordered)
			}
			t.Logf("generator: lost %d reordered %d duplicated %d, kernel dropped %d (%d among reordered packets); table: lost %d (network %d, capture %d), out of order %d, duplicates %d",
				st.Lost, st.Reordered, st.Duplicates, dropped, entangled, s.Lost, s.LostNetwork, s.LostCapture, s.OutOfOrder, s.Duplicates)
		})
	}
}
