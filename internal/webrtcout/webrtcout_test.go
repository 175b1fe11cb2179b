package webrtcout

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/zaf/g711"
	"go.uber.org/goleak"

	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/g722"
	"github.com/silentmon/silentmon/internal/opus"
	"github.com/silentmon/silentmon/internal/supervisor"
	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/playout/audiotest"
	"github.com/silentmon/silentmon/relay"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// capturePeer is the capture server the tests' media comes from.
var capturePeer = &relay.Peer{Hello: relay.Hello{Role: relay.RoleCapture, Name: "capture-1"}}

// leg is one direction of a call: a tone of amplitude amp, silent until
// on; µ-law unless g722 or opus is set (payload types 9 and 111).
type leg struct {
	dir      filter.Direction
	hz, amp  float64
	seq      uint16
	ts, ssrc uint32
	k        int
	src, dst netip.AddrPort
	g722     *g722.Encoder // 16 kHz input
	opus     *opus.Encoder // 48 kHz input
}

func (l *leg) next(on bool) []byte {
	rate, n, pt, ticks := playout.SampleRate, 160, byte(0), uint32(160)
	switch {
	case l.g722 != nil:
		rate, n, pt = 16000, 320, 9
	case l.opus != nil:
		rate, n, pt, ticks = 48000, 960, 111, 960
	}
	pcm := make([]int16, n)
	if on {
		for i := range pcm {
			pcm[i] = int16(l.amp * math.Sin(2*math.Pi*l.hz*float64(l.k)/float64(rate)))
			l.k++
		}
	}
	b := make([]byte, 12, 12+1275)
	b[0], b[1] = 0x80, pt
	binary.BigEndian.PutUint16(b[2:], l.seq)
	binary.BigEndian.PutUint32(b[4:], l.ts)
	binary.BigEndian.PutUint32(b[8:], l.ssrc)
	var err error
	switch {
	case l.g722 != nil:
		b = b[:12+160]
		_, err = l.g722.Encode(pcm, b[12:])
	case l.opus != nil:
		var m int
		m, err = l.opus.Encode(pcm, b[12:12+1275])
		b = b[:12+m]
	default:
		for _, v := range pcm {
			b = append(b, g711.EncodeUlawFrame(v))
		}
	}
	if err != nil {
		panic(err) // the tests' encoders take every frame
	}
	l.seq++
	l.ts += ticks
	return b
}

func send(t *testing.T, sup *supervisor.Supervisor, session string, l *leg, pkt []byte, capture time.Time) {
	body := relay.AppendMediaHeader(nil, session, 1)
	body = relay.AppendMediaPacket(body, &relay.MediaPacket{Direction: l.dir, Time: capture.UnixNano(),
		Src: l.src, Dst: l.dst, Data: pkt})
	f, err := relay.ParseMedia(body)
	if err != nil {
		t.Error(err)
		return
	}
	if err := sup.Media(capturePeer, &f); err != nil {
		t.Error(err)
	}
}

// call feeds a session in real time: the agent's 1 kHz tone of amplitude
// 8000 and the customer's 400 Hz of amplitude 2000, both silent until
// toneOn.
type call struct {
	t        *testing.T
	sup      *supervisor.Supervisor
	session  string
	on       atomic.Bool
	onAt     atomic.Int64 // capture time of the first tone packet
	stop     chan struct{}
	done     chan struct{}
	agent    leg
	customer leg
}

func startCall(t *testing.T, sup *supervisor.Supervisor, session string) *call {
	return startCallOf(t, sup, session, "PCMU", 1000, 8000, 400, 2000)
}

// startCallOf is startCall in codec ("PCMU", "G722" at 16 kHz, "Opus" at
// 48 kHz) with the agent's tone of agentHz at amplitude agentAmp and the
// customer's of customerHz at customerAmp.
func startCallOf(t *testing.T, sup *supervisor.Supervisor, session, codec string, agentHz, agentAmp, customerHz, customerAmp float64) *call {
	t.Helper()
	c := &call{t: t, sup: sup, session: session, stop: make(chan struct{}), done: make(chan struct{}),
		agent: leg{dir: filter.FromAgent, hz: agentHz, amp: agentAmp, ssrc: 0x1111, seq: 100,
			src: netip.MustParseAddrPort("10.0.0.1:4000"), dst: netip.MustParseAddrPort("10.0.0.2:4002")},
		customer: leg{dir: filter.ToAgent, hz: customerHz, amp: customerAmp, ssrc: 0x2222, seq: 900,
			src: netip.MustParseAddrPort("10.0.0.2:4002"), dst: netip.MustParseAddrPort("10.0.0.1:4000")}}
	for _, l := range []*leg{&c.agent, &c.customer} {
		switch codec {
		case "G722":
			if !g722.Available() {
				t.Skip("skipping: G.722 is not built in (needs cgo and libspandsp-dev)")
			}
			e, err := g722.NewEncoder(16000)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.Close() })
			l.g722 = e
		case "Opus":
			if !opus.Available() {
				t.Skip("skipping: Opus is not built in (needs cgo and libopus-dev)")
			}
			e, err := opus.NewEncoder(opus.EncoderConfig{Rate: 48000, Bitrate: 96000})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.Close() })
			l.opus = e
		}
	}
	c.send() // the session opens now
	go c.run()
	t.Cleanup(c.end)
	return c
}

func (c *call) send() {
	now := time.Now()
	on := c.on.Load()
	if on {
		c.onAt.CompareAndSwap(0, now.UnixNano())
	}
	send(c.t, c.sup, c.session, &c.agent, c.agent.next(on), now)
	send(c.t, c.sup, c.session, &c.customer, c.customer.next(on), now)
}

func (c *call) run() {
	defer close(c.done)
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tk.C:
			c.send()
		}
	}
}

func (c *call) end() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

// browser is the test's browser: a pion peer with receive-only audio
// transceivers, decoding what it receives.
type browser struct {
	t     *testing.T
	pc    *webrtc.PeerConnection
	offer string

	mu       sync.Mutex
	samples  []int16     // of the first track received
	arrivals []time.Time // per packet of the first track
	first    string      // the first track's stream id
	streams  map[string]*received
	badPT    int
	packets  chan struct{}

	connected, gone chan struct{}
	connOnce        sync.Once
	goneOnce        sync.Once
	readers         sync.WaitGroup
}

// received is what a browser received on one track.
type received struct {
	track   string  // the track's id
	mime    string  // the track's codec
	samples []int16 // decoded: 8 kHz for PCMU, 48 kHz for Opus
	packets int
	bad     int // packets not of the codec's 20 ms (payload, timestamp step)
	lastTS  uint32
	dec     *opus.Decoder
}

// newBrowser returns a browser offering one receive-only audio
// transceiver.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	return newBrowserN(t, 1)
}

// newBrowserN returns a browser offering n receive-only audio
// transceivers with PCMU only.
func newBrowserN(t *testing.T, n int) *browser {
	t.Helper()
	return newBrowserWith(t, n, false)
}

// newBrowserWith returns a browser offering n receive-only audio
// transceivers, with Opus (payload type 111, as browsers offer it) then
// PCMU when withOpus, else PCMU only.
func newBrowserWith(t *testing.T, n int, withOpus bool) *browser {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if withOpus {
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
				SDPFmtpLine: "minptime=10;useinbandfec=1"},
			PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000},
		PayloadType:        0}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, pc: pc, packets: make(chan struct{}, 1024), connected: make(chan struct{}), gone: make(chan struct{}),
		streams: map[string]*received{}}
	t.Cleanup(b.close)
	for range n {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			b.connOnce.Do(func() { close(b.connected) })
		case webrtc.PeerConnectionStateDisconnected, webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			b.goneOnce.Do(func() { close(b.gone) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		b.mu.Lock()
		if b.first == "" {
			b.first = tr.StreamID()
		}
		r := &received{track: tr.ID(), mime: tr.Codec().MimeType}
		if strings.EqualFold(r.mime, webrtc.MimeTypeOpus) {
			d, err := opus.NewDecoder(48000)
			if err != nil {
				t.Error(err)
			}
			r.dec = d
		}
		b.streams[tr.StreamID()] = r
		b.mu.Unlock()
		b.readers.Add(1)
		go b.read(tr)
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	b.offer = pc.LocalDescription().SDP
	return b
}

func (b *browser) read(tr *webrtc.TrackRemote) {
	defer b.readers.Done()
	pcm := make([]int16, 5760)
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			b.mu.Lock()
			if r := b.streams[tr.StreamID()]; r.dec != nil {
				r.dec.Close()
			}
			b.mu.Unlock()
			return
		}
		now := time.Now()
		b.mu.Lock()
		r := b.streams[tr.StreamID()]
		n := 0
		if r.dec != nil {
			// Opus: the offered payload type, 960 ticks of 48 kHz per
			// 20 ms, whatever the audio's rate.
			n, err = r.dec.Decode(p.Payload, pcm)
			if err != nil || n != 960 || p.PayloadType != 111 || (r.packets > 0 && p.Timestamp-r.lastTS != 960) {
				r.bad++
			}
		} else {
			if p.PayloadType != 0 || len(p.Payload) != 160 || (r.packets > 0 && p.Timestamp-r.lastTS != 160) {
				b.badPT++
				r.bad++
			}
			for i, u := range p.Payload {
				pcm[i] = g711.DecodeUlawFrame(u)
			}
			n = len(p.Payload)
		}
		r.lastTS = p.Timestamp
		r.samples = append(r.samples, pcm[:n]...)
		r.packets++
		if tr.StreamID() == b.first {
			b.samples = append(b.samples, pcm[:n]...)
			b.arrivals = append(b.arrivals, now)
		}
		b.mu.Unlock()
		select {
		case b.packets <- struct{}{}:
		default:
		}
	}
}

func (b *browser) accept(answer string) {
	b.t.Helper()
	if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		b.t.Fatal(err)
	}
}

// close closes the peer connection and waits for the track's reader.
func (b *browser) close() {
	b.pc.Close()
	b.readers.Wait()
}

// waitPackets waits until the browser has received n packets.
func (b *browser) waitPackets(n int, within time.Duration) {
	b.t.Helper()
	deadline := time.After(within)
	for {
		b.mu.Lock()
		got := len(b.arrivals)
		b.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-b.packets:
		case <-deadline:
			b.t.Fatalf("the browser received %d packets in %v, want %d", got, within, n)
		}
	}
}

func waitClosed(t *testing.T, c <-chan struct{}, within time.Duration, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(within):
		t.Fatalf("%s not within %v", what, within)
	}
}

func newSupervisor(t *testing.T) *supervisor.Supervisor {
	t.Helper()
	sup, err := supervisor.New(supervisor.Config{Output: "null", Logger: quiet(),
		Playout: playout.Config{PayloadTypes: map[uint8]playout.Codec{111: playout.CodecOpus}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sup.Close() })
	return sup
}

// dominant returns the frequency, in 1 Hz steps from 100 to 3900 Hz,
// with the largest Goertzel level in pcm.
func dominant(pcm []int16) float64 {
	best, bestHz := 0.0, 0.0
	for hz := 100.0; hz <= 3900; hz++ {
		if l := audiotest.ToneLevel(pcm, hz); l > best {
			best, bestHz = l, hz
		}
	}
	return bestHz
}

// TestListen: a browser's offer is answered, the peer connection
// connects over loopback and carries PCMU in 20 ms packets; the decoded
// audio's dominant frequency is the agent's 1 kHz tone, the customer's
// 400 Hz is there as mixed (its own amplitude, no halving); the levels
// per direction are the tones'; the delay from capture to the browser is
// within the jitter buffer's target plus 100 ms; the browser is
// disconnected when the session ends.
func TestListen(t *testing.T) {
	sup := newSupervisor(t)
	c := startCall(t, sup, "s1")
	srv, err := New(Config{Source: sup, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	b := newBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	answer, err := srv.Answer(ctx, "s1", b.offer)
	if err != nil {
		t.Fatal(err)
	}
	b.accept(answer)
	waitClosed(t, b.connected, 10*time.Second, "connected")
	b.waitPackets(15, 5*time.Second) // silence while the tone is off
	b.mu.Lock()
	before := len(b.arrivals)
	b.mu.Unlock()
	c.on.Store(true)
	b.waitPackets(before+100, 10*time.Second) // 2 s of tone

	b.mu.Lock()
	samples := append([]int16(nil), b.samples...)
	arrivals := append([]time.Time(nil), b.arrivals...)
	bad := b.badPT
	b.mu.Unlock()
	if bad != 0 {
		t.Errorf("%d packets were not PCMU of 160 samples", bad)
	}
	onset := -1
	for i := before * 160; i < len(samples); i++ {
		if samples[i] > 1000 || samples[i] < -1000 {
			onset = i
			break
		}
	}
	if onset < 0 {
		t.Fatal("the browser received no tone")
	}
	captured := time.Unix(0, c.onAt.Load())
	// The tone's first sample is at the start of its packet; the onset
	// found is the packet's first loud sample, one or two samples in.
	delay := arrivals[onset/160].Sub(captured)
	target := time.Duration(sup.Snapshot().Sessions[0].TargetMs * float64(time.Millisecond))
	t.Logf("capture to browser: %v (jitter buffer target %v; pipeline delay reported %v)", delay, target, srv.PipelineDelay("s1"))
	if delay <= 0 || delay > target+100*time.Millisecond {
		t.Errorf("capture to browser %v, want at most the target %v + 100ms", delay, target)
	}
	if d := srv.PipelineDelay("s1"); d < target || d > target+100*time.Millisecond {
		t.Errorf("pipeline delay reported %v, want between the target %v and 100 ms more", d, target)
	}

	win := samples[onset+1600 : onset+1600+8000] // 1 s, past the onset
	if hz := dominant(win); math.Abs(hz-1000) > 10 {
		t.Errorf("dominant frequency %v Hz, want the agent's 1000 Hz", hz)
	}
	if a, c := audiotest.ToneLevel(win, 1000), audiotest.ToneLevel(win, 400); a < 6400 || a > 9600 || c < 1600 || c > 2400 {
		t.Errorf("tone levels: agent %.0f (sent 8000), customer %.0f (sent 2000): want each mixed at its own level", a, c)
	}
	lv := srv.Levels()["s1"]
	// RMS of a sine of amplitude A: A/√2.
	wantA, wantC := 20*math.Log10(8000/math.Sqrt2/32768), 20*math.Log10(2000/math.Sqrt2/32768)
	if math.Abs(lv.Agent-wantA) > 2 || math.Abs(lv.Customer-wantC) > 2 {
		t.Errorf("levels %+v, want agent %.1f and customer %.1f dBFS", lv, wantA, wantC)
	}
	if n := srv.Listeners("s1"); n != 1 {
		t.Errorf("%d listeners, want 1", n)
	}

	c.end()
	if err := sup.Session(capturePeer, &relay.SessionNotice{Session: "s1", State: relay.SessionStopped, Server: "capture-1"}); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, b.gone, 10*time.Second, "the browser's peer connection ended after the session")
	for srv.Listeners("s1") != 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := srv.Levels()["s1"]; ok {
		t.Error("levels still reported for the ended session")
	}
}

// TestListenTwoTracks: a browser offering two receive-only audio
// transceivers gets two PCMU tracks, stream and track ids "agent" on the
// first transceiver and "customer" on the second; the agent's carries the
// agent's 1 kHz tone at its level and the customer's the customer's
// 400 Hz at its level, each at least 40 dB above the other's tone; a
// browser offering one transceiver on the same session still gets the
// two directions mixed on one track.
func TestListenTwoTracks(t *testing.T) {
	sup := newSupervisor(t)
	c := startCall(t, sup, "s1")
	c.on.Store(true)
	srv, err := New(Config{Source: sup, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	two, one := newBrowserN(t, 2), newBrowser(t)
	for _, b := range []*browser{two, one} {
		answer, err := srv.Answer(ctx, "s1", b.offer)
		if err != nil {
			t.Fatal(err)
		}
		b.accept(answer)
		waitClosed(t, b.connected, 10*time.Second, "connected")
	}
	// 2 s of each track past the first 0.5 s.
	two.waitBothTracks(t, 125)
	one.waitPackets(125, 10*time.Second)

	for i, want := range []string{TrackAgent, TrackCustomer} {
		tr := two.pc.GetTransceivers()[i].Receiver().Track()
		if tr == nil || tr.StreamID() != want || tr.ID() != want || !strings.EqualFold(tr.Codec().MimeType, webrtc.MimeTypePCMU) {
			t.Errorf("transceiver %d: track %+v, want stream and track %q, PCMU", i, tr, want)
		}
	}
	two.mu.Lock()
	agent := append([]int16(nil), two.streams[TrackAgent].samples[4000:20000]...)
	customer := append([]int16(nil), two.streams[TrackCustomer].samples[4000:20000]...)
	bad := two.badPT
	two.mu.Unlock()
	if bad != 0 {
		t.Errorf("%d packets were not PCMU of 160 samples", bad)
	}
	db := func(x, y float64) float64 { return 20 * math.Log10(x/max(y, 1e-9)) }
	for _, tc := range []struct {
		name            string
		pcm             []int16
		hz, otherHz, lv float64
	}{
		{"agent", agent, 1000, 400, 8000},
		{"customer", customer, 400, 1000, 2000},
	} {
		if hz := dominant(tc.pcm); math.Abs(hz-tc.hz) > 10 {
			t.Errorf("%s track: dominant frequency %v Hz, want %v Hz", tc.name, hz, tc.hz)
		}
		own, other := audiotest.ToneLevel(tc.pcm, tc.hz), audiotest.ToneLevel(tc.pcm, tc.otherHz)
		t.Logf("%s track: its %.0f Hz at %.0f, the other side's %.0f Hz at %.2f (%.1f dB below)", tc.name, tc.hz, own, tc.otherHz, other, db(own, other))
		if own < 0.8*tc.lv || own > 1.2*tc.lv {
			t.Errorf("%s track: its tone at %.0f, want the %.0f sent", tc.name, own, tc.lv)
		}
		if db(own, other) < 40 {
			t.Errorf("%s track: the other side's %.0f Hz tone only %.1f dB below its own, want at least 40 dB", tc.name, tc.otherHz, db(own, other))
		}
	}

	one.mu.Lock()
	mixed := append([]int16(nil), one.samples[4000:12000]...)
	n := len(one.streams)
	one.mu.Unlock()
	if n != 1 {
		t.Errorf("the one-transceiver browser received %d tracks, want 1", n)
	}
	if a, c := audiotest.ToneLevel(mixed, 1000), audiotest.ToneLevel(mixed, 400); a < 6400 || a > 9600 || c < 1600 || c > 2400 {
		t.Errorf("one-track browser: agent %.0f (sent 8000), customer %.0f (sent 2000): want both mixed at their levels", a, c)
	}
	if n := srv.Listeners("s1"); n != 2 {
		t.Errorf("%d listeners, want 2", n)
	}
}

func keys(b *browser) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for k, r := range b.streams {
		out = append(out, fmt.Sprintf("%s(%d)", k, r.packets))
	}
	return out
}

// TestLimits: Answer refuses a listener beyond the per-session bound,
// beyond the total bound, for a session that does not play, for an offer
// without audio, and after Close, each with an error naming the reason.
func TestLimits(t *testing.T) {
	sup := newSupervisor(t)
	for _, id := range []string{"s1", "s2"} {
		l := leg{dir: filter.FromAgent, hz: 1000, amp: 8000, ssrc: 7, src: netip.MustParseAddrPort("10.0.0.1:4000"),
			dst: netip.MustParseAddrPort("10.0.0.2:4002")}
		send(t, sup, id, &l, l.next(true), time.Now())
	}
	srv, err := New(Config{Source: sup, Logger: quiet(), MaxPerSession: 2, MaxListeners: 3, SessionWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	answer := func(session string) error {
		_, err := srv.Answer(ctx, session, newBrowser(t).offer)
		return err
	}
	if err := answer("nope"); !errors.Is(err, ErrNotPlaying) {
		t.Fatalf("unknown session: %v, want ErrNotPlaying", err)
	}
	if _, err := srv.Answer(ctx, "s1", "v=0\r\n"); !errors.Is(err, ErrBadOffer) {
		t.Fatalf("offer without audio: %v, want ErrBadOffer", err)
	}
	for _, s := range []string{"s1", "s1"} {
		if err := answer(s); err != nil {
			t.Fatalf("listener of %s: %v", s, err)
		}
	}
	err = answer("s1")
	if !errors.Is(err, ErrSessionFull) {
		t.Fatalf("third listener of s1: %v, want ErrSessionFull", err)
	}
	t.Log(err)
	if err := answer("s2"); err != nil {
		t.Fatalf("listener of s2: %v", err)
	}
	err = answer("s2")
	if !errors.Is(err, ErrTooManyListeners) {
		t.Fatalf("fourth listener: %v, want ErrTooManyListeners", err)
	}
	t.Log(err)
	if n := srv.Listeners("s1"); n != 2 {
		t.Errorf("%d listeners of s1, want 2", n)
	}
	if len(srv.Levels()) != 2 {
		t.Errorf("levels of %d sessions, want 2", len(srv.Levels()))
	}
	srv.Close()
	if n := srv.Listeners("s1"); n != 0 {
		t.Errorf("%d listeners after Close", n)
	}
	if err := answer("s1"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("after Close: %v, want net.ErrClosed", err)
	}
}

// TestConnectTimeout: a listener whose browser never connects is closed
// after ConnectTimeout, freeing its place.
func TestConnectTimeout(t *testing.T) {
	sup := newSupervisor(t)
	l := leg{dir: filter.FromAgent, hz: 1000, amp: 8000, ssrc: 7, src: netip.MustParseAddrPort("10.0.0.1:4000"),
		dst: netip.MustParseAddrPort("10.0.0.2:4002")}
	send(t, sup, "s1", &l, l.next(true), time.Now())
	srv, err := New(Config{Source: sup, Logger: quiet(), MaxPerSession: 1, ConnectTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := srv.Answer(context.Background(), "s1", newBrowser(t).offer); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.Listeners("s1") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the listener that never connected is still there after 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := srv.Answer(context.Background(), "s1", newBrowser(t).offer); err != nil {
		t.Fatalf("a new listener after the timed-out one: %v", err)
	}
}
