package capture_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/capture/capturetest"
)

func sampleFrames(n int) ([][]byte, []time.Time) {
	frames := make([][]byte, n)
	times := make([]time.Time, n)
	for i := range frames {
		frames[i] = capturetest.Build(capturetest.Frame{RTP: rtp(uint16(i)), Payload: payload160[:i%160]})
		times[i] = goldenTime.Add(time.Duration(i) * 20 * time.Millisecond)
	}
	return frames, times
}

func TestFileSourceFormats(t *testing.T) {
	frames, times := sampleFrames(300)
	tests := []struct {
		name  string
		write func(io.Writer) error
		prec  time.Duration
	}{
		{"pcap microseconds", func(w io.Writer) error {
			return capturetest.WritePcap(w, capture.LinkEthernet, false, frames, times)
		}, time.Microsecond},
		{"pcap nanoseconds", func(w io.Writer) error {
			return capturetest.WritePcap(w, capture.LinkEthernet, true, frames, times)
		}, time.Nanosecond},
		{"pcapng", func(w io.Writer) error { return capturetest.WritePcapng(w, capture.LinkEthernet, frames, times) }, time.Nanosecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.write(&buf); err != nil {
				t.Fatal(err)
			}
			src, err := capture.NewFileSource(&buf, capture.FileOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if src.LinkType() != capture.LinkEthernet {
				t.Fatalf("link type %d", src.LinkType())
			}
			got := 0
			fb := make([][]byte, 64)
			ib := make([]capture.Info, 64)
			for {
				n, err := src.ReadBatch(fb, ib)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < n; i++ {
					if !bytes.Equal(fb[i], frames[got]) {
						t.Fatalf("frame %d differs", got)
					}
					if !ib[i].Timestamp.Equal(times[got].Truncate(tt.prec)) {
						t.Fatalf("frame %d at %v, want %v", got, ib[i].Timestamp, times[got].Truncate(tt.prec))
					}
					got++
				}
			}
			if got != len(frames) {
				t.Fatalf("read %d frames, want %d", got, len(frames))
			}
		})
	}
}

func TestFileSourceErrors(t *testing.T) {
	frames, times := sampleFrames(3)
	var good bytes.Buffer
	capturetest.WritePcap(&good, capture.LinkEthernet, false, frames, times)
	t.Run("not a capture", func(t *testing.T) {
		_, err := capture.NewFileSource(bytes.NewReader([]byte("hello, this is text\n")), capture.FileOptions{})
		if !errors.Is(err, capture.ErrNotCapture) {
			t.Fatalf("err %v, want ErrNotCapture", err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		_, err := capture.NewFileSource(bytes.NewReader(nil), capture.FileOptions{})
		if !errors.Is(err, capture.ErrNotCapture) {
			t.Fatalf("err %v, want ErrNotCapture", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := capture.OpenFile(filepath.Join(t.TempDir(), "nope.pcap"), capture.FileOptions{})
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err %v, want not exist", err)
		}
	})
	t.Run("bad record after good frames is reported, not taken for the end", func(t *testing.T) {
		b := append([]byte(nil), good.Bytes()...)
		// A fourth record whose captured length is far beyond the snap
		// length: the reader refuses it.
		b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0xff, 0xff, 0x7f, 0xf0, 0xff, 0xff, 0x7f)
		read := fileBatches(t, b)
		n, err := read()
		if n != 3 || err != nil {
			t.Fatalf("ReadBatch = %d, %v; want the 3 good frames", n, err)
		}
		for range 2 {
			if n, err := read(); n != 0 || err == nil || errors.Is(err, io.EOF) {
				t.Fatalf("ReadBatch after the bad record = %d, %v; want its error, not the end of the file", n, err)
			}
		}
	})
	t.Run("truncated last frame ends the file", func(t *testing.T) {
		b := good.Bytes()[:good.Len()-10]
		read := fileBatches(t, b)
		n, err := read()
		if n != 2 || err != nil {
			t.Fatalf("ReadBatch = %d, %v; want 2 whole frames", n, err)
		}
		if _, err := read(); err != io.EOF {
			t.Fatalf("err %v, want io.EOF", err)
		}
	})
}

// TestFileSourcePacing replays 3 frames 20 ms apart at the recorded pace and
// at double speed; closing Done ends the waits at once.
func TestFileSourcePacing(t *testing.T) {
	frames, times := sampleFrames(3)
	var buf bytes.Buffer
	capturetest.WritePcap(&buf, capture.LinkEthernet, false, frames, times)
	for _, speed := range []float64{1, 2} {
		t.Run(fmt.Sprint("speed ", speed), func(t *testing.T) {
			src, _ := capture.NewFileSource(bytes.NewReader(buf.Bytes()), capture.FileOptions{Speed: speed})
			start := time.Now()
			fb := make([][]byte, 8)
			ib := make([]capture.Info, 8)
			for i := 0; i < 3; i++ {
				if n, err := src.ReadBatch(fb, ib); n != 1 || err != nil {
					t.Fatalf("ReadBatch = %d, %v; want 1 frame per call when paced", n, err)
				}
			}
			if el, min := time.Since(start), time.Duration(40/speed)*time.Millisecond; el < min {
				t.Fatalf("3 frames 20 ms apart at speed %v took %v, want at least %v", speed, el, min)
			}
		})
	}
	t.Run("done", func(t *testing.T) {
		done := make(chan struct{})
		close(done)
		frames := [][]byte{frames[0], frames[1]}
		times := []time.Time{goldenTime, goldenTime.Add(time.Hour)}
		var buf bytes.Buffer
		capturetest.WritePcap(&buf, capture.LinkEthernet, false, frames, times)
		src, _ := capture.NewFileSource(&buf, capture.FileOptions{Speed: 1, Done: done})
		fb := make([][]byte, 8)
		ib := make([]capture.Info, 8)
		src.ReadBatch(fb, ib)
		if n, err := src.ReadBatch(fb, ib); n != 1 || err != nil {
			t.Fatalf("ReadBatch = %d, %v", n, err)
		}
	})
}

func FuzzFileSource(f *testing.F) {
	frames, times := sampleFrames(3)
	var a, b bytes.Buffer
	capturetest.WritePcap(&a, capture.LinkEthernet, true, frames, times)
	capturetest.WritePcapng(&b, capture.LinkSLL2, frames, times)
	f.Add(a.Bytes())
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := capture.NewFileSource(bytes.NewReader(data), capture.FileOptions{})
		if err != nil {
			if !errors.Is(err, capture.ErrNotCapture) {
				t.Fatalf("open error %v does not wrap ErrNotCapture", err)
			}
			return
		}
		fb := make([][]byte, 16)
		ib := make([]capture.Info, 16)
		var p capture.Packet
		for i := 0; i < 1000; i++ {
			n, err := src.ReadBatch(fb, ib)
			if err != nil {
				return
			}
			for j := 0; j < n; j++ {
				p.Decode(fb[j], src.LinkType(), &ib[j])
			}
		}
	})
}

// TestWriteFuzzCorpus writes the seed corpora under testdata/fuzz with
// -update, so that plain `go test` replays them.
func TestWriteFuzzCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata/fuzz")
	}
	// write stores one corpus entry of the fuzz target's arguments.
	write := func(target, name, args string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte("go test fuzz v1\n"+args), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, g := range goldens {
		write("FuzzDecode", fmt.Sprintf("golden%02d", i),
			fmt.Sprintf("[]byte(%s)\nuint16(%d)\nbool(%v)\nuint16(%d)\n", strconv.Quote(string(g.build())), g.linkType(), i%2 == 0, 5<<13|85))
	}
	for i, s := range capturetest.Services(1) {
		write("FuzzDecode", fmt.Sprintf("service%02d", i),
			fmt.Sprintf("[]byte(%s)\nuint16(%d)\nbool(%v)\nuint16(%d)\n", strconv.Quote(string(capturetest.Build(s.Frame()))), capture.LinkEthernet, i%2 == 0, 5<<13|85))
	}
	for _, name := range []string{"ipv4_rtp.pcap", "qinq_rtp.pcap", "sll2_rtp.pcap", "truncated_ipv4.pcap"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		write("FuzzFileSource", name, fmt.Sprintf("[]byte(%s)\n", strconv.Quote(string(b))))
	}
	frames, times := sampleFrames(4)
	var ng bytes.Buffer
	if err := capturetest.WritePcapng(&ng, capture.LinkEthernet, frames, times); err != nil {
		t.Fatal(err)
	}
	write("FuzzFileSource", "four.pcapng", fmt.Sprintf("[]byte(%s)\n", strconv.Quote(ng.String())))
}

// fileBatches opens b as a capture file and returns a function that reads
// its next batch of at most 8 frames.
func fileBatches(t *testing.T, b []byte) func() (int, error) {
	t.Helper()
	src, err := capture.NewFileSource(bytes.NewReader(b), capture.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fb := make([][]byte, 8)
	ib := make([]capture.Info, 8)
	return func() (int, error) { return src.ReadBatch(fb, ib) }
}
