package opus

import (
	"errors"
	"testing"
)

func TestPacketSamples(t *testing.T) {
	for _, tc := range []struct {
		name   string
		packet []byte
		rate   int
		want   int
		err    error
	}{
		{"SILK 20 ms at 8 kHz", []byte{1 << 3, 0}, 8000, 160, nil},
		{"SILK 20 ms at 48 kHz", []byte{1 << 3}, 48000, 960, nil},
		{"SILK 60 ms", []byte{3 << 3}, 16000, 960, nil},
		{"hybrid 10 ms", []byte{12 << 3}, 48000, 480, nil},
		{"CELT 2.5 ms", []byte{16 << 3}, 48000, 120, nil},
		{"CELT 20 ms two frames (code 1)", []byte{19<<3 | 1}, 8000, 320, nil},
		{"CELT 20 ms two frames (code 2)", []byte{19<<3 | 2, 1}, 8000, 320, nil},
		{"code 3, 3 frames of 20 ms", []byte{1<<3 | 3, 3}, 8000, 480, nil},
		{"code 3, 7 frames of 20 ms: 140 ms", []byte{1<<3 | 3, 7}, 8000, 0, ErrPacket},
		{"code 3 without count", []byte{1<<3 | 3}, 8000, 0, ErrPacket},
		{"code 3 with 0 frames", []byte{1<<3 | 3, 0}, 8000, 0, ErrPacket},
		{"empty", nil, 8000, 0, ErrPacket},
		{"bad rate", []byte{1 << 3}, 44100, 0, ErrRate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PacketSamples(tc.packet, tc.rate)
			if got != tc.want || !errors.Is(err, tc.err) {
				t.Fatalf("PacketSamples = %d, %v; want %d, %v", got, err, tc.want, tc.err)
			}
		})
	}
}
