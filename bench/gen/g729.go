package gen

import "github.com/silentmon/silentmon/internal/g729"

// g729Available reports whether Write can encode G.729 in this build.
func g729Available() bool { return g729.Available() }

func newG729Encoder(vad bool) (frameEncoder, error) {
	return g729.NewEncoder(vad)
}
