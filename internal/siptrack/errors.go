package siptrack

import "errors"

// Reasons a message is not used; each is counted in Stats, never returned
// to the caller of Packet.
var (
	errNotSIP      = errors.New("not a SIP message")
	errMissingHdr  = errors.New("SIP message without Call-ID, CSeq, From or To")
	errBadBody     = errors.New("unreadable message body")
	errBadSDP      = errors.New("unreadable SDP")
	errParserPanic = errors.New("SIP parser failed on its input")
)
