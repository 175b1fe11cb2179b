//go:build !cgo

package opus

// EncoderSettings are an Encoder's settings (see the cgo build).
type EncoderSettings struct {
	Rate    int
	Bitrate int
	FEC     bool
	DTX     bool
}

// Settings returns an error wrapping ErrNotBuilt in this build.
func (e *Encoder) Settings() (EncoderSettings, error) { return EncoderSettings{}, ErrNotBuilt }
