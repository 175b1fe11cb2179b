package capture

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"
)

// FileOptions configures a file source. The zero value reads as fast as
// possible.
type FileOptions struct {
	// Speed paces the replay: 1 replays at the recorded pace, 2 twice as
	// fast; 0 reads as fast as possible.
	Speed float64
	// Done, if not nil, interrupts a paced wait when it is closed; the
	// frame that was waiting is then returned at once.
	Done <-chan struct{}
}

// FileSource reads a pcap file (microsecond or nanosecond timestamps) or a
// pcapng file. It is not safe for concurrent use.
type FileSource struct {
	c     io.Closer
	r     gopacket.ZeroCopyPacketDataSource // a pcapgo pcap or pcapng reader
	lt    LinkType
	opts  FileOptions
	first time.Time // capture time of the first frame
	start time.Time // wall time the first frame was delivered
	buf   []byte
	lens  []int
	now   func() time.Time
	err   error // a read error met after frames already returned, for the next call
}

var _ Source = (*FileSource)(nil)

// OpenFile opens a pcap or pcapng capture.
func OpenFile(path string, opts FileOptions) (*FileSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open capture %q: %w", path, err)
	}
	s, err := NewFileSource(f, opts)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("capture %q: %w", path, err)
	}
	s.c = f
	return s, nil
}

// NewFileSource reads a pcap or pcapng capture from r. Close does not
// close r.
func NewFileSource(r io.Reader, opts FileOptions) (*FileSource, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("too short for a pcap or pcapng file: %w", ErrNotCapture)
	}
	s := &FileSource{opts: opts, now: time.Now}
	if bytes.Equal(magic, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		r, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, fmt.Errorf("not a valid pcapng file (%v): %w", err, ErrNotCapture)
		}
		s.r, s.lt = r, LinkType(r.LinkType())
	} else {
		r, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("not a valid pcap file (%v): %w", err, ErrNotCapture)
		}
		s.r, s.lt = r, LinkType(r.LinkType())
	}
	return s, nil
}

// LinkType returns the file's link type.
func (s *FileSource) LinkType() LinkType { return s.lt }

// ReadBatch implements Source. With pacing, it returns at most one frame
// per call, when that frame's time has come. A frame cut short at the end
// of the file ends it like io.EOF; any other read error is returned
// wrapped.
func (s *FileSource) ReadBatch(frames [][]byte, infos []Info) (int, error) {
	max := min(len(frames), len(infos))
	if max == 0 {
		return 0, nil
	}
	if s.opts.Speed > 0 {
		max = 1
	}
	// Zero-copy readers reuse their buffer, so frames are copied into one
	// batch buffer owned by the source.
	s.buf = s.buf[:0]
	s.lens = s.lens[:0]
	if err := s.err; err != nil {
		return 0, err // sticky: the reader is past the bad record
	}
	n := 0
	for n < max {
		d, ci, err := s.r.ZeroCopyReadPacketData()
		if err != nil {
			if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.EOF
			} else {
				err = fmt.Errorf("read capture: %w", err)
			}
			if n > 0 {
				s.err = err // reported on the next call
				break
			}
			s.err = err
			return 0, err
		}
		if s.opts.Speed > 0 {
			s.wait(ci.Timestamp)
		}
		s.buf = append(s.buf, d...)
		s.lens = append(s.lens, len(d))
		infos[n] = Info{Timestamp: ci.Timestamp, CaptureLength: len(d), Length: ci.Length, InterfaceIndex: ci.InterfaceIndex}
		n++
	}
	off := 0
	for i := 0; i < n; i++ {
		l := s.lens[i]
		frames[i] = s.buf[off : off+l : off+l]
		off += l
	}
	return n, nil
}

func (s *FileSource) wait(ts time.Time) {
	if s.first.IsZero() {
		s.first, s.start = ts, s.now()
		return
	}
	due := s.start.Add(time.Duration(float64(ts.Sub(s.first)) / s.opts.Speed))
	d := due.Sub(s.now())
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.opts.Done:
	}
}

// Close closes the file opened by OpenFile.
func (s *FileSource) Close() error {
	if s.c == nil {
		return nil
	}
	return s.c.Close()
}
