package captureserver

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/audit"
)

// recorders writes the packets of sessions started with --record to one
// pcap file per session, for evidence and later replay. The set of open
// recorders is published atomically; each recorder serialises its own
// writes (several capture workers may feed one session). Files are opened
// only inside the record directory (os.Root), under names made of the
// time, the agent (characters outside A-Z a-z 0-9 . _ - replaced) and the
// validated session id, mode 0600. A file is never truncated nor written
// through a symbolic link (O_CREATE|O_EXCL|O_NOFOLLOW): when the name
// exists (a restart within the same second) the next free of NAME-1.pcap,
// NAME-2.pcap, ... is taken; a link in place of a name is refused and the
// recording fails, naming it.
//
// A recording that cannot be opened or written is not retried: it is
// logged once, counted in failures and shown by state as failed with the
// reason, until its session ends.
type recorders struct {
	dir string
	log *slog.Logger
	now func() time.Time // names the files; time.Now unless a test sets it

	failures atomic.Uint64 // recordings that could not be opened or failed later

	// event, if not nil, writes an audit line: record-begin when a file
	// is opened, record-failed when it cannot be or a write fails later
	// (reportFailures). Set before the first sync.
	event func(audit.Record)

	mu     sync.Mutex // serialises sync
	cur    atomic.Pointer[map[string]*recorder]
	failed map[string]string // session → why it cannot be recorded (open failed); under mu
}

type recorder struct {
	path     string
	session  string
	parent   *recorders
	mu       sync.Mutex
	f        *os.File
	w        *pcapgo.Writer
	buf      []byte
	packets  uint64
	err      error
	reported bool // err was audited
	sess     *filter.Session
}

func newRecorders(dir string, log *slog.Logger) *recorders {
	r := &recorders{dir: dir, log: log, now: time.Now, failed: map[string]string{}}
	empty := map[string]*recorder{}
	r.cur.Store(&empty)
	return r
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// usable reports why this member cannot record, or nil: the record
// directory is made if missing, must be a directory, and must take a new
// file (a probe created with O_EXCL inside it, then removed).
func (r *recorders) usable() error {
	if r.dir == "" {
		return errors.New("no record directory is configured (record.dir)")
	}
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return fmt.Errorf("record directory %q cannot be made: %w", r.dir, unwrapPath(err))
	}
	fi, err := os.Stat(r.dir)
	if err != nil {
		return fmt.Errorf("record directory %q: %w", r.dir, unwrapPath(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("record directory %q is not a directory", r.dir)
	}
	root, err := os.OpenRoot(r.dir)
	if err != nil {
		return fmt.Errorf("record directory %q cannot be opened: %w", r.dir, unwrapPath(err))
	}
	defer root.Close()
	var b [8]byte
	rand.Read(b[:])
	name := ".probe-" + hex.EncodeToString(b[:])
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("record directory %q is not writable: %w", r.dir, unwrapPath(err))
	}
	_, werr := f.Write([]byte{0})
	cerr := f.Close()
	root.Remove(name)
	if werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("record directory %q does not take writes: %w", r.dir, unwrapPath(werr))
	}
	return nil
}

// sync opens a file for every recorded session that has none and closes the
// files of sessions that ended.
func (r *recorders) sync(sessions []*filter.Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.cur.Load()
	next := make(map[string]*recorder, len(old))
	live := map[string]bool{}
	for _, s := range sessions {
		if !s.Record {
			continue
		}
		live[s.ID] = true
		if rec := old[s.ID]; rec != nil {
			next[s.ID] = rec
			continue
		}
		if _, ok := r.failed[s.ID]; ok {
			continue // logged and counted once
		}
		rec, err := r.open(s)
		if err != nil {
			r.failed[s.ID] = err.Error()
			r.failures.Add(1)
			r.log.Error("cannot record session", "session", s.ID, "agent", s.Agent, "dir", r.dir, "err", err)
			r.audit(s, audit.ActionRecordFailed, "", err.Error())
			continue
		}
		r.log.Info("recording session", "session", s.ID, "agent", s.Agent, "file", rec.path)
		r.audit(s, audit.ActionRecordBegin, rec.path, "")
		next[s.ID] = rec
	}
	for id := range r.failed {
		if !live[id] {
			delete(r.failed, id)
		}
	}
	r.cur.Store(&next)
	for id, rec := range old {
		if next[id] == nil {
			rec.close()
			r.log.Info("recording closed", "session", id, "file", rec.path, "packets", rec.count())
		}
	}
}

func (r *recorders) audit(s *filter.Session, action, file, reason string) {
	if r.event == nil {
		return
	}
	r.event(audit.Record{Action: action, SessionID: s.ID, Agent: s.Agent, Endpoints: endpointStrings(s),
		Supervisor: s.Supervisor, File: file, Reason: reason})
}

// reportFailures writes a record-failed line, once, for every open
// recording that failed since (a write error, a full disk). It runs off
// the packet path (the session keeper), which only marks the failure.
func (r *recorders) reportFailures() {
	for _, rec := range *r.cur.Load() {
		rec.mu.Lock()
		err, done := rec.err, rec.reported
		rec.reported = rec.err != nil
		rec.mu.Unlock()
		if err != nil && !done {
			r.audit(rec.sess, audit.ActionRecordFailed, rec.path, err.Error())
		}
	}
}

func (r *recorders) open(s *filter.Session) (*recorder, error) {
	if !filter.ValidID(s.ID) {
		return nil, fmt.Errorf("session id %q cannot name a file", s.ID)
	}
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return nil, fmt.Errorf("record directory %q: %w", r.dir, unwrapPath(err))
	}
	root, err := os.OpenRoot(r.dir)
	if err != nil {
		return nil, fmt.Errorf("record directory %q: %w", r.dir, unwrapPath(err))
	}
	defer root.Close()
	base := fmt.Sprintf("%s-agent%s-%s", r.now().UTC().Format("20060102T150405Z"),
		unsafeName.ReplaceAllString(s.Agent, "_"), s.ID)
	f, name, err := createRecording(root, base)
	if err != nil {
		return nil, err
	}
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		f.Close()
		return nil, err
	}
	return &recorder{path: filepath.Join(r.dir, name), session: s.ID, parent: r, f: f, w: w, sess: s}, nil
}

// maxRecordingNames bounds the numbered names tried for one recording.
const maxRecordingNames = 100

// createRecording creates base.pcap in root, or the first free of
// base-1.pcap, base-2.pcap, ..., with O_CREATE|O_EXCL|O_NOFOLLOW and mode
// 0600: an existing file is never opened, and a symbolic link in place of
// a name (even one to nothing) is refused with an error that says so.
func createRecording(root *os.Root, base string) (*os.File, string, error) {
	for i := 0; i < maxRecordingNames; i++ {
		name := base + ".pcap"
		if i > 0 {
			name = fmt.Sprintf("%s-%d.pcap", base, i)
		}
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if err == nil {
			return f, name, nil
		}
		if fi, lerr := root.Lstat(name); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, "", fmt.Errorf("recording file %s is a symbolic link; refusing to write through it", filepath.Join(root.Name(), name))
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, "", err
		}
	}
	return nil, "", fmt.Errorf("recording file %s.pcap and %d numbered variants exist", filepath.Join(root.Name(), base), maxRecordingNames-1)
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

// states returns the state of every recorded session this member knows
// of: "ok", or "failed: " and the reason.
func (r *recorders) states() map[string]string {
	m := map[string]string{}
	for id, rec := range *r.cur.Load() {
		if err := rec.failure(); err != nil {
			m[id] = "failed: " + err.Error()
		} else {
			m[id] = "ok"
		}
	}
	r.mu.Lock()
	for id, why := range r.failed {
		m[id] = "failed: " + why
	}
	r.mu.Unlock()
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
		rec.fail(err)
		return
	}
	rec.packets++
}

// fail marks the recording failed, once: logged, counted, shown by
// status. The file keeps what was written before. Called with rec.mu held.
func (rec *recorder) fail(err error) {
	if rec.err != nil {
		return
	}
	rec.err = err
	rec.parent.failures.Add(1)
	rec.parent.log.Error("recording failed", "session", rec.session, "file", rec.path, "packets", rec.packets, "err", err)
}

func (rec *recorder) failure() error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.err
}

func (rec *recorder) count() uint64 {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.packets
}

func (rec *recorder) close() {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.f != nil {
		if err := rec.f.Close(); err != nil {
			rec.fail(err)
		}
		rec.f = nil
	}
}

// unwrapPath returns the system error inside a *os.PathError, whose path
// the message names already.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
