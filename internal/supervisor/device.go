package supervisor

import (
	"sync"
	"sync/atomic"

	"github.com/silentmon/silentmon/playout"
)

// device is the one sound card of a portaudio output, shared by every
// session's Player: only the playing session's samples reach it.
type device struct {
	spec    string
	mu      sync.Mutex // serialises writes to dev (a switch takes effect between two)
	dev     playout.Sink
	playing atomic.Pointer[session]
}

// sink returns the Sink of s's Player.
func (d *device) sink(s *session) *deviceSink { return &deviceSink{d: d, s: s} }

// deviceSink is a session's view of the device: a real-time sink that
// passes samples on while its session plays and drops them otherwise. Its
// Player's goroutine writes it; Seconds and Played may be read from any
// goroutine.
type deviceSink struct {
	d      *device
	s      *session
	frames atomic.Int64 // written by the Player
	played atomic.Int64 // passed to the device
}

var _ playout.RealtimeSink = (*deviceSink)(nil)

func (k *deviceSink) Write(p []int16) error {
	n := int64(len(p) / k.d.dev.Channels())
	k.frames.Add(n)
	if k.d.playing.Load() != k.s {
		return nil
	}
	k.d.mu.Lock()
	defer k.d.mu.Unlock()
	if k.d.playing.Load() != k.s { // switched while this waited
		return nil
	}
	if err := k.d.dev.Write(p); err != nil {
		return err
	}
	k.played.Add(n)
	return nil
}

func (k *deviceSink) Channels() int    { return k.d.dev.Channels() }
func (k *deviceSink) Realtime() bool   { return true }
func (k *deviceSink) Seconds() float64 { return float64(k.frames.Load()) / float64(k.s.rate) }

// Played returns the seconds that reached the device, counted at the
// session's rate (what was written, before the card's resampling).
func (k *deviceSink) Played() float64 { return float64(k.played.Load()) / float64(k.s.rate) }

// Close does nothing: the device outlives the session (Supervisor.Close
// closes it).
func (k *deviceSink) Close() error { return nil }
