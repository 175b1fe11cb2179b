//go:build !cgo

package g722

// Available reports whether G.722 is built in.
func Available() bool { return false }

// Decoder decodes G.722 payloads. In this build it cannot be created.
type Decoder struct{}

// NewDecoder returns an error wrapping ErrNotBuilt in this build.
func NewDecoder(rate int) (*Decoder, error) { return nil, ErrNotBuilt }

// Rate returns 0.
func (d *Decoder) Rate() int { return 0 }

// Decode returns ErrNotBuilt.
func (d *Decoder) Decode(payload []byte, out []int16) (int, error) { return 0, ErrNotBuilt }

// Reset does nothing.
func (d *Decoder) Reset() {}

// Close does nothing.
func (d *Decoder) Close() error { return nil }

// Encoder encodes G.722. In this build it cannot be created.
type Encoder struct{}

// NewEncoder returns an error wrapping ErrNotBuilt in this build.
func NewEncoder(rate int) (*Encoder, error) { return nil, ErrNotBuilt }

// Encode returns ErrNotBuilt.
func (e *Encoder) Encode(pcm []int16, out []byte) (int, error) { return 0, ErrNotBuilt }

// Close does nothing.
func (e *Encoder) Close() error { return nil }
