//go:build cgo && !noportaudio

package playout_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silentmon/silentmon/playout"
)

// TestPortAudioNoDevice: with an ALSA configuration that defines no
// device (an empty file) on a host without a sound card, opening the
// default device or a named one returns an error that wraps ErrNoSoundDevice with the
// reason, instead of PortAudio's enumeration aborting the process, and
// ALSA's complaints are kept in the error (SoundLibraryMessages), not
// printed.
func TestPortAudioNoDevice(t *testing.T) {
	if b, err := os.ReadFile("/proc/asound/cards"); err == nil && !bytes.Contains(b, []byte("no soundcards")) {
		t.Skip("skipping: this host has a sound card, which ALSA finds whatever its configuration")
	}
	conf := filepath.Join(t.TempDir(), "asound.conf")
	if err := os.WriteFile(conf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ALSA_CONFIG_PATH", conf)
	var err error
	// The default device, and a named one: PortAudio is not asked to
	// list devices it cannot list without aborting.
	for _, spec := range []string{"portaudio", "portaudio:Speakers"} {
		var sink playout.Sink
		sink, err = playout.OpenSink(spec)
		if err == nil {
			sink.Close()
			t.Fatalf("%s opened with an ALSA configuration that defines no device", spec)
		}
		want := `no sound device could be opened for output "` + spec + `" (no sound card, and ALSA's default device does not open: `
		if !errors.Is(err, playout.ErrNoSoundDevice) || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("error %q, want it to start with %q and wrap ErrNoSoundDevice", err, want)
		}
	}
	if playout.SoundLibraryMessages(errors.New("other")) != nil {
		t.Error("messages for an error that is not a device's")
	}
	t.Logf("the sound libraries said: %q", playout.SoundLibraryMessages(err))
}
