//go:build cgo

package opus

import "testing"

// FuzzPacketSamples holds PacketSamples to libopus's
// opus_packet_get_nb_samples: the same count for every packet libopus
// counts above 0 and at 120 ms or less, an error for the rest (a code 3
// packet of no frames, which libopus counts as 0), never a panic.
func FuzzPacketSamples(f *testing.F) {
	for _, seed := range [][]byte{{1 << 3}, {19<<3 | 1}, {1<<3 | 3, 3}, {1<<3 | 3, 7}, {16 << 3}, {31<<3 | 3, 0x3f}, {12<<3 | 2, 5}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		for _, rate := range []int{8000, 48000} {
			got, err := PacketSamples(p, rate)
			want := libopusPacketSamples(p, rate)
			switch {
			case want <= 0 || want > MaxPacketMs*rate/1000:
				if err == nil {
					t.Fatalf("%x at %d Hz: %d samples, libopus says %d (invalid)", p, rate, got, want)
				}
			case err != nil || got != want:
				t.Fatalf("%x at %d Hz: %d, %v; libopus says %d", p, rate, got, err, want)
			}
		}
	})
}
