package supervisor

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/silentmon/silentmon/playout"
)

// Errors of Tap. They belong with the package's other sentinels.
var (
	// ErrNoSession is wrapped by Tap's error for a session that is not
	// playing here (never opened, or closed).
	ErrNoSession = errors.New("no such session playing")
	// ErrTapLimit is wrapped by Tap's error when a session has
	// MaxTapsPerSession subscribers already.
	ErrTapLimit = errors.New("too many listeners of the session's audio")
)

// Tap constants.
const (
	// TapFrameMs is the duration of a TapFrame.
	TapFrameMs = 20
	// TapMaxRate is the highest rate a session plays at, the one
	// TapFrame's array is sized for.
	TapMaxRate = 48000
	// TapMaxFrameLen is the most stereo frames a TapFrame holds: 20 ms at
	// TapMaxRate.
	TapMaxFrameLen = TapMaxRate * TapFrameMs / 1000
	// TapQueue is the frames a subscriber's queue holds (500 ms at any
	// rate); when it is full the oldest frame is dropped and counted.
	TapQueue = 25
	// MaxTapsPerSession bounds a session's subscribers.
	MaxTapsPerSession = 16
)

// TapFrame is 20 ms of a session's decoded audio as its Player wrote it,
// at the session's rate (8000, 16000 or 48000 Hz: nothing is resampled):
// Len() interleaved stereo frames at the start of Samples, the agent's
// voice (from-agent) left, the customer's (to-agent) right. Mixing the
// two with saturation gives the session's mono output. A TapFrame is a
// value (the array travels with it), so a subscriber owns what it
// receives and the tap allocates nothing per frame.
type TapFrame struct {
	// Samples holds 2*Len() samples; the rest of the array is unused.
	Samples [2 * TapMaxFrameLen]int16
	// Rate is the session's sample rate in Hz.
	Rate int
	// At is the Supervisor's clock when the frame's last sample was
	// written.
	At time.Time
}

// Len returns the stereo frames the frame holds: 20 ms at its Rate (160
// at 8 kHz, 320 at 16 kHz, 960 at 48 kHz).
func (f *TapFrame) Len() int { return f.Rate * TapFrameMs / 1000 }

// Stereo returns the frame's interleaved samples (2*Len()), aliasing
// Samples.
func (f *TapFrame) Stereo() []int16 { return f.Samples[:2*f.Len()] }

// Tap is one subscription to a session's audio (Supervisor.Tap). Its
// frames arrive on Frames in the order played, through a queue of
// TapQueue frames that never blocks the Player: a subscriber that falls
// behind loses its oldest frames (Dropped counts them). Frames is closed
// when the session closes or the Tap is closed. A Tap is safe for
// concurrent use.
type Tap struct {
	hub     *tapSink
	ch      chan TapFrame // closed under hub.mu
	dropped atomic.Uint64
	once    sync.Once
}

// Frames returns the channel the session's frames arrive on; it is
// closed when the session ends or the Tap is closed.
func (t *Tap) Frames() <-chan TapFrame { return t.ch }

// Rate returns the session's sample rate in Hz, the Rate of every frame
// (fixed when the session opened).
func (t *Tap) Rate() int { return t.hub.rate }

// Dropped returns the frames dropped because the subscriber's queue was
// full.
func (t *Tap) Dropped() uint64 { return t.dropped.Load() }

// Close ends the subscription: Frames is closed (frames still queued may
// be read first). It is idempotent.
func (t *Tap) Close() {
	t.once.Do(func() {
		h := t.hub
		h.mu.Lock()
		defer h.mu.Unlock()
		for i, x := range h.subs {
			if x == t {
				h.subs = append(h.subs[:i], h.subs[i+1:]...)
				close(t.ch)
				break
			}
		}
	})
}

// Tap subscribes to session's audio while it plays here. Errors wrap
// ErrNoSession (the session is not open: it has received no media yet,
// or it closed) or ErrTapLimit.
func (s *Supervisor) Tap(session string) (*Tap, error) {
	sess := (*s.table.Load())[session]
	if sess == nil || sess.tap == nil {
		return nil, fmt.Errorf("session %q: %w", session, ErrNoSession)
	}
	return sess.tap.subscribe(session)
}

// PipelineDelay returns the delay of session's audio from capture to the
// tap: the relay's delivery delay of the latest packet (capture time,
// from the capture server's clock, to its arrival here) plus the delay
// its jitter buffer plays with. ok is false when the session is not open.
// Across hosts the figure holds only as far as their clocks agree.
func (s *Supervisor) PipelineDelay(session string) (d time.Duration, ok bool) {
	sess := (*s.table.Load())[session]
	if sess == nil || sess.tap == nil {
		return 0, false
	}
	st := sess.player.Stats()
	return time.Duration(sess.tap.delivery.Load()) + time.Duration(st.TargetMs*float64(time.Millisecond)), true
}

// tapSink is a session's sink as its Player sees it: stereo. It mixes
// every write to mono with saturation for the session's output (the WAV
// file, the device or the null sink), as a mono Player would have mixed
// it, and cuts the stereo samples into TapFrames at the session's rate
// for the subscribers. It
// is real-time when the output is, so the Player writes exactly what it
// would have written to the output alone.
//
// The mono samples equal a mono Player's whenever each direction's sum
// fits in 16 bits, which holds with one stream per direction (a decoded
// G.711 or G.729 frame does); only two streams of one direction at once
// near full scale could clip the direction before the mix.
//
// Write and Close are called by the Player's goroutine; subscribe and a
// Tap's Close from any goroutine, under mu.
type tapSink struct {
	out      playout.Sink
	realtime bool
	clock    playout.Clock
	rate     int          // the session's, the frames' rate
	delivery atomic.Int64 // ns from capture to arrival of the latest packet

	// owned by the Player's goroutine
	mono  []int16
	frame TapFrame
	n     int // stereo frames in frame

	mu    sync.Mutex
	subs  []*Tap
	ended bool
}

var _ playout.RealtimeSink = (*tapSink)(nil)

// newTapSink returns the tap of a session whose Player writes at rate
// (8000, 16000 or 48000 Hz): its frames are at that rate. A rate outside
// 8000 to TapMaxRate, or not a whole number of samples per 20 ms, is
// taken as 8000 (the Supervisor opens none).
func newTapSink(out playout.Sink, clock playout.Clock, rate int) *tapSink {
	if rate < playout.SampleRate || rate > TapMaxRate || rate%(1000/TapFrameMs) != 0 {
		rate = playout.SampleRate
	}
	r, ok := out.(playout.RealtimeSink)
	k := &tapSink{out: out, realtime: ok && r.Realtime(), clock: clock, rate: rate}
	k.frame.Rate = rate
	return k
}

// delivered records a packet's delay from capture to arrival.
func (k *tapSink) delivered(now time.Time, captureNs int64) {
	if captureNs != 0 {
		k.delivery.Store(max(now.UnixNano()-captureNs, 0))
	}
}

func (k *tapSink) subscribe(session string) (*Tap, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ended {
		return nil, fmt.Errorf("session %q: %w", session, ErrNoSession)
	}
	if len(k.subs) >= MaxTapsPerSession {
		return nil, fmt.Errorf("session %q has %d listeners already: %w", session, len(k.subs), ErrTapLimit)
	}
	t := &Tap{hub: k, ch: make(chan TapFrame, TapQueue)}
	k.subs = append(k.subs, t)
	return t, nil
}

func (k *tapSink) Channels() int    { return 2 }
func (k *tapSink) Realtime() bool   { return k.realtime }
func (k *tapSink) Seconds() float64 { return k.out.Seconds() }

// Write mixes p (stereo) to the output and hands it to the subscribers.
func (k *tapSink) Write(p []int16) error {
	k.mono = k.mono[:0]
	for i := 0; i+1 < len(p); i += 2 {
		k.mono = append(k.mono, satAdd(p[i], p[i+1]))
	}
	err := k.out.Write(k.mono)
	k.mu.Lock()
	subs := len(k.subs)
	k.mu.Unlock()
	if subs == 0 {
		k.n = 0 // nobody listens: frames start afresh
		return err
	}
	size := k.frame.Len()
	for len(p) >= 2 {
		c := copy(k.frame.Samples[2*k.n:2*size], p)
		c -= c % 2
		k.n += c / 2
		p = p[c:]
		if k.n == size {
			k.publish()
		}
	}
	return err
}

// publish sends the full frame to every subscriber, dropping a full
// queue's oldest frame.
func (k *tapSink) publish() {
	k.frame.At = k.clock.Now()
	k.n = 0
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, t := range k.subs {
		select {
		case t.ch <- k.frame:
			continue
		default:
		}
		select {
		case <-t.ch:
		default:
		}
		t.dropped.Add(1)
		select {
		case t.ch <- k.frame:
		default:
		}
	}
}

// Close closes the output, sends the last partial frame (padded with
// silence) and ends every subscription.
func (k *tapSink) Close() error {
	err := k.out.Close()
	if k.n > 0 {
		clear(k.frame.Samples[2*k.n : 2*k.frame.Len()])
		k.publish()
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.ended {
		k.ended = true
		for _, t := range k.subs {
			close(t.ch)
		}
		k.subs = nil
	}
	return err
}

func satAdd(a, b int16) int16 {
	v := int32(a) + int32(b)
	if v > 32767 {
		return 32767
	}
	if v < -32768 {
		return -32768
	}
	return int16(v)
}
