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
// default device returns an error that wraps ErrNoSoundDevice with the
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
	sink, err := playout.OpenSink("portaudio")
	if err == nil {
		sink.Close()
		t.Fatal("a device opened with an ALSA configuration that defines none")
	}
	const want = `no sound device could be opened for output "portaudio" (no sound card, and ALSA's default device does not open: `
	if !errors.Is(err, playout.ErrNoSoundDevice) || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %q, want it to start with %q and wrap ErrNoSoundDevice", err, want)
	}
	if playout.SoundLibraryMessages(errors.New("other")) != nil {
		t.Error("messages for an error that is not a device's")
	}
	t.Logf("the sound libraries said: %q", playout.SoundLibraryMessages(err))
}
