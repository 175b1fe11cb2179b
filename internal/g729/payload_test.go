package g729

import (
	"errors"
	"testing"
)

func TestPayloadSamples(t *testing.T) {
	for _, tc := range []struct {
		n, want int
		err     error
	}{
		{0, 0, nil},
		{2, 80, nil},
		{10, 80, nil},
		{12, 160, nil},
		{20, 160, nil},
		{7, 0, ErrFrameSize},
		{15, 0, ErrFrameSize},
	} {
		got, err := PayloadSamples(tc.n)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("PayloadSamples(%d) = %d, %v; want %d, %v", tc.n, got, err, tc.want, tc.err)
		}
	}
}
