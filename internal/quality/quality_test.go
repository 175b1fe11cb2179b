package quality

import (
	"math"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// TestMOSFromR checks G.107 Annex B against published pairs: R 93.2 (the
// default ratings) gives 4.41; the user-satisfaction bands of G.107 Table
// B.1 start at R 90, 80, 70, 60 and 50, MOS 4.34, 4.03, 3.60, 3.10, 2.58
// (to 0.01: the table rounds).
func TestMOSFromR(t *testing.T) {
	tests := []struct {
		r, mos float64
	}{
		{93.2, 4.41}, {90, 4.34}, {80, 4.03}, {70, 3.60}, {60, 3.10}, {50, 2.58},
		{100, 4.5}, {120, 4.5}, {0, 1}, {-5, 1}, {math.NaN(), 1},
	}
	for _, tt := range tests {
		if got := MOSFromR(tt.r); !near(got, tt.mos, 0.01) {
			t.Errorf("MOSFromR(%v) = %.4f, want %.2f", tt.r, got, tt.mos)
		}
	}
}

func TestImpairment(t *testing.T) {
	tests := []struct {
		name          string
		ie, bpl, look float64
		known         bool
	}{
		{"PCMU", 0, 25.1, 0, true},
		{"PCMA", 0, 25.1, 0, true},
		{"G729", 11, 19.0, 5, true},
		{"g.729a", 11, 19.0, 5, true},
		{"G729AB", 11, 19.0, 5, true},
		{"G722", 0, 25.1, 0, false},
		{"dynamic-96", 0, 25.1, 0, false},
		{"", 0, 25.1, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ie, bpl, look := Impairment(tt.name)
			if ie != tt.ie || bpl != tt.bpl || look != tt.look || KnownCodec(tt.name) != tt.known {
				t.Errorf("Impairment = %v, %v, %v, known %v; want %v, %v, %v, %v", ie, bpl, look, KnownCodec(tt.name), tt.ie, tt.bpl, tt.look, tt.known)
			}
		})
	}
}

// TestMOS checks R, worked out by hand from the formulas of G.107 with
// G.113 Appendix I's Ie and Bpl, and the MOS it gives, for codecs, loss and
// delay.
func TestMOS(t *testing.T) {
	tests := []struct {
		name       string
		codec      string
		ppl, delay float64
		r, mos     float64
	}{
		{"G.711 clean, no delay", "PCMU", 0, 0, 93.2, 4.41},
		{"G.729A clean, no delay", "G729", 0, 0, 82.2, 4.10},
		{"G.711 1% loss", "PCMA", 1, 0, 93.2 - 95.0/26.1, 4.33},
		{"G.711 5% loss", "PCMU", 5, 0, 93.2 - 95*5/30.1, 3.92},
		{"G.729A 2% loss", "G729", 2, 0, 93.2 - (11 + 84*2/21.0), 3.79},
		{"G.711 150 ms", "PCMU", 0, 150, 93.2 - 3.6, 4.33},
		{"G.711 at the knee 177.3 ms", "PCMU", 0, 177.3, 93.2 - 0.024*177.3, 4.31},
		{"G.711 400 ms", "PCMU", 0, 400, 93.2 - 9.6 - 0.11*222.7, 3.05},
		{"G.711 all lost", "PCMU", 100, 0, 93.2 - 95*100/125.1, 1.18},
		{"bad input counts as 0", "PCMU", math.NaN(), -20, 93.2, 4.41},
		{"loss above 100%", "PCMU", 300, 0, 93.2 - 95*100/125.1, 1.18},
		{"endless delay", "PCMU", 0, math.Inf(1), -math.MaxFloat64, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := R(tt.codec, tt.ppl, tt.delay)
			if !near(r, tt.r, 1e-9) && !(tt.r < -1e300 && r < -1e300) {
				t.Errorf("R = %.4f, want %.4f", r, tt.r)
			}
			if m := MOS(tt.codec, tt.ppl, tt.delay); !near(m, tt.mos, 0.005) {
				t.Errorf("MOS = %.4f, want %.2f", m, tt.mos)
			}
		})
	}
}

func TestStreamMOS(t *testing.T) {
	tests := []struct {
		name               string
		codec              string
		ppl, jitter, ptime float64
		wantDelay          float64
	}{
		{"G.711 20 ms, jitter 5 ms", "PCMU", 0, 5, 20, 30},
		{"G.729 20 ms, jitter 2 ms, 1% loss", "G729", 1, 2, 20, 29},
		{"bad jitter and ptime", "PCMA", 0, math.NaN(), -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := StreamMOS(tt.codec, tt.ppl, tt.jitter, tt.ptime), MOS(tt.codec, tt.ppl, tt.wantDelay)
			if got != want {
				t.Errorf("StreamMOS = %.4f, want MOS at %v ms = %.4f", got, tt.wantDelay, want)
			}
		})
	}
}

// TestMOSRange checks that no input, however bad, leaves [1, 4.5].
func TestMOSRange(t *testing.T) {
	vals := []float64{math.NaN(), math.Inf(1), math.Inf(-1), -1, 0, 0.5, 3, 50, 100, 1e9}
	for _, ie := range vals {
		for _, ppl := range vals {
			for _, d := range vals {
				if m := MOSFromR(RFactor(ie, 19, ppl, d)); !(m >= 1 && m <= 4.5) {
					t.Fatalf("MOS(ie %v, ppl %v, delay %v) = %v", ie, ppl, d, m)
				}
			}
		}
	}
}
