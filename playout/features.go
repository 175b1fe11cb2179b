package playout

// Features says what this build of the player has, for --version: G.729
// decoding (cgo and bcg729), G.722 (cgo and libspandsp), Opus (cgo and
// libopus) and PortAudio output (cgo and PortAudio).
func Features() []string {
	word := func(name string, in bool) string {
		if in {
			return name + " built in"
		}
		return name + " left out"
	}
	return []string{word("G.729", G729BuiltIn), word("G.722", G722BuiltIn), word("Opus", OpusBuiltIn),
		word("PortAudio", PortAudioBuiltIn)}
}
