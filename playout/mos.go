package playout

// E-model (ITU-T G.107) with the default values for everything except the
// delay and the equipment impairment, which come from the stream.
//
//	R     = 93.2 − Id − Ie,eff
//	Id    = 0.024·Ta + 0.11·(Ta − 177.3)·H(Ta − 177.3)
//	Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl/BurstR + Bpl)
//	MOS   = 1 + 0.035·R + R·(R − 60)·(100 − R)·7·10⁻⁶   (0 < R < 100)
//
// Ie and Bpl per codec from ITU-T G.113 Appendix I: G.711 with loss
// concealment Ie = 0, Bpl = 25.1; G.729A(B) Ie = 11, Bpl = 19.0.
// BurstR = 1 (random loss). Ta is the one-way delay this side adds and
// can see: the jitter buffer's target plus one packet plus the codec's
// look-ahead (5 ms for G.729); the network path to the capture point is
// not visible and not counted.

// codecImpairment returns Ie, Bpl and the look-ahead in ms.
func codecImpairment(c Codec) (ie, bpl, lookahead float64) {
	switch c {
	case CodecG729:
		return 11, 19.0, 5
	default:
		return 0, 25.1, 0
	}
}

// rFactor returns the E-model R for codec c, packet loss ppl in percent and
// one-way delay ta in ms.
func rFactor(c Codec, ppl, ta float64) float64 {
	ie, bpl, _ := codecImpairment(c)
	id := 0.024 * ta
	if ta > 177.3 {
		id += 0.11 * (ta - 177.3)
	}
	ieff := ie + (95-ie)*ppl/(ppl+bpl)
	return 93.2 - id - ieff
}

// mosFromR converts R to a MOS (G.107 Annex B).
func mosFromR(r float64) float64 {
	switch {
	case r <= 0:
		return 1
	case r >= 100:
		return 4.5
	}
	return 1 + 0.035*r + r*(r-60)*(100-r)*7e-6
}

// MOS estimates the mean opinion score of a stream with codec c, packet
// loss (lost and discarded by the jitter buffer) ppl in percent, and
// one-way delay ta in ms.
func MOS(c Codec, ppl, ta float64) float64 {
	return mosFromR(rFactor(c, ppl, ta))
}

// stats returns the stream's counters with the MOS estimate.
func (s *stream) stats() StreamStats {
	st := s.st
	if st.Frames+st.Lost+st.Late == 0 {
		return st
	}
	ppl := 100 * float64(st.Lost+st.Late) / float64(st.Frames+st.Lost+st.Late)
	_, _, la := codecImpairment(st.Codec)
	ta := st.TargetMs + float64(s.frame)*1000/SampleRate + la
	st.MOS = MOS(st.Codec, ppl, ta)
	return st
}
