package webrtcout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/zaf/g711"

	"github.com/silentmon/silentmon/internal/opus"
	"github.com/silentmon/silentmon/internal/supervisor"
	"github.com/silentmon/silentmon/playout"
)

// Listener answers a browser's offer for a session's audio.
type Listener interface {
	// Answer returns the SDP answer to offer; the peer connection sends the session's
	// audio in 20 ms packets (Opus at the session's rate when the offer has Opus and
	// Opus is built in, else PCMU at 8 kHz) until the browser closes it, the session
	// ends, or Close: both directions mixed on one track, or, when the offer has two
	// audio transceivers the browser receives on, the agent's on the first (stream and
	// track id TrackAgent) and the customer's on the second (TrackCustomer).
	Answer(ctx context.Context, session, offer string) (answer string, err error)
	// Levels returns the current level per direction of each session being played, in dBFS
	// (-120 for silence): map[session]Levels{Agent, Customer float64}.
	Levels() map[string]Levels
	Close() error
}

// Levels are a session's levels per direction in dBFS (Silence for
// silence): the RMS over the last 100 ms.
type Levels struct {
	Agent    float64 `json:"agent"`
	Customer float64 `json:"customer"`
}

// The ids (stream and track) of the two tracks a browser receives when its
// offer has two audio transceivers: the agent's side and the customer's.
const (
	TrackAgent    = "agent"
	TrackCustomer = "customer"
)

// Silence is the level of silence in dBFS.
const Silence = -120.0

// Source is where sessions' audio comes from: a *supervisor.Supervisor.
type Source interface {
	// Tap subscribes to a session's audio; an error wrapping
	// supervisor.ErrNoSession means the session is not playing (yet).
	Tap(session string) (*supervisor.Tap, error)
	// PipelineDelay is the delay from capture to the tap.
	PipelineDelay(session string) (time.Duration, bool)
}

// Defaults of Config.
const (
	DefaultMaxPerSession  = 8
	DefaultMaxListeners   = 32
	DefaultConnectTimeout = 30 * time.Second
	DefaultSessionWait    = 10 * time.Second
)

// Config configures a Server. Zero fields take the default written next
// to them.
type Config struct {
	// Source gives the sessions' audio. Required.
	Source Source
	// MaxPerSession bounds the browsers listening to one session (8);
	// MaxListeners those listening in all (32).
	MaxPerSession, MaxListeners int
	// ConnectTimeout closes a peer connection that has not connected
	// this long after its answer (30 s).
	ConnectTimeout time.Duration
	// SessionWait is how long Answer waits for a session that is not
	// playing yet (10 s).
	SessionWait time.Duration
	// Logger receives one line per listener started or ended
	// (slog.Default()).
	Logger *slog.Logger
}

// The codecs sent. Opus is sent mono (RFC 7587 signals it as
// opus/48000/2 whatever the channels; sprop-stereo=0 says it is mono),
// with its RTP clock at 48 kHz whatever the session's rate.
const (
	// OpusPayloadType is the payload type offered for Opus when this side
	// offers; in an answer the browser's own number is used.
	OpusPayloadType = 111
	// opusFmtp is the Opus format parameters: 10 ms frames at least,
	// in-band FEC.
	opusFmtp = "minptime=10;useinbandfec=1"
	// opusLossPercent is the loss the Opus encoder expects, so that its
	// in-band FEC is sent (the browser's decoder uses it when a packet is
	// lost).
	opusLossPercent = 5
	// maxOpusPacket is the largest Opus packet (RFC 6716).
	maxOpusPacket = 1275
)

// OpusBitrate is the bit rate of the Opus sent for a session at rate:
// 32 kbit/s at 8 kHz (narrowband), 48 kbit/s at 16 kHz (wideband), 64
// kbit/s at 48 kHz (fullband). The audio was decoded from a call's codec
// already, so the second encoding is given room to be transparent, never
// more than PCMU's 64 kbit/s: at 20 kbit/s a narrowband call's two tones
// 25 Hz apart came out with intermodulation products 38 dB down, at 32
// kbit/s 54 dB down (the e2e TestConsoleKeyboard).
func OpusBitrate(rate int) int {
	switch {
	case rate <= 8000:
		return 32000
	case rate <= 16000:
		return 48000
	default:
		return 64000
	}
}

// packet timing: 20 ms at any rate.
const (
	frameDur = supervisor.TapFrameMs * time.Millisecond
	// maxQueued is the frames a listener leaves queued at a tick; older
	// ones are dropped so the delay added here stays bounded.
	maxQueued = 2
	// levelFrames is the frames the levels are measured over (100 ms).
	levelFrames = 5
)

// Server is a Listener playing the sessions of a Source. It is safe for
// concurrent use; see the package doc.
type Server struct {
	cfg Config
	log *slog.Logger
	api *webrtc.API

	mu        sync.Mutex
	closed    bool
	total     int                      // listeners and answers in progress
	perSess   map[string]int           // the same per session
	sessions  map[string]*sessionState // sessions with a listener
	listeners map[*listener]struct{}   // running
	wg        sync.WaitGroup           // answers in progress and listener goroutines
	stop      chan struct{}
}

// sessionState is what a session's listeners share: its levels and delay,
// measured by one of them (the owner).
type sessionState struct {
	owner atomic.Pointer[listener]
	refs  int // listeners running, under the Server's mu
	mu    sync.Mutex
	sq    [levelFrames][2]float64 // sum of squares per frame and direction
	n     [levelFrames]int        // samples per direction of each frame (its rate / 50)
	i     int
	lag   time.Duration // from the tap to the send of the latest frame
}

var _ Listener = (*Server)(nil)

// New returns a Server playing cfg.Source's sessions.
func New(cfg Config) (*Server, error) {
	if cfg.Source == nil {
		return nil, errors.New("webrtc output without a source of sessions")
	}
	if cfg.MaxPerSession <= 0 {
		cfg.MaxPerSession = DefaultMaxPerSession
	}
	if cfg.MaxListeners <= 0 {
		cfg.MaxListeners = DefaultMaxListeners
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.SessionWait <= 0 {
		cfg.SessionWait = DefaultSessionWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	api, err := newAPI(opus.Available())
	if err != nil {
		return nil, err
	}
	if !opus.Available() {
		cfg.Logger.Warn("browsers hear PCMU at 8 kHz only: " + opus.ErrNotBuilt.Error())
	}
	return &Server{cfg: cfg, log: cfg.Logger, api: api, perSess: map[string]int{},
		sessions: map[string]*sessionState{}, listeners: map[*listener]struct{}{}, stop: make(chan struct{})}, nil
}

// opusCodec is the capability of the Opus tracks.
var opusCodec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: opus.RTPClockRate, Channels: 2, SDPFmtpLine: opusFmtp}

// pcmuCodec is the capability of the PCMU tracks.
var pcmuCodec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}

// newAPI returns the pion API: Opus first when withOpus, then PCMU, the
// default interceptors (RTCP reports), host candidates including
// loopback.
func newAPI(withOpus bool) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if withOpus {
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: opusCodec, PayloadType: OpusPayloadType},
			webrtc.RTPCodecTypeAudio); err != nil {
			return nil, fmt.Errorf("register Opus: %w", err)
		}
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000},
		PayloadType:        0,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("register PCMU: %w", err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, fmt.Errorf("register interceptors: %w", err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// listener is one browser listening to one session.
type listener struct {
	s       *Server
	session string
	state   *sessionState
	tap     *supervisor.Tap
	pc      *webrtc.PeerConnection
	// tracks is the mixed track, or the agent's and the customer's
	// (Tracks of the browser's offer).
	tracks []*webrtc.TrackLocalStaticSample
	rate   int // the session's
	// useOpus: Opus at rate, one encoder per track; else PCMU at 8 kHz,
	// through down when rate is above it.
	useOpus bool
	enc     []*opus.Encoder
	down    *playout.Downsampler

	connected, gone    chan struct{}
	connOnce, goneOnce sync.Once

	// owned by the sending goroutine
	frame  supervisor.TapFrame // the frame being sent
	narrow []int16             // frame at 8 kHz (PCMU above 8 kHz)
	mono   [supervisor.TapMaxFrameLen]int16
	// payload is a packet's payload; the track's packetizer copies it, so
	// it is reused.
	payload [maxOpusPacket]byte
}

// Answer implements Listener. Errors wrap ErrTooManyListeners,
// ErrSessionFull, ErrNotPlaying, ErrBadOffer, net.ErrClosed or the
// context's error.
func (s *Server) Answer(ctx context.Context, session, offer string) (string, error) {
	if err := s.reserve(session); err != nil {
		return "", err
	}
	defer s.wg.Done()
	l, answer, err := s.answer(ctx, session, offer)
	if err != nil {
		if l != nil {
			l.release()
		} else {
			s.unreserve(session)
		}
		return "", err
	}
	return answer, nil
}

// reserve counts a listener of session within the bounds and holds the
// WaitGroup for the answer.
func (s *Server) reserve(session string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return fmt.Errorf("webrtc output is closed: %w", net.ErrClosed)
	case s.total >= s.cfg.MaxListeners:
		return fmt.Errorf("%d browsers are listening already, the most allowed: %w", s.total, ErrTooManyListeners)
	case s.perSess[session] >= s.cfg.MaxPerSession:
		return fmt.Errorf("%d browsers are listening to session %q already, the most allowed: %w", s.perSess[session], session, ErrSessionFull)
	}
	s.total++
	s.perSess[session]++
	s.wg.Add(1)
	return nil
}

func (s *Server) unreserve(session string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total--
	if s.perSess[session]--; s.perSess[session] <= 0 {
		delete(s.perSess, session)
	}
}

// answer makes the listener and its answer. On error, a non-nil listener
// holds resources for release.
func (s *Server) answer(ctx context.Context, session, offer string) (*listener, string, error) {
	if !strings.Contains(offer, "m=audio") {
		return nil, "", fmt.Errorf("offer for session %q has no audio section: %w", session, ErrBadOffer)
	}
	tap, err := s.waitTap(ctx, session)
	if err != nil {
		return nil, "", err
	}
	l := &listener{s: s, session: session, tap: tap, rate: tap.Rate(), connected: make(chan struct{}), gone: make(chan struct{})}
	l.frame.Rate = l.rate
	l.useOpus = opus.Available() && offersOpus(offer) && opusRate(l.rate)
	l.pc, err = s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return l, "", fmt.Errorf("session %q: peer connection: %w", session, err)
	}
	l.pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			l.connOnce.Do(func() { close(l.connected) })
		case webrtc.PeerConnectionStateDisconnected, webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			l.goneOnce.Do(func() { close(l.gone) })
		}
	})
	if err := l.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return l, "", fmt.Errorf("offer for session %q: %w: %w", session, ErrBadOffer, err)
	}
	// Two audio sections the browser receives on: one track per
	// direction; otherwise the mix.
	ids := [][2]string{{"audio", "silentmon-" + session}}
	if audioToSend(l.pc) >= 2 {
		ids = [][2]string{{TrackAgent, TrackAgent}, {TrackCustomer, TrackCustomer}}
	}
	codec := pcmuCodec
	if l.useOpus {
		codec = opusCodec
	}
	var senders []*webrtc.RTPSender
	for _, id := range ids {
		track, err := webrtc.NewTrackLocalStaticSample(codec, id[0], id[1])
		if err != nil {
			return l, "", fmt.Errorf("session %q: audio track %s: %w", session, id[0], err)
		}
		sender, err := l.pc.AddTrack(track)
		if err != nil {
			return l, "", fmt.Errorf("offer for session %q: %w: %w", session, ErrBadOffer, err)
		}
		if err := l.prefer(sender, codec); err != nil {
			return l, "", fmt.Errorf("offer for session %q: %w: %w", session, ErrBadOffer, err)
		}
		l.tracks = append(l.tracks, track)
		senders = append(senders, sender)
	}
	if err := l.newCoders(); err != nil {
		return l, "", fmt.Errorf("session %q: %w", session, err)
	}
	ans, err := l.pc.CreateAnswer(nil)
	if err != nil {
		return l, "", fmt.Errorf("offer for session %q: %w: %w", session, ErrBadOffer, err)
	}
	gathered := webrtc.GatheringCompletePromise(l.pc)
	if err := l.pc.SetLocalDescription(ans); err != nil {
		return l, "", fmt.Errorf("session %q: answer: %w", session, err)
	}
	for _, sender := range senders {
		if !hasCodec(sender, codec.MimeType) {
			return l, "", fmt.Errorf("offer for session %q does not accept %s audio: %w", session, l.codecName(), ErrBadOffer)
		}
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return l, "", fmt.Errorf("session %q: gathering candidates: %w", session, ctx.Err())
	case <-s.stop:
		return l, "", fmt.Errorf("webrtc output is closed: %w", net.ErrClosed)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return l, "", fmt.Errorf("webrtc output is closed: %w", net.ErrClosed)
	}
	st := s.sessions[session]
	if st == nil {
		st = &sessionState{}
		s.sessions[session] = st
	}
	st.refs++
	l.state = st
	s.listeners[l] = struct{}{}
	s.wg.Add(1 + len(senders))
	s.mu.Unlock()
	for _, sender := range senders {
		go l.readRTCP(sender)
	}
	go l.run()
	s.log.Info("browser listening", "session", session, "tracks", len(l.tracks), "codec", l.codecName(), "rate", l.sentRate())
	return l, l.pc.LocalDescription().SDP, nil
}

// audioToSend counts the audio sections of the remote offer this side
// may send on (the browser's recvonly or sendrecv transceivers).
func audioToSend(pc *webrtc.PeerConnection) int {
	n := 0
	for _, t := range pc.GetTransceivers() {
		if t.Kind() != webrtc.RTPCodecTypeAudio {
			continue
		}
		if d := t.Direction(); d == webrtc.RTPTransceiverDirectionSendonly || d == webrtc.RTPTransceiverDirectionSendrecv {
			n++
		}
	}
	return n
}

// hasCodec reports whether sender's negotiated codecs include mime.
func hasCodec(sender *webrtc.RTPSender, mime string) bool {
	for _, c := range sender.GetParameters().Codecs {
		if strings.EqualFold(c.MimeType, mime) {
			return true
		}
	}
	return false
}

// offersOpus reports whether every audio section of offer lists
// opus/48000/2 (a browser's offer does by default).
func offersOpus(offer string) bool {
	var d sdp.SessionDescription
	if d.UnmarshalString(offer) != nil {
		return false
	}
	n := 0
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "audio" {
			continue
		}
		n++
		found := false
		for _, a := range m.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			if _, enc, ok := strings.Cut(a.Value, " "); ok && strings.EqualFold(strings.TrimSpace(enc), "opus/48000/2") {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return n > 0
}

// prefer narrows sender's transceiver to codec, keeping the payload type
// the browser offered; for Opus its format parameters say the audio is
// mono at the session's rate (sprop-stereo=0, sprop-maxcapturerate), so
// the page can show the rate.
func (l *listener) prefer(sender *webrtc.RTPSender, codec webrtc.RTPCodecCapability) error {
	var tr *webrtc.RTPTransceiver
	for _, t := range l.pc.GetTransceivers() {
		if t.Sender() == sender {
			tr = t
		}
	}
	if tr == nil {
		return nil
	}
	for _, c := range sender.GetParameters().Codecs {
		if !strings.EqualFold(c.MimeType, codec.MimeType) {
			continue
		}
		if l.useOpus {
			c.SDPFmtpLine = fmt.Sprintf("%s;sprop-stereo=0;sprop-maxcapturerate=%d", opusFmtp, l.rate)
		}
		return tr.SetCodecPreferences([]webrtc.RTPCodecParameters{c})
	}
	return nil // hasCodec refuses the answer
}

// newCoders makes the listener's encoders: an Opus encoder per track at
// the session's rate, or the downsampler to PCMU's 8 kHz.
func (l *listener) newCoders() error {
	if !l.useOpus {
		if l.rate > playout.SampleRate {
			l.down = playout.NewDownsampler(l.rate, 2)
		}
		return nil
	}
	for range l.tracks {
		e, err := opus.NewEncoder(opus.EncoderConfig{Rate: l.rate, Bitrate: OpusBitrate(l.rate), FEC: true, LossPercent: opusLossPercent})
		if err != nil {
			return fmt.Errorf("Opus encoder at %d Hz: %w", l.rate, err)
		}
		l.enc = append(l.enc, e)
	}
	return nil
}

// opusRate reports whether libopus takes input at rate as it is.
func opusRate(rate int) bool {
	switch rate {
	case 8000, 12000, 16000, 24000, 48000:
		return true
	}
	return false
}

// codecName is the codec sent: "Opus" or "PCMU".
func (l *listener) codecName() string {
	if l.useOpus {
		return "Opus"
	}
	return "PCMU"
}

// sentRate is the rate of the audio sent: the session's for Opus, 8 kHz
// for PCMU.
func (l *listener) sentRate() int {
	if l.useOpus {
		return l.rate
	}
	return playout.SampleRate
}

// waitTap subscribes to session, waiting up to SessionWait for it to
// play.
func (s *Server) waitTap(ctx context.Context, session string) (*supervisor.Tap, error) {
	deadline := time.NewTimer(s.cfg.SessionWait)
	defer deadline.Stop()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		tap, err := s.cfg.Source.Tap(session)
		if err == nil {
			return tap, nil
		}
		if !errors.Is(err, supervisor.ErrNoSession) {
			return nil, err
		}
		select {
		case <-poll.C:
		case <-deadline.C:
			return nil, fmt.Errorf("session %q is not playing here after %v: %w", session, s.cfg.SessionWait, ErrNotPlaying)
		case <-ctx.Done():
			return nil, fmt.Errorf("session %q: %w", session, ctx.Err())
		case <-s.stop:
			return nil, fmt.Errorf("webrtc output is closed: %w", net.ErrClosed)
		}
	}
}

// release closes what a listener holds and takes it out of the counts.
func (l *listener) release() {
	if l.pc != nil {
		l.pc.Close()
	}
	for _, e := range l.enc {
		e.Close()
	}
	l.tap.Close()
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.listeners[l]; ok {
		delete(s.listeners, l)
		l.state.owner.CompareAndSwap(l, nil)
		if l.state.refs--; l.state.refs == 0 {
			delete(s.sessions, l.session)
		}
	}
	s.total--
	if s.perSess[l.session]--; s.perSess[l.session] <= 0 {
		delete(s.perSess, l.session)
	}
}

// readRTCP reads the browser's RTCP (which the interceptors need) until
// the peer connection closes.
func (l *listener) readRTCP(sender *webrtc.RTPSender) {
	defer l.s.wg.Done()
	buf := make([]byte, 1500)
	for {
		if _, _, err := sender.Read(buf); err != nil {
			return
		}
	}
}

// run sends a packet every 20 ms until the listener ends.
func (l *listener) run() {
	defer l.s.wg.Done()
	reason := l.loop()
	l.release()
	l.s.log.Info("browser stopped listening", "session", l.session, "reason", reason, "dropped", l.tap.Dropped())
}

func (l *listener) loop() string {
	connect := time.NewTimer(l.s.cfg.ConnectTimeout)
	defer connect.Stop()
	t := time.NewTicker(frameDur)
	defer t.Stop()
	frames := l.tap.Frames()
	for {
		select {
		case <-l.s.stop:
			return "closed"
		case <-l.gone:
			return "browser disconnected"
		case <-connect.C:
			select {
			case <-l.connected:
			default:
				return fmt.Sprintf("not connected within %v", l.s.cfg.ConnectTimeout)
			}
		case <-t.C:
			for len(frames) > maxQueued {
				<-frames
			}
			var at time.Time
			select {
			case f, ok := <-frames:
				if !ok {
					return "session ended"
				}
				l.frame, at = f, f.At
			default:
				l.frame.Rate = l.rate
				clear(l.frame.Stereo())
			}
			if err := l.write(); err != nil {
				return "write: " + err.Error()
			}
			l.measure(at)
		}
	}
}

// write sends l.frame: mixed on a single track, or the agent's (left)
// and the customer's (right) on their own tracks; Opus at the frame's
// rate or PCMU at 8 kHz. The track's packetizer copies the payload, so
// its buffer is reused.
func (l *listener) write() error {
	st := l.frame.Stereo()
	if !l.useOpus && l.down != nil {
		l.narrow = l.down.Process(l.narrow[:0], st)
		st = l.narrow
	}
	n := len(st) / 2
	for k, track := range l.tracks {
		pcm := l.mono[:n]
		for i := range pcm {
			if len(l.tracks) == 1 {
				pcm[i] = sat(int32(st[2*i]) + int32(st[2*i+1]))
			} else {
				pcm[i] = st[2*i+k]
			}
		}
		var data []byte
		if l.useOpus {
			m, err := l.enc[k].Encode(pcm, l.payload[:])
			if err != nil {
				return err
			}
			data = l.payload[:m]
		} else {
			data = l.payload[:n]
			for i, v := range pcm {
				data[i] = g711.EncodeUlawFrame(v)
			}
		}
		if err := track.WriteSample(media.Sample{Data: data, Duration: frameDur}); err != nil {
			return err
		}
	}
	return nil
}

// measure updates the session's levels and delay from the frame just
// sent (at: when it reached the tap; zero for silence sent in its
// place), if this listener measures for its session.
func (l *listener) measure(at time.Time) {
	st := l.state
	if !st.owner.CompareAndSwap(nil, l) && st.owner.Load() != l {
		return
	}
	var sq [2]float64
	pcm := l.frame.Stereo()
	for i := 0; i+1 < len(pcm); i += 2 {
		a, c := float64(pcm[i]), float64(pcm[i+1])
		sq[0] += a * a
		sq[1] += c * c
	}
	st.mu.Lock()
	st.sq[st.i] = sq
	st.n[st.i] = len(pcm) / 2
	st.i = (st.i + 1) % levelFrames
	if !at.IsZero() {
		st.lag = max(time.Since(at), 0)
	}
	st.mu.Unlock()
}

func (st *sessionState) levels() Levels {
	st.mu.Lock()
	defer st.mu.Unlock()
	// Over the whole 100 ms: frames not sent yet count as silence.
	var sum [2]float64
	frameLen := 0
	for i, x := range st.sq {
		sum[0] += x[0]
		sum[1] += x[1]
		frameLen = max(frameLen, st.n[i])
	}
	if frameLen == 0 {
		return Levels{Agent: Silence, Customer: Silence}
	}
	n := float64(levelFrames * frameLen)
	return Levels{Agent: dBFS(sum[0] / n), Customer: dBFS(sum[1] / n)}
}

// dBFS is the level of a mean square, full scale being 32768.
func dBFS(ms float64) float64 {
	if ms <= 0 {
		return Silence
	}
	return max(10*math.Log10(ms/(32768*32768)), Silence)
}

func sat(v int32) int16 {
	return int16(min(max(v, -32768), 32767))
}

// Levels implements Listener: the sessions with a listener.
func (s *Server) Levels() map[string]Levels {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Levels, len(s.sessions))
	for id, st := range s.sessions {
		out[id] = st.levels()
	}
	return out
}

// Listeners returns the browsers listening to session (connected or
// connecting).
func (s *Server) Listeners(session string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for l := range s.listeners {
		if l.session == session {
			n++
		}
	}
	return n
}

// PipelineDelay returns the delay of session's audio from capture to the
// network here: the Source's (capture to the tap) plus the time the
// latest frame waited before it was sent; 0 when the session is not
// playing.
func (s *Server) PipelineDelay(session string) time.Duration {
	d, ok := s.cfg.Source.PipelineDelay(session)
	if !ok {
		return 0
	}
	s.mu.Lock()
	st := s.sessions[session]
	s.mu.Unlock()
	if st != nil {
		st.mu.Lock()
		d += st.lag
		st.mu.Unlock()
	}
	return d
}

// Close implements Listener: it ends every listener and waits for their
// goroutines. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.stop)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// As is a Server seen through a Listener interface declared elsewhere
// whose Levels type has the same fields (the web console's): its Levels
// method returns that type.
type As[L ~struct{ Agent, Customer float64 }] struct{ *Server }

// Levels returns the Server's levels as L.
func (a As[L]) Levels() map[string]L {
	in := a.Server.Levels()
	out := make(map[string]L, len(in))
	for k, v := range in {
		out[k] = L(v)
	}
	return out
}
