//go:build !cgo

package resample

import "time"

// Available reports whether the resampler is built in.
func Available() bool { return false }

// Resampler converts between rates. In this build it cannot be created.
type Resampler struct{}

// New returns an error wrapping ErrNotBuilt in this build.
func New(in, out, channels int) (*Resampler, error) {
	if err := check(in, out, channels); err != nil {
		return nil, err
	}
	return nil, ErrNotBuilt
}

// Rates returns zeros.
func (r *Resampler) Rates() (in, out int) { return 0, 0 }

// Channels returns 0.
func (r *Resampler) Channels() int { return 0 }

// SetRates returns ErrNotBuilt.
func (r *Resampler) SetRates(in, out int) error { return ErrNotBuilt }

// Process returns dst unchanged.
func (r *Resampler) Process(dst, src []int16) []int16 { return dst }

// Reset does nothing.
func (r *Resampler) Reset() {}

// Delay returns 0.
func (r *Resampler) Delay() time.Duration { return 0 }

// Close does nothing.
func (r *Resampler) Close() error { return nil }
