package gen

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// TestReadWAVRate: the reader of wideband sessions' WAV files returns the
// samples and the rate of 8000, 16000 and 48000 Hz files, and refuses
// another rate, stereo or 8-bit files with ErrBadWAV; ReadWAV still takes
// 8000 Hz only.
func TestReadWAVRate(t *testing.T) {
	pcm := []int16{0, 1, -1, 32767, -32768, 1234}
	for _, rate := range []int{8000, 16000, 48000} {
		got, r, err := ReadWAVRate(bytes.NewReader(wavBytes(1, 1, uint32(rate), 16, pcm)))
		if err != nil || r != rate || !slices.Equal(got, pcm) {
			t.Errorf("%d Hz: %v at %d Hz, %v; want %v", rate, got, r, err, pcm)
		}
	}
	for _, tt := range []struct {
		name string
		b    []byte
	}{
		{"44.1 kHz", wavBytes(1, 1, 44100, 16, pcm)},
		{"stereo 16 kHz", wavBytes(1, 2, 16000, 16, pcm)},
		{"8 bit 48 kHz", wavBytes(1, 1, 48000, 8, pcm)},
	} {
		if _, _, err := ReadWAVRate(bytes.NewReader(tt.b)); !errors.Is(err, ErrBadWAV) {
			t.Errorf("%s: err %v, want ErrBadWAV", tt.name, err)
		}
	}
	if _, err := ReadWAV(bytes.NewReader(wavBytes(1, 1, 48000, 16, pcm))); !errors.Is(err, ErrBadWAV) {
		t.Errorf("ReadWAV of a 48 kHz file: err %v, want ErrBadWAV", err)
	}
}
