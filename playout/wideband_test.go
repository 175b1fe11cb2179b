package playout_test

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/opus"
	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/playout/audiotest"
	"github.com/zaf/g711"
)

// renderWAV renders arr through a Renderer at cfg.SampleRate into a WAV
// file and returns the file's header rate and samples.
func renderWAV(t *testing.T, cfg playout.Config, arr []arrival) (int, []int16) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.wav")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := playout.NewWAVSinkRate(f, 1, cfg.SampleRate)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := runRenderer(t, cfg, arr)
	if err := sink.Write(out); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 44 || string(b[36:40]) != "data" {
		t.Fatalf("not a WAV: %d bytes", len(b))
	}
	rate := int(binary.LittleEndian.Uint32(b[24:]))
	if br := int(binary.LittleEndian.Uint32(b[28:])); br != rate*2 {
		t.Errorf("byte rate %d, want %d", br, rate*2)
	}
	pcm := make([]int16, (len(b)-44)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(b[44+2*i:]))
	}
	return rate, pcm
}

// TestWidebandG722WAV: a G.722 session is played at 16 kHz (RateFor), the
// WAV records 16000 Hz, its samples are spandsp's wideband decode of the
// payloads sample for sample, and a 6 kHz tone (in G.722's upper
// sub-band) survives at its level. At 8 kHz the upper sub-band is gone:
// a 6 kHz tone cannot be represented at all.
func TestWidebandG722WAV(t *testing.T) {
	in := sine(6000, 8000, 16000, 2*16000)
	pays := g722Packets(t, in)
	want, arr := g722Session(t, pays, 16000)
	cfg := playout.Config{SampleRate: playout.RateFor(playout.CodecPCMU, playout.CodecG722)}
	if cfg.SampleRate != 16000 {
		t.Fatalf("RateFor(PCMU, G722) = %d, want 16000", cfg.SampleRate)
	}
	rate, out := renderWAV(t, cfg, arr)
	if rate != 16000 {
		t.Errorf("WAV header rate %d, want 16000", rate)
	}
	if i := firstDiff(out, want); i >= 0 {
		t.Fatalf("differs from spandsp at 16 kHz at sample %d (%d vs %d samples)", i, len(out), len(want))
	}
	w := out[1600:]
	if f := loudestHz(w, 16000); f != 6000 {
		t.Errorf("loudest at %.0f Hz, want 6000", f)
	}
	db := 20 * math.Log10(rms(w)/rms(in[1600:]))
	if math.Abs(db) > 1 {
		t.Errorf("6 kHz tone at %+.2f dB from the input, want within 1 dB", db)
	}
	t.Logf("6 kHz tone at 16 kHz: %+.2f dB", db)
}

// TestWidebandOpus48k: an Opus session is played at 48 kHz, exactly as
// libopus decodes the packets at 48 kHz (960 samples per 20 ms), and a
// 12 kHz tone comes out at 12 kHz.
func TestWidebandOpus48k(t *testing.T) {
	in := sine(12000, 8000, 48000, 2*48000)
	pkts := opusPackets(t, in, false)
	dec, err := opus.NewDecoder(48000)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var want []int16
	buf := make([]int16, 960)
	for _, p := range pkts {
		n, err := dec.Decode(p, buf)
		if err != nil || n != 960 {
			t.Fatal(n, err)
		}
		want = append(want, buf[:n]...)
	}
	cfg := playout.Config{SampleRate: playout.RateFor(playout.CodecG722, playout.CodecOpus),
		PayloadTypes: map[uint8]playout.Codec{111: playout.CodecOpus}}
	if cfg.SampleRate != 48000 {
		t.Fatalf("RateFor(G722, opus) = %d, want 48000", cfg.SampleRate)
	}
	rate, out := renderWAV(t, cfg, opusArrivals(pkts, nil))
	if rate != 48000 {
		t.Errorf("WAV header rate %d, want 48000", rate)
	}
	if i := firstDiff(out, want); i >= 0 {
		t.Fatalf("differs from libopus at 48 kHz at sample %d (%d vs %d samples)", i, len(out), len(want))
	}
	if f := loudestHz(out[4800:14400], 48000); f != 12000 {
		t.Errorf("loudest at %.0f Hz, want 12000", f)
	}
}

// TestWidebandOpusLoss48k: a lost Opus packet in a 48 kHz session is
// concealed by libopus (not silent) and the output keeps its length.
func TestWidebandOpusLoss48k(t *testing.T) {
	pkts := opusPackets(t, sine(440, 8000, 48000, 2*48000), false)
	cfg := playout.Config{SampleRate: 48000, PayloadTypes: map[uint8]playout.Codec{111: playout.CodecOpus}}
	out, st := runRenderer(t, cfg, opusArrivals(pkts, map[int]bool{20: true, 60: true}))
	if len(out) != len(pkts)*960 {
		t.Fatalf("%d samples, want %d", len(out), len(pkts)*960)
	}
	if s := st.Dir(playout.FromAgent); s.Lost != 2 || s.Concealed < 2 {
		t.Errorf("stats %+v", s)
	}
	if r := rms(out[20*960 : 21*960]); r < 1000 {
		t.Errorf("lost packet concealed at RMS %.0f", r)
	}
}

// TestWidebandUpsampleG711: a G.711 stream in a 16 and a 48 kHz session
// (beside a G.722 or Opus one) is upsampled by libspeexdsp's resampler,
// not by linear interpolation: its 1 kHz tone keeps its frequency and
// level (within 0.5 dB) and no image above 4 kHz is stronger than -80 dB
// (linear interpolation leaves the 7 kHz image about 34 dB down). At
// 16 kHz the session's output holds both tones of a G.711 and a G.722
// stream.
func TestWidebandUpsampleG711(t *testing.T) {
	needResampler(t)
	tone := sine(1000, 8000, 8000, 2*8000)
	var arr []arrival
	for i := 0; i < 100; i++ {
		p := ulawOf(tone[i*160 : i*160+160])
		arr = append(arr, arrival{time.Duration(i) * 20 * time.Millisecond, playout.FromAgent,
			rtpPacket(0, uint16(i), uint32(i*160), 1, i == 0, p)})
	}
	for _, rate := range []int{16000, 48000} {
		out, st := runRenderer(t, playout.Config{SampleRate: rate}, arr)
		if len(out) != rate/8000*len(tone) {
			t.Fatalf("%d samples at %d Hz, want %d", len(out), rate, rate/8000*len(tone))
		}
		w := out[rate/2 : rate/2+rate] // a whole second: the tone's bins do not leak
		if f := loudestHz(w, rate); f != 1000 {
			t.Errorf("%d Hz: loudest at %.0f Hz, want 1000", rate, f)
		}
		db := 20 * math.Log10(rms(w)/rms(tone))
		if math.Abs(db) > 0.5 {
			t.Errorf("%d Hz: 1 kHz tone at %+.2f dB, want within 0.5 dB", rate, db)
		}
		ref := goertzel(w, 1000, rate)
		image, at := math.Inf(-1), 0.0
		for f := 4100.0; f < float64(rate)/2; f += 50 {
			if p := 10 * math.Log10(goertzel(w, f, rate)/ref); p > image {
				image, at = p, f
			}
		}
		if image > -80 {
			t.Errorf("%d Hz: image at %.0f Hz %.1f dB below the tone, want at most -80 dB", rate, at, image)
		}
		t.Logf("8 kHz G.711 in a %d Hz session: 1 kHz tone %+.2f dB, strongest image above 4 kHz %.1f dB (%.0f Hz)", rate, db, image, at)
		if s := st.Dir(playout.FromAgent); s.Frames != 100 || s.Codec != playout.CodecPCMU {
			t.Errorf("stats %+v", s)
		}
	}
	cfg := playout.Config{SampleRate: 16000}

	// With a G.722 stream beside it, both tones are heard.
	if !playout.G722BuiltIn {
		t.Skip("skipping the mix: G.722 is not built in (needs cgo and libspandsp-dev)")
	}
	pays := g722Packets(t, sine(6000, 8000, 16000, 2*16000))
	for i, p := range pays {
		arr = append(arr, arrival{time.Duration(i)*20*time.Millisecond + time.Millisecond, playout.ToAgent,
			rtpPacket(9, uint16(i), uint32(i*160), 2, i == 0, p)})
	}
	sortArrivals(arr)
	out, _ := runRenderer(t, cfg, arr)
	w := out[3200 : len(out)-3200]
	p1, p6 := goertzel(w, 1000, 16000), goertzel(w, 6000, 16000)
	if r := 10 * math.Log10(p1/p6); math.Abs(r) > 3 {
		t.Errorf("1 kHz (G.711) and 6 kHz (G.722) differ by %.1f dB in the mix, want within 3", r)
	}
}

// TestSampleRateChecked: a rate other than 8000, 16000 and 48000 is
// refused by Validate and by the WAV sink, naming the rate.
func TestSampleRateChecked(t *testing.T) {
	err := playout.Config{SampleRate: 44100}.Validate()
	if !errors.Is(err, playout.ErrSampleRate) {
		t.Errorf("Validate(44100) = %v, want ErrSampleRate", err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "x.wav"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := playout.NewWAVSinkRate(f, 1, 22050); !errors.Is(err, playout.ErrSampleRate) {
		t.Errorf("NewWAVSinkRate(22050) = %v, want ErrSampleRate", err)
	}
	if r := playout.RateFor(playout.CodecPCMA, playout.CodecG729); r != 8000 {
		t.Errorf("RateFor(PCMA, G729) = %d, want 8000", r)
	}
}

// needResampler skips a test of resampling in a build without the
// resampler (no cgo), whose sessions are all 8 kHz.
func needResampler(t *testing.T) {
	t.Helper()
	if !playout.ResamplerBuiltIn {
		t.Skip("skipping: the resampler is not built in (needs cgo and libspeexdsp-dev)")
	}
}

func ulawOf(pcm []int16) []byte {
	b := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return g711.EncodeUlaw(b)
}

// TestDownsampler: from 48 and 16 kHz to 8 kHz, a 1 kHz tone keeps its
// level (within 0.5 dB); in the other channel a 3 kHz tone keeps its
// level and a 6 kHz tone is filtered out (at least 70 dB down where it
// would fold: 78 dB measured, the 16-bit rounding floor); frames are carried over between calls of any size; the
// delay is libspeexdsp's 3 ms; no allocation.
func TestDownsampler(t *testing.T) {
	needResampler(t)
	for _, rate := range []int{16000, 48000} {
		lo, mid, hi := sine(1000, 8000, rate, rate), sine(3000, 4000, rate, rate), sine(6000, 4000, rate, rate)
		in := make([]int16, 2*rate)
		for i := range lo {
			in[2*i], in[2*i+1] = lo[i], mid[i]+hi[i]
		}
		d := playout.NewDownsampler(rate, 2)
		var out []int16
		for off := 0; off < len(in); off += 2 * 77 { // odd chunks
			out = d.Process(out, in[off:min(off+2*77, len(in))])
		}
		if len(out) != 2*8000 {
			t.Fatalf("%d Hz: %d samples out, want %d", rate, len(out), 2*8000)
		}
		left, right := make([]int16, 0, 8000), make([]int16, 0, 8000)
		for i := 400; i < 8000; i++ {
			left, right = append(left, out[2*i]), append(right, out[2*i+1])
		}
		db := 20 * math.Log10(rms(left)/rms(lo))
		if math.Abs(db) > 0.5 {
			t.Errorf("%d Hz: 1 kHz at %+.2f dB, want within 0.5 dB", rate, db)
		}
		if d3 := 20 * math.Log10(rms(right)/rms(mid)); math.Abs(d3) > 0.5 {
			t.Errorf("%d Hz: 3 kHz at %+.2f dB, want within 0.5 dB", rate, d3)
		}
		// 6 kHz folds to 2 kHz at 8 kHz.
		rej := 10 * math.Log10(goertzel(right, 2000, 8000)/goertzel(right, 3000, 8000))
		if rej > -70 {
			t.Errorf("%d Hz: 6 kHz comes out at %.1f dB, want at most -70 dB", rate, rej)
		}
		t.Logf("%d Hz to 8 kHz: 1 kHz %+.2f dB, 6 kHz %.1f dB", rate, db, rej)
		// A click at 10 ms comes out 3 ms later.
		click := make([]int16, 2*rate/10)
		click[2*(rate/100)] = 16000
		d.Reset()
		c := d.Process(nil, click)
		peak := 0
		for i := 0; i < len(c); i += 2 {
			if c[i] > c[peak] {
				peak = i
			}
		}
		if got := peak / 2; got != 80+24 {
			t.Errorf("%d Hz: a click at sample 80 comes out at %d, want %d (3 ms later)", rate, got, 80+24)
		}
		buf := make([]int16, 0, 2*160)
		if n := testing.AllocsPerRun(100, func() { buf = d.Process(buf[:0], in[:2*rate/50]) }); n != 0 {
			t.Errorf("%d Hz: %v allocations per 20 ms, want 0", rate, n)
		}
	}
}

// TestWidebandG722Concealment: in a 16 kHz session, G.722's concealment
// searches the pitch range in time (5 to 15 ms), not in 8 kHz samples: a
// lost packet of a 100 Hz tone (a 10 ms period, 160 samples at 16 kHz) is
// continued in phase, within 20 dB of the lossless decode over its first
// 10 ms. With the 8 kHz lags (at most 120 samples, 7.5 ms) the repeated
// period is wrong and the continuation is out of phase.
func TestWidebandG722Concealment(t *testing.T) {
	pays := g722Packets(t, sine(100, 8000, 16000, 2*16000))
	cfg := playout.Config{SampleRate: 16000}
	var all, lossy []arrival
	for i, p := range pays {
		a := arrival{time.Duration(i) * 20 * time.Millisecond, playout.FromAgent,
			rtpPacket(9, uint16(i), uint32(i*160), 3, false, p)}
		all = append(all, a)
		if i != 50 {
			lossy = append(lossy, a)
		}
	}
	ref, _ := runRenderer(t, cfg, all)
	out, st := runRenderer(t, cfg, lossy)
	if len(out) != len(ref) || st.Dir(playout.FromAgent).Lost != 1 {
		t.Fatalf("%d samples (lossless %d), stats %+v", len(out), len(ref), st.Dir(playout.FromAgent))
	}
	a, b := out[50*320:50*320+160], ref[50*320:50*320+160]
	diff := make([]int16, len(a))
	for i := range a {
		diff[i] = a[i] - b[i]
	}
	snr := 20 * math.Log10(rms(b)/max(rms(diff), 1e-9))
	if snr < 20 {
		t.Errorf("concealed 10 ms at %.1f dB from the lossless decode, want at least 20 dB", snr)
	}
	t.Logf("G.722 concealment at 16 kHz: %.1f dB signal to difference", snr)
}

// TestUpsampleMatchesSox: a G.711 stream (a chord of 300, 1100 and 3000
// Hz) in a 16 and a 48 kHz session comes out as sox's resampler (its
// "rate" effect, an independent implementation whose output is aligned
// with its input) upsamples the same decoded samples: after aligning the
// delays, the signal-to-difference is at least 50 dB (56 dB measured), and
// our delay is libspeexdsp's 3 ms. Skips without sox.
func TestUpsampleMatchesSox(t *testing.T) {
	needResampler(t)
	sox, err := exec.LookPath("sox")
	if err != nil {
		t.Skip("skipping: sox is not installed (scripts/deps.sh installs it)")
	}
	const secs = 2
	chord := make([]int16, secs*8000)
	for i := range chord {
		x := float64(i) / 8000
		chord[i] = int16(3000*math.Sin(2*math.Pi*300*x) + 3000*math.Sin(2*math.Pi*1100*x) + 3000*math.Sin(2*math.Pi*3000*x))
	}
	var arr []arrival
	var dec []int16
	for i := 0; i < secs*50; i++ {
		p := ulawOf(chord[i*160 : i*160+160])
		for _, u := range p {
			dec = append(dec, g711.DecodeUlawFrame(u))
		}
		arr = append(arr, arrival{time.Duration(i) * 20 * time.Millisecond, playout.FromAgent,
			rtpPacket(0, uint16(i), uint32(i*160), 1, false, p)})
	}
	dir := t.TempDir()
	raw := make([]byte, 2*len(dec))
	for i, v := range dec {
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(v))
	}
	in := filepath.Join(dir, "in.raw")
	if err := os.WriteFile(in, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, rate := range []int{16000, 48000} {
		out := filepath.Join(dir, "out.raw")
		cmd := exec.Command(sox, "-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1", in,
			"-t", "raw", "-r", strconv.Itoa(rate), "-e", "signed", "-b", "16", "-c", "1", out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sox: %v: %s", err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		ref := make([]int16, len(b)/2)
		for i := range ref {
			ref[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
		}
		got, _ := runRenderer(t, playout.Config{SampleRate: rate}, arr)
		m := rate / 8000
		lo, hi := 200*m, len(ref)-200*m
		best, lag := math.Inf(-1), 0
		for d := 0; d < 40*m; d++ { // our filter's delay: a few ms at most
			var c float64
			for i := lo; i < hi; i += 3 {
				if i+d < len(got) {
					c += float64(ref[i]) * float64(got[i+d])
				}
			}
			if c > best {
				best, lag = c, d
			}
		}
		var es, ed float64
		for i := lo; i < hi && i+lag < len(got); i++ {
			d := float64(got[i+lag]) - float64(ref[i])
			es += float64(ref[i]) * float64(ref[i])
			ed += d * d
		}
		sdr := 10 * math.Log10(es/max(ed, 1e-9))
		if sdr < 50 {
			t.Errorf("%d Hz: %.1f dB signal to difference against sox (lag %d), want at least 50 dB", rate, sdr, lag)
		}
		if lag != 3*rate/1000 {
			t.Errorf("%d Hz: delayed %d samples from sox, want %d (3 ms)", rate, lag, 3*rate/1000)
		}
		t.Logf("%d Hz: %.1f dB signal to difference against sox, our delay %d samples", rate, sdr, lag)
	}
}

// TestOpenSinkRate: the null and WAV sinks count seconds at their rate and
// the WAV header records it; a rate other than 8, 16 and 48 kHz is
// refused naming it.
func TestOpenSinkRate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.wav")
	for _, spec := range []string{"null", "wav:" + path} {
		s, err := playout.OpenSinkRate(spec, 1, 48000)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(make([]int16, 24000)); err != nil {
			t.Fatal(err)
		}
		if got := s.Seconds(); got != 0.5 {
			t.Errorf("%s: %v s for 24000 samples at 48 kHz, want 0.5", spec, got)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) != 44+48000 {
		t.Fatalf("%d bytes, %v", len(b), err)
	}
	if r := binary.LittleEndian.Uint32(b[24:]); r != 48000 {
		t.Errorf("header rate %d, want 48000", r)
	}
	if _, err := playout.OpenSinkRate("null", 1, 44100); !errors.Is(err, playout.ErrSampleRate) || !strings.Contains(err.Error(), "44100") {
		t.Errorf("OpenSinkRate(44100) = %v, want ErrSampleRate naming 44100", err)
	}
}

// TestPlayerWideband: a live Player of a 48 kHz session feeds a real-time
// sink six samples per 1/8000 s, continuously: a second of a G.711 call
// (upsampled) comes out as 48000 samples, its first within the minimum
// target plus a 10 ms block, as at 8 kHz.
func TestPlayerWideband(t *testing.T) {
	clk := audiotest.NewClock(t0)
	sink := audiotest.NewSink(1, true, clk)
	p := playout.NewPlayer(playout.Config{Clock: clk, SampleRate: 48000}, sink)
	audio := speechLike(8000, false, 3)
	for off := 0; off < len(audio); off += 160 {
		p.Push(playout.FromAgent, clk.Now(), rtpPacket(0, uint16(off/160), uint32(off), 1, false, audio[off:off+160]))
		clk.Advance(20 * time.Millisecond)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	w := sink.Writes()
	if len(w) == 0 {
		t.Fatal("nothing written")
	}
	if lat, limit := w[0].At.Sub(t0), playout.DefaultMinDelay+10*time.Millisecond; lat > limit {
		t.Errorf("first sample after %v, want within %v", lat, limit)
	}
	if n := len(sink.Samples()); n < 48000 {
		t.Errorf("%d samples for a second of call at 48 kHz, want at least 48000", n)
	}
	if st := p.Stats(); st.Dir(playout.FromAgent).Frames != 50 || math.Abs(st.Seconds-float64(len(sink.Samples()))/48000) > 1e-9 {
		t.Errorf("stats: %d frames, %.3f s for %d samples", st.Dir(playout.FromAgent).Frames, st.Seconds, len(sink.Samples()))
	}
}

// TestWidebandOpusFEC48k: in a 48 kHz session a lost Opus packet whose
// successor carries forward error correction is rebuilt from it (as at 8
// kHz, TestOpusFEC): its 960 samples are close to the lossless decode.
func TestWidebandOpusFEC48k(t *testing.T) {
	pkts := opusPackets(t, sine(700, 8000, 48000, 48000), true)
	cfg := playout.Config{SampleRate: 48000, PayloadTypes: map[uint8]playout.Codec{111: playout.CodecOpus}}
	ref, _ := runRenderer(t, cfg, opusArrivals(pkts, nil))
	lost := map[int]bool{20: true, 30: true}
	out, st := runRenderer(t, cfg, opusArrivals(pkts, lost))
	if len(out) != len(ref) || st.Dir(playout.FromAgent).Lost != 2 {
		t.Fatalf("%d samples (lossless %d), stats %+v", len(out), len(ref), st.Dir(playout.FromAgent))
	}
	for i := range lost {
		d := make([]int16, 960)
		for k := range d {
			d[k] = out[i*960+k] - ref[i*960+k]
		}
		if e, s := rms(d), rms(ref[i*960:i*960+960]); e > s/5 {
			t.Errorf("lost packet %d: error RMS %.0f against the lossless decode (signal %.0f): not rebuilt from FEC", i, e, s)
		} else {
			t.Logf("lost packet %d: error RMS %.0f, signal %.0f", i, e, s)
		}
	}
}

// TestWidebandUpsampledConcealment: behind the resampler a narrowband
// stream keeps its decoder's concealment and comfort noise. A lost G.711
// packet of a 1 kHz tone in a 16 and a 48 kHz session is concealed (not
// silent, still 1 kHz) and the output keeps its length; the silences of
// a G.729B call in a 16 kHz session are comfort noise, never digital
// silence.
func TestWidebandUpsampledConcealment(t *testing.T) {
	needResampler(t)
	tone := sine(1000, 8000, 8000, 2*8000)
	var arr []arrival
	for i := 0; i < 100; i++ {
		if i == 50 {
			continue
		}
		arr = append(arr, arrival{time.Duration(i) * 20 * time.Millisecond, playout.FromAgent,
			rtpPacket(0, uint16(i), uint32(i*160), 1, i == 0, ulawOf(tone[i*160:i*160+160]))})
	}
	for _, rate := range []int{16000, 48000} {
		m := rate / 8000
		out, st := runRenderer(t, playout.Config{SampleRate: rate}, arr)
		if len(out) != 100*160*m {
			t.Fatalf("%d Hz: %d samples, want %d", rate, len(out), 100*160*m)
		}
		if s := st.Dir(playout.FromAgent); s.Lost != 1 || s.Concealed < 1 {
			t.Errorf("%d Hz: stats %+v, want 1 lost and concealed", rate, s)
		}
		lost := out[50*160*m : 51*160*m]
		if r := rms(lost); r < 0.3*rms(tone) {
			t.Errorf("%d Hz: the lost packet is concealed at RMS %.0f, the tone's is %.0f", rate, r, rms(tone))
		}
		if f := loudestHz(lost, rate); math.Abs(f-1000) > 60 {
			t.Errorf("%d Hz: the concealed packet is loudest at %.0f Hz, want about 1000", rate, f)
		}
	}

	const noise = 60.0
	talk := [][2]int{{0, 8000}, {24000, 32000}, {48000, 56000}}
	g729, _ := vadCall(t, 7, talk, noise)
	out, st := runRenderer(t, playout.Config{SampleRate: 16000}, g729)
	if st.Dir(playout.FromAgent).Comfort == 0 {
		t.Errorf("no comfort noise counted: %+v", st.Dir(playout.FromAgent))
	}
	for _, gap := range [][2]int{{12000, 20000}, {36000, 44000}} {
		seg := out[2*gap[0] : 2*gap[1]]
		zeros, run := 0, 0
		for _, v := range seg {
			if v == 0 {
				run++
				zeros = max(zeros, run)
			} else {
				run = 0
			}
		}
		if lvl := rms(seg); zeros > 80 || lvl < noise/4 || lvl > noise*4 {
			t.Errorf("silence %v at 16 kHz: RMS %.1f (sender's noise %.0f), %d zero samples in a row: want comfort noise", gap, lvl, noise, zeros)
		}
	}
}
