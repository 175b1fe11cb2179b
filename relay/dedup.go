package relay

import (
	"encoding/binary"
	"sync"

	"github.com/silentmon/silentmon/filter"
)

// dedupWindow is how many sequence numbers behind the highest one seen a
// duplicate is still recognised.
const dedupWindow = 1024

// Dedup drops RTP packets a supervisor service has already received: when
// two capture servers see the same stream (overlapping SPAN sessions),
// both push it, and the supervisor must play each packet once. Packets are
// identified by session, direction, SSRC and sequence number, within a
// window of 1024 sequence numbers. Dedup is safe for concurrent use.
type Dedup struct {
	mu      sync.Mutex
	streams map[dedupKey]*seqWindow
	dups    uint64
}

type dedupKey struct {
	session string
	dir     filter.Direction
	ssrc    uint32
}

type seqWindow struct {
	top  uint16 // highest sequence number seen
	bits [dedupWindow / 64]uint64
}

// NewDedup returns an empty Dedup.
func NewDedup() *Dedup { return &Dedup{streams: map[dedupKey]*seqWindow{}} }

// Seen reports whether the RTP packet rtp of session/dir was already
// accepted, and records it otherwise. Packets too short to be RTP are
// never duplicates.
func (d *Dedup) Seen(session []byte, dir filter.Direction, rtp []byte) bool {
	if len(rtp) < 12 {
		return false
	}
	seq := binary.BigEndian.Uint16(rtp[2:4])
	ssrc := binary.BigEndian.Uint32(rtp[8:12])
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.streams[dedupKey{string(session), dir, ssrc}] // no allocation for the lookup
	if w == nil {
		w = &seqWindow{top: seq}
		w.set(seq)
		d.streams[dedupKey{string(session), dir, ssrc}] = w
		return false
	}
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
		d.dups++
		return true
	}
	w.set(seq)
	return false
}

// Duplicates returns how many packets Seen reported as duplicates.
func (d *Dedup) Duplicates() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dups
}

// Forget drops the state of a session.
func (d *Dedup) Forget(session string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k := range d.streams {
		if k.session == session {
			delete(d.streams, k)
		}
	}
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
