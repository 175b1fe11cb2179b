package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/status"
	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/relay"
)

// What the supervisor does with a payload type besides handing it to the
// session's Player.
const (
	ptPlay        uint8 = iota // played (or dropped by the Player as comfort noise)
	ptEvent                    // telephone-event (RFC 4733): digits
	ptRed                      // redundancy (RFC 2198): may carry events
	ptUnsupported              // a codec this build cannot play
)

// eventPT is the dynamic payload type taken as telephone-event when
// neither the SDP nor --codec maps it: the one phones use most.
const eventPT = 101

// ptTable says, per payload type, what a session does with it and the
// name of its codec. It is built whole and published (immutable).
type ptTable struct {
	kind [128]uint8
	name [128]string
}

// staticNames are the encoding names of the static payload types (RFC
// 3551).
var staticNames = map[uint8]string{0: "PCMU", 3: "GSM", 4: "G723", 5: "DVI4", 6: "DVI4", 7: "LPC", 8: "PCMA",
	9: "G722", 10: "L16", 11: "L16", 12: "QCELP", 13: "CN", 14: "MPA", 15: "G728", 16: "DVI4", 17: "DVI4", 18: "G729"}

// newPTTable builds the table of a session whose calls' SDP gave sdp
// (nil: none), with the configuration's explicit mappings (--codec)
// winning.
func newPTTable(sdp map[uint8]string, explicit map[uint8]playout.Codec) *ptTable {
	t := &ptTable{}
	codecs := playout.Config{PayloadTypes: playout.SDPPayloadTypes(sdp, explicit)}
	for pt := range uint8(128) {
		c := codecs.Codec(pt)
		enc, inSDP := sdp[pt]
		name, _, _ := strings.Cut(enc, "/")
		_, given := explicit[pt]
		switch {
		case given:
			name = c.String()
		case inSDP && name != "":
		case staticNames[pt] != "":
			name = staticNames[pt]
		default:
			name = fmt.Sprintf("payload type %d", pt)
		}
		t.name[pt] = name
		switch {
		case !given && strings.EqualFold(name, "telephone-event"),
			!given && !inSDP && pt == eventPT:
			t.kind[pt] = ptEvent
		case !given && strings.EqualFold(name, "red"):
			t.kind[pt] = ptRed
		case c == playout.CodecNone:
			t.kind[pt] = ptPlay // comfort noise: the Player drops it
		case !c.Decodable():
			t.kind[pt] = ptUnsupported
		}
	}
	return t
}

// unsupportedLabels are the codecs the unsupported-streams metric names;
// any other is "other", and a payload type nothing maps is "unknown".
var unsupportedLabels = []string{"iLBC", "AMR", "AMR-WB", "EVS", "G722", "G7221", "G723", "G726", "G728", "G729",
	"GSM", "L16", "opus", "SILK", "speex", "PCMU", "PCMA", "MPA", "DVI4"}

// codecLabel normalises an SDP encoding name to a metric label from a
// bounded set.
func codecLabel(name string) string {
	if strings.HasPrefix(name, "payload type ") {
		return "unknown"
	}
	for _, l := range unsupportedLabels {
		if strings.EqualFold(name, l) {
			return l
		}
	}
	up := strings.ToUpper(name)
	switch {
	case strings.HasPrefix(up, "G726"), strings.HasPrefix(up, "AAL2-G726"):
		return "G726"
	case up == "G7221" || up == "G722.1":
		return "G7221"
	}
	return "other"
}

// streamKey names one stream of a session.
type streamKey struct {
	dir  filter.Direction
	ssrc uint32
}

// maxUnsupported bounds the unsupported streams a session remembers
// (and reports).
const maxUnsupported = 16

// maxDigitLog bounds the digits kept for the event streams.
const maxDigitLog = 256

// sessionEvents holds a session's digits and its unsupported streams.
// It is safe for concurrent use.
type sessionEvents struct {
	mu          sync.Mutex
	counters    [3]playout.EventCounter // by direction
	digits      []byte                  // the last status.MaxDigits
	unsupported map[streamKey]string    // codec name
	evs         []playout.Event         // scratch
	blocks      []playout.RedBlock      // scratch
}

// special handles a packet whose payload type is not simply played:
// counts digits, reports an unsupported stream once.
func (s *Supervisor) special(sess *session, kind uint8, t *ptTable, mp *relay.MediaPacket) {
	pt, ssrc, ts, payload, err := playout.RTPPayload(mp.Data)
	if err != nil {
		return // the Player counts it
	}
	ev := &sess.events
	switch kind {
	case ptUnsupported:
		k := streamKey{mp.Direction, ssrc}
		ev.mu.Lock()
		if _, seen := ev.unsupported[k]; seen || len(ev.unsupported) >= maxUnsupported {
			ev.mu.Unlock()
			return
		}
		if ev.unsupported == nil {
			ev.unsupported = map[streamKey]string{}
		}
		name := t.name[pt]
		ev.unsupported[k] = name
		ev.mu.Unlock()
		label := codecLabel(name)
		s.mu.Lock()
		s.unsupported[label]++
		s.mu.Unlock()
		s.log.Warn(fmt.Sprintf("stream 0x%08x of session %s carries %s, which this build cannot play", ssrc, sess.id, name),
			"session", sess.id, "agent", sess.agent, "direction", playout.Direction(mp.Direction).String(),
			"ssrc", fmt.Sprintf("0x%08x", ssrc), "payload_type", pt, "codec", name)
	case ptEvent, ptRed:
		ev.mu.Lock()
		var found []status.Digit
		add := func(ts uint32, data []byte) {
			var err error
			if ev.evs, err = playout.ParseEvents(data, ev.evs[:0]); err != nil {
				return
			}
			for _, e := range ev.evs {
				d := e.Digit()
				if d == 0 || mp.Direction > 2 || !ev.counters[mp.Direction].New(ssrc, ts, e) {
					continue
				}
				ev.digits = append(ev.digits, d)
				if len(ev.digits) > status.MaxDigits {
					ev.digits = append(ev.digits[:0], ev.digits[len(ev.digits)-status.MaxDigits:]...)
				}
				found = append(found, status.Digit{Session: sess.id, Direction: playout.Direction(mp.Direction).String(),
					Digit: string(d), Time: time.Unix(0, mp.Time).UTC().Format(time.RFC3339Nano)})
			}
		}
		if kind == ptEvent {
			add(ts, payload)
		} else if ev.blocks, err = playout.ParseRedundant(payload, ev.blocks[:0]); err == nil {
			for _, b := range ev.blocks {
				if b.PT < 128 && t.kind[b.PT] == ptEvent {
					add(ts-uint32(b.TSOffset), b.Data)
				}
			}
		}
		ev.mu.Unlock()
		if len(found) > 0 {
			s.logDigits(sess, found)
		}
	}
}

// logDigits numbers digits and keeps them for the event streams.
func (s *Supervisor) logDigits(sess *session, ds []status.Digit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		s.digitSeq++
		d.Seq, d.Agent = s.digitSeq, sess.agent
		s.digitLog = append(s.digitLog, d)
	}
	if len(s.digitLog) > maxDigitLog {
		s.digitLog = append(s.digitLog[:0], s.digitLog[len(s.digitLog)-maxDigitLog:]...)
	}
}

// DigitsSince returns the digits of every session numbered after seq
// (status.Digit.Seq), oldest first: at most the last 256. It is safe
// for concurrent use.
func (s *Supervisor) DigitsSince(seq uint64) []status.Digit {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []status.Digit
	for _, d := range s.digitLog {
		if d.Seq > seq {
			out = append(out, d)
		}
	}
	return out
}

// digitsOf returns a session's digits and its unsupported streams.
func (sess *session) eventsView() (string, map[streamKey]string) {
	ev := &sess.events
	ev.mu.Lock()
	defer ev.mu.Unlock()
	var un map[streamKey]string
	if len(ev.unsupported) > 0 {
		un = make(map[streamKey]string, len(ev.unsupported))
		for k, v := range ev.unsupported {
			un[k] = v
		}
	}
	return string(ev.digits), un
}

// playerLog is the handler of a session's Player log: it leaves out the
// Player's report of a payload type it cannot play when the supervisor
// reports that stream itself (an unsupported codec, in its own words)
// or reads it (telephone events), so each stream is reported once.
type playerLog struct {
	slog.Handler
	sess *session
}

func (h playerLog) Handle(ctx context.Context, r slog.Record) error {
	skip := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "payload_type" && a.Value.Kind() == slog.KindInt64 {
			pt := a.Value.Int64()
			t := h.sess.pts.Load()
			skip = t != nil && pt >= 0 && pt < 128 && t.kind[pt] != ptPlay
			return false
		}
		return true
	})
	if skip {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h playerLog) WithAttrs(as []slog.Attr) slog.Handler {
	return playerLog{Handler: h.Handler.WithAttrs(as), sess: h.sess}
}

func (h playerLog) WithGroup(name string) slog.Handler {
	return playerLog{Handler: h.Handler.WithGroup(name), sess: h.sess}
}
