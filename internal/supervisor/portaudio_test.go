//go:build cgo && !noportaudio

package supervisor

import (
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/testutil"
	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/playout/audiotest"
	"github.com/silentmon/silentmon/relay"
)

// TestPortAudioHandOverALSAFile is TestPortAudioPlaysMostRecent through
// the real device path (playout.OpenSink, PortAudio) into an ALSA file
// device: the card receives a's tone, then b's, then a's again.
func TestPortAudioHandOverALSAFile(t *testing.T) {
	raw := testutil.ALSAFileDevice(t)
	clock := audiotest.NewClock(time.Unix(1_700_000_000, 0))
	open := func(spec string) (playout.Sink, error) {
		sink, err := playout.OpenSink(spec)
		if err != nil {
			t.Skipf("skipping: no PortAudio device through ALSA here: %v", err)
		}
		if rs, ok := sink.(interface{ Rate() int }); ok && rs.Rate() != 8000 {
			sink.Close()
			t.Skipf("skipping: the ALSA file device opened at %d Hz, not 8 kHz", rs.Rate())
		}
		return sink, nil
	}
	sup, err := New(Config{Output: "portaudio", OpenDevice: open, Clock: clock,
		Playout: playout.Config{Clock: clock}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Close()
	r := &rig{t: t, clock: clock, sup: sup, peer: &relay.Peer{Hello: relay.Hello{Role: relay.RoleCapture, Name: "capture-1"}}}
	played := func(id string) int {
		for _, s := range sup.Snapshot().Sessions {
			if s.ID == id {
				return int(s.SecondsPlayed*8000 + 0.5)
			}
		}
		t.Fatalf("no session %s", id)
		return 0
	}
	a, b := newCall("a", 1000, 1), newCall("b", 1400, 2)
	r.play(50, a)
	mark1 := played("a")
	r.play(100, a, b)
	mark2 := mark1 + played("b")
	if st := sup.Snapshot(); st.Playing != "b" {
		t.Fatalf("playing %q, want b", st.Playing)
	}
	r.notice("b", "", relay.SessionStopped)
	r.play(100, a)
	mark3 := mark2 + played("a") - mark1
	if st := sup.Snapshot(); st.Playing != "a" {
		t.Fatalf("after b stopped, playing %q", st.Playing)
	}
	if err := sup.Close(); err != nil {
		t.Fatal(err)
	}
	b8, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	s := make([]int16, len(b8)/2)
	for i := range s {
		s[i] = int16(binary.LittleEndian.Uint16(b8[2*i:]))
	}
	if len(s) < mark3 {
		t.Fatalf("the device file holds %d samples, %d were played", len(s), mark3)
	}
	checkTone(t, "device before b", s[400:mark1], 1000, 1400)
	checkTone(t, "device while b plays", s[mark1+800:mark2], 1400, 1000)
	checkTone(t, "device after b stopped", s[mark2+800:mark3], 1000, 1400)
}
