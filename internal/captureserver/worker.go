package captureserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/sdes"
	"github.com/silentmon/silentmon/internal/service"
	"github.com/silentmon/silentmon/relay"
)

const batchSize = 256

type streamKey struct {
	session  string
	dir      filter.Direction
	ssrc     uint32
	src, dst netip.AddrPort
	vlan     uint16 // outer TCI, 0 untagged
}

// worker runs one capture source: decode, filter, forward. It owns its
// stream counters and publishes a copy every half second for status.
type worker struct {
	s      *server
	src    capture.Source
	name   string // the capture file, or interface#index
	replay bool   // src is a capture file

	// down is set while the worker waits to be restarted after a failure,
	// and for good once it gave up; /healthz reports it.
	down atomic.Pointer[error]
	// beat is the worker's heartbeat (/healthz): it waits while blocked
	// reading and beats at every batch; nil in tests that make no
	// heartbeats.
	beat *service.Heartbeat

	counts   map[streamKey]uint64
	lastSeen map[string]time.Time // session → last packet, for "capturing"
	table    *capture.StreamTable // every RTP stream this worker sees
	verdicts *filter.Verdicts     // the sessions of table's streams, when it tracks every stream
	dec      sdes.Decrypter       // SRTP contexts of the monitored calls
	lastTS   time.Time            // capture time of the last frame
	// encrypted counts, per stream, the packets of SRTP without keys
	// (not forwarded); noKeys is their total, for metrics.
	encrypted map[streamKey]uint64
	noKeys    atomic.Uint64

	mu        sync.Mutex
	snap      map[streamKey]uint64
	encSnap   map[streamKey]uint64                      // published encrypted
	seen      map[string]sessionSeen                    // published per-session sums of counts, and lastSeen
	active    []string                                  // sessions with packets in the last activeWindow
	stats     map[capture.StreamKey]capture.StreamStats // of monitored streams
	tracked   int
	overflow  uint64
	lastStats time.Time
}

// sessionSeen is what a worker forwarded of one session: packets, and
// the time of the last one (the server's clock).
type sessionSeen struct {
	packets uint64
	last    time.Time
}

// activeWindow is how recently a session must have had packets here for
// this server to report that it captures it.
const activeWindow = 3 * time.Second

// newWorker returns a worker for src; drops, if not nil, is the kernel's
// running drop count of the capture src belongs to, which splits sequence
// gaps into network and capture loss.
func newWorker(s *server, src capture.Source, name string, drops *atomic.Uint64) *worker {
	_, replay := src.(*capture.FileSource)
	fs := []*filter.Filter{s.filter}
	if s.agents != nil {
		fs = append(fs, s.agents.learned) // the sessions SIP found, after the requested ones
	}
	return &worker{s: s, src: src, name: name, replay: replay, counts: map[streamKey]uint64{}, lastSeen: map[string]time.Time{},
		encrypted: map[streamKey]uint64{},
		table:     capture.NewStreamTable(capture.StreamTableConfig{Drops: drops}),
		verdicts:  filter.NewVerdicts(fs...)}
}

// streamStats returns the statistics of the monitored streams and the
// table's totals.
func (w *worker) streamStats() (map[capture.StreamKey]capture.StreamStats, int, uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats, w.tracked, w.overflow
}

func (w *worker) snapshot() map[streamKey]uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.snap
}

// encryptedSnapshot returns the published counts of the streams of SRTP
// without keys, by stream.
func (w *worker) encryptedSnapshot() map[streamKey]uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.encSnap
}

// sessionsSeen returns the per-session figures of the last publication.
func (w *worker) sessionsSeen() map[string]sessionSeen {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}

func (w *worker) activeSessions() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.active
}

func (w *worker) publish(final bool) {
	cp := make(map[streamKey]uint64, len(w.counts))
	live := map[string]bool{}
	for _, x := range w.s.filter.Sessions() {
		live[x.ID] = true
	}
	// A session's packets are the sum of its streams' counts, added up
	// here rather than counted a second time per packet.
	seen := make(map[string]sessionSeen, len(w.lastSeen))
	for k, v := range w.counts {
		if !live[k.session] {
			delete(w.counts, k)
			continue
		}
		cp[k] = v
		x := seen[k.session]
		x.packets += v
		seen[k.session] = x
	}
	var enc map[streamKey]uint64
	for k, v := range w.encrypted {
		if !live[k.session] {
			delete(w.encrypted, k)
			continue
		}
		if enc == nil {
			enc = make(map[streamKey]uint64, len(w.encrypted))
		}
		enc[k] = v
	}
	var active []string
	now := w.s.now()
	for id, t := range w.lastSeen {
		if !live[id] {
			delete(w.lastSeen, id)
			continue
		}
		x := seen[id]
		x.last = t
		seen[id] = x
		if now.Sub(t) < activeWindow {
			active = append(active, id)
		}
	}
	// The whole table is walked for the statistics, so not at every
	// publication.
	w.mu.Lock()
	stats := w.stats
	w.mu.Unlock()
	if final || now.Sub(w.lastStats) >= 2*time.Second {
		stats = nil
		w.lastStats = now
		if !w.lastTS.IsZero() {
			w.table.Expire(w.lastTS)
		}
		// The monitored streams are looked up one by one: a snapshot of
		// the whole table (up to 100,000 streams, copied and sorted) on
		// this goroutine would hold up the capture for milliseconds.
		for k := range cp {
			vlan := uint16(capture.NoVLAN)
			if k.vlan != 0 {
				vlan = k.vlan & 0x0fff
			}
			sk := capture.StreamKey{VLAN: vlan, Src: k.src, Dst: k.dst, SSRC: k.ssrc}
			if st, ok := w.table.Stats(sk); ok {
				if stats == nil {
					stats = make(map[capture.StreamKey]capture.StreamStats, len(cp))
				}
				stats[sk] = st
			}
		}
	}
	w.mu.Lock()
	w.snap = cp
	w.encSnap = enc
	w.seen = seen
	w.active = active
	w.stats = stats
	w.tracked = w.table.Len()
	w.overflow = w.table.Overflow()
	w.mu.Unlock()
}

// Restarts of a capture worker that failed (a read error or a panic): at
// most workerRestarts in a row, the first after restartBackoff, each next
// one after twice the wait before; a worker that ran for restartReset
// before it failed starts its count again.
const (
	workerRestarts = 3
	restartBackoff = 250 * time.Millisecond
	restartReset   = time.Minute
)

// supervise runs the worker until ctx ends or its source ends (nil). A
// failure (an error of run, or a panic turned into one) is restarted up to
// restarts times in a row with back-off, and then returned; while the
// worker waits to be restarted, and after it gave up, health reports it.
// It closes the source when it returns.
func (w *worker) supervise(ctx context.Context, waitSession bool, restarts int) error {
	defer w.beat.Done() // ended, or down: health reports it
	defer w.src.Close()
	defer w.publish(true)
	n, backoff := 0, restartBackoff
	for {
		began := time.Now()
		err := w.runSafe(ctx, waitSession)
		waitSession = false // only before the first frame
		if err == nil || ctx.Err() != nil {
			return nil
		}
		if time.Since(began) >= restartReset {
			n, backoff = 0, restartBackoff
		}
		if n >= restarts {
			if restarts > 0 {
				err = fmt.Errorf("capture worker %s failed %d times in a row, the last time: %w", w.name, n+1, err)
			}
			failed := err
			if restarts == 0 {
				failed = fmt.Errorf("capture worker %s failed: %w", w.name, err)
			}
			w.down.Store(&failed)
			return err
		}
		n++
		down := fmt.Errorf("capture worker %s is down (restart %d of %d in %v): %w", w.name, n, restarts, backoff, err)
		w.down.Store(&down)
		w.s.log.Error("capture worker failed; restarting", "worker", w.name, "err", err, "restart", n, "of", restarts, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff *= 2
		w.down.Store(nil)
	}
}

// health returns why the worker is down, or nil.
func (w *worker) health() error {
	if e := w.down.Load(); e != nil {
		return *e
	}
	return nil
}

// runSafe is run with a panic turned into an error.
func (w *worker) runSafe(ctx context.Context, waitSession bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			w.s.log.Error("capture worker panicked", "worker", w.name, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return w.run(ctx, waitSession)
}

// run reads, decodes, filters and forwards until ctx ends (nil), the
// source ends (nil) or fails (its error).
func (w *worker) run(ctx context.Context, waitSession bool) error {
	if waitSession {
		w.beat.Waiting()
		if err := w.s.waitSession(ctx); err != nil {
			return nil
		}
	}
	frames := make([][]byte, batchSize)
	infos := make([]capture.Info, batchSize)
	// A block is taken decodeChunk frames at a time. A run of frames of
	// the common RTP shape is read into Briefs only
	// (capture.DecodeBriefs); the stream table takes the run's Briefs at
	// once (UpdateBriefs overlaps their cache misses), then each goes
	// through the filter, and only those a session wants are decoded
	// whole, to be forwarded. The frame that ends a run (SIP, RTCP, RTP
	// of another shape) is decoded whole at once, after the Briefs
	// before it, so that every stream's packets keep their capture order.
	var c chunk
	c.matches = make([]filter.Match, 0, 8)
	lt := w.src.LinkType()
	st := &w.s.stats
	lastPub := w.s.now()
	for ctx.Err() == nil {
		w.beat.Waiting()
		n, err := w.src.ReadBatch(frames, infos)
		w.beat.Beat()
		now := w.s.now()
		if n > 0 {
			w.lastTS = infos[n-1].Timestamp
		}
		// Counters are added once per batch, not per packet.
		c.counts = chunkCounts{}
		for base := 0; base < n; base += decodeChunk {
			end := min(base+decodeChunk, n)
			// The next chunk's headers are fetched from memory while
			// this one is taken.
			capture.PrefetchFrames(frames[end:min(end+decodeChunk, n)])
			for i := base; i < end; i++ {
				if lt == capture.LinkEthernet {
					if k := capture.DecodeBriefs(c.briefs[:end-i], frames[i:end], infos[i:end]); k > 0 {
						w.flush(&c, c.briefs[:k], frames[i:i+k], infos[i:i+k], lt, now)
						if i += k; i == end {
							break
						}
					}
				}
				p := &c.pkt
				if p.Decode(frames[i], lt, &infos[i]) != nil {
					c.counts.decodeErrors++
					continue
				}
				if w.s.cfg.TrackAllStreams {
					w.table.Update(p, infos[i].Timestamp)
				}
				m, rtcp, rtp := w.packet(p, frames[i], &infos[i], lt, now, c.matches[:0])
				c.matches = m
				if rtcp {
					c.counts.rtcp++
				}
				if rtp {
					c.counts.rtp++
					if len(m) > 0 {
						c.counts.matched++
					}
				}
			}
		}
		st.frames.Add(uint64(n))
		st.decodeErrors.Add(c.counts.decodeErrors)
		st.rtcp.Add(c.counts.rtcp)
		st.rtp.Add(c.counts.rtp)
		st.matched.Add(c.counts.matched)
		if now.Sub(lastPub) > 500*time.Millisecond {
			lastPub = now
			w.publish(false)
			// The capture's own time: a replayed file's registrations
			// and calls age with the file.
			w.s.agents.expire(w.lastTS)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// decodeChunk is how many frames of a block are taken at once, at most,
// before the stream table takes their Briefs.
const decodeChunk = 32

// chunk is a worker's state for the chunk of a block it is taking: the
// Briefs, the Packet frames are decoded into, and the block's counts.
type chunk struct {
	briefs  [decodeChunk]capture.Brief
	hits    [decodeChunk]capture.Brief // the Briefs a session wants, when only the monitored streams are tracked
	pkt     capture.Packet
	matches []filter.Match
	counts  chunkCounts
}

type chunkCounts struct{ decodeErrors, rtcp, rtp, matched uint64 }

// flush handles bs, the Briefs of frames (captured as infos say), in
// capture order: the stream table takes them at once when every stream is
// tracked, then each is looked up in the filter, and a packet some session
// wants is made whole from its Brief and forwarded. When only the
// monitored streams are tracked, the stream table takes the Briefs of the
// forwarded packets at once, after them.
func (w *worker) flush(c *chunk, bs []capture.Brief, frames [][]byte, infos []capture.Info, lt capture.LinkType, now time.Time) {
	// The requested and the SIP-learned filters answer through one
	// Verdicts. When every stream is in the table, a stream's answer is
	// kept with it, and the filters are asked once per stream and change
	// of sessions; otherwise for every packet.
	v := w.verdicts
	v.Begin(w.table)
	c.counts.rtp += uint64(len(bs))
	if w.s.cfg.TrackAllStreams {
		w.table.UpdateBriefs(bs)
		for j := range bs {
			matches, ok := v.Cached(&bs[j])
			if !ok {
				matches = v.Match(&bs[j])
			}
			if len(matches) > 0 {
				w.forward(c, &bs[j], frames[j], &infos[j], lt, now, matches)
			}
		}
		return
	}
	hits := c.hits[:0]
	// Screen leaves out, without a call each, the Briefs no session can
	// want: nearly all of them on a busy port.
	for set := v.Screen(bs); set != 0; set &= set - 1 {
		j := bits.TrailingZeros64(set)
		if matches := v.Match(&bs[j]); len(matches) > 0 {
			hits = append(hits, bs[j])
			w.forward(c, &bs[j], frames[j], &infos[j], lt, now, matches)
		}
	}
	w.table.UpdateBriefs(hits)
}

// forward makes the Packet of frame, whose Brief b matched sessions, and
// delivers it.
func (w *worker) forward(c *chunk, b *capture.Brief, frame []byte, info *capture.Info, lt capture.LinkType, now time.Time, matches []filter.Match) {
	c.counts.matched++
	c.pkt.FromBrief(b, frame, info)
	w.deliver(&c.pkt, frame, info, lt, now, matches)
}

// packet filters and forwards one decoded packet (the stream table has
// seen it when every stream is tracked) and returns the sessions it
// matched (appended to matches), and whether it was RTCP or RTP.
func (w *worker) packet(pkt *capture.Packet, frame []byte, info *capture.Info, lt capture.LinkType, now time.Time, matches []filter.Match) (_ []filter.Match, rtcp, rtp bool) {
	switch pkt.Kind {
	case capture.KindRTCP:
		return matches, true, false
	case capture.KindRTP:
	default:
		// SIP (UDP or TCP) finds the agents' calls; nothing else here
		// is monitored.
		w.s.agents.packet(pkt, info.Timestamp)
		return matches, false, false
	}
	matches = w.s.filter.MatchAll(pkt, matches[:0])
	matches = w.s.agents.match(pkt, matches)
	if len(matches) > 0 {
		if !w.s.cfg.TrackAllStreams {
			w.table.Update(pkt, info.Timestamp)
		}
		w.deliver(pkt, frame, info, lt, now, matches)
	}
	return matches, false, true
}

// deliver forwards an RTP packet to the sessions that matched it (at
// least one).
func (w *worker) deliver(pkt *capture.Packet, frame []byte, info *capture.Info, lt capture.LinkType, now time.Time, matches []filter.Match) {
	// A replayed file's timestamps are from when it was recorded;
	// its packets are "captured" now.
	captured := info.Timestamp.UnixNano()
	if w.replay {
		captured = now.UnixNano()
	}
	var vlan uint16
	if pkt.NumVLANs > 0 {
		vlan = pkt.VLANs[0].TCI
	}
	data := pkt.UDP
	// SRTP whose SDES keys the call's SDP gave: the supervisor
	// gets it decrypted (over TLS), or nothing, never noise.
	// SRTP without keys is not forwarded at all: counted, and
	// shown as encrypted in status.
	fromAgent := matches[0].Direction == filter.FromAgent
	if addr, key, ok := w.s.agents.srtpKey(pkt.Src, pkt.Dst, fromAgent); ok {
		if data, ok = w.dec.Decrypt(addr, fromAgent, key, pkt.UDP); !ok {
			w.s.stats.srtpFailed.Add(1)
			return
		}
		w.s.stats.srtpDecrypted.Add(1)
	} else if w.s.agents.srtpNoKey(pkt.Src, pkt.Dst, fromAgent) {
		w.noKeys.Add(1)
		for _, m := range matches {
			w.encrypted[streamKey{m.Session.ID, m.Direction, pkt.RTP.SSRC, pkt.Src, pkt.Dst, vlan}]++
		}
		return
	}
	for _, m := range matches {
		mp := relay.MediaPacket{Direction: m.Direction, Time: captured,
			Src: pkt.Src, Dst: pkt.Dst, VLAN: vlan, Data: data}
		w.s.fw.Forward(m.Session, &mp)
		w.counts[streamKey{m.Session.ID, m.Direction, pkt.RTP.SSRC, pkt.Src, pkt.Dst, vlan}]++
		w.lastSeen[m.Session.ID] = now
		if m.Session.Record {
			if rec := w.s.rec.get(m.Session.ID); rec != nil {
				rec.write(frame, lt, info)
			}
		}
	}
}
