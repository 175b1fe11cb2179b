package main

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/cmplx"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zaf/g711"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/internal/opus"
	"github.com/silentmon/silentmon/internal/testutil"
	"github.com/silentmon/silentmon/playout"
)

// The tests of this file render real captures that nobody here wrote (the
// Wireshark wiki's sample calls, testdata/captures/README.md) and compare
// what a supervisor would hear with an independent decoder (ffmpeg) fed
// the same RTP payloads.

// realPath is the path of a real capture under testdata/captures.
func realPath(name string) string { return filepath.Join("testdata", "captures", name) }

// realPkt is one RTP packet of a real capture, its payload copied.
type realPkt struct {
	ext     int64 // extended sequence number
	ts      uint32
	pt      uint8
	marker  bool
	payload []byte
	at      time.Time
}

// realStream returns the RTP packets of stream ssrc in the capture at
// path, in sequence number order, duplicates dropped.
func realStream(t *testing.T, path string, ssrc uint32) []realPkt {
	t.Helper()
	src, err := capture.OpenFile(path, capture.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var out []realPkt
	var last int64 = -1
	err = eachRTP(src, func(p *capture.Packet, ts time.Time) bool {
		if p.RTP.SSRC != ssrc {
			return true
		}
		seq := int64(p.RTP.SequenceNumber)
		if last >= 0 {
			// Unwrap against the last one: within half the space.
			seq += last &^ 0xffff
			switch {
			case seq-last > 1<<15:
				seq -= 1 << 16
			case last-seq > 1<<15:
				seq += 1 << 16
			}
		}
		last = seq
		out = append(out, realPkt{ext: seq, ts: p.RTP.Timestamp, pt: p.RTP.PayloadType, marker: p.RTP.Marker,
			payload: slices.Clone(p.RTP.Payload), at: ts})
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortStableFunc(out, func(a, b realPkt) int { return int(a.ext - b.ext) })
	out = slices.CompactFunc(out, func(a, b realPkt) bool { return a.ext == b.ext })
	if len(out) == 0 {
		t.Fatalf("%s holds no RTP of ssrc 0x%08x", path, ssrc)
	}
	return out
}

// ffmpegPCM runs ffmpeg with args (which must end in writing s16le to
// stdout) and returns the samples.
func ffmpegPCM(t *testing.T, ff string, args ...string) []int16 {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(ff, append([]string{"-nostdin", "-v", "error"}, args...)...)
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	out := make([]int16, len(raw)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	return out
}

// renderReal renders a real capture with smctl in-process and returns
// the WAV's rate, channels, samples and smctl's stdout.
func renderReal(t *testing.T, name string, args ...string) (rate, channels int, pcm []int16, stdout string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.wav")
	stdout, stderr, code := runSmctl(append([]string{"render", realPath(name), "--out", out}, args...)...)
	if code != 0 {
		t.Fatalf("smctl render %s: exit %d: %s", name, code, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	pcm, channels = readWAVFile(t, out)
	return int(binary.LittleEndian.Uint32(b[24:])), channels, pcm, stdout
}

// bestLag returns the lag in [0, maxLag] at which ours[i+lag] best
// matches ref[i] by normalised cross-correlation, computed on the
// loudest window of win samples of ref (so that silence does not
// match anything), and the correlation there (1: identical shape).
func bestLag(ours, ref []int16, win, maxLag int) (int, float64) {
	// The loudest window of ref, in steps of win/4.
	from, most := 0, -1.0
	for i := 0; i+win <= len(ref); i += win / 4 {
		if e := energy(ref[i : i+win]); e > most {
			from, most = i, e
		}
	}
	r := ref[from : from+win]
	best, bestC := 0, math.Inf(-1)
	for lag := 0; lag <= maxLag && from+lag+win <= len(ours); lag++ {
		o := ours[from+lag : from+lag+win]
		var xy float64
		for i := range r {
			xy += float64(o[i]) * float64(r[i])
		}
		if eo := energy(o); eo > 0 {
			if c := xy / math.Sqrt(eo*most); c > bestC {
				best, bestC = lag, c
			}
		}
	}
	return best, bestC
}

func energy(s []int16) float64 {
	var e float64
	for _, v := range s {
		e += float64(v) * float64(v)
	}
	return e
}

// compare returns the largest sample difference and the signal (ref) to
// difference ratio in dB of ours[i+lag] against ref[i] over ref.
func compare(ours, ref []int16, lag int) (maxDiff int, snr float64, n int) {
	var sig, diff float64
	for i, r := range ref {
		if i+lag >= len(ours) {
			break
		}
		d := int(ours[i+lag]) - int(r)
		maxDiff = max(maxDiff, max(d, -d))
		sig += float64(r) * float64(r)
		diff += float64(d) * float64(d)
		n++
	}
	return maxDiff, 10 * math.Log10(sig/max(diff, 1)), n
}

// dBFS is the RMS level of s relative to full scale (32768): -Inf for
// digital silence.
func dBFS(s []int16) float64 { return 20 * math.Log10(testutil.RMS(s)/32768) }

// highBandDB returns the energy of s (sampled at rate) above hz relative
// to its whole energy, in dB, from Hann-windowed 512-point spectra.
func highBandDB(s []int16, rate int, hz float64) float64 {
	const n = 512
	w := make([]float64, n)
	for i := range w {
		w[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/n)
	}
	var hi, all float64
	buf := make([]complex128, n)
	for at := 0; at+n <= len(s); at += n / 2 {
		for i := range buf {
			buf[i] = complex(float64(s[at+i])*w[i], 0)
		}
		fft(buf)
		for k := 1; k < n/2; k++ {
			p := cmplx.Abs(buf[k])
			p *= p
			all += p
			if float64(k)*float64(rate)/n >= hz {
				hi += p
			}
		}
	}
	return 10 * math.Log10(hi/all)
}

// fft transforms x in place (radix 2; len(x) a power of two).
func fft(x []complex128) {
	n := len(x)
	for i, j := 1, 0; i < n; i++ {
		bit := n >> 1
		for ; j&bit != 0; bit >>= 1 {
			j ^= bit
		}
		j |= bit
		if i < j {
			x[i], x[j] = x[j], x[i]
		}
	}
	for size := 2; size <= n; size <<= 1 {
		step := cmplx.Exp(complex(0, -2*math.Pi/float64(size)))
		for start := 0; start < n; start += size {
			w := complex(1, 0)
			for k := range size / 2 {
				a, b := x[start+k], x[start+k+size/2]*w
				x[start+k], x[start+k+size/2] = a+b, a-b
				w *= step
			}
		}
	}
}

// TestRenderRealG722 renders the Wireshark sample G.722 call: a 16 kHz
// WAV of the capture's 8.50 s whose samples, once aligned, are those of
// ffmpeg's G.722 decoder fed the same payloads in sequence order within
// docs/playout.md's tolerance (largest difference 2), with the audio's
// energy above 4 kHz kept.
func TestRenderRealG722(t *testing.T) {
	if !playout.G722BuiltIn {
		t.Skip("skipping: G.722 is not built in (needs cgo and libspandsp-dev)")
	}
	ff := testutil.NeedTool(t, "ffmpeg")
	const name = "sip-rtp-g722.pcap"
	pkts := realStream(t, realPath(name), 0x043daaba)
	var raw []byte
	for _, p := range pkts {
		if p.pt != 9 {
			t.Fatalf("payload type %d in the G.722 stream", p.pt)
		}
		raw = append(raw, p.payload...)
	}
	in := filepath.Join(t.TempDir(), "payloads.g722")
	if err := os.WriteFile(in, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	ref := ffmpegPCM(t, ff, "-f", "g722", "-i", in, "-f", "s16le", "-ar", "16000", "-ac", "1", "-")

	rate, ch, ours, stdout := renderReal(t, name)
	if rate != 16000 || ch != 1 {
		t.Fatalf("WAV at %d Hz, %d channels; want 16000, mono", rate, ch)
	}
	if !strings.Contains(stdout, "425 packets (0 lost, 0 late, 0 concealed frames), 8.50 s") {
		t.Errorf("render said %q, want 425 packets, none lost, 8.50 s", stdout)
	}
	if secs := float64(len(ours)) / 16000; secs < 8.5 {
		t.Errorf("the WAV holds %.3f s, the capture 8.50 s", secs)
	}
	lag, c := bestLag(ours, ref, 4096, 16000)
	maxDiff, snr, n := compare(ours, ref, lag)
	t.Logf("G.722: %d samples rendered, ffmpeg %d; lag %d samples (%.1f ms), correlation %.6f; max difference %d over %d samples, %.1f dB signal to difference",
		len(ours), len(ref), lag, float64(lag)/16, c, maxDiff, n, snr)
	if n != len(ref) {
		t.Errorf("only %d of ffmpeg's %d samples are in the WAV after the lag", n, len(ref))
	}
	if maxDiff > 2 {
		t.Errorf("largest difference from ffmpeg's decode %d, tolerance 2", maxDiff)
	}
	hi := highBandDB(ours, 16000, 4000)
	refHi := highBandDB(ref, 16000, 4000)
	t.Logf("G.722: energy above 4 kHz %.1f dB of the whole (ffmpeg's decode %.1f dB)", hi, refHi)
	if hi < -25 {
		t.Errorf("energy above 4 kHz %.1f dB of the whole: the call's wideband content is lost (measured -19.4 dB)", hi)
	}
	if math.Abs(hi-refHi) > 0.1 {
		t.Errorf("energy above 4 kHz %.1f dB of the whole, ffmpeg's decode %.1f dB", hi, refHi)
	}
}

// TestRenderRealOpus renders the Wireshark sample Opus call (payload type
// 99 named by its SDP, 20 ms hybrid fullband packets): a 48 kHz WAV of
// the capture's 8.50 s whose samples, once aligned, are bit for bit those
// of ffmpeg decoding the same packets through libopus.
func TestRenderRealOpus(t *testing.T) {
	if !playout.OpusBuiltIn {
		t.Skip("skipping: Opus is not built in (needs cgo and libopus-dev)")
	}
	ff := testutil.NeedTool(t, "ffmpeg")
	const name = "sip-rtp-opus.pcap"
	var pkts [][]byte
	for _, p := range realStream(t, realPath(name), 0x043eee04) {
		if p.pt != 99 {
			t.Fatalf("payload type %d in the Opus stream", p.pt)
		}
		pkts = append(pkts, p.payload)
	}
	in := filepath.Join(t.TempDir(), "call.opus")
	if err := os.WriteFile(in, testutil.OggOpus(pkts, func(p []byte) int {
		n, err := opus.PacketSamples(p, 48000)
		if err != nil {
			t.Fatalf("packet of %d bytes: %v", len(p), err)
		}
		return n
	}), 0o600); err != nil {
		t.Fatal(err)
	}
	ref := ffmpegPCM(t, ff, "-c:a", "libopus", "-i", in, "-f", "s16le", "-ar", "48000", "-ac", "1", "-")

	rate, ch, ours, stdout := renderReal(t, name)
	if rate != 48000 || ch != 1 {
		t.Fatalf("WAV at %d Hz, %d channels; want 48000, mono", rate, ch)
	}
	if !strings.Contains(stdout, "425 packets (0 lost, 0 late, 0 concealed frames), 8.50 s") {
		t.Errorf("render said %q, want 425 packets, none lost, 8.50 s", stdout)
	}
	lag, c := bestLag(ours, ref, 4096, 4800)
	maxDiff, snr, n := compare(ours, ref, lag)
	t.Logf("Opus: %d samples rendered, ffmpeg (libopus) %d; lag %d samples (%.2f ms), correlation %.6f; max difference %d over %d samples, %.1f dB signal to difference",
		len(ours), len(ref), lag, float64(lag)/48, c, maxDiff, n, snr)
	if n != len(ref) {
		t.Errorf("only %d of ffmpeg's %d samples are in the WAV after the lag", n, len(ref))
	}
	if maxDiff != 0 {
		t.Errorf("largest difference from ffmpeg's libopus decode %d, want 0 (the same library)", maxDiff)
	}
	hi := highBandDB(ours, 48000, 8000)
	t.Logf("Opus: energy above 8 kHz %.1f dB of the whole", hi)
}

// minG729SNR is a little below the signal to difference measured between
// smctl render (bcg729) and ffmpeg's G.729 decoder on the sample G.729A
// call, 23.8 dB (largest sample difference 631, correlation 0.9985, lag
// 0): the two implementations differ in their postfilters, not in what is
// heard.
const minG729SNR = 20

// TestRenderRealG729A renders the Wireshark sample G.729A call: an 8 kHz
// WAV of the capture's 8.50 s which, once aligned, ffmpeg's own G.729
// decoder (an independent implementation) fed the same payloads matches
// within minG729SNR of signal to difference.
func TestRenderRealG729A(t *testing.T) {
	if !playout.G729BuiltIn {
		t.Skip("skipping: G.729 is not built in (needs cgo and libbcg729-dev)")
	}
	ff := testutil.NeedTool(t, "ffmpeg")
	const name = "sip-rtp-g729a.pcap"
	var raw []byte
	for _, p := range realStream(t, realPath(name), 0x044559a1) {
		if p.pt != 18 || len(p.payload)%10 != 0 {
			t.Fatalf("payload type %d, %d bytes in the G.729 stream", p.pt, len(p.payload))
		}
		raw = append(raw, p.payload...)
	}
	in := filepath.Join(t.TempDir(), "payloads.g729")
	if err := os.WriteFile(in, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	ref := ffmpegPCM(t, ff, "-f", "g729", "-i", in, "-f", "s16le", "-ar", "8000", "-ac", "1", "-")

	rate, ch, ours, stdout := renderReal(t, name)
	if rate != 8000 || ch != 1 {
		t.Fatalf("WAV at %d Hz, %d channels; want 8000, mono", rate, ch)
	}
	if !strings.Contains(stdout, "425 packets (0 lost, 0 late, 0 concealed frames), 8.50 s") {
		t.Errorf("render said %q, want 425 packets, none lost, 8.50 s", stdout)
	}
	lag, c := bestLag(ours, ref, 2048, 8000)
	maxDiff, snr, n := compare(ours, ref, lag)
	t.Logf("G.729A: %d samples rendered, ffmpeg %d; lag %d samples (%.1f ms), correlation %.6f; max difference %d over %d samples, %.1f dB signal to difference",
		len(ours), len(ref), lag, float64(lag)/8, c, maxDiff, n, snr)
	if n != len(ref) {
		t.Errorf("only %d of ffmpeg's %d samples are in the WAV after the lag", n, len(ref))
	}
	if snr < minG729SNR {
		t.Errorf("%.1f dB of signal to difference from ffmpeg's G.729 decode, want at least %d dB", snr, minG729SNR)
	}
}

// realEvent is one RFC 4733 event of a real capture, read by the test
// itself: its code, start timestamp and final duration (timestamp units).
type realEvent struct {
	code     uint8
	ts       uint32
	duration uint32
}

// digitOf names an RFC 4733 DTMF event code.
func digitOf(code uint8) byte { return "0123456789*#ABCD"[code] }

// TestRenderRealDTMF renders the Wireshark sample call SIP_DTMF2: a PCMA
// call in which 192.168.105.172 sends the digits 6789123 as RFC 4733
// events on payload type 96 in its voice's SSRC and sequence numbers.
// render and analyze report that stream with 0 lost (the events hold
// their sequence numbers); the digits the supervisor's status shows
// (playout.ParseEvents and EventCounter over the stream) are those
// tshark finds; in the WAV the events are silence (below -50 dBFS from
// 10 ms after each event's start to 10 ms before its end) while the voice
// around them is heard, sample for sample as the PCMA sent.
func TestRenderRealDTMF(t *testing.T) {
	const name = "SIP_DTMF2.pcap"
	const ssrc = 0x5711bf84 // 192.168.105.172 -> 192.168.105.110
	pkts := realStream(t, realPath(name), ssrc)

	// The events, read here from the payloads' bytes.
	var events []realEvent
	var voice []realPkt
	for _, p := range pkts {
		switch p.pt {
		case 8:
			voice = append(voice, p)
			continue
		case 96:
		default:
			t.Fatalf("payload type %d in stream 0x%08x", p.pt, ssrc)
		}
		if len(p.payload) != 4 {
			t.Fatalf("event payload of %d bytes", len(p.payload))
		}
		code, dur := p.payload[0], uint32(binary.BigEndian.Uint16(p.payload[2:]))
		if n := len(events); n > 0 && events[n-1].ts == p.ts && events[n-1].code == code {
			events[n-1].duration = max(events[n-1].duration, dur)
			continue
		}
		events = append(events, realEvent{code: code, ts: p.ts, duration: dur})
	}
	var digits []byte
	for _, e := range events {
		digits = append(digits, digitOf(e.code))
	}
	t.Logf("digits %s in %d event packets, %d voice packets", digits, len(pkts)-len(voice), len(voice))
	if string(digits) != "6789123" {
		t.Errorf("the capture's events read as %q, want 6789123", digits)
	}
	if ts, err := exec.LookPath("tshark"); err != nil {
		t.Log("tshark is not installed: the digits are not checked against it")
	} else {
		out, err := exec.Command(ts, "-r", realPath(name), "-Y", "rtpevent", "-T", "fields", "-e", "rtp.timestamp", "-e", "rtpevent.event_id").Output()
		if err != nil {
			t.Fatalf("tshark: %v", err)
		}
		var td []byte
		last := ""
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			if len(f) != 2 || f[0] == last {
				continue
			}
			last = f[0]
			var code uint8
			for _, c := range f[1] {
				code = code*10 + uint8(c-'0')
			}
			td = append(td, digitOf(code))
		}
		if !bytes.Equal(td, digits) {
			t.Errorf("tshark reads the digits %q, the test %q", td, digits)
		}
	}
	// What status shows: the digits playout reads, each event once.
	var ec playout.EventCounter
	var shown []byte
	for _, p := range pkts {
		if p.pt != 96 {
			continue
		}
		evs, err := playout.ParseEvents(p.payload, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if ec.New(ssrc, p.ts, e) {
				shown = append(shown, e.Digit())
			}
		}
	}
	if !bytes.Equal(shown, digits) {
		t.Errorf("playout reads the digits %q, the capture carries %q", shown, digits)
	}

	found := false
	for _, s := range analyzeJSON(t, realPath(name)).Streams {
		if s.SSRC == "0x5711bf84" {
			found = true
			if s.Packets != 666 || s.Lost != 0 {
				t.Errorf("analyze: stream %s: %d packets, %d lost; want 666, 0 lost", s.SSRC, s.Packets, s.Lost)
			}
		}
	}
	if !found {
		t.Error("analyze does not list stream 0x5711bf84")
	}
	rate, ch, pcm, stdout := renderReal(t, name, "--endpoint", "192.168.105.110", "--stereo")
	if rate != 8000 || ch != 2 {
		t.Fatalf("WAV at %d Hz, %d channels; want 8000, stereo", rate, ch)
	}
	if !strings.Contains(stdout, "to-agent   ssrc 0x5711bf84 192.168.105.172:4376->192.168.105.110:4376 PCMA: 666 packets, 0 lost,") {
		t.Errorf("render did not report the stream with events as 666 packets, 0 lost:\n%s", stdout)
	}
	right := make([]int16, len(pcm)/2) // the customer: 192.168.105.172
	for i := range right {
		right[i] = pcm[2*i+1]
	}

	// The voice the phone sent, decoded here, at its timestamps.
	ts0 := voice[0].ts
	end := voice[len(voice)-1].ts - ts0 + uint32(len(voice[len(voice)-1].payload))
	sent := make([]int16, end)
	for _, p := range voice {
		lp := g711.DecodeAlaw(p.payload)
		for i := range len(lp) / 2 {
			sent[p.ts-ts0+uint32(i)] = int16(binary.LittleEndian.Uint16(lp[2*i:]))
		}
	}
	// Each talkspurt (the voice before the first digit, between two
	// digits, after the last) has its own place in the WAV: the jitter
	// buffer schedules a talkspurt's start on the mixer's 10 ms blocks.
	// Find each one's lag and check it is the phone's voice sample for
	// sample.
	type spurt struct{ from, to, lag int } // in sent
	var spurts []spurt
	from := 0
	for _, e := range events {
		spurts = append(spurts, spurt{from: from, to: int(e.ts - ts0)})
		for _, p := range voice {
			if p.ts > e.ts {
				from = int(p.ts - ts0)
				break
			}
		}
	}
	spurts = append(spurts, spurt{from: from, to: len(sent)})
	lag0, c := bestLag(right, sent, 4096, 2*8000)
	for i := range spurts {
		sp := &spurts[i]
		sp.lag, c = lagNear(right, sent[sp.from:sp.to], sp.from, lag0, 2*blockSamples)
		differ := 0
		for j := sp.from; j < sp.to && j+sp.lag < len(right); j++ {
			if right[j+sp.lag] != sent[j] {
				differ++
			}
		}
		t.Logf("talkspurt %d: %.3f s of voice at %.1f ms into the WAV (correlation %.6f), %d samples differ from what the phone sent",
			i, float64(sp.to-sp.from)/8000, float64(sp.from+sp.lag)/8, c, differ)
		if differ > 0 {
			t.Errorf("talkspurt %d: %d samples differ from the voice the phone sent", i, differ)
		}
		if d := sp.lag - spurts[0].lag; d < 0 || d > blockSamples {
			t.Errorf("talkspurt %d plays %d samples later than the first, want 0 to %d (one block)", i, d, blockSamples)
		}
	}
	const margin = 80 // 10 ms
	for i, e := range events {
		at := spurts[i].lag + int(e.ts-ts0) // where the voice before it ended
		next := spurts[i+1].lag + spurts[i+1].from
		span := right[at+margin : at+int(e.duration)-margin]
		gap := right[at+int(e.duration) : next]
		before, after := right[at-800:at], right[next:next+800]
		t.Logf("digit %c at %.3f s: %.0f ms of event at %.1f dBFS, %.0f ms more until the voice at %.1f dBFS; voice %.1f dBFS in the 100 ms before, %.1f dBFS after",
			digitOf(e.code), float64(at)/8000, float64(e.duration)/8, dBFS(span), float64(len(gap))/8, dBFS(gap), dBFS(before), dBFS(after))
		if l := dBFS(span); l > -50 {
			t.Errorf("digit %c: %.1f dBFS during the event, want silence (below -50 dBFS)", digitOf(e.code), l)
		}
		// The voice around is the phone's (checked above) and heard: this
		// phone's background between digits is quiet, but not silence.
		for _, v := range [][]int16{before, after} {
			if l := dBFS(v); l < -60 {
				t.Errorf("digit %c: the voice next to it at %.1f dBFS, want what the phone sent (above -60 dBFS)", digitOf(e.code), l)
			}
		}
	}
}

// blockSamples is the mixer's block at 8 kHz (10 ms).
const blockSamples = 80

// lagNear returns the lag within around±maxDev at which ours[at+i+lag]
// best matches ref[i] by normalised cross-correlation, and the
// correlation there.
func lagNear(ours, ref []int16, at, around, maxDev int) (int, float64) {
	best, bestC := around, math.Inf(-1)
	er := energy(ref)
	for lag := around - maxDev; lag <= around+maxDev; lag++ {
		if at+lag < 0 || at+lag+len(ref) > len(ours) {
			continue
		}
		o := ours[at+lag : at+lag+len(ref)]
		var xy float64
		for i := range ref {
			xy += float64(o[i]) * float64(ref[i])
		}
		if eo := energy(o); eo > 0 && er > 0 {
			if c := xy / math.Sqrt(eo*er); c > bestC {
				best, bestC = lag, c
			}
		}
	}
	return best, bestC
}

// TestRenderRealLeftOut: in a build without a codec (CGO_ENABLED=0), the
// sample G.722, Opus and G.729A calls are not written as silence: render
// names the stream, its codec from the SDP and what the build lacks on
// stderr, exits 1 and writes no WAV. (SIP_DTMF2, G.711, still plays:
// TestRenderRealDTMF runs in such a build too.)
func TestRenderRealLeftOut(t *testing.T) {
	ran := 0
	for _, tc := range []struct {
		name, ssrc, flow, pt string
		built                bool
		lacks                string
	}{
		{"sip-rtp-g722.pcap", "0x043daaba", "10.0.2.15:17472->10.0.2.20:6000", "9 (G722, named by the SDP)", playout.G722BuiltIn,
			"G.722 is not built into this binary (it needs cgo and libspandsp-dev)"},
		{"sip-rtp-opus.pcap", "0x043eee04", "10.0.2.15:24196->10.0.2.20:6000", "99 (opus, named by the SDP)", playout.OpusBuiltIn,
			"Opus is not built into this binary (it needs cgo and libopus-dev)"},
		{"sip-rtp-g729a.pcap", "0x044559a1", "10.0.2.15:28120->10.0.2.20:6000", "18 (G729, named by the SDP)", playout.G729BuiltIn,
			"G.729 is not built into this binary (it needs cgo and libbcg729-dev)"},
	} {
		if tc.built {
			t.Logf("%s: its codec is built in (TestRenderRealG722, TestRenderRealOpus, TestRenderRealG729A check it)", tc.name)
			continue
		}
		ran++
		out := filepath.Join(t.TempDir(), "out.wav")
		stdout, stderr, code := runSmctl("render", realPath(tc.name), "--out", out)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1: %s", tc.name, code, stderr)
		}
		want := "render: skipped stream ssrc " + tc.ssrc + " " + tc.flow + " (from-agent): 425 packets of payload type " + tc.pt +
			", which smctl render cannot decode (" + tc.lacks + "); not rendered"
		if !strings.Contains(stderr, want) {
			t.Errorf("%s: stderr %q lacks %q", tc.name, stderr, want)
		}
		if strings.Contains(stdout, "wrote") {
			t.Errorf("%s: stdout %q", tc.name, stdout)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: a render that played nothing wrote %s", tc.name, out)
		}
	}
	if ran == 0 {
		t.Skip("skipping: G.722, Opus and G.729 are all built in; run with CGO_ENABLED=0 to check a build without them")
	}
}
