package siptrack

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// maxMultipartParts bounds the parts looked at in a multipart body.
const maxMultipartParts = 8

// sdpBody returns the SDP carried by a message body: the body itself for
// application/sdp, the first application/sdp part of a multipart body,
// nil when there is none.
func sdpBody(contentType string, body []byte) ([]byte, error) {
	if len(body) == 0 || contentType == "" {
		return nil, nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("%w: content type %q: %w", errBadBody, contentType, err)
	}
	switch {
	case mt == "application/sdp":
		return body, nil
	case strings.HasPrefix(mt, "multipart/"):
		boundary := params["boundary"]
		if boundary == "" {
			return nil, fmt.Errorf("%w: multipart body without boundary", errBadBody)
		}
		r := multipart.NewReader(bytes.NewReader(body), boundary)
		for range maxMultipartParts {
			p, err := r.NextPart()
			if err == io.EOF {
				return nil, nil
			}
			if err != nil {
				return nil, fmt.Errorf("%w: multipart body: %w", errBadBody, err)
			}
			pt, _, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
			if err != nil || pt != "application/sdp" {
				continue
			}
			b, err := io.ReadAll(io.LimitReader(p, int64(len(body))))
			if err != nil {
				return nil, fmt.Errorf("%w: multipart body: %w", errBadBody, err)
			}
			return b, nil
		}
	}
	return nil, nil
}

// parseSDP reads an SDP into one Media per m= line.
func parseSDP(b []byte) ([]Media, error) {
	b, orig := pionCompat(b)
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadSDP, err)
	}
	var sessAddr netip.Addr
	if sd.ConnectionInformation != nil {
		sessAddr = connAddr(sd.ConnectionInformation)
	}
	sessDir := direction(sd.Attributes, "sendrecv")
	out := make([]Media, 0, len(sd.MediaDescriptions))
	for i, md := range sd.MediaDescriptions {
		if md == nil {
			continue
		}
		if o, ok := orig[i]; ok {
			md.MediaName.Media, md.MediaName.Protos = o[0], []string{o[1]}
		}
		addr := sessAddr
		if md.ConnectionInformation != nil {
			if a := connAddr(md.ConnectionInformation); a.IsValid() {
				addr = a
			}
		}
		port := md.MediaName.Port.Value
		if port < 0 || port > 65535 {
			return nil, fmt.Errorf("%w: media port %d", errBadSDP, port)
		}
		m := Media{
			Kind:      md.MediaName.Media,
			Profile:   strings.Join(md.MediaName.Protos, "/"),
			Direction: direction(md.Attributes, sessDir),
		}
		if addr.IsValid() {
			m.Addr = netip.AddrPortFrom(addr, uint16(port))
			m.RTCP = rtcpAddr(md.Attributes, m.Addr)
		}
		rtp := strings.Contains(m.Profile, "RTP")
		rtpmap := map[uint8]string{}
		for _, a := range md.Attributes {
			switch a.Key {
			case "rtpmap":
				pt, enc, ok := strings.Cut(a.Value, " ")
				if n, err := strconv.ParseUint(pt, 10, 7); ok && err == nil {
					rtpmap[uint8(n)] = strings.TrimSpace(enc)
				}
			case "crypto":
				m.Crypto = append(m.Crypto, a.Value)
			}
		}
		if rtp {
			m.PayloadTypes = make(map[uint8]string, len(md.MediaName.Formats))
			for _, f := range md.MediaName.Formats {
				n, err := strconv.ParseUint(f, 10, 7)
				if err != nil {
					continue
				}
				pt := uint8(n)
				if enc, ok := rtpmap[pt]; ok {
					m.PayloadTypes[pt] = enc
				} else {
					m.PayloadTypes[pt] = staticPayloadTypes[pt]
				}
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// pionMedia and pionProtos are the media types and transport parts
// pion/sdp accepts on an m= line.
var (
	pionMedia  = []string{"audio", "video", "text", "application", "message"}
	pionProtos = []string{"UDP", "RTP", "AVP", "SAVP", "SAVPF", "TLS", "DTLS", "SCTP", "AVPF", "TCP", "MSRP", "BFCP", "UDT", "IX", "MRCPv2", "FEC"}
)

// pionCompat rewrites the m= lines whose media type or transport pion/sdp
// rejects (T.38 fax: "m=image 5004 udptl t38") as "application ... UDP"
// and returns, by m= line index, the original media type and transport to
// put back after parsing.
func pionCompat(b []byte) ([]byte, map[int][2]string) {
	var orig map[int][2]string
	var out []byte
	idx := -1
	for rest := b; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		if !bytes.HasPrefix(line, []byte("m=")) {
			if out != nil {
				out = append(out, line...)
			}
			continue
		}
		idx++
		f := strings.Fields(string(line[2:]))
		known := len(f) >= 3 && slices.Contains(pionMedia, f[0])
		if len(f) >= 3 {
			for p := range strings.SplitSeq(f[2], "/") {
				known = known && slices.Contains(pionProtos, p)
			}
		}
		if known || len(f) < 3 {
			if out != nil {
				out = append(out, line...)
			}
			continue
		}
		if out == nil {
			out = append(make([]byte, 0, len(b)+16), b[:len(b)-len(line)-len(rest)]...)
			orig = map[int][2]string{}
		}
		orig[idx] = [2]string{f[0], f[2]}
		f[0], f[2] = "application", "UDP"
		out = append(out, "m="+strings.Join(f, " ")+"\r\n"...)
	}
	if out == nil {
		return b, nil
	}
	return out, orig
}

// connAddr returns the address of a c= line, invalid when it is not an
// IPv4 or IPv6 address (a host name, another network type).
func connAddr(c *sdp.ConnectionInformation) netip.Addr {
	if c.Address == nil || c.NetworkType != "IN" {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(c.Address.Address)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// direction returns the last direction attribute among attrs, def when
// there is none.
func direction(attrs []sdp.Attribute, def string) string {
	d := def
	for _, a := range attrs {
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			d = a.Key
		}
	}
	return d
}

// rtcpAddr applies a=rtcp (RFC 3605) and a=rtcp-mux (RFC 5761) to the RTP
// address.
func rtcpAddr(attrs []sdp.Attribute, rtp netip.AddrPort) netip.AddrPort {
	out := netip.AddrPortFrom(rtp.Addr(), rtp.Port()+1)
	if rtp.Port() == 0 || rtp.Port() == 65535 {
		out = netip.AddrPortFrom(rtp.Addr(), 0)
	}
	for _, a := range attrs {
		switch a.Key {
		case "rtcp-mux":
			return rtp
		case "rtcp":
			f := strings.Fields(a.Value)
			if len(f) == 0 {
				continue
			}
			p, err := strconv.ParseUint(f[0], 10, 16)
			if err != nil {
				continue
			}
			addr := rtp.Addr()
			if len(f) >= 4 && f[1] == "IN" {
				if x, err := netip.ParseAddr(f[3]); err == nil {
					addr = x.Unmap()
				}
			}
			out = netip.AddrPortFrom(addr, uint16(p))
		}
	}
	return out
}

// staticPayloadTypes are the RTP payload types of RFC 3551 tables 4 and 5,
// in rtpmap form.
var staticPayloadTypes = map[uint8]string{
	0:  "PCMU/8000",
	3:  "GSM/8000",
	4:  "G723/8000",
	5:  "DVI4/8000",
	6:  "DVI4/16000",
	7:  "LPC/8000",
	8:  "PCMA/8000",
	9:  "G722/8000",
	10: "L16/44100/2",
	11: "L16/44100",
	12: "QCELP/8000",
	13: "CN/8000",
	14: "MPA/90000",
	15: "G728/8000",
	16: "DVI4/11025",
	17: "DVI4/22050",
	18: "G729/8000",
	25: "CelB/90000",
	26: "JPEG/90000",
	28: "nv/90000",
	31: "H261/90000",
	32: "MPV/90000",
	33: "MP2T/90000",
	34: "H263/90000",
}
