package gen

import (
	"encoding/binary"
	"fmt"
	"io"
)

// ReadWAV reads a RIFF WAVE file of 16-bit PCM, mono, 8000 Hz, and returns
// its samples. Other formats return an error wrapping ErrBadWAV that names
// what was found.
func ReadWAV(r io.Reader) ([]int16, error) {
	pcm, _, err := readWAV(r, false)
	return pcm, err
}

// ReadWAVRate is ReadWAV for the rates a wideband session is written at:
// 16-bit PCM, mono, at 8000, 16000 or 48000 Hz. It returns the samples
// and the rate.
func ReadWAVRate(r io.Reader) ([]int16, int, error) {
	return readWAV(r, true)
}

func readWAV(r io.Reader, wideband bool) ([]int16, int, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, 0, fmt.Errorf("%w: reading RIFF header: %v", ErrBadWAV, err)
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return nil, 0, fmt.Errorf("%w: no RIFF/WAVE header", ErrBadWAV)
	}
	var haveFmt bool
	var fileRate int
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return nil, 0, fmt.Errorf("%w: no data chunk: %v", ErrBadWAV, err)
		}
		id, size := string(ch[0:4]), binary.LittleEndian.Uint32(ch[4:8])
		switch id {
		case "fmt ":
			if size < 16 || size > 1<<10 {
				return nil, 0, fmt.Errorf("%w: fmt chunk of %d bytes", ErrBadWAV, size)
			}
			b := make([]byte, size+size&1)
			if _, err := io.ReadFull(r, b); err != nil {
				return nil, 0, fmt.Errorf("%w: reading fmt chunk: %v", ErrBadWAV, err)
			}
			format := binary.LittleEndian.Uint16(b[0:])
			channels := binary.LittleEndian.Uint16(b[2:])
			rate := binary.LittleEndian.Uint32(b[4:])
			bits := binary.LittleEndian.Uint16(b[14:])
			want := "8000 Hz"
			rateOK := rate == SampleRate
			if wideband {
				want = "8000, 16000 or 48000 Hz"
				rateOK = rate == 8000 || rate == 16000 || rate == 48000
			}
			if (format != 1 && format != 0xfffe) || channels != 1 || !rateOK || bits != 16 {
				return nil, 0, fmt.Errorf("%w: format %d, %d channels, %d Hz, %d bits (want PCM, mono, %s, 16 bits)",
					ErrBadWAV, format, channels, rate, bits, want)
			}
			fileRate = int(rate)
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, 0, fmt.Errorf("%w: data chunk before fmt chunk", ErrBadWAV)
			}
			b, err := io.ReadAll(io.LimitReader(r, int64(size)))
			if err != nil {
				return nil, 0, fmt.Errorf("%w: reading data: %v", ErrBadWAV, err)
			}
			pcm := make([]int16, len(b)/2)
			for i := range pcm {
				pcm[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
			}
			return pcm, fileRate, nil
		default:
			if _, err := io.CopyN(io.Discard, r, int64(size)+int64(size&1)); err != nil {
				return nil, 0, fmt.Errorf("%w: skipping %q chunk: %v", ErrBadWAV, id, err)
			}
		}
	}
}
