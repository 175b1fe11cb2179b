package captureserver

import (
	"maps"
	"slices"

	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/siptrack"
	"github.com/silentmon/silentmon/relay"
)

// payloadTypes returns the RTP payload types of the audio of sess's
// agent's current calls and their encodings ("G729/8000"), as the SDP
// gave them, for the supervisor to decode dynamic types (the forwarder
// sends them in session notices): the agent's own SDP first (the types
// it receives), then the other parties' (the types they receive) for
// the types the agent's did not name. At most relay.MaxPayloadTypes:
// types 96 to 127 first, then the lowest others. nil when no call of the
// agent is known.
func (a *agents) payloadTypes(sess *filter.Session) map[uint8]string {
	if a.tracker == nil {
		return nil
	}
	var calls []siptrack.CallMedia
	for _, u := range a.users(sess) {
		calls = append(calls, a.tracker.MediaOf(u)...)
	}
	var m map[uint8]string
	add := func(media []siptrack.Media) {
		for _, x := range media {
			if x.Kind != "audio" {
				continue
			}
			for pt, enc := range x.PayloadTypes {
				if _, ok := m[pt]; ok || pt > 127 || !relay.ValidEncoding(enc) {
					continue
				}
				if m == nil {
					m = map[uint8]string{}
				}
				m[pt] = enc
			}
		}
	}
	for _, c := range calls {
		add(c.Local)
	}
	for _, c := range calls {
		add(c.Remote)
	}
	if len(m) <= relay.MaxPayloadTypes {
		return m
	}
	order := slices.Collect(maps.Keys(m))
	slices.SortFunc(order, func(x, y uint8) int {
		if dx, dy := x >= 96, y >= 96; dx != dy {
			if dx {
				return -1
			}
			return 1
		}
		return int(x) - int(y)
	})
	for _, pt := range order[relay.MaxPayloadTypes:] {
		delete(m, pt)
	}
	return m
}
