// Package quality estimates the listening quality of a voice stream with
// the E-model of ITU-T G.107: a transmission rating R from the codec, the
// packet loss and the one-way delay, and the mean opinion score (MOS) that
// R predicts.
//
// Everything except the codec, the loss and the delay takes the E-model's
// default values (G.107 Table 3), so that R starts from 93.2:
//
//	R      = 93.2 − Id − Ie,eff
//	Id     = 0.024·Ta + 0.11·(Ta − 177.3)·H(Ta − 177.3)
//	Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl/BurstR + Bpl)
//	MOS    = 1 + 0.035·R + R·(R − 60)·(100 − R)·7·10⁻⁶   (0 < R < 100)
//
// Id is the usual simplification of the delay impairment (Cole and
// Rosenbluth), BurstR = 1 (random loss). Ie and Bpl per codec come from
// ITU-T G.113 Appendix I: G.711 with packet loss concealment Ie = 0,
// Bpl = 25.1; G.729A (and with VAD, G.729AB) Ie = 11, Bpl = 19.0.
//
// The package is pure Go, has no state and is safe for concurrent use.
package quality

import (
	"math"
	"strings"
)

// Codec impairments of G.113 Appendix I.
const (
	g711Ie, g711Bpl = 0, 25.1
	g729Ie, g729Bpl = 11, 19.0
	// g729LookaheadMs is G.729's look-ahead, which adds to the delay.
	g729LookaheadMs = 5
)

// codecKey normalises a codec name: upper case, without dots, dashes and
// spaces ("G.729a" → "G729A", "pcmu" → "PCMU").
func codecKey(name string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '-', ' ', '_':
			return -1
		}
		return r
	}, strings.ToUpper(name))
}

// KnownCodec reports whether Impairment has G.113 values for the codec
// name, rather than falling back to G.711's.
func KnownCodec(name string) bool {
	switch codecKey(name) {
	case "PCMU", "PCMA", "G711", "G711U", "G711A", "G729", "G729A", "G729B", "G729AB":
		return true
	}
	return false
}

// Impairment returns the equipment impairment factor Ie, the packet-loss
// robustness factor Bpl and the codec's look-ahead in ms for a codec by
// its RTP encoding name: "PCMU" and "PCMA" (G.711: 0, 25.1, 0), "G729"
// (G.729, G.729A, G.729AB: 11, 19.0, 5). Case, dots and dashes do not
// matter ("g.729a" is G729). A codec the table does not hold gets G.711's
// values; KnownCodec says which ones it holds.
func Impairment(codecName string) (ie, bpl, lookaheadMs float64) {
	switch codecKey(codecName) {
	case "G729", "G729A", "G729B", "G729AB":
		return g729Ie, g729Bpl, g729LookaheadMs
	}
	return g711Ie, g711Bpl, 0
}

// clean replaces NaN and negative values by 0 and caps v at hi.
func clean(v, hi float64) float64 {
	if !(v > 0) { // NaN too
		return 0
	}
	return math.Min(v, hi)
}

// RFactor returns the E-model's R for a codec of equipment impairment ie
// and loss robustness bpl, packet loss ppl in percent (0 to 100) and
// one-way delay delayMs in ms. NaN and negative inputs count as 0, loss
// above 100 % as 100 %, and ie and bpl are taken as at least 0 and 1.
func RFactor(ie, bpl, ppl, delayMs float64) float64 {
	ie = clean(ie, 95)
	bpl = math.Max(clean(bpl, math.MaxFloat64), 1)
	ppl = clean(ppl, 100)
	ta := clean(delayMs, math.MaxFloat64)
	id := 0.024 * ta
	if ta > 177.3 {
		id += 0.11 * (ta - 177.3)
	}
	ieff := ie + (95-ie)*ppl/(ppl+bpl)
	return 93.2 - id - ieff
}

// MOSFromR converts a rating R to a MOS (G.107 Annex B): 1 at R ≤ 0, 4.5
// at R ≥ 100. The polynomial dips below 1 for R under 6.5; the MOS stays
// at 1 there. A NaN R gives 1.
func MOSFromR(r float64) float64 {
	switch {
	case !(r > 0): // NaN too
		return 1
	case r >= 100:
		return 4.5
	}
	return math.Max(1, 1+0.035*r+r*(r-60)*(100-r)*7e-6)
}

// R returns the E-model's R for the codec named codecName (see Impairment),
// packet loss ppl in percent and one-way delay delayMs in ms, the codec's
// look-ahead not included.
func R(codecName string, ppl, delayMs float64) float64 {
	ie, bpl, _ := Impairment(codecName)
	return RFactor(ie, bpl, ppl, delayMs)
}

// MOS estimates the mean opinion score (1 to 4.5) of a stream of the codec
// named codecName (see Impairment), with packet loss ppl in percent and
// one-way delay delayMs in ms, the codec's look-ahead not included (add
// the third result of Impairment for a mouth-to-ear figure).
func MOS(codecName string, ppl, delayMs float64) float64 {
	return MOSFromR(R(codecName, ppl, delayMs))
}

// StreamMOS is MOS for a stream seen on the wire, where the one-way delay
// is not visible: it counts the delay that a receiver adds, a jitter
// buffer of packet time ptimeMs plus twice the interarrival jitter
// jitterMs (RFC 3550), and the codec's look-ahead. The network path's own
// delay is not counted, so the figure is an upper bound for the call.
func StreamMOS(codecName string, ppl, jitterMs, ptimeMs float64) float64 {
	_, _, la := Impairment(codecName)
	return MOS(codecName, ppl, clean(ptimeMs, 1000)+2*clean(jitterMs, math.MaxFloat64)+la)
}
