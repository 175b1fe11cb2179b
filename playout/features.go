package playout

// Features says what this build of the player has, for --version: G.729
// decoding (cgo and bcg729), G.722 (cgo and libspandsp), Opus (cgo and
// libopus), the resampler that plays sessions at 16 and 48 kHz (cgo and
// libspeexdsp; without it every session is 8 kHz) and PortAudio output to
// a sound card (cgo and PortAudio). A build without cgo says "G.729 left
// out, G.722 left out, Opus left out, resampler left out, PortAudio left
// out": it plays G.711 only, into WAV files.
func Features() []string {
	word := func(name string, in bool) string {
		if in {
			return name + " built in"
		}
		return name + " left out"
	}
	return []string{word("G.729", G729BuiltIn), word("G.722", G722BuiltIn), word("Opus", OpusBuiltIn),
		word("resampler", ResamplerBuiltIn), word("PortAudio", PortAudioBuiltIn)}
}
