package webrtcout

import (
	"context"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/playout/audiotest"
)

// levelAt is the level of the hz tone in pcm sampled at rate
// (audiotest.ToneLevel measures at 8 kHz; the Goertzel filter depends
// only on hz/rate).
func levelAt(pcm []int16, hz float64, rate int) float64 {
	return audiotest.ToneLevel(pcm, hz*playout.SampleRate/float64(rate))
}

// medianLevel is the median over pcm's 20 ms blocks of the hz tone's
// level: a tone's level unmoved by a frame lost or repeated on the way
// (which shifts its phase and lowers a whole-window measure).
func medianLevel(pcm []int16, hz float64, rate int) float64 {
	n := rate / 50
	var ls []float64
	for i := 0; i+n <= len(pcm); i += n {
		ls = append(ls, levelAt(pcm[i:i+n], hz, rate))
	}
	if len(ls) == 0 {
		return 0
	}
	sort.Float64s(ls)
	return ls[len(ls)/2]
}

// dominantAt returns the frequency, in 10 Hz steps from 100 Hz to
// 100 Hz below half of rate, with the largest level in pcm.
func dominantAt(pcm []int16, rate int) float64 {
	best, bestHz := 0.0, 0.0
	for hz := 100.0; hz <= float64(rate/2-100); hz += 10 {
		if l := levelAt(pcm, hz, rate); l > best {
			best, bestHz = l, hz
		}
	}
	return bestHz
}

// listenTwo answers a two-transceiver browser (with Opus or PCMU only)
// for session and waits for 2 s of packets on both tracks.
func listenTwo(t *testing.T, srv *Server, session string, withOpus bool) (*browser, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := newBrowserWith(t, 2, withOpus)
	answer, err := srv.Answer(ctx, session, b.offer)
	if err != nil {
		t.Fatal(err)
	}
	b.accept(answer)
	waitClosed(t, b.connected, 10*time.Second, "connected")
	b.waitBothTracks(t, 125)
	return b, answer
}

// waitBothTracks waits up to 15 s for n packets on the agent's and the
// customer's tracks.
func (b *browser) waitBothTracks(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		b.mu.Lock()
		a, cu := b.streams[TrackAgent], b.streams[TrackCustomer]
		ready := a != nil && cu != nil && a.packets >= n && cu.packets >= n
		b.mu.Unlock()
		if ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the browser received streams %v within 15 s, want agent and customer, %d packets each", keys(b), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkTrack checks that pcm (at rate) carries hz as its dominant
// frequency at level lv within tol (a fraction: the median over 20 ms
// blocks), and otherHz at least 30 dB below it.
func checkTrack(t *testing.T, name string, pcm []int16, rate int, hz, lv, tol, otherHz float64) {
	t.Helper()
	if got := dominantAt(pcm, rate); math.Abs(got-hz) > 20 {
		t.Errorf("%s track: dominant frequency %v Hz, want %v Hz", name, got, hz)
	}
	own, other := medianLevel(pcm, hz, rate), medianLevel(pcm, otherHz, rate)
	db := 20 * math.Log10(own/max(other, 1e-9))
	t.Logf("%s track: %.0f Hz at %.0f (sent %.0f), the other side's %.0f Hz at %.1f (%.1f dB below)", name, hz, own, lv, otherHz, other, db)
	if math.Abs(own-lv) > tol*lv {
		t.Errorf("%s track: its %.0f Hz tone at %.0f, want %.0f ± %.0f%%", name, hz, own, lv, 100*tol)
	}
	if db < 30 {
		t.Errorf("%s track: the other side's %.0f Hz only %.1f dB below its own tone, want at least 30 dB", name, otherHz, db)
	}
}

// TestListenOpus: a browser offering Opus (and PCMU) gets Opus on both
// tracks, with the browser's payload type and timestamps advancing 960
// (48 kHz) per 20 ms packet, and the answer says the audio is mono at the
// session's rate (sprop-maxcapturerate). Decoded with libopus, the
// agent's track carries the agent's tone and the customer's the
// customer's, each at its level within 10 % (the median over 20 ms
// blocks) and the other side's tone 30 dB below: a 16 kHz (G.722) session's 6 kHz tone and a 48 kHz (Opus)
// session's 12 kHz tone, which a PCMU path at 8 kHz cannot carry.
func TestListenOpus(t *testing.T) {
	for _, tc := range []struct {
		name, codec       string
		rate              int
		agentHz, custHz   float64
		agentAmp, custAmp float64
	}{
		{"16kHz", "G722", 16000, 6000, 1000, 8000, 4000},
		{"48kHz", "Opus", 48000, 1000, 12000, 8000, 4000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sup := newSupervisor(t)
			c := startCallOf(t, sup, "s1", tc.codec, tc.agentHz, tc.agentAmp, tc.custHz, tc.custAmp)
			c.on.Store(true)
			srv, err := New(Config{Source: sup, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			b, answer := listenTwo(t, srv, "s1", true)
			if !strings.Contains(answer, "opus/48000/2") || !strings.Contains(answer, "sprop-maxcapturerate="+strconv.Itoa(tc.rate)) {
				t.Errorf("answer does not offer Opus at %d Hz:\n%s", tc.rate, answer)
			}
			for i, want := range []string{TrackAgent, TrackCustomer} {
				tr := b.pc.GetTransceivers()[i].Receiver().Track()
				if tr == nil {
					t.Errorf("transceiver %d: no track, want %q", i, want)
					continue
				}
				if c := tr.Codec(); tr.StreamID() != want || !strings.EqualFold(c.MimeType, webrtc.MimeTypeOpus) || c.ClockRate != 48000 || c.Channels != 2 {
					t.Errorf("transceiver %d: track %q in %s/%d/%d, want %q in opus/48000/2", i, tr.StreamID(), c.MimeType, c.ClockRate, c.Channels, want)
				}
			}
			b.mu.Lock()
			a, cu := b.streams[TrackAgent], b.streams[TrackCustomer]
			bad := a.bad + cu.bad
			agent, customer := append([]int16(nil), a.samples...), append([]int16(nil), cu.samples...)
			mimes := a.mime + " and " + cu.mime
			b.mu.Unlock()
			// 1 s past the first 0.5 s, at 48 kHz.
			if len(agent) < 72000 || len(customer) < 72000 {
				t.Fatalf("received %d and %d samples of %s in 125 packets, want 2.5 s of Opus at 48 kHz", len(agent), len(customer), mimes)
			}
			agent, customer = agent[24000:72000], customer[24000:72000]
			if bad != 0 {
				t.Errorf("%d packets were not 20 ms of Opus on payload type 111 with timestamps 960 apart", bad)
			}
			checkTrack(t, "agent", agent, 48000, tc.agentHz, tc.agentAmp, 0.1, tc.custHz)
			checkTrack(t, "customer", customer, 48000, tc.custHz, tc.custAmp, 0.1, tc.agentHz)
		})
	}
}

// TestListenPCMUFallback: a browser offering PCMU only still gets PCMU at
// 8 kHz (160 bytes and 160 ticks per packet) from a 16 kHz (G.722)
// session: the agent's track carries the 1 kHz tone at its level within
// 10 %; the customer's 6 kHz tone, above PCMU's band, is filtered out,
// not folded to 2 kHz.
func TestListenPCMUFallback(t *testing.T) {
	sup := newSupervisor(t)
	c := startCallOf(t, sup, "s1", "G722", 1000, 8000, 6000, 4000)
	c.on.Store(true)
	srv, err := New(Config{Source: sup, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	b, answer := listenTwo(t, srv, "s1", false)
	if strings.Contains(strings.ToLower(answer), "opus") {
		t.Errorf("answer to a PCMU-only offer names Opus:\n%s", answer)
	}
	b.mu.Lock()
	a, cu := b.streams[TrackAgent], b.streams[TrackCustomer]
	mimes := []string{a.mime, cu.mime}
	bad := a.bad + cu.bad
	agent := append([]int16(nil), a.samples[4000:12000]...)
	customer := append([]int16(nil), cu.samples[4000:12000]...)
	b.mu.Unlock()
	for _, m := range mimes {
		if !strings.EqualFold(m, webrtc.MimeTypePCMU) {
			t.Errorf("track codec %s, want PCMU", m)
		}
	}
	if bad != 0 {
		t.Errorf("%d packets were not PCMU of 160 samples 160 ticks apart", bad)
	}
	if hz := dominant(agent); math.Abs(hz-1000) > 10 {
		t.Errorf("agent track: dominant frequency %v Hz, want 1000 Hz", hz)
	}
	if l := audiotest.ToneLevel(agent, 1000); math.Abs(l-8000) > 800 {
		t.Errorf("agent track: 1 kHz at %.0f, want 8000 ± 10%%", l)
	}
	if l := audiotest.ToneLevel(customer, 2000); l > 80 {
		t.Errorf("customer track: 2 kHz (the 6 kHz tone folded) at %.0f, want it filtered out (below 80)", l)
	}
}

// TestAnswerChromiumOffer answers the offer of the web console's page as
// headless Chromium 156 makes it (testdata/chromium_offer.sdp: two
// receive-only audio sections offering opus, red, G722, PCMU, PCMA, CN
// and telephone-event) for a 16 kHz session: each of the answer's two
// audio sections offers Opus alone, on the payload type the browser chose
// (111, and 109 when the offer numbers Opus 109 as Firefox does), with
// sprop-stereo=0 and sprop-maxcapturerate=16000, which the page shows as
// "Opus 16 kHz".
func TestAnswerChromiumOffer(t *testing.T) {
	golden, err := os.ReadFile("testdata/chromium_offer.sdp")
	if err != nil {
		t.Fatal(err)
	}
	sup := newSupervisor(t)
	startCallOf(t, sup, "s1", "G722", 1000, 8000, 400, 2000)
	srv, err := New(Config{Source: sup, Logger: quiet(), MaxPerSession: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, pt := range []string{"111", "109"} {
		offer := strings.NewReplacer(" 111 ", " "+pt+" ", ":111 ", ":"+pt+" ", "111/111", pt+"/"+pt).Replace(string(golden))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		answer, err := srv.Answer(ctx, "s1", offer)
		cancel()
		if err != nil {
			t.Fatalf("Opus on %s: %v", pt, err)
		}
		sections := strings.Split(answer, "m=audio ")[1:]
		if len(sections) != 2 {
			t.Fatalf("Opus on %s: answer has %d audio sections, want 2:\n%s", pt, len(sections), answer)
		}
		for i, sec := range sections {
			mline, _, _ := strings.Cut(sec, "\r\n")
			fields := strings.Fields(mline)
			if len(fields) != 3 || fields[2] != pt || !strings.Contains(sec, "a=rtpmap:"+pt+" opus/48000/2\r\n") ||
				!strings.Contains(sec, "a=fmtp:"+pt+" minptime=10;useinbandfec=1;sprop-stereo=0;sprop-maxcapturerate=16000\r\n") {
				t.Errorf("Opus on %s: answer's audio section %d is not Opus alone on %s, mono at 16 kHz:\nm=audio %s", pt, i, pt, sec)
			}
		}
	}
}
