package supervisor

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/silentmon/silentmon/playout"
)

// maxIDLen bounds session ids and the agent ids used in file names.
const maxIDLen = 64

// validID reports whether id may name a session: 1 to 64 bytes of
// A-Z a-z 0-9 . _ -, neither "." nor "..".
func validID[T string | []byte](id T) bool {
	if len(id) == 0 || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !idByte(id[i]) {
			return false
		}
	}
	s := string(id)
	return s != "." && s != ".."
}

func idByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// unknownAgent stands for an agent the capture server did not name.
const unknownAgent = "unknown"

// pathAgent makes an agent id safe for a file name: bytes outside the id
// set become '_', it is cut to 64 bytes, and "", "." or ".." become
// "unknown".
func pathAgent(agent string) string {
	if len(agent) > maxIDLen {
		agent = agent[:maxIDLen]
	}
	b := []byte(agent)
	for i, c := range b {
		if !idByte(c) {
			b[i] = '_'
		}
	}
	if s := string(b); validID(s) {
		return s
	}
	return unknownAgent
}

// namer turns a wav:PATH spec into one file name per session.
type namer struct {
	dir, file string // file may hold {session} and {agent}
	template  bool
	plainUsed bool // guarded by the Supervisor's mu
}

func newNamer(path string) (*namer, error) {
	dir, file := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if file == "" {
		return nil, fmt.Errorf("output %q names a directory, not a file: %w", "wav:"+path, ErrBadOutput)
	}
	if strings.ContainsAny(dir, "{}") {
		return nil, fmt.Errorf("output %q: {session} and {agent} may only be used in the file name, not in the directory: %w", "wav:"+path, ErrBadOutput)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("output %q: directory %s: %w", "wav:"+path, dir, errors.Join(ErrBadOutput, err))
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("output %q: %s is not a directory: %w", "wav:"+path, dir, ErrBadOutput)
	}
	return &namer{dir: dir, file: file,
		template: strings.Contains(file, "{session}") || strings.Contains(file, "{agent}")}, nil
}

// name returns the file name for a session before any collision suffix.
// id must be valid and agent made safe by pathAgent.
func (n *namer) name(id, agent string) string {
	if n.template {
		f := strings.ReplaceAll(n.file, "{session}", id)
		return filepath.Join(n.dir, strings.ReplaceAll(f, "{agent}", agent))
	}
	if !n.plainUsed {
		n.plainUsed = true
		return filepath.Join(n.dir, n.file)
	}
	return filepath.Join(n.dir, insertSuffix(n.file, "-"+id))
}

// insertSuffix puts suffix before the extension of name.
func insertSuffix(name, suffix string) string {
	ext := filepath.Ext(name)
	if ext == name { // ".wav": a name that is only an extension
		ext = ""
	}
	return name[:len(name)-len(ext)] + suffix + ext
}

// maxCollisions bounds the numbered names tried for one session.
const maxCollisions = 1000

// createNew creates path, or the first of path-1, path-2, ... (before the
// extension) that does not exist, with O_EXCL and mode 0600: an existing
// file (or symbolic link) is never opened. It returns the file and its
// name.
func createNew(path string) (*os.File, string, error) {
	dir, file := filepath.Split(path)
	for i := 0; i < maxCollisions; i++ {
		p := path
		if i > 0 {
			p = filepath.Join(dir, insertSuffix(file, "-"+strconv.Itoa(i)))
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			return f, p, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, "", err
		}
	}
	return nil, "", fmt.Errorf("%s and %d numbered variants exist", path, maxCollisions-1)
}

// wavSink writes a 16-bit PCM WAV file at 8 kHz to a file it was given
// (playout.CreateWAV truncates an existing file, which a session's output
// must never do). The header's sizes are brought up to date every second
// of audio and at Close. It is not safe for concurrent use (its Player's
// goroutine writes it).
type wavSink struct {
	f        *os.File
	w        *bufio.Writer
	ch       int
	frames   int64
	sinceHdr int64
	buf      []byte
	err      error
	closed   bool
}

var _ playout.Sink = (*wavSink)(nil)

const wavHeaderLen = 44

func newWAVSink(f *os.File, channels int) (*wavSink, error) {
	s := &wavSink{f: f, w: bufio.NewWriterSize(f, 16<<10), ch: channels, buf: make([]byte, 0, 4096)}
	if _, err := f.Write(wavHeader(channels, 0)); err != nil {
		return nil, fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return s, nil
}

func wavHeader(channels int, dataBytes uint32) []byte {
	h := make([]byte, wavHeaderLen)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], 36+dataBytes)
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1) // PCM
	binary.LittleEndian.PutUint16(h[22:], uint16(channels))
	binary.LittleEndian.PutUint32(h[24:], playout.SampleRate)
	binary.LittleEndian.PutUint32(h[28:], playout.SampleRate*uint32(channels)*2)
	binary.LittleEndian.PutUint16(h[32:], uint16(channels)*2)
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], dataBytes)
	return h
}

func (s *wavSink) Write(p []int16) error {
	if s.closed {
		return playout.ErrClosed
	}
	if s.err != nil {
		return s.err
	}
	for len(p) > 0 {
		n := min(len(p), cap(s.buf)/2)
		b := s.buf[:2*n]
		for i, v := range p[:n] {
			binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
		}
		if _, err := s.w.Write(b); err != nil {
			s.err = fmt.Errorf("write %s: %w", s.f.Name(), err)
			return s.err
		}
		p = p[n:]
		s.frames += int64(n / s.ch)
		s.sinceHdr += int64(n / s.ch)
	}
	if s.sinceHdr >= playout.SampleRate {
		s.sinceHdr = 0
		return s.sync()
	}
	return nil
}

func (s *wavSink) sync() error {
	if err := s.w.Flush(); err != nil {
		s.err = fmt.Errorf("write %s: %w", s.f.Name(), err)
		return s.err
	}
	if _, err := s.f.WriteAt(wavHeader(s.ch, uint32(s.frames)*uint32(s.ch)*2), 0); err != nil {
		s.err = fmt.Errorf("write %s: %w", s.f.Name(), err)
		return s.err
	}
	return nil
}

func (s *wavSink) Channels() int    { return s.ch }
func (s *wavSink) Seconds() float64 { return float64(s.frames) / playout.SampleRate }

// Close writes the final header and closes the file.
func (s *wavSink) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.sync()
	if cerr := s.f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}
