//go:build !cgo

package opus

// Available reports whether Opus is built in.
func Available() bool { return false }

// Version returns "".
func Version() string { return "" }

// Decoder decodes Opus. In this build it cannot be created.
type Decoder struct{}

// NewDecoder returns an error wrapping ErrNotBuilt in this build.
func NewDecoder(rate int) (*Decoder, error) { return nil, ErrNotBuilt }

// Rate returns 0.
func (d *Decoder) Rate() int { return 0 }

// Decode returns ErrNotBuilt.
func (d *Decoder) Decode(packet []byte, out []int16) (int, error) { return 0, ErrNotBuilt }

// Conceal returns ErrNotBuilt.
func (d *Decoder) Conceal(out []int16) (int, error) { return 0, ErrNotBuilt }

// DecodeFEC returns ErrNotBuilt.
func (d *Decoder) DecodeFEC(next []byte, out []int16) (int, error) { return 0, ErrNotBuilt }

// Reset does nothing.
func (d *Decoder) Reset() {}

// Close does nothing.
func (d *Decoder) Close() error { return nil }

// EncoderConfig sets an Encoder up (see the cgo build).
type EncoderConfig struct {
	Rate        int
	Bitrate     int
	FEC         bool
	LossPercent int
}

// Encoder encodes Opus. In this build it cannot be created.
type Encoder struct{}

// NewEncoder returns an error wrapping ErrNotBuilt in this build.
func NewEncoder(cfg EncoderConfig) (*Encoder, error) { return nil, ErrNotBuilt }

// Encode returns ErrNotBuilt.
func (e *Encoder) Encode(pcm []int16, out []byte) (int, error) { return 0, ErrNotBuilt }

// Close does nothing.
func (e *Encoder) Close() error { return nil }
