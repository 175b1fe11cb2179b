//go:build cgo

package opus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/silentmon/silentmon/internal/testutil"
)

var (
	tone = testutil.Tone
	rms  = testutil.RMS
)

func loudest(s []int16, rate int) float64 { return testutil.Loudest(s, rate, 4000) }

// encodePackets encodes pcm (at 48 kHz) in 20 ms packets.
func encodePackets(t testing.TB, pcm []int16, cfg EncoderConfig) [][]byte {
	t.Helper()
	enc, err := NewEncoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	frame := 960 * max(cfg.Rate, 8000) / 48000
	if cfg.Rate == 0 {
		frame = 960
	}
	var pkts [][]byte
	buf := make([]byte, 1275)
	for off := 0; off+frame <= len(pcm); off += frame {
		n, err := enc.Encode(pcm[off:off+frame], buf)
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, bytes.Clone(buf[:n]))
	}
	return pkts
}

func decodeAll(t testing.TB, pkts [][]byte, rate int) []int16 {
	t.Helper()
	dec, err := NewDecoder(rate)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var out []int16
	buf := make([]int16, MaxPacketMs*rate/1000)
	for _, p := range pkts {
		want, err := PacketSamples(p, rate)
		if err != nil {
			t.Fatal(err)
		}
		n, err := dec.Decode(p, buf)
		if err != nil || n != want {
			t.Fatalf("Decode: %d samples, %v; want %d", n, err, want)
		}
		out = append(out, buf[:n]...)
	}
	return out
}

func TestToneRoundTrip(t *testing.T) {
	in := tone(1000, 8000, 48000, 48000)
	pkts := encodePackets(t, in, EncoderConfig{})
	for _, rate := range []int{8000, 16000, 48000} {
		out := decodeAll(t, pkts, rate)
		if len(out) != rate {
			t.Fatalf("%d Hz: %d samples, want %d", rate, len(out), rate)
		}
		w := out[rate/5:]
		if f := loudest(w, rate); f != 1000 {
			t.Errorf("%d Hz: loudest at %.0f Hz, want 1000", rate, f)
		}
		db := 20 * math.Log10(rms(w)/rms(in[9600:]))
		if math.Abs(db) > 1 {
			t.Errorf("%d Hz: level %+.2f dB from the input, want within 1 dB", rate, db)
		}
		t.Logf("%d Hz: level %+.2f dB", rate, db)
	}
}

// TestFECRecoversLoss loses one packet of a tone: its reconstruction from
// the next packet's FEC data is closer to the original than plain
// concealment.
func TestFECRecoversLoss(t *testing.T) {
	const rate = 8000
	in := tone(700, 8000, 48000, 48000)
	pkts := encodePackets(t, in, EncoderConfig{Bitrate: 24000, FEC: true, LossPercent: 20})
	ref := decodeAll(t, pkts, rate)
	const lost = 30
	run := func(fec bool) []int16 {
		dec, _ := NewDecoder(rate)
		defer dec.Close()
		buf := make([]int16, 160)
		var out []int16
		for i, p := range pkts {
			var err error
			switch {
			case i == lost:
				continue
			case i == lost+1 && fec:
				_, err = dec.DecodeFEC(p, buf)
				out = append(out, buf...)
			case i == lost+1:
				_, err = dec.Conceal(buf)
				out = append(out, buf...)
			}
			if err != nil {
				t.Fatal(err)
			}
			n, err := dec.Decode(p, buf)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, buf[:n]...)
		}
		return out
	}
	errOf := func(got []int16) float64 {
		d := make([]int16, 160)
		for i := range d {
			d[i] = got[lost*160+i] - ref[lost*160+i]
		}
		return rms(d)
	}
	withFEC, plc := errOf(run(true)), errOf(run(false))
	t.Logf("lost 20 ms: error RMS %.0f with FEC, %.0f with concealment (signal RMS %.0f)", withFEC, plc, rms(ref[lost*160:lost*160+160]))
	if withFEC >= plc {
		t.Fatalf("FEC error RMS %.0f is not below concealment's %.0f", withFEC, plc)
	}
}

func TestConcealContinues(t *testing.T) {
	pkts := encodePackets(t, tone(500, 8000, 48000, 9600), EncoderConfig{})
	dec, _ := NewDecoder(8000)
	defer dec.Close()
	buf := make([]int16, 160)
	for _, p := range pkts {
		dec.Decode(p, buf)
	}
	speech := rms(buf)
	n, err := dec.Conceal(buf)
	if err != nil || n != 160 {
		t.Fatalf("Conceal: %d, %v", n, err)
	}
	if r := rms(buf); r < speech/4 {
		t.Fatalf("concealed RMS %.0f, speech %.0f: concealment is near silent", r, speech)
	}
}

// Tolerances against ffmpeg's decoders at 48 kHz (docs/playout.md): the
// same library through ffmpeg is bit exact; ffmpeg's own decoder (a
// separate floating-point implementation) is held to a signal-to-difference
// ratio.
const (
	MaxDiffFFmpegLibopus = 0
	MinSNRFFmpegOpus     = 12 // dB, after aligning the two outputs (measured: 15.8)
)

// TestMatchesFFmpeg decodes the same packets, muxed into an Ogg Opus
// file, with ffmpeg: through libopus (bit exact) and through ffmpeg's own
// Opus decoder (an independent implementation).
func TestMatchesFFmpeg(t *testing.T) {
	ff, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("ffmpeg is not installed (scripts/deps.sh installs it): the comparison with an independent decoder is skipped")
	}
	in := make([]int16, 2*48000)
	for i := range in {
		x := float64(i) / 48000
		in[i] = int16(6000*math.Sin(2*math.Pi*440*x) + 3000*math.Sin(2*math.Pi*(300+1500*x)*x))
	}
	pkts := encodePackets(t, in, EncoderConfig{Bitrate: 32000})
	path := filepath.Join(t.TempDir(), "x.opus")
	if err := os.WriteFile(path, testutil.OggOpus(pkts, func([]byte) int { return 960 }), 0o600); err != nil {
		t.Fatal(err)
	}
	ours := decodeAll(t, pkts, 48000)
	for _, tc := range []struct {
		decoder string
	}{
		{"libopus"},
		{"opus"},
	} {
		raw, err := exec.Command(ff, "-v", "error", "-c:a", tc.decoder, "-i", path, "-ar", "48000", "-ac", "1", "-f", "s16le", "-").Output()
		if err != nil {
			t.Logf("ffmpeg with decoder %s: %v (skipped)", tc.decoder, err)
			continue
		}
		ref := make([]int16, len(raw)/2)
		binary.Read(bytes.NewReader(raw), binary.LittleEndian, ref)
		if len(ref) != len(ours) {
			t.Errorf("ffmpeg %s gave %d samples, ours %d", tc.decoder, len(ref), len(ours))
			continue
		}
		if tc.decoder == "libopus" {
			maxDiff := 0
			for i := range ours {
				d := int(ours[i]) - int(ref[i])
				maxDiff = max(maxDiff, max(d, -d))
			}
			t.Logf("libopus vs ffmpeg through libopus at 48 kHz: %d samples, max difference %d", len(ours), maxDiff)
			if maxDiff > MaxDiffFFmpegLibopus {
				t.Errorf("ffmpeg libopus: max difference %d, tolerance %d", maxDiff, MaxDiffFFmpegLibopus)
			}
			continue
		}
		// ffmpeg's own decoder resamples SILK with its own filter, so
		// its output is delayed: align on the best lag, then compare.
		snr, lag := alignedSNR(ours, ref, 4800, len(ours)-4800, 400)
		t.Logf("libopus vs ffmpeg's own Opus decoder at 48 kHz: SNR %.1f dB at a lag of %d samples", snr, lag)
		if snr < MinSNRFFmpegOpus {
			t.Errorf("ffmpeg opus: SNR %.1f dB, want at least %v dB", snr, MinSNRFFmpegOpus)
		}
	}
}

// alignedSNR returns the best signal-to-difference ratio of b against a
// over lags -maxLag..maxLag, on a's window [from, to).
func alignedSNR(a, b []int16, from, to, maxLag int) (float64, int) {
	best, bestLag := math.Inf(-1), 0
	for lag := -maxLag; lag <= maxLag; lag++ {
		var sig, diff float64
		for i := from; i < to; i++ {
			x, y := float64(a[i]), float64(b[i+lag])
			sig += x * x
			diff += (x - y) * (x - y)
		}
		if s := 10 * math.Log10(sig/max(diff, 1)); s > best {
			best, bestLag = s, lag
		}
	}
	return best, bestLag
}

func TestErrors(t *testing.T) {
	if _, err := NewDecoder(44100); !errors.Is(err, ErrRate) {
		t.Errorf("NewDecoder(44100): %v, want ErrRate", err)
	}
	dec, _ := NewDecoder(8000)
	if _, err := dec.Decode([]byte{1 << 3, 0xff, 0xff}, make([]int16, 80)); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("20 ms into 10 ms: %v, want ErrShortBuffer", err)
	}
	if _, err := dec.Decode(nil, make([]int16, 160)); !errors.Is(err, ErrPacket) {
		t.Errorf("empty packet: %v, want ErrPacket", err)
	}
	dec.Close()
	if _, err := dec.Decode([]byte{1 << 3}, make([]int16, 160)); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}

func TestNoAllocs(t *testing.T) {
	enc, _ := NewEncoder(EncoderConfig{Rate: 8000, FEC: true, LossPercent: 10})
	defer enc.Close()
	dec, _ := NewDecoder(8000)
	defer dec.Close()
	pcm := tone(1000, 8000, 8000, 160)
	pkt := make([]byte, 1275)
	out := make([]int16, 160)
	if n := testing.AllocsPerRun(100, func() {
		n, _ := enc.Encode(pcm, pkt)
		dec.Decode(pkt[:n], out)
		dec.Conceal(out)
		dec.DecodeFEC(pkt[:n], out)
		PacketSamples(pkt[:n], 8000)
	}); n != 0 {
		t.Fatalf("%v allocations per packet, want 0", n)
	}
}

// BenchmarkDecode decodes one 20 ms packet (32 kbit/s) per iteration at
// the output rate; SetBytes counts the 16-bit samples out.
func BenchmarkDecode(b *testing.B) {
	pkts := encodePackets(b, tone(1000, 8000, 48000, 9600), EncoderConfig{})
	for _, rate := range []int{8000, 16000, 48000} {
		b.Run(map[int]string{8000: "8kHz", 16000: "16kHz", 48000: "48kHz"}[rate], func(b *testing.B) {
			dec, _ := NewDecoder(rate)
			defer dec.Close()
			out := make([]int16, rate/50)
			b.ReportAllocs()
			b.SetBytes(int64(rate / 50 * 2))
			i := 0
			for b.Loop() {
				dec.Decode(pkts[i%len(pkts)], out)
				i++
			}
		})
	}
}
