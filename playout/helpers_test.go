package playout_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"

	"github.com/zaf/g711"
)

// rtpPacket builds an RTP packet.
func rtpPacket(pt uint8, seq uint16, ts, ssrc uint32, marker bool, payload []byte) []byte {
	b := make([]byte, 12+len(payload))
	b[0] = 0x80
	b[1] = pt
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
	copy(b[12:], payload)
	return b
}

// speechLike returns n µ-law (or A-law) bytes of a voiced, amplitude
// modulated signal: a sum of harmonics of a wandering pitch.
func speechLike(n int, alaw bool, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	pcm := make([]byte, 2*n)
	f0 := 120.0
	ph := 0.0
	for i := range n {
		if i%400 == 0 {
			f0 = 90 + 120*rng.Float64()
		}
		ph += 2 * math.Pi * f0 / 8000
		env := 0.5 + 0.5*math.Sin(2*math.Pi*float64(i)/4000)
		v := 0.0
		for h := 1; h <= 6; h++ {
			v += math.Sin(float64(h)*ph) / float64(h)
		}
		s := int16(6000 * env * v)
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(s))
	}
	if alaw {
		return g711.EncodeAlaw(pcm)
	}
	return g711.EncodeUlaw(pcm)
}

// decodeRef decodes G.711 bytes with github.com/zaf/g711.
func decodeRef(b []byte, alaw bool) []int16 {
	var lp []byte
	if alaw {
		lp = g711.DecodeAlaw(b)
	} else {
		lp = g711.DecodeUlaw(b)
	}
	out := make([]int16, len(lp)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(lp[2*i:]))
	}
	return out
}

func firstDiff(a, b []int16) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}
