package supervisor

import (
	"testing"
	"time"

	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/playout/audiotest"
)

// rateCard is a fake sound card that takes any session rate: it records
// the rates it is set to and the samples written at each.
type rateCard struct {
	*audiotest.Sink
	in    int
	rates []int
}

func (c *rateCard) InputRate() int { return c.in }
func (c *rateCard) SetInputRate(rate int) error {
	c.in = rate
	c.rates = append(c.rates, rate)
	return nil
}

// TestDeviceSessionRate: a sound card that takes any rate plays a G.722
// session at 16 kHz and, once a G.711 session takes over, at 8 kHz: the
// card is told each rate before the samples of that rate. A card that
// cannot (TestPortAudioPlaysMostRecent's) keeps every session at 8 kHz.
func TestDeviceSessionRate(t *testing.T) {
	card := &rateCard{Sink: audiotest.NewSink(1, true, nil), in: 48000}
	r := newRig(t, Config{Output: "portaudio", OpenDevice: func(string) (playout.Sink, error) { return card, nil }})
	w := newG722Call(t, "wide", 6000, 5)
	for range 50 {
		f := frame(t, w.id, w.call, w.packet(t))
		if err := r.sup.Media(r.peer, &f); err != nil {
			t.Fatal(err)
		}
		r.clock.Advance(20 * time.Millisecond)
	}
	n := newCall("narrow", 1000, 6)
	r.play(50, n)
	r.settle()
	// Seconds are counted at the session's rate: the wide session sent 1 s
	// of 16 kHz audio (counted at 8 kHz it would read about 2 s).
	for _, s := range r.sup.FullStatus().Sessions {
		if s.ID == "wide" && (s.SecondsPlayed <= 0 || s.SecondsPlayed > 1.05) {
			t.Errorf("wide played %.2f s on the card of the 1 s it sent", s.SecondsPlayed)
		}
	}
	if err := r.sup.Close(); err != nil {
		t.Fatal(err)
	}
	if len(card.rates) < 2 || card.rates[0] != 16000 || card.rates[len(card.rates)-1] != 8000 {
		t.Fatalf("the card was set to %v, want 16000 then 8000", card.rates)
	}
	for _, s := range r.sup.Snapshot().Sessions {
		if s.ID == "wide" && s.Output != "portaudio" {
			t.Errorf("wide plays to %q", s.Output)
		}
	}
}
