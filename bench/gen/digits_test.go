package gen

import (
	"strings"
	"testing"
	"time"
)

// TestDigitsInTheManifest: agent 1001's phone sends the digits 159# as
// telephone events in place of its voice, so the manifest takes their
// packet times (100 ms each, from 1 s into the call, one every 300 ms)
// out of the leg's active spans and lists them as the leg's events. The
// listening check passes the ideal audio (silence during the digits) and
// checks each digit as a window; audio in which the voice goes on through
// the digits (concealment) fails it, naming the digit. (Before, the
// manifest marked the voice active during the digits: the check expected
// the tone there.)
func TestDigitsInTheManifest(t *testing.T) {
	plain := scenarioOrSkip(t, "hold-resume", 1)
	s, err := ScenarioWith("hold-resume", 1, ScenarioOptions{Digits: "159#"})
	if err != nil {
		t.Fatal(err)
	}
	var leg, was *Leg
	for i := range s.Manifest.Legs {
		if l := &s.Manifest.Legs[i]; l.Agent == "1001" && l.Direction == FromAgent && len(l.Events) > 0 {
			leg, was = l, &plain.Manifest.Legs[i]
		}
	}
	if leg == nil {
		t.Fatalf("no leg of agent 1001 lists the digits as events: %+v", s.Manifest.Legs)
	}
	start := s.Config.Calls[leg.stream/2].Start
	if len(leg.Events) != 4 {
		t.Fatalf("events %+v, want 4 digits", leg.Events)
	}
	for i, ev := range leg.Events {
		from := start + time.Second + time.Duration(i)*300*time.Millisecond
		if ev.from() != from || ev.to() != from+100*time.Millisecond {
			t.Errorf("digit %d: %v–%v, want %v–%v", i, ev.from(), ev.to(), from, from+100*time.Millisecond)
		}
		for _, a := range leg.Active {
			if a.FromMS < ev.ToMS && a.ToMS > ev.FromMS {
				t.Errorf("digit %d (%+v) overlaps the active span %+v", i, ev, a)
			}
		}
	}
	// Active and events together are what the leg sent without digits.
	var got, want time.Duration
	for _, a := range append(append([]Span(nil), leg.Active...), leg.Events...) {
		got += a.to() - a.from()
	}
	for _, a := range was.Active {
		want += a.to() - a.from()
	}
	if got != want {
		t.Errorf("active and events cover %v, the leg without digits %v", got, want)
	}

	pcm, first, err := s.IdealAudio("1001")
	if err != nil {
		t.Fatal(err)
	}
	r := CheckListening(s.Manifest, "1001", pcm)
	if !r.OK() {
		t.Fatalf("ideal audio: %s", r.String())
	}
	// Each digit is one window: a margin too wide to check any leaves 4
	// fewer.
	if wide := (ListenOptions{EventMargin: time.Second}).Check(s.Manifest, "1001", pcm); r.Windows-wide.Windows != 4 {
		t.Errorf("%d windows with the digits checked, %d without: want 4 more", r.Windows, wide.Windows)
	}

	// Concealment: the 20 ms before each digit repeated through it.
	conc := append([]int16(nil), pcm...)
	for _, ev := range leg.Events {
		a := int((ev.from() - first) * SampleRate / time.Second)
		z := int((ev.to() - first) * SampleRate / time.Second)
		for k := a; k < z; k++ {
			conc[k] = conc[k-160]
		}
	}
	r = CheckListening(s.Manifest, "1001", conc)
	if r.OK() || r.Right != r.Windows-4 {
		t.Fatalf("concealed digits: %d of %d windows right, want all but the 4 digits: %s", r.Right, r.Windows, r.String())
	}
	for _, f := range r.Failures {
		if !strings.HasPrefix(f, "digit ") {
			t.Errorf("failure %q is not a digit's", f)
		}
	}
}
