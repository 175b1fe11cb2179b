package gen

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"
)

// Impairments degrade every stream independently. Rates are probabilities
// per packet in [0, 1]; the zero value is a clean capture. Which packets are
// hit depends only on Config.Seed and the stream's position in Config.Calls.
type Impairments struct {
	// Loss drops each packet independently with this probability.
	Loss float64
	// BurstRate starts a burst with this probability per packet; a burst
	// drops BurstLen consecutive packets (0 means 5), the current one
	// included.
	BurstRate float64
	BurstLen  int
	// Jitter delays each packet's capture time by a uniform random amount
	// in [0, Jitter]. Above the packet time it also reorders.
	Jitter time.Duration
	// Reorder delays a packet by ReorderDelay (0 means 1.5 packet times) so
	// that it is written after the next one.
	Reorder      float64
	ReorderDelay time.Duration
	// Duplicate writes a packet twice, the copy DuplicateDelay (0 means
	// half a packet time) after the original.
	Duplicate      float64
	DuplicateDelay time.Duration
}

func (im *Impairments) validate() error {
	for _, r := range []struct {
		name string
		v    float64
	}{{"loss", im.Loss}, {"burst rate", im.BurstRate}, {"reorder", im.Reorder}, {"duplicate", im.Duplicate}} {
		if !(r.v >= 0 && r.v <= 1) {
			return fmt.Errorf("%w: %s rate %v is outside [0, 1]", ErrBadImpairment, r.name, r.v)
		}
	}
	if im.BurstLen < 0 {
		return fmt.Errorf("%w: burst length %d is negative", ErrBadImpairment, im.BurstLen)
	}
	if im.Jitter < 0 || im.ReorderDelay < 0 || im.DuplicateDelay < 0 {
		return fmt.Errorf("%w: jitter %v, reorder delay %v or duplicate delay %v is negative",
			ErrBadImpairment, im.Jitter, im.ReorderDelay, im.DuplicateDelay)
	}
	return nil
}

// DefaultEpoch is the capture time of offset 0 when Config.Epoch is zero.
var DefaultEpoch = time.Date(2024, 1, 1, 9, 0, 0, 0, time.UTC)

// Config describes one capture file.
type Config struct {
	Calls []Call
	// Datagrams are non-RTP UDP datagrams (DNS, NBNS, ...) written among
	// the calls at their capture times; Write does not impair them.
	Datagrams []Datagram
	Impair    Impairments
	// Seed drives impairments and derived SSRCs. The same Config writes the
	// same bytes.
	Seed uint64
	// Epoch is the capture time of offset 0; zero means DefaultEpoch.
	Epoch time.Time
	// Nanosecond writes a nanosecond-resolution pcap (magic 0xa1b23c4d);
	// otherwise microseconds. Capture times are truncated to the
	// resolution.
	Nanosecond bool
	// Record keeps, in the Result, every packet written and every packet
	// lost with its payload. It costs memory proportional to the capture.
	Record bool
}

// Packet is one RTP packet in a Result.
type Packet struct {
	Time      time.Time // capture time as written
	Seq       uint16
	Timestamp uint32
	Marker    bool
	// Duplicate is true for the second copy of a duplicated packet.
	Duplicate bool
	// Event is true for an RFC 4733 telephone event (EventPayloadType).
	Event   bool
	Payload []byte
}

// Stream is what Write did for one direction of one call.
type Stream struct {
	Call      int  // index in Config.Calls
	FromAgent bool // agent → far; false for far → agent
	AgentID   string
	SSRC      uint32
	Src, Dst  netip.AddrPort
	VLAN      uint16
	Priority  uint8
	Codec     Codec
	// Sent counts sequence numbers used: packets written once plus lost.
	Sent int
	// Written counts frames written, duplicates included.
	Written    int
	Lost       int
	Duplicates int
	Reordered  int // packets given the reorder delay
	FirstSeq   uint16
	LastSeq    uint16
	// Packets and LostPackets are filled when Config.Record is set (the
	// payload as encoded, before any SRTP encryption):
	// Packets in file order, LostPackets in sequence order.
	Packets     []Packet
	LostPackets []Packet
}

// Result reports what Write wrote.
type Result struct {
	Frames int   // frames written, datagrams included
	Bytes  int64 // bytes written, headers included
	// Datagrams counts the frames of Config.Datagrams written.
	Datagrams int
	// Streams has two entries per call, in call order: FromAgent first.
	Streams []Stream
}

// newRand returns a deterministic generator for one purpose or stream.
func newRand(seed, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, stream^0x9e3779b97f4a7c15))
}
