package playout

import (
	"encoding/binary"
	"testing"
	"time"
)

// boundPkt builds a PCMU packet of 160 bytes.
func boundPkt(seq uint16, ts uint32) []byte {
	b := make([]byte, 12+160)
	b[0], b[1] = 0x80, 0
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], 0x1234)
	for i := 12; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

// TestWorkBoundedPerPacket feeds sequences and timestamps that once made
// the renderer conceal or pause for hours: output (and so work) per pushed
// packet must stay bounded whatever the numbers.
func TestWorkBoundedPerPacket(t *testing.T) {
	type push struct {
		at  time.Duration
		seq uint16
		ts  uint32
	}
	year := 365 * 24 * time.Hour
	cases := []struct {
		name   string
		pushes []push
		render time.Duration // last Render time
		max    int           // samples written at most
		rt     bool          // a real-time sink
	}{
		// Before playout starts any timestamp is accepted; a missing
		// sequence number in front of a packet 37 hours ahead must not be
		// concealed for 37 hours.
		{"seq gap with a timestamp jump", []push{{0, 1, 0}, {0, 3, 1 << 30}, {0, 4, 160}}, 0, SampleRate, false},
		{"seq gap with a timestamp jump, rendered", []push{{0, 1, 0}, {0, 3, 1 << 30}, {0, 4, 160}}, time.Minute, SampleRate, false},
		// A capture whose clock jumps a year: the pause written between
		// the packets is bounded and rendering does not step through it.
		{"arrival jumps a year", []push{{0, 1, 0}, {0, 2, 160}, {year, 3, 320}}, year, maxPause + 3*160 + heldBlocks*blockLen, false},
		{"arrival jumps a year, real-time sink", []push{{0, 1, 0}, {0, 2, 160}, {year, 3, 320}}, year, SampleRate, true},
		{"arrival jumps a year, RTP too", []push{{0, 1, 0}, {year, 2, 1 << 31}}, year, maxPause + 2*160 + heldBlocks*blockLen, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRenderer(Config{}, 1, tc.rt)
			defer r.Close()
			start := time.Unix(1000, 0)
			out, calls := 0, 0
			render := func(now time.Time) {
				for c := r.Render(now); len(c) > 0; c = r.Render(now) {
					out += len(c)
					if calls++; calls > 10000 {
						t.Fatalf("Render: %d samples after %d calls and still going", out, calls)
					}
				}
			}
			for _, p := range tc.pushes {
				now := start.Add(p.at)
				render(now)
				if err := r.Push(FromAgent, now, boundPkt(p.seq, p.ts)); err != nil {
					t.Fatal(err)
				}
				r.check(t)
			}
			render(start.Add(tc.render))
			for c := r.Flush(); len(c) > 0; c = r.Flush() {
				out += len(c)
				if calls++; calls > 10000 {
					t.Fatalf("Flush: %d samples after %d calls and still going", out, calls)
				}
			}
			t.Logf("%d samples", out)
			if out > tc.max {
				t.Fatalf("wrote %d samples, want at most %d", out, tc.max)
			}
			if out < 2*160 {
				t.Fatalf("wrote %d samples, the packets' own audio is missing", out)
			}
		})
	}
}
