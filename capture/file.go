package capture

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
)

// FileOptions configures a file source. The zero value reads as fast as
// possible.
type FileOptions struct {
	// Speed paces the replay: 1 replays at the recorded pace, 2 twice as
	// fast; 0 reads as fast as possible.
	Speed float64
	// Context, if not nil, interrupts a paced wait.
	Context context.Context
}

// FileSource reads a pcap or pcapng file. It is not safe for concurrent use.
type FileSource struct {
	f     *os.File
	next  func() ([]byte, time.Time, int, int, error)
	lt    LinkType
	opts  FileOptions
	first time.Time // capture time of the first frame
	start time.Time // wall time the first frame was delivered
	buf   []byte
}

var _ Source = (*FileSource)(nil)

// OpenFile opens a pcap or pcapng capture.
func OpenFile(path string, opts FileOptions) (*FileSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open capture %q: %w", path, err)
	}
	br := bufio.NewReaderSize(f, 1<<16)
	magic, err := br.Peek(4)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("capture %q is not a pcap or pcapng file: %w", path, ErrNotCapture)
	}
	s := &FileSource{f: f, opts: opts}
	if bytes.Equal(magic, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		r, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("capture %q is not a valid pcapng file: %v: %w", path, err, ErrNotCapture)
		}
		s.lt = LinkType(r.LinkType())
		s.next = func() ([]byte, time.Time, int, int, error) {
			d, ci, err := r.ZeroCopyReadPacketData()
			return d, ci.Timestamp, ci.Length, ci.InterfaceIndex, err
		}
	} else {
		r, err := pcapgo.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("capture %q is not a valid pcap file: %v: %w", path, err, ErrNotCapture)
		}
		s.lt = LinkType(r.LinkType())
		s.next = func() ([]byte, time.Time, int, int, error) {
			d, ci, err := r.ZeroCopyReadPacketData()
			return d, ci.Timestamp, ci.Length, ci.InterfaceIndex, err
		}
	}
	return s, nil
}

// LinkType returns the file's link type.
func (s *FileSource) LinkType() LinkType { return s.lt }

// ReadBatch implements Source. With pacing, it returns at most one frame
// per call, when that frame's time has come.
func (s *FileSource) ReadBatch(frames [][]byte, infos []Info) (int, error) {
	if len(frames) == 0 {
		return 0, nil
	}
	max := len(frames)
	if s.opts.Speed > 0 {
		max = 1
	}
	// Zero-copy readers reuse their buffer, so frames are copied into one
	// batch buffer owned by the source.
	s.buf = s.buf[:0]
	var lens [64]int
	if max > len(lens) {
		max = len(lens)
	}
	n := 0
	for n < max {
		d, ts, length, ifidx, err := s.next()
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			if n == 0 {
				return 0, io.EOF
			}
			break
		}
		if err != nil {
			if n == 0 {
				return 0, fmt.Errorf("read capture: %w", err)
			}
			break
		}
		if s.opts.Speed > 0 {
			s.wait(ts)
		}
		s.buf = append(s.buf, d...)
		lens[n] = len(d)
		infos[n] = Info{Timestamp: ts, CaptureLength: len(d), Length: length, InterfaceIndex: ifidx}
		n++
	}
	off := 0
	for i := 0; i < n; i++ {
		frames[i] = s.buf[off : off+lens[i] : off+lens[i]]
		off += lens[i]
	}
	return n, nil
}

func (s *FileSource) wait(ts time.Time) {
	if s.first.IsZero() {
		s.first, s.start = ts, time.Now()
		return
	}
	due := s.start.Add(time.Duration(float64(ts.Sub(s.first)) / s.opts.Speed))
	d := time.Until(due)
	if d <= 0 {
		return
	}
	ctx := s.opts.Context
	if ctx == nil {
		time.Sleep(d)
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Close closes the file.
func (s *FileSource) Close() error { return s.f.Close() }
