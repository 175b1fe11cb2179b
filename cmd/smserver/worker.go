package main

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/relay"
)

const batchSize = 64

type streamKey struct {
	session  string
	dir      filter.Direction
	ssrc     uint32
	src, dst netip.AddrPort
}

// worker runs one capture source: decode, filter, forward. It owns its
// stream counters and publishes a copy every half second for status.
type worker struct {
	s   *server
	src capture.Source

	counts   map[streamKey]uint64
	lastSeen map[string]time.Time // session → last packet, for "capturing"

	mu     sync.Mutex
	snap   map[streamKey]uint64
	active []string // sessions with packets in the last activeWindow
}

// activeWindow is how recently a session must have had packets here for
// this server to report that it captures it.
const activeWindow = 3 * time.Second

func newWorker(s *server, src capture.Source) *worker {
	return &worker{s: s, src: src, counts: map[streamKey]uint64{}, lastSeen: map[string]time.Time{}}
}

func (w *worker) snapshot() map[streamKey]uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.snap
}

func (w *worker) activeSessions() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.active
}

func (w *worker) publish() {
	cp := make(map[streamKey]uint64, len(w.counts))
	live := map[string]bool{}
	for _, x := range w.s.filter.Sessions() {
		live[x.ID] = true
	}
	for k, v := range w.counts {
		if !live[k.session] {
			delete(w.counts, k)
			continue
		}
		cp[k] = v
	}
	var active []string
	now := time.Now()
	for id, t := range w.lastSeen {
		if !live[id] {
			delete(w.lastSeen, id)
		} else if now.Sub(t) < activeWindow {
			active = append(active, id)
		}
	}
	w.mu.Lock()
	w.snap = cp
	w.active = active
	w.mu.Unlock()
}

func (w *worker) run(ctx context.Context, waitSession bool) error {
	defer w.src.Close()
	defer w.publish()
	if waitSession {
		if err := w.s.waitSession(ctx); err != nil {
			return nil
		}
	}
	frames := make([][]byte, batchSize)
	infos := make([]capture.Info, batchSize)
	var pkt capture.Packet
	matches := make([]filter.Match, 0, 8)
	lt := w.src.LinkType()
	st := &w.s.stats
	lastPub := time.Now()
	for ctx.Err() == nil {
		n, err := w.src.ReadBatch(frames, infos)
		now := time.Now()
		for i := 0; i < n; i++ {
			st.frames.Add(1)
			if err := pkt.Decode(frames[i], lt, &infos[i]); err != nil {
				st.decodeErrors.Add(1)
				continue
			}
			switch pkt.Kind {
			case capture.KindRTCP:
				st.rtcp.Add(1)
				continue
			case capture.KindRTP:
				st.rtp.Add(1)
			default:
				continue
			}
			matches = w.s.filter.MatchAll(&pkt, matches[:0])
			if len(matches) == 0 {
				continue
			}
			st.matched.Add(1)
			var vlan uint16
			if pkt.NumVLANs > 0 {
				vlan = pkt.VLANs[0].TCI
			}
			for _, m := range matches {
				mp := relay.MediaPacket{Direction: m.Direction, Time: infos[i].Timestamp.UnixNano(),
					Src: pkt.Src, Dst: pkt.Dst, VLAN: vlan, Data: pkt.UDP}
				w.s.fw.Forward(m.Session, &mp)
				w.counts[streamKey{m.Session.ID, m.Direction, pkt.RTP.SSRC, pkt.Src, pkt.Dst}]++
				w.lastSeen[m.Session.ID] = now
				if m.Session.Record {
					if rec := w.s.rec.get(m.Session.ID); rec != nil {
						rec.write(frames[i], lt, &infos[i])
					}
				}
			}
		}
		if now.Sub(lastPub) > 500*time.Millisecond {
			lastPub = now
			w.publish()
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
