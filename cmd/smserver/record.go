package main

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/filter"
)

// recorders writes the packets of sessions started with --record to one
// pcap file per session, for evidence and later replay. The set of open
// recorders is published atomically; each recorder serialises its own
// writes (several capture workers may feed one session).
type recorders struct {
	dir string
	log *slog.Logger

	mu  sync.Mutex // serialises sync
	cur atomic.Pointer[map[string]*recorder]
}

type recorder struct {
	path    string
	mu      sync.Mutex
	f       *os.File
	w       *pcapgo.Writer
	buf     []byte
	packets uint64
	err     error
}

func newRecorders(dir string, log *slog.Logger) *recorders {
	r := &recorders{dir: dir, log: log}
	empty := map[string]*recorder{}
	r.cur.Store(&empty)
	return r
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// sync opens a file for every recorded session that has none and closes the
// files of sessions that ended.
func (r *recorders) sync(sessions []*filter.Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.cur.Load()
	next := make(map[string]*recorder, len(old))
	for _, s := range sessions {
		if !s.Record {
			continue
		}
		if rec := old[s.ID]; rec != nil {
			next[s.ID] = rec
			continue
		}
		rec, err := r.open(s)
		if err != nil {
			r.log.Error("cannot record session", "session", s.ID, "err", err)
			continue
		}
		r.log.Info("recording session", "session", s.ID, "agent", s.Agent, "file", rec.path)
		next[s.ID] = rec
	}
	r.cur.Store(&next)
	for id, rec := range old {
		if next[id] == nil {
			rec.close()
			r.log.Info("recording closed", "session", id, "file", rec.path, "packets", rec.packets)
		}
	}
}

func (r *recorders) open(s *filter.Session) (*recorder, error) {
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return nil, fmt.Errorf("recording directory %q: %w", r.dir, err)
	}
	name := fmt.Sprintf("%s-agent%s-%s.pcap", time.Now().UTC().Format("20060102T150405Z"),
		unsafeName.ReplaceAllString(s.Agent, "_"), s.ID)
	path := filepath.Join(r.dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		f.Close()
		return nil, err
	}
	return &recorder{path: path, f: f, w: w}, nil
}

// get returns the recorder of a session, or nil.
func (r *recorders) get(id string) *recorder { return (*r.cur.Load())[id] }

// paths returns the open recordings by session.
func (r *recorders) paths() map[string]string {
	m := map[string]string{}
	for id, rec := range *r.cur.Load() {
		m[id] = rec.path
	}
	return m
}

func (r *recorders) closeAll() { r.sync(nil) }

// write appends one frame. A tag the kernel stripped and reported out of
// band is put back into the frame, so the file shows the VLAN as it was on
// the wire.
func (rec *recorder) write(frame []byte, lt capture.LinkType, info *capture.Info) {
	if lt != capture.LinkEthernet {
		return // files of other link types are recorded by their own tools
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.f == nil || rec.err != nil {
		return
	}
	data := frame
	length := info.Length
	if info.VLANValid && len(frame) >= 12 {
		tpid := info.VLANTPID
		if tpid == 0 {
			tpid = 0x8100
		}
		rec.buf = append(rec.buf[:0], frame[:12]...)
		rec.buf = binary.BigEndian.AppendUint16(rec.buf, tpid)
		rec.buf = binary.BigEndian.AppendUint16(rec.buf, info.VLANTCI)
		rec.buf = append(rec.buf, frame[12:]...)
		data = rec.buf
		length += 4
	}
	if length < len(data) {
		length = len(data)
	}
	ci := gopacket.CaptureInfo{Timestamp: info.Timestamp, CaptureLength: len(data), Length: length}
	if err := rec.w.WritePacket(ci, data); err != nil {
		rec.err = err
		return
	}
	rec.packets++
}

func (rec *recorder) close() {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.f != nil {
		rec.f.Close()
		rec.f = nil
	}
}
