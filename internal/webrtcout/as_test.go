package webrtcout

import (
	"context"
	"math"
	"testing"
)

// otherLevels and otherListener stand for a Listener interface declared
// by the package that uses it (the web console's).
type otherLevels struct{ Agent, Customer float64 }

type otherListener interface {
	Answer(ctx context.Context, session, offer string) (string, error)
	Levels() map[string]otherLevels
	Close() error
}

// TestAs: a Server wrapped in As satisfies another package's Listener
// interface and reports its levels in that package's type.
func TestAs(t *testing.T) {
	srv := &Server{sessions: map[string]*sessionState{"s1": {}}}
	srv.sessions["s1"].sq[0] = [2]float64{320 * 16384 * 16384, 0}
	srv.sessions["s1"].n[0] = 320 // a 16 kHz frame
	var l otherListener = As[otherLevels]{srv}
	got := l.Levels()["s1"]
	// Half scale in one frame of the five: a mean square of 1/4 / 5.
	if want := 10 * math.Log10(0.25/levelFrames); got.Customer != Silence || math.Abs(got.Agent-want) > 1e-9 {
		t.Fatalf("levels %+v, want agent %.2f dBFS and customer silent (%v)", got, want, Silence)
	}
}
