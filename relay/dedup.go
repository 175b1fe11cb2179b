package relay

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/silentmon/silentmon/filter"
)

// dedupWindow is how many sequence numbers behind the highest one seen a
// duplicate is still recognised.
const dedupWindow = 1024

// dedupIdle is how long a stream may go unseen before its window is
// forgotten (the agent's call ended; a new call has new SSRCs).
const dedupIdle = time.Minute

// Dedup drops RTP packets a supervisor service has already received: when
// two capture servers see the same stream (overlapping SPAN sessions),
// both push it, and the supervisor must play each packet once. Packets are
// identified by session, direction, SSRC and sequence number, within a
// window of 1024 sequence numbers. Streams unseen for a minute are
// forgotten, so memory follows the live calls. Dedup is safe for concurrent
// use; Seen does not allocate for a known stream.
type Dedup struct {
	mu       sync.Mutex
	sessions map[string]map[streamID]*seqWindow
	n        int // windows held
	dups     uint64
	now      func() time.Time
	lastGC   time.Time
}

type streamID struct {
	dir  filter.Direction
	ssrc uint32
}

type seqWindow struct {
	top  uint16 // highest sequence number seen
	seen time.Time
	bits [dedupWindow / 64]uint64
}

// NewDedup returns an empty Dedup.
func NewDedup() *Dedup {
	return &Dedup{sessions: map[string]map[streamID]*seqWindow{}, now: time.Now}
}

// Seen reports whether the RTP packet rtp of session/dir was already
// accepted, and records it otherwise. Packets too short to be RTP are
// never duplicates.
func (d *Dedup) Seen(session []byte, dir filter.Direction, rtp []byte) bool {
	if len(rtp) < 12 {
		return false
	}
	seq := binary.BigEndian.Uint16(rtp[2:4])
	id := streamID{dir, binary.BigEndian.Uint32(rtp[8:12])}
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.sessions[string(session)][id] // no allocation for the lookup
	if w == nil {
		d.expire(now)
		streams := d.sessions[string(session)]
		if streams == nil {
			streams = map[streamID]*seqWindow{}
			d.sessions[string(session)] = streams
		}
		w = &seqWindow{top: seq}
		streams[id] = w
		d.n++
	}
	w.seen = now
	if w.accept(seq) {
		return false
	}
	d.dups++
	return true
}

// expire forgets the streams idle for dedupIdle, at most once per
// dedupIdle; it runs when a stream is added, so its cost follows calls,
// not packets.
func (d *Dedup) expire(now time.Time) {
	if now.Sub(d.lastGC) < dedupIdle {
		return
	}
	d.lastGC = now
	for sess, streams := range d.sessions {
		for id, w := range streams {
			if now.Sub(w.seen) > dedupIdle {
				delete(streams, id)
				d.n--
			}
		}
		if len(streams) == 0 {
			delete(d.sessions, sess)
		}
	}
}

// accept records seq and reports whether it is new.
func (w *seqWindow) accept(seq uint16) bool {
	delta := int16(seq - w.top)
	switch {
	case delta > 0:
		if delta >= dedupWindow {
			w.bits = [dedupWindow / 64]uint64{}
		} else {
			for s := w.top + 1; s != seq; s++ {
				w.clear(s)
			}
		}
		w.top = seq
		w.clear(seq)
	case -int(delta) >= dedupWindow:
		// Far behind the window: a restarted sender; start over.
		w.top = seq
		w.bits = [dedupWindow / 64]uint64{}
	}
	if w.get(seq) {
		return false
	}
	w.set(seq)
	return true
}

// Duplicates returns how many packets Seen reported as duplicates.
func (d *Dedup) Duplicates() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dups
}

// Streams returns how many streams Dedup holds a window for.
func (d *Dedup) Streams() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

func (w *seqWindow) get(s uint16) bool {
	i := s % dedupWindow
	return w.bits[i/64]&(1<<(i%64)) != 0
}
func (w *seqWindow) set(s uint16) {
	i := s % dedupWindow
	w.bits[i/64] |= 1 << (i % 64)
}
func (w *seqWindow) clear(s uint16) {
	i := s % dedupWindow
	w.bits[i/64] &^= 1 << (i % 64)
}
