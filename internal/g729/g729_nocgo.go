//go:build !cgo

package g729

// Available reports whether G.729 is built in.
func Available() bool { return false }

// Decoder decodes G.729 frames. In this build it cannot be created.
type Decoder struct{}

// NewDecoder returns an error wrapping ErrNotBuilt in this build.
func NewDecoder() (*Decoder, error) { return nil, ErrNotBuilt }

// Decode returns ErrNotBuilt.
func (d *Decoder) Decode(frame []byte, erased bool, out []int16) error { return ErrNotBuilt }

// DecodePayload returns ErrNotBuilt.
func (d *Decoder) DecodePayload(payload []byte, out []int16) (int, error) { return 0, ErrNotBuilt }

// Close does nothing.
func (d *Decoder) Close() error { return nil }

// Encoder encodes G.729 frames. In this build it cannot be created.
type Encoder struct{}

// NewEncoder returns an error wrapping ErrNotBuilt in this build.
func NewEncoder(vad bool) (*Encoder, error) { return nil, ErrNotBuilt }

// Encode returns ErrNotBuilt.
func (e *Encoder) Encode(pcm []int16, out []byte) (int, error) { return 0, ErrNotBuilt }

// Close does nothing.
func (e *Encoder) Close() error { return nil }
