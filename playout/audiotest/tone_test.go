package audiotest_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/zaf/g711"

	"github.com/silentmon/silentmon/playout/audiotest"
)

func TestToneLevel(t *testing.T) {
	sine := func(n int, hz, amp float64) []int16 {
		s := make([]int16, n)
		for i := range s {
			s[i] = int16(math.Round(amp * math.Sin(2*math.Pi*hz*float64(i)/8000)))
		}
		return s
	}
	mix := func(a, b []int16) []int16 {
		for i := range a {
			a[i] += b[i]
		}
		return a
	}
	tests := []struct {
		name     string
		pcm      []int16
		hz       float64
		min, max float64
	}{
		{"the tone itself", sine(800, 1000, 8000), 1000, 7990, 8010},
		{"a quiet tone", sine(800, 440, 80), 440, 79, 81},
		{"another tone", sine(800, 1000, 8000), 600, 0, 1},
		{"one of two tones", mix(sine(800, 600, 3000), sine(800, 1000, 5000)), 600, 2990, 3010},
		{"silence", make([]int16, 800), 1000, 0, 0},
		{"nothing", nil, 1000, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := audiotest.ToneLevel(tt.pcm, tt.hz); got < tt.min || got > tt.max || math.IsNaN(got) {
				t.Errorf("ToneLevel(%v Hz) = %.2f, want within [%v, %v]", tt.hz, got, tt.min, tt.max)
			}
		})
	}
}

func TestAlign(t *testing.T) {
	want := []int16{0, 0, 5, -3, 0, 7}
	tests := []struct {
		name string
		got  []int16
		off  int
	}{
		{"same", []int16{0, 0, 5, -3, 0, 7}, 0},
		{"later", []int16{0, 0, 0, 0, 5, -3, 0, 7, 0}, 2},
		{"later, cut short", []int16{0, 0, 0, 0, 5, -3, 0}, -1},
		{"earlier than the silence before want", []int16{0, 5, -3, 0, 7, 0}, -1},
		{"silent", make([]int16, 10), -1},
		{"empty", nil, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if off := audiotest.Align(tt.got, want); off != tt.off {
				t.Errorf("Align(%v, %v) = %d, want %d", tt.got, want, off, tt.off)
			}
		})
	}
}

func TestULawTone(t *testing.T) {
	whole := audiotest.ULawTone(1000, 0, 800)
	if parts := append(audiotest.ULawTone(1000, 0, 300), audiotest.ULawTone(1000, 300, 500)...); !bytes.Equal(parts, whole) {
		t.Error("a tone written in two parts differs from the tone written at once")
	}
	lin := g711.DecodeUlaw(whole)
	pcm := make([]int16, len(lin)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(lin[2*i:]))
	}
	if len(pcm) != 800 {
		t.Fatalf("%d samples, want 800", len(pcm))
	}
	if l := audiotest.ToneLevel(pcm, 1000); l < 7800 || l > 8200 {
		t.Errorf("level %.0f at 1000 Hz, want about 8000", l)
	}
	if l := audiotest.ToneLevel(pcm, 600); l > 100 {
		t.Errorf("level %.0f at 600 Hz, want about 0", l)
	}
}
