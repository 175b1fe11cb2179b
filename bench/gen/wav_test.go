package gen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// wavBytes builds a WAV file with the given format fields and samples, and
// an extra chunk before the data to exercise chunk skipping.
func wavBytes(format, channels uint16, rate uint32, bits uint16, pcm []int16) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(4+24+10+8+2*len(pcm)))
	b.WriteString("WAVEfmt ")
	binary.Write(&b, binary.LittleEndian, uint32(16))
	binary.Write(&b, binary.LittleEndian, format)
	binary.Write(&b, binary.LittleEndian, channels)
	binary.Write(&b, binary.LittleEndian, rate)
	binary.Write(&b, binary.LittleEndian, rate*uint32(channels)*uint32(bits)/8)
	binary.Write(&b, binary.LittleEndian, channels*bits/8)
	binary.Write(&b, binary.LittleEndian, bits)
	b.WriteString("LIST")
	binary.Write(&b, binary.LittleEndian, uint32(1))
	b.WriteString("x\x00") // odd chunk, padded
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(2*len(pcm)))
	binary.Write(&b, binary.LittleEndian, pcm)
	return b.Bytes()
}

func TestReadWAV(t *testing.T) {
	pcm := []int16{0, 1, -1, 32767, -32768, 1234}
	got, err := ReadWAV(bytes.NewReader(wavBytes(1, 1, 8000, 16, pcm)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(pcm) {
		t.Fatalf("%d samples, want %d", len(got), len(pcm))
	}
	for i := range pcm {
		if got[i] != pcm[i] {
			t.Fatalf("sample %d = %d, want %d", i, got[i], pcm[i])
		}
	}
	bad := []struct {
		name string
		b    []byte
	}{
		{"stereo", wavBytes(1, 2, 8000, 16, pcm)},
		{"16 kHz", wavBytes(1, 1, 16000, 16, pcm)},
		{"8 bit", wavBytes(1, 1, 8000, 8, pcm)},
		{"float", wavBytes(3, 1, 8000, 16, pcm)},
		{"not riff", []byte("RIFX\x00\x00\x00\x00WAVE")},
		{"empty", nil},
		{"no data", wavBytes(1, 1, 8000, 16, nil)[:36]},
	}
	for _, tt := range bad {
		if _, err := ReadWAV(bytes.NewReader(tt.b)); !errors.Is(err, ErrBadWAV) {
			t.Errorf("%s: err %v, want ErrBadWAV", tt.name, err)
		}
	}
}

func FuzzReadWAV(f *testing.F) {
	f.Add(wavBytes(1, 1, 8000, 16, []int16{1, 2, 3}))
	f.Add(wavBytes(1, 2, 44100, 16, []int16{1, 2, 3, 4}))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEdata\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pcm, err := ReadWAV(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrBadWAV) {
				t.Fatalf("error %v does not wrap ErrBadWAV", err)
			}
			return
		}
		if 2*len(pcm) > len(b) {
			t.Fatalf("%d samples from %d bytes", len(pcm), len(b))
		}
	})
}
