package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/service"
	"github.com/silentmon/silentmon/internal/status"
	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/relay"
	smtls "github.com/silentmon/silentmon/tls"
)

// Defaults of Config.
const (
	DefaultMaxSessions = 64
	DefaultIdleTimeout = 5 * time.Minute
)

// Config configures a Supervisor. Zero fields take the default written
// next to them.
type Config struct {
	// Output is "wav:PATH", "null", "portaudio" or "portaudio:DEVICE"
	// (see the package doc). Required.
	Output string
	// Playout configures every session's Player (its Logger defaults to
	// Logger).
	Playout playout.Config
	// MaxSessions bounds the sessions open at once (64).
	MaxSessions int
	// IdleTimeout closes a session that received no media for this long
	// (5 minutes).
	IdleTimeout time.Duration
	// Logger receives session events, never one line per packet
	// (slog.Default()).
	Logger *slog.Logger
	// OpenDevice opens the sound card of a portaudio output, given the
	// whole spec (playout.OpenSink). Tests inject a fake device.
	OpenDevice func(spec string) (playout.Sink, error)
	// Clock times the sessions' idleness (the system clock).
	Clock playout.Clock
	// Narrowband plays every session at 8 kHz, as before wideband
	// output. By default (false) each session plays at its best rate,
	// fixed when it opens from the codecs of its first media (16 kHz for
	// G.722, 48 kHz for Opus, else 8 kHz); its WAV file records that rate
	// and its listeners get frames at that rate. A portaudio output's
	// sound card is opened once at 48 kHz (its default rate when it
	// refuses 48 kHz; 8 kHz with Narrowband) and plays each session at
	// its own rate, resampled by libspeexdsp to the card's.
	Narrowband bool
}

// maxHistory bounds the closed sessions kept for status and the summary.
const maxHistory = 32

// maxNotices bounds the session notices kept for sessions whose media
// has not arrived, per allowed session.
const maxNotices = 4

// Supervisor is the supervisor service's engine: a relay.Handler (and
// relay.SessionHandler) playing each monitored session through its own
// Player. See the package doc for its rules and concurrency.
type Supervisor struct {
	relay.MediaOnly
	cfg   Config
	log   *slog.Logger
	clock playout.Clock
	dedup *relay.Dedup

	kind  string // "wav", "null", "portaudio"
	names *namer // wav
	dev   *device

	table atomic.Pointer[map[string]*session] // published whole, under mu

	mu         sync.Mutex
	closed     bool
	notices    map[string]notice // announced, no media yet
	history    []*session        // closed, most recent last
	closedSecs float64           // seconds written by closed sessions
	// closedDir sums the closed sessions' playout counters (Lost, Late,
	// Concealed) by direction, for the metrics' totals.
	closedDir   [3]playout.StreamStats // index: playout.Direction (1, 2)
	limitLogged bool
	badLogged   bool
	// unsupported counts the streams whose codec cannot be played, by
	// codec label (codecLabel); digitLog keeps the last digits of every
	// session for the event streams, numbered by digitSeq.
	unsupported map[string]uint64
	digitLog    []status.Digit
	digitSeq    uint64

	packets, dups, rejected, refused, badIDs, unauthorized, opened atomic.Uint64
	// badPTs counts the payload-type entries of session notices left out
	// as invalid (relay.PayloadTypeMap.Dropped).
	badPTs atomic.Uint64
	// captureOK remembers the connections whose certificate was found to
	// carry the capture role (*relay.Peer → true), until they close.
	captureOK sync.Map

	finishing sync.WaitGroup // sessions being closed outside Close
	stop      chan struct{}
	done      chan struct{}

	// beats holds the reaper's heartbeat (Health); writable checks a wav
	// output's directory (OutputCheck; tests replace it).
	beats    *service.Heartbeats
	writable func(dir string) error
}

type notice struct {
	agent  string
	record bool
	server string
	at     time.Time
	types  map[uint8]string // payload types from SDP, nil when none
}

// session is one monitored session: its Player and output.
type session struct {
	id, agent, pathAgent string
	output, outputErr    string
	started              time.Time
	rate                 int // output sample rate, fixed at open (sessionRate)
	player               *playout.Player
	dsink                *deviceSink  // portaudio
	tap                  *tapSink     // the Player's sink: output and tap
	last                 atomic.Int64 // clock time of the last media, Unix ns
	lastPeer             atomic.Pointer[relay.Peer]
	// playedFrom is the capture server whose packet was played last (not
	// dropped as a duplicate): the one streaming the session now, which
	// status names first (after a failover, the member that took over).
	playedFrom atomic.Pointer[relay.Peer]
	// pts says what to do with each payload type besides playing it
	// (digits, unsupported codecs); events holds what that found.
	pts    atomic.Pointer[ptTable]
	events sessionEvents

	// guarded by the Supervisor's mu
	servers   []string
	announced map[string]bool // servers that sent a started notice
	record    bool

	// set once closed (guarded by the Supervisor's mu)
	reason string
	final  playout.Stats
	ended  time.Time
}

var (
	_ relay.Handler        = (*Supervisor)(nil)
	_ relay.SessionHandler = (*Supervisor)(nil)
)

// New checks cfg.Output (and opens the device of a portaudio output) and
// starts the Supervisor. Errors wrap ErrBadOutput or the device's error.
func New(cfg Config) (*Supervisor, error) {
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Playout.Logger == nil {
		cfg.Playout.Logger = cfg.Logger
	}
	if cfg.OpenDevice == nil {
		cfg.OpenDevice = openDevice
		if cfg.Narrowband {
			cfg.OpenDevice = playout.OpenSink
		}
	}
	if cfg.Clock == nil {
		cfg.Clock = playout.SystemClock{}
	}
	s := &Supervisor{cfg: cfg, log: cfg.Logger, clock: cfg.Clock, dedup: relay.NewDedup(),
		notices: map[string]notice{}, unsupported: map[string]uint64{}, stop: make(chan struct{}), done: make(chan struct{})}
	kind, arg, hasArg := strings.Cut(cfg.Output, ":")
	switch {
	case kind == "wav" && hasArg && arg != "":
		n, err := newNamer(arg)
		if err != nil {
			return nil, err
		}
		s.names = n
	case kind == "null" && !hasArg:
	case kind == "portaudio":
		d, err := cfg.OpenDevice(cfg.Output)
		if err != nil {
			return nil, err
		}
		s.dev = &device{spec: cfg.Output, dev: d}
		if r, ok := d.(inputRateSetter); ok {
			s.dev.dev = &rateDevice{Sink: d, set: r, playing: &s.dev.playing, rate: r.InputRate()}
		}
	default:
		return nil, fmt.Errorf("output %q is not portaudio, portaudio:DEVICE, wav:PATH or null: %w", cfg.Output, ErrBadOutput)
	}
	s.kind = kind
	empty := map[string]*session{}
	s.table.Store(&empty)
	period := min(max(cfg.IdleTimeout/4, 10*time.Millisecond), time.Second)
	t := s.clock.NewTicker(period)
	s.beats, s.writable = service.NewHeartbeats(s.clock.Now), dirWritable
	go s.reap(t, s.beats.Add("session reaper", period))
	return s, nil
}

// peerName names a capture server in status: its hello name, else its
// address.
func peerName(p *relay.Peer) string {
	if p.Hello.Name != "" {
		return p.Hello.Name
	}
	if p.Addr != nil {
		return p.Addr.String()
	}
	return "?"
}

// capture lets p send media and session notices only when it said it is
// a capture server and, over TLS, its certificate carries the capture
// role: a client certificate of the same CA cannot make the supervisor
// play a fabricated call. Without TLS (--insecure) only the hello is
// checked.
func (s *Supervisor) capture(p *relay.Peer, what string) error {
	if ok, found := s.captureOK.Load(p); found && ok.(bool) {
		return nil
	}
	if p.Hello.Role == relay.RoleCapture && (p.TLS == nil || smtls.PeerHasRole(p.TLS, smtls.RoleCapture)) {
		s.captureOK.Store(p, true) // forgotten in Closed
		return nil
	}
	s.unauthorized.Add(1)
	subject, _ := smtls.PeerIdentity(p.TLS)
	roles := smtls.RoleNames(smtls.PeerRoles(p.TLS))
	if p.TLS == nil {
		roles = "(insecure)"
	}
	s.log.Warn("refused "+what+" from a peer without the capture role", "peer", p.Addr, "role", p.Hello.Role,
		"name", p.Hello.Name, "certificate", subject, "certificate_roles", roles)
	return &relay.Error{Code: relay.CodeUnauthorized,
		Message: fmt.Sprintf("a peer whose certificate has role %s may not send %s; only a capture server's certificate may", roles, what)}
}

// badID counts a frame or notice with an invalid session id, logging the
// first.
func (s *Supervisor) badID(p *relay.Peer, id []byte) {
	s.badIDs.Add(1)
	s.mu.Lock()
	first := !s.badLogged
	s.badLogged = true
	s.mu.Unlock()
	if first {
		if len(id) > 80 {
			id = id[:80]
		}
		s.log.Warn("dropped media or notice with an invalid session id (not 1 to 64 of A-Z a-z 0-9 . _ -); further ones are only counted",
			"peer", p.Addr, "name", p.Hello.Name, "session", fmt.Sprintf("%q", id))
	}
}

// Media implements relay.Handler: it plays the frame's packets in their
// session's Player, opening the session on its first packet.
func (s *Supervisor) Media(p *relay.Peer, f *relay.MediaFrame) error {
	if err := s.capture(p, "media"); err != nil {
		return err
	}
	n := uint64(f.Len())
	s.packets.Add(n)
	sess := (*s.table.Load())[string(f.Session)]
	if sess == nil {
		if !filter.ValidID(string(f.Session)) {
			s.badID(p, f.Session)
			return drain(f)
		}
		if sess = s.open(p, string(f.Session), *f); sess == nil {
			s.refused.Add(n)
			return drain(f)
		}
	}
	now := s.clock.Now()
	sess.last.Store(now.UnixNano())
	if sess.lastPeer.Load() != p {
		s.addServer(sess, p)
	}
	var mp relay.MediaPacket
	for {
		ok, err := f.Next(&mp)
		if err != nil || !ok {
			return err
		}
		if s.dedup.Seen(f.Session, mp.Direction, mp.Data) {
			s.dups.Add(1)
			continue
		}
		if sess.playedFrom.Load() != p {
			sess.playedFrom.Store(p)
		}
		flow := playout.Flow{Src: mp.Src, Dst: mp.Dst, VLAN: mp.VLAN & 0x0fff}
		// The capture time lets the player report the relay's delivery
		// delay; its jitter buffer times packets by its own clock.
		if err := sess.player.PushFlow(playout.Direction(mp.Direction), flow, time.Unix(0, mp.Time), mp.Data); err != nil {
			s.rejected.Add(1)
		}
		sess.tap.delivered(now, mp.Time)
		if len(mp.Data) > 1 {
			if t := sess.pts.Load(); t.kind[mp.Data[1]&0x7f] != ptPlay {
				s.special(sess, t.kind[mp.Data[1]&0x7f], t, &mp)
			}
		}
	}
}

// drain checks the rest of a dropped frame, so a malformed one is still a
// protocol error.
func drain(f *relay.MediaFrame) error {
	var mp relay.MediaPacket
	for {
		ok, err := f.Next(&mp)
		if err != nil || !ok {
			return err
		}
	}
}

func (s *Supervisor) addServer(sess *session, p *relay.Peer) {
	name := peerName(p)
	s.mu.Lock()
	if !slices.Contains(sess.servers, name) {
		sess.servers = append(sess.servers, name)
	}
	s.mu.Unlock()
	sess.lastPeer.Store(p)
}

// open returns the session id, opening it unless the Supervisor is closed
// or the session bound is reached (nil then). first is the session's
// first media frame (a copy: its packets are read, not consumed); its
// codecs fix the session's output rate (sessionRate).
func (s *Supervisor) open(p *relay.Peer, id string, first relay.MediaFrame) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	old := *s.table.Load()
	if x := old[id]; x != nil {
		return x
	}
	if len(old) >= s.cfg.MaxSessions {
		if !s.limitLogged {
			s.limitLogged = true
			s.log.Warn("refused a new session: the limit of open sessions is reached; its media is dropped and counted, further refusals are not logged until a session closes",
				"session", id, "peer", p.Addr, "max_sessions", s.cfg.MaxSessions)
		}
		return nil
	}
	now := s.clock.Now()
	sess := &session{id: id, agent: unknownAgent, started: now, announced: map[string]bool{}}
	if n, ok := s.notices[id]; ok {
		sess.agent, sess.record = n.agent, n.record
		sess.announced[n.server] = true
		sess.servers = append(sess.servers, n.server)
	}
	sess.pathAgent = pathAgent(sess.agent)
	sess.last.Store(now.UnixNano())
	cfg := s.cfg.Playout
	var sdp map[uint8]string
	if n, ok := s.notices[id]; ok && n.types != nil {
		cfg.PayloadTypes = s.payloadTypes(n.types)
		sdp = n.types
	}
	cfg.SampleRate = s.sessionRate(cfg, first)
	sess.rate = cfg.SampleRate
	// The Player mixes stereo: the tap hands the two directions to
	// listeners and mixes them for the output as a mono Player would.
	sess.tap = newTapSink(s.openSink(sess), s.clock, cfg.SampleRate)
	sess.pts.Store(newPTTable(sdp, s.cfg.Playout.PayloadTypes))
	cfg.Logger = slog.New(playerLog{Handler: cfg.Logger.Handler(), sess: sess})
	delete(s.notices, id)
	sess.player = playout.NewPlayer(cfg, sess.tap)
	next := make(map[string]*session, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[id] = sess
	s.table.Store(&next)
	s.opened.Add(1)
	s.log.Info("session opened", "session", id, "agent", sess.agent, "output", sess.output, "capture_server", peerName(p))
	if s.dev != nil {
		prev := s.dev.playing.Swap(sess)
		if prev != nil {
			s.log.Info("device now plays the most recently started session", "session", id, "was", prev.id)
		}
	}
	return sess
}

// openSink returns the sink of a new session and sets its output. Called
// with mu held.
func (s *Supervisor) openSink(sess *session) playout.Sink {
	switch s.kind {
	case "portaudio":
		sess.output = s.dev.spec
		sess.dsink = s.dev.sink(sess)
		return sess.dsink
	case "wav":
		name := s.names.name(sess.id, sess.pathAgent)
		f, path, err := createNew(name)
		if err == nil {
			var w *playout.WAVSink
			if w, err = playout.NewWAVSinkRate(f, 1, sess.rate); err == nil {
				sess.output = path
				return w
			}
			f.Close()
		}
		sess.output = "null"
		sess.outputErr = err.Error()
		s.log.Error("cannot create the session's WAV file; the session plays to a null sink", "session", sess.id, "file", name, "err", err)
	default:
		sess.output = "null"
	}
	return playout.NewNullSinkRate(1, sess.rate)
}

// sessionRate is the output rate of a session (8 kHz with
// Config.Narrowband): fixed when it opens, from the codecs of its first
// media frame (playout.RateFor: 16 kHz for G.722,
// 48 kHz for Opus, else 8 kHz), so a WAV never changes rate; a later call
// of a higher rate in the same session plays at the session's rate
// (G.722 in a session that began with G.711 plays its lower sub-band). A
// sound card, shared by every session and opened once, plays each session
// at its rate when it can take any rate (rateDevice), else at 8 kHz.
func (s *Supervisor) sessionRate(cfg playout.Config, first relay.MediaFrame) int {
	if s.cfg.Narrowband {
		return playout.SampleRate
	}
	if s.dev != nil {
		if _, ok := s.dev.dev.(*rateDevice); !ok {
			return playout.SampleRate
		}
	}
	var codecs []playout.Codec
	var mp relay.MediaPacket
	for len(codecs) < 16 {
		ok, err := first.Next(&mp)
		if err != nil || !ok {
			break
		}
		if len(mp.Data) >= 12 && mp.Data[0]>>6 == 2 {
			codecs = append(codecs, cfg.Codec(mp.Data[1]&0x7f))
		}
	}
	return playout.RateFor(codecs...)
}

// payloadTypes is the codec map of a session whose calls' SDP gave
// types: the SDP's, under the configuration's explicit mappings
// (Config.Playout.PayloadTypes, from --codec), which win.
func (s *Supervisor) payloadTypes(sdp map[uint8]string) map[uint8]playout.Codec {
	return playout.SDPPayloadTypes(sdp, s.cfg.Playout.PayloadTypes)
}

// Session implements relay.SessionHandler: a capture server announces a
// session (its agent, the payload types of its calls) before its media,
// tells it the payload types changed, or says it stopped.
func (s *Supervisor) Session(p *relay.Peer, n *relay.SessionNotice) error {
	if err := s.capture(p, "session notices"); err != nil {
		return err
	}
	if !filter.ValidID(n.Session) {
		s.badID(p, []byte(n.Session))
		return nil
	}
	if n.PayloadTypes.Dropped > 0 {
		s.badPTs.Add(uint64(n.PayloadTypes.Dropped))
	}
	types := n.PayloadTypes.Types
	server := peerName(p)
	agent := n.Agent
	if len(agent) > 2*maxIDLen {
		agent = agent[:2*maxIDLen]
	}
	if agent == "" {
		agent = unknownAgent
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	sess := (*s.table.Load())[n.Session]
	switch n.State {
	case relay.SessionStarted, relay.SessionCodecs:
		if sess == nil {
			old, had := s.notices[n.Session]
			if !had && len(s.notices) >= maxNotices*s.cfg.MaxSessions {
				s.mu.Unlock()
				return nil
			}
			x := notice{agent: agent, record: n.Record, server: server, at: s.clock.Now(), types: types}
			if n.State == relay.SessionCodecs && had {
				// Only the types change.
				x = old
				x.types = types
			}
			if x.types == nil && had {
				x.types = old.types
			}
			s.notices[n.Session] = x
			s.mu.Unlock()
			return nil
		}
		if n.State == relay.SessionStarted {
			if sess.agent == unknownAgent {
				sess.agent = agent // the output's name keeps what it was opened with
			}
			sess.announced[server] = true
			if !slices.Contains(sess.servers, server) {
				sess.servers = append(sess.servers, server)
			}
		}
		s.mu.Unlock()
		// A notice without types leaves the session's types as they are:
		// another capture server may have seen the SDP.
		if types != nil {
			sess.player.SetPayloadTypes(s.payloadTypes(types))
			sess.pts.Store(newPTTable(types, s.cfg.Playout.PayloadTypes))
		}
	case relay.SessionStopped:
		delete(s.notices, n.Session)
		if sess == nil {
			s.mu.Unlock()
			return nil
		}
		if !sess.announced[server] && !slices.Contains(sess.servers, server) {
			// Only a server that announced the session or sent its
			// media ends it.
			s.mu.Unlock()
			return nil
		}
		delete(sess.announced, server)
		if len(sess.announced) > 0 {
			s.mu.Unlock()
			return nil
		}
		s.removeLocked(sess)
		s.finishing.Add(1)
		s.mu.Unlock()
		defer s.finishing.Done()
		s.finish(sess, "stopped")
	default:
		s.mu.Unlock()
	}
	return nil
}

// removeLocked takes sess out of the table and hands the device to the
// most recently started remaining session. Called with mu held.
func (s *Supervisor) removeLocked(gone ...*session) {
	old := *s.table.Load()
	next := make(map[string]*session, len(old))
	for k, v := range old {
		next[k] = v
	}
	for _, g := range gone {
		delete(next, g.id)
	}
	s.table.Store(&next)
	s.limitLogged = false
	if s.dev == nil {
		return
	}
	cur := s.dev.playing.Load()
	if cur != nil && next[cur.id] == cur {
		return
	}
	var latest *session
	for _, v := range next {
		if latest == nil || v.started.After(latest.started) ||
			v.started.Equal(latest.started) && v.id > latest.id {
			latest = v
		}
	}
	s.dev.playing.Store(latest)
	if latest != nil {
		s.log.Info("device now plays the most recently started remaining session", "session", latest.id)
	}
}

// finish closes a session taken out of the table: its Player plays out
// what it holds and closes the output.
func (s *Supervisor) finish(sess *session, reason string) {
	err := sess.player.Close()
	st := sess.player.Stats()
	s.mu.Lock()
	sess.reason, sess.final, sess.ended = reason, st, s.clock.Now()
	s.closedSecs += st.Seconds
	for _, d := range []playout.Direction{playout.FromAgent, playout.ToAgent} {
		x := st.Dir(d)
		s.closedDir[d].Lost += x.Lost
		s.closedDir[d].Late += x.Late
		s.closedDir[d].Concealed += x.Concealed
	}
	s.history = append(s.history, sess)
	if len(s.history) > maxHistory {
		s.history = s.history[len(s.history)-maxHistory:]
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Error("session closed with an output error", "session", sess.id, "agent", sess.agent, "output", sess.output, "err", err)
		return
	}
	s.log.Info("session closed", "session", sess.id, "agent", sess.agent, "output", sess.output,
		"seconds", fmt.Sprintf("%.2f", st.Seconds), "reason", reason)
}

func (s *Supervisor) reap(t playout.Ticker, beat *service.Heartbeat) {
	defer close(s.done)
	defer t.Stop()
	defer beat.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C():
			s.closeIdle(s.clock.Now())
			beat.Beat()
		}
	}
}

// closeIdle closes the sessions without media for IdleTimeout and forgets
// notices as old.
func (s *Supervisor) closeIdle(now time.Time) {
	limit := now.Add(-s.cfg.IdleTimeout)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	var idle []*session
	for _, v := range *s.table.Load() {
		if v.last.Load() <= limit.UnixNano() {
			idle = append(idle, v)
		}
	}
	for id, n := range s.notices {
		if !n.at.After(limit) {
			delete(s.notices, id)
		}
	}
	if len(idle) > 0 {
		s.removeLocked(idle...)
	}
	s.finishing.Add(1)
	s.mu.Unlock()
	defer s.finishing.Done()
	for _, v := range idle {
		s.finish(v, "idle")
	}
}

// Closed implements relay.Handler. Sessions outlive their connections
// (the capture server reconnects); idleness closes them.
func (s *Supervisor) Closed(p *relay.Peer, err error) {
	s.captureOK.Delete(p)
	if p.Hello.Role == relay.RoleCapture {
		s.log.Info("capture server disconnected", "peer", p.Addr, "name", p.Hello.Name)
	}
}

// Close stops the reaper, closes every session (finalising its file) and
// the device, and waits. It returns the first output error. Close is
// idempotent.
func (s *Supervisor) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	open := *s.table.Load()
	empty := map[string]*session{}
	s.table.Store(&empty)
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	s.finishing.Wait()
	list := make([]*session, 0, len(open))
	for _, v := range open {
		list = append(list, v)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].started.Before(list[j].started) })
	var errs []error
	var wg sync.WaitGroup
	var emu sync.Mutex
	for _, v := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := v.player.Close(); err != nil {
				emu.Lock()
				errs = append(errs, fmt.Errorf("session %s, output %s: %w", v.id, v.output, err))
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, v := range list {
		s.finish(v, "shutdown") // the Player is closed: this records it
	}
	if s.dev != nil {
		s.dev.playing.Store(nil)
		s.dev.mu.Lock()
		if err := s.dev.dev.Close(); err != nil {
			errs = append(errs, fmt.Errorf("device %s: %w", s.dev.spec, err))
		}
		s.dev.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Totals are a Supervisor's figures over its whole life.
type Totals struct {
	Packets, Duplicates, Rejected, Refused, BadSessionIDs, Unauthorized uint64
	SessionsOpened                                                      uint64
	// BadPayloadTypes counts the payload-type entries of session notices
	// left out as invalid.
	BadPayloadTypes uint64
	// Seconds is the audio every session's Player wrote.
	Seconds float64
}

// Totals returns the Supervisor's counters.
func (s *Supervisor) Totals() Totals {
	t := Totals{Packets: s.packets.Load(), Duplicates: s.dups.Load(), Rejected: s.rejected.Load(),
		Refused: s.refused.Load(), BadSessionIDs: s.badIDs.Load(), Unauthorized: s.unauthorized.Load(),
		SessionsOpened: s.opened.Load(), BadPayloadTypes: s.badPTs.Load()}
	s.mu.Lock()
	t.Seconds = s.closedSecs
	s.mu.Unlock()
	for _, v := range *s.table.Load() {
		t.Seconds += v.player.Stats().Seconds
	}
	return t
}

// SessionOutput is one closed session's output, for a summary.
type SessionOutput struct {
	Session, Agent, Output string
	Seconds                float64
}

// Outputs returns the most recently closed sessions' outputs (at most 32),
// oldest first.
func (s *Supervisor) Outputs() []SessionOutput {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SessionOutput, 0, len(s.history))
	for _, v := range s.history {
		out = append(out, SessionOutput{Session: v.id, Agent: v.agent, Output: v.output, Seconds: v.final.Seconds})
	}
	return out
}

// flowString is a flow's end in status: "" when unknown.
func addrString(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// Status implements relay.Handler.
// It returns FullStatus.
func (s *Supervisor) Status(context.Context, *relay.Peer) (any, error) { return s.FullStatus(), nil }
