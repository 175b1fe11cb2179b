package captureserver

import (
	"fmt"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/silentmon/silentmon/internal/sdes"
	"github.com/silentmon/silentmon/internal/status"
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

// srtpNoKey reports whether a packet of a monitored call, sent by the
// agent from src or received by it at dst, is of media whose SDP
// negotiated SRTP without giving the key of the packet's direction (no
// a=crypto, an unsupported suite, the other side's SDP not seen,
// DTLS-SRTP): such a packet cannot be played and is not forwarded. Call
// it only for a packet srtpKey found no key for.
func (a *agents) srtpNoKey(src, dst netip.AddrPort, fromAgent bool) bool {
	if a == nil {
		return false
	}
	keys := a.keys.Load()
	if keys == nil {
		return false
	}
	if fromAgent {
		p, found := (*keys)[src]
		return found && !p.hasSend
	}
	p, found := (*keys)[dst]
	return found && !p.hasRecv
}

// registerSRTP adds silentmon_capture_srtp_undecryptable_total to reg.
func (a *agents) registerSRTP(reg *prometheus.Registry) {
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "silentmon", Subsystem: "capture", Name: "srtp_undecryptable_total",
		Help: "Packets of monitored media whose SDP negotiated SRTP without keys the capture server can use (not forwarded)."},
		func() float64 { return float64(a.s.srtpUndecryptable()) }))
}

// srtpUndecryptable sums the workers' counts of SRTP packets without
// keys.
func (s *server) srtpUndecryptable() uint64 {
	var n uint64
	for _, w := range s.workers {
		n += w.noKeys.Load()
	}
	return n
}

// EncryptedNoKeys is StreamStatus.Encrypted of a stream of SRTP whose
// keys are not known.
const EncryptedNoKeys = "srtp-no-keys"

// addEncrypted adds to sessions the streams of SRTP without keys that
// the workers saw of each (not forwarded: no audio of them reaches the
// supervisor), with Encrypted set, and sets the sessions'
// SRTPUndecryptable.
func (s *server) addEncrypted(sessions []status.SessionStatus) {
	byID := map[string]int{}
	for i := range sessions {
		byID[sessions[i].ID] = i
	}
	for _, w := range s.workers {
		for k, n := range w.encryptedSnapshot() {
			i, ok := byID[k.session]
			if !ok {
				continue
			}
			sj := status.StreamStatus{SSRC: fmt.Sprintf("0x%08x", k.ssrc), Direction: k.dir.String(),
				Src: k.src.String(), Dst: k.dst.String(), Packets: n, Encrypted: EncryptedNoKeys}
			if k.vlan != 0 {
				v := int(k.vlan & 0x0fff)
				sj.VLAN = &v
			}
			sessions[i].Streams = append(sessions[i].Streams, sj)
			sessions[i].SRTPUndecryptable += n
		}
	}
}
