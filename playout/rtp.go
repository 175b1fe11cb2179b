package playout

import (
	"encoding/binary"
	"fmt"
)

// rtpHeader is the part of an RTP header playout needs.
type rtpHeader struct {
	marker bool
	pt     uint8
	seq    uint16
	ts     uint32
	ssrc   uint32
}

// parseRTP decodes the fixed header of b without allocating. The returned
// payload aliases b (header, CSRCs, extension and padding removed).
func parseRTP(b []byte) (h rtpHeader, payload []byte, err error) {
	if len(b) < 12 {
		return h, nil, ErrShortRTP
	}
	if b[0]>>6 != 2 {
		return h, nil, ErrNotRTP
	}
	cc := int(b[0] & 0x0f)
	h.marker = b[1]&0x80 != 0
	h.pt = b[1] & 0x7f
	h.seq = binary.BigEndian.Uint16(b[2:4])
	h.ts = binary.BigEndian.Uint32(b[4:8])
	h.ssrc = binary.BigEndian.Uint32(b[8:12])
	off := 12 + 4*cc
	if len(b) < off {
		return h, nil, ErrShortRTP
	}
	if b[0]&0x10 != 0 { // extension
		if len(b) < off+4 {
			return h, nil, ErrShortRTP
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:off+4]))
		if len(b) < off {
			return h, nil, ErrShortRTP
		}
	}
	end := len(b)
	if b[0]&0x20 != 0 { // padding
		pad := int(b[end-1])
		if pad == 0 || end-pad < off {
			return h, nil, fmt.Errorf("RTP padding of %d bytes: %w", pad, ErrShortRTP)
		}
		end -= pad
	}
	return h, b[off:end], nil
}
