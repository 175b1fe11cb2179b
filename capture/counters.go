package capture

import "errors"

// Reason indexes the per-reason counters of DecodeCounters.
type Reason uint8

// Reasons a frame was counted. The first ones are outcomes, the rest are
// decoding errors, one per sentinel of errors.go.
const (
	ReasonRTP             Reason = iota // RTP version 2
	ReasonRTCPSR                        // RTCP whose first packet is a sender report
	ReasonRTCPRR                        // RTCP whose first packet is a receiver report
	ReasonRTCPOther                     // other RTCP (SDES, BYE, APP, feedback)
	ReasonUDP                           // UDP that is neither RTP nor RTCP
	ReasonNotRTP                        // UDP that looked like RTP v2 but its header was invalid
	ReasonOther                         // not UDP over IP (ARP, TCP, ...)
	ReasonUnknownLinkType               // ErrUnknownLinkType
	ReasonTruncatedLink                 // ErrTruncatedEthernet, ErrTruncatedLink
	ReasonTruncatedVLAN                 // ErrTruncatedVLAN
	ReasonTruncatedIP                   // ErrTruncatedIP
	ReasonBadIPVersion                  // ErrBadIPVersion
	ReasonFragment                      // ErrFragment (IPv4 or IPv6 fragments, not reassembled)
	ReasonTruncatedUDP                  // ErrTruncatedUDP
	ReasonMalformed                     // any other error
	NumReasons
)

var reasonNames = [NumReasons]string{
	"rtp", "rtcp_sr", "rtcp_rr", "rtcp_other", "udp", "rtp_invalid", "other",
	"unknown_link_type", "truncated_link", "truncated_vlan", "truncated_ip",
	"bad_ip_version", "ip_fragment", "truncated_udp", "malformed",
}

// String returns the reason's name, in snake case, as used in metrics and
// JSON.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// IsError reports whether r counts a frame that failed to decode.
func (r Reason) IsError() bool { return r >= ReasonUnknownLinkType && r < NumReasons }

// ReasonOf classifies the outcome of Decode: err is its result and p the
// packet it filled.
func ReasonOf(p *Packet, err error) Reason {
	if err == nil {
		switch p.Kind {
		case KindRTP:
			return ReasonRTP
		case KindRTCP:
			switch p.RTCPType {
			case rtcpSR:
				return ReasonRTCPSR
			case rtcpRR:
				return ReasonRTCPRR
			}
			return ReasonRTCPOther
		case KindUDP:
			if p.RTPErr != nil {
				return ReasonNotRTP
			}
			return ReasonUDP
		}
		return ReasonOther
	}
	// Compare the common sentinels directly: errors.Is walks the chain and
	// costs more, and Decode returns the sentinels unwrapped.
	switch err {
	case ErrUnknownLinkType:
		return ReasonUnknownLinkType
	case ErrTruncatedEthernet, ErrTruncatedLink:
		return ReasonTruncatedLink
	case ErrTruncatedVLAN:
		return ReasonTruncatedVLAN
	case ErrTruncatedIP:
		return ReasonTruncatedIP
	case ErrBadIPVersion:
		return ReasonBadIPVersion
	case ErrFragment:
		return ReasonFragment
	case ErrTruncatedUDP:
		return ReasonTruncatedUDP
	}
	if errors.Is(err, ErrFragment) {
		return ReasonFragment
	}
	return ReasonMalformed
}

// DecodeCounters counts decoded frames by outcome. The zero value is ready.
// It is not safe for concurrent use: keep one per worker goroutine and add
// them up with Merge for reporting.
type DecodeCounters struct {
	Frames uint64
	Counts [NumReasons]uint64
}

// Count classifies one result of Decode and counts it.
func (c *DecodeCounters) Count(p *Packet, err error) Reason {
	r := ReasonOf(p, err)
	c.Frames++
	c.Counts[r]++
	return r
}

// Errors returns the number of frames that failed to decode.
func (c *DecodeCounters) Errors() uint64 {
	var n uint64
	for r := ReasonUnknownLinkType; r < NumReasons; r++ {
		n += c.Counts[r]
	}
	return n
}

// Merge adds o's counts to c.
func (c *DecodeCounters) Merge(o *DecodeCounters) {
	c.Frames += o.Frames
	for i := range c.Counts {
		c.Counts[i] += o.Counts[i]
	}
}
