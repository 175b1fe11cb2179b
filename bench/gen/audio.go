package gen

import (
	"math"

	"github.com/zaf/g711"
)

// Tone returns n samples of the tone the generator sends for hz and
// amplitude (0 means DefaultAmplitude), starting at sample index first
// counted from the start of the call. hz 0 gives digital silence. Tests use
// it to compute the audio a decoder must render.
func Tone(hz float64, amplitude int16, first int64, n int) []int16 {
	out := make([]int16, n)
	fillTone(out, hz, amplitude, first)
	return out
}

func fillTone(out []int16, hz float64, amplitude int16, first int64) {
	if hz == 0 {
		clear(out)
		return
	}
	a := float64(amplitude)
	if amplitude == 0 {
		a = DefaultAmplitude
	}
	w := 2 * math.Pi * hz / SampleRate
	// The sample index is reduced modulo the tone's period when that is a
	// whole number of samples, so long calls keep full precision and every
	// period is bit-identical.
	period := int64(0)
	if hz == math.Trunc(hz) {
		period = int64(SampleRate / gcd(SampleRate, int(hz)))
	}
	for i := range out {
		n := first + int64(i)
		if period > 0 {
			n %= period
		}
		out[i] = int16(math.Round(a * math.Sin(w*float64(n))))
	}
}

// toneKey identifies a cached tone table.
type toneKey struct {
	hz  float64
	amp int16
}

// toneTable holds one period of a tone whose period is a whole number of
// samples, already encoded, plus one packet's worth of wrap-around so a
// payload is one contiguous copy.
type toneTable struct {
	period int
	pcm    []int16
	ulaw   []byte
	alaw   []byte
}

// maxTablePeriod bounds cached tone periods; tones with longer periods
// (non-integer frequencies) are computed per packet.
const maxTablePeriod = SampleRate

func newToneTable(hz float64, amp int16, extra int) *toneTable {
	if hz != math.Trunc(hz) {
		return nil
	}
	period := SampleRate / gcd(SampleRate, int(hz))
	if hz == 0 {
		period = 1
	}
	if period > maxTablePeriod {
		return nil
	}
	t := &toneTable{period: period}
	t.pcm = make([]int16, period+extra)
	fillTone(t.pcm[:period], hz, amp, 0)
	for i := period; i < len(t.pcm); i++ {
		t.pcm[i] = t.pcm[i%period]
	}
	t.ulaw = make([]byte, len(t.pcm))
	t.alaw = make([]byte, len(t.pcm))
	for i, s := range t.pcm {
		t.ulaw[i] = g711.EncodeUlawFrame(s)
		t.alaw[i] = g711.EncodeAlawFrame(s)
	}
	return t
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// audioSource produces the PCM of one direction.
type audioSource struct {
	dir   *Direction
	table *toneTable // nil when PCM is set or the tone has no short period
}

// fill writes the samples starting at sample index first into out.
func (s *audioSource) fill(out []int16, first int64) {
	switch {
	case s.dir.PCM != nil:
		pcm := s.dir.PCM
		for i := range out {
			j := first + int64(i)
			if j < int64(len(pcm)) {
				out[i] = pcm[j]
			} else {
				out[i] = 0
			}
		}
	case s.table != nil:
		copy(out, s.table.pcm[int(first%int64(s.table.period)):])
	default:
		fillTone(out, s.dir.ToneHz, s.dir.Amplitude, first)
	}
}

// encodeG711 writes len(out) G.711 bytes for the samples starting at first,
// using pcm as scratch.
func (s *audioSource) encodeG711(out []byte, first int64, alaw bool, pcm []int16) {
	if s.table != nil && s.dir.PCM == nil {
		off := int(first % int64(s.table.period))
		if alaw {
			copy(out, s.table.alaw[off:])
		} else {
			copy(out, s.table.ulaw[off:])
		}
		return
	}
	pcm = pcm[:len(out)]
	s.fill(pcm, first)
	for i, v := range pcm {
		if alaw {
			out[i] = g711.EncodeAlawFrame(v)
		} else {
			out[i] = g711.EncodeUlawFrame(v)
		}
	}
}
