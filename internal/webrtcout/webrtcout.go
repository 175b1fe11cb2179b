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
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/zaf/g711"

	"github.com/silentmon/silentmon/internal/supervisor"
)

// Listener answers a browser's offer for a session's audio.
type Listener interface {
	// Answer returns the SDP answer to offer; the peer connection sends the session's
	// audio (PCMU 8 kHz, 20 ms packets) until the browser closes it, the session ends, or
	// Close: both directions mixed on one track, or, when the offer has two audio
	// transceivers the browser receives on, the agent's on the first (stream and track id
	// TrackAgent) and the customer's on the second (TrackCustomer).
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

// packet timing: 20 ms of 8 kHz.
const (
	frameDur = 20 * time.Millisecond
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
	api, err := newAPI()
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, log: cfg.Logger, api: api, perSess: map[string]int{},
		sessions: map[string]*sessionState{}, listeners: map[*listener]struct{}{}, stop: make(chan struct{})}, nil
}

// newAPI returns the pion API: PCMU only, the default interceptors (RTCP
// reports), host candidates including loopback.
func newAPI() (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
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

	connected, gone    chan struct{}
	connOnce, goneOnce sync.Once
	pcm                [2 * supervisor.TapFrameLen]int16
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
	l := &listener{s: s, session: session, tap: tap, connected: make(chan struct{}), gone: make(chan struct{})}
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
	var senders []*webrtc.RTPSender
	for _, id := range ids {
		track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000},
			id[0], id[1])
		if err != nil {
			return l, "", fmt.Errorf("session %q: audio track %s: %w", session, id[0], err)
		}
		sender, err := l.pc.AddTrack(track)
		if err != nil {
			return l, "", fmt.Errorf("offer for session %q: %w: %w", session, ErrBadOffer, err)
		}
		l.tracks = append(l.tracks, track)
		senders = append(senders, sender)
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
		if !hasPCMU(sender) {
			return l, "", fmt.Errorf("offer for session %q does not accept PCMU audio: %w", session, ErrBadOffer)
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
	s.log.Info("browser listening", "session", session, "tracks", len(l.tracks))
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

// hasPCMU reports whether sender's negotiated codecs include PCMU.
func hasPCMU(sender *webrtc.RTPSender) bool {
	for _, c := range sender.GetParameters().Codecs {
		if strings.EqualFold(c.MimeType, webrtc.MimeTypePCMU) {
			return true
		}
	}
	return false
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
				l.pcm, at = f.Samples, f.At
			default:
				clear(l.pcm[:])
			}
			if err := l.write(); err != nil {
				return "write: " + err.Error()
			}
			l.measure(at)
		}
	}
}

// write sends the frame in l.pcm: mixed on a single track, or the agent's
// (left) and the customer's (right) on their own tracks.
func (l *listener) write() error {
	for k, track := range l.tracks {
		// The track's packetizer keeps no reference to the data past the
		// write, but interceptors may: a fresh slice each time.
		ulaw := make([]byte, supervisor.TapFrameLen)
		for i := range ulaw {
			var v int16
			if len(l.tracks) == 1 {
				v = sat(int32(l.pcm[2*i]) + int32(l.pcm[2*i+1]))
			} else {
				v = l.pcm[2*i+k]
			}
			ulaw[i] = g711.EncodeUlawFrame(v)
		}
		if err := track.WriteSample(media.Sample{Data: ulaw, Duration: frameDur}); err != nil {
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
	for i := 0; i < len(l.pcm); i += 2 {
		a, c := float64(l.pcm[i]), float64(l.pcm[i+1])
		sq[0] += a * a
		sq[1] += c * c
	}
	st.mu.Lock()
	st.sq[st.i] = sq
	st.i = (st.i + 1) % levelFrames
	if !at.IsZero() {
		st.lag = max(time.Since(at), 0)
	}
	st.mu.Unlock()
}

func (st *sessionState) levels() Levels {
	st.mu.Lock()
	defer st.mu.Unlock()
	var sum [2]float64
	for _, x := range st.sq {
		sum[0] += x[0]
		sum[1] += x[1]
	}
	n := float64(levelFrames * supervisor.TapFrameLen)
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
