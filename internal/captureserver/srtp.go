package captureserver

import (
	"net/netip"

	"github.com/silentmon/silentmon/internal/sdes"
)

// srtpKeys are the keys of the SRTP media of monitored calls, by the
// agent's media address: send decrypts what the agent sends (its own SDP's
// key), recv what it receives (the other party's). Immutable once
// published.
type srtpKeys map[netip.AddrPort]srtpPair

type srtpPair struct {
	send, recv       sdes.Key
	hasSend, hasRecv bool
}
