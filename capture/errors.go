package capture

import "errors"

// Decoding errors. Each names one reason a frame was rejected; counters are
// kept per reason.
var (
	ErrUnknownLinkType   = errors.New("unknown link type")
	ErrTruncatedEthernet = errors.New("truncated Ethernet header")
	ErrTruncatedLink     = errors.New("truncated link-layer header")
	ErrTruncatedVLAN     = errors.New("truncated VLAN tag")
	ErrTruncatedIP       = errors.New("truncated IP header or packet")
	ErrBadIPVersion      = errors.New("bad IP version")
	ErrFragment          = errors.New("IP fragment")
	ErrTruncatedUDP      = errors.New("truncated UDP header or datagram")
	ErrTruncatedTCP      = errors.New("truncated TCP header")
	ErrTruncatedRTP      = errors.New("truncated RTP header")
	ErrBadRTPVersion     = errors.New("RTP version is not 2")
	ErrBadRTPPadding     = errors.New("RTP padding longer than the packet")
)

// ErrNotCapture is returned when a file is neither pcap nor pcapng.
var ErrNotCapture = errors.New("not a capture file")
