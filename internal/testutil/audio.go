package testutil

import "math"

// Tone returns n samples of a sine at hz and amplitude amp, sampled at
// rate.
func Tone(hz, amp float64, rate, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(math.Round(amp * math.Sin(2*math.Pi*hz*float64(i)/float64(rate))))
	}
	return out
}

// RMS returns the root mean square of s.
func RMS(s []int16) float64 {
	var e float64
	for _, v := range s {
		e += float64(v) * float64(v)
	}
	return math.Sqrt(e / float64(len(s)))
}

// Power returns the Goertzel power of s, sampled at rate, at hz.
func Power(s []int16, hz float64, rate int) float64 {
	w := 2 * math.Pi * hz / float64(rate)
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range s {
		s0 := float64(v) + c*s1 - s2
		s2, s1 = s1, s0
	}
	return s1*s1 + s2*s2 - c*s1*s2
}

// Loudest returns the frequency on a 10 Hz grid below maxHz where s,
// sampled at rate, has the most power.
func Loudest(s []int16, rate int, maxHz float64) float64 {
	best, bestHz := -1.0, 0.0
	for hz := 10.0; hz < maxHz; hz += 10 {
		if p := Power(s, hz, rate); p > best {
			best, bestHz = p, hz
		}
	}
	return bestHz
}
