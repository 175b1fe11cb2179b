package audiotest

import (
	"encoding/binary"
	"math"

	"github.com/zaf/g711"

	"github.com/silentmon/silentmon/playout"
)

// ULawTone returns n µ-law bytes of a sine at hz of amplitude 8000,
// sampled at playout.SampleRate from sample first on: consecutive calls
// with first advancing by n continue the same tone.
func ULawTone(hz float64, first, n int) []byte {
	pcm := make([]byte, 2*n)
	for i := range n {
		v := int16(8000 * math.Sin(2*math.Pi*hz*float64(first+i)/playout.SampleRate))
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
	}
	return g711.EncodeUlaw(pcm)
}

// ToneLevel returns the amplitude of the hz component of pcm, sampled at
// playout.SampleRate, measured with a Goertzel filter over all of pcm: a
// sine of amplitude A at hz, filling pcm with a whole number of periods,
// reads A. Two levels' ratio squared is their power ratio, so "40 dB
// below" is a level 100 times lower. It returns 0 for empty pcm.
func ToneLevel(pcm []int16, hz float64) float64 {
	if len(pcm) == 0 {
		return 0
	}
	c := 2 * math.Cos(2*math.Pi*hz/playout.SampleRate)
	var s1, s2 float64
	for _, v := range pcm {
		s1, s2 = float64(v)+c*s1-s2, s1
	}
	p := s1*s1 + s2*s2 - c*s1*s2
	return 2 * math.Sqrt(max(p, 0)) / float64(len(pcm))
}

// Align returns the index of got at which want starts when their first
// non-zero samples line up: where a player's output (got, which may begin
// and end with silence) holds the decode of what was sent (want). It
// returns -1 if got is all silence or want, so placed, does not fit in got.
func Align(got, want []int16) int {
	g, w := firstNonZero(got), firstNonZero(want)
	off := g - w
	if g < 0 || off < 0 || off+len(want) > len(got) {
		return -1
	}
	return off
}

func firstNonZero(s []int16) int {
	for i, v := range s {
		if v != 0 {
			return i
		}
	}
	return -1
}
