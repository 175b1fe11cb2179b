//go:build !cgo || noportaudio

package playout

import "fmt"

// PortAudioBuiltIn says whether this binary can play on a sound card.
const PortAudioBuiltIn = false

func openPortAudio(device string, channels, _ int) (Sink, error) {
	return nil, fmt.Errorf("output %q: %w", "portaudio", ErrPortAudioNotBuilt)
}
