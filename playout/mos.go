package playout

import "github.com/silentmon/silentmon/internal/quality"

// MOS estimates the mean opinion score of a stream with codec c, packet
// loss (lost and discarded by the jitter buffer) ppl in percent, and
// one-way delay ta in ms, with the E-model of internal/quality (ITU-T
// G.107, codec impairments from G.113 Appendix I).
func MOS(c Codec, ppl, ta float64) float64 {
	return quality.MOS(c.String(), ppl, ta)
}

// stats returns the stream's counters with the MOS estimate. The delay
// counted is the one this side adds and can see: the jitter buffer's delay
// plus one packet plus the codec's look-ahead; the network path to the
// capture point is not visible and not counted.
func (s *stream) stats() StreamStats {
	st := s.st
	if st.Frames+st.Lost+st.Late == 0 {
		return st
	}
	ppl := 100 * float64(st.Lost+st.Late) / float64(st.Frames+st.Lost+st.Late)
	_, _, la := quality.Impairment(st.Codec.String())
	ta := st.TargetMs + float64(s.frame)*1000/SampleRate + la
	st.MOS = MOS(st.Codec, ppl, ta)
	return st
}
