package playout

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/zaf/g711"
)

// Codec names a payload format playout knows.
type Codec uint8

// Codecs. CodecNone marks payload types that are known but carry no sound
// to render (comfort noise, telephone events): they are never decoded;
// sent in a voice stream's sequence numbers, as phones send digits, they
// hold their place (not counted lost) and play as silence.
const (
	CodecUnknown Codec = iota
	CodecPCMU          // G.711 µ-law, static payload type 0
	CodecPCMA          // G.711 A-law, static payload type 8
	CodecG729          // G.729, G.729A and G.729B (Annex B SID frames), static payload type 18
	CodecG722          // G.722 wideband, static payload type 9 (RTP clock 8000 Hz)
	CodecOpus          // Opus, dynamic payload type (RTP clock 48000 Hz)
	CodecNone          // known, not rendered: CN (13), telephone-event
)

var codecNames = [...]string{"unknown", "PCMU", "PCMA", "G729", "G722", "opus", "none"}

// ClockRate returns the rate of the codec's RTP timestamps: 48000 for
// Opus (RFC 7587), 8000 for the others (for G.722 too, although its audio
// is 16 kHz: RFC 3551, section 4.5.2).
func (c Codec) ClockRate() int {
	if c == CodecOpus {
		return 48000
	}
	return 8000
}

// Decodable reports whether this binary plays the codec's audio: G.711
// always, G.729, G.722 and Opus when their libraries are built in.
func (c Codec) Decodable() bool {
	switch c {
	case CodecPCMU, CodecPCMA:
		return true
	case CodecG729:
		return G729BuiltIn
	case CodecG722:
		return G722BuiltIn
	case CodecOpus:
		return OpusBuiltIn
	}
	return false
}

// String returns the codec's SDP name.
func (c Codec) String() string {
	if int(c) < len(codecNames) {
		return codecNames[c]
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// ParseCodec maps an SDP encoding name (case-insensitive: PCMU, PCMA, G729,
// G729A, G729B, G722, opus, CN, telephone-event) to a Codec.
func ParseCodec(name string) (Codec, error) {
	switch strings.ToUpper(strings.TrimSpace(name)) {
	case "PCMU", "G711U", "ULAW":
		return CodecPCMU, nil
	case "PCMA", "G711A", "ALAW":
		return CodecPCMA, nil
	case "G729", "G729A", "G729B", "G729AB":
		return CodecG729, nil
	case "G722", "G.722":
		return CodecG722, nil
	case "OPUS":
		return CodecOpus, nil
	case "CN", "TELEPHONE-EVENT", "NONE":
		return CodecNone, nil
	}
	return CodecUnknown, fmt.Errorf("codec %q is not one of PCMU, PCMA, G729, G722, opus, CN, telephone-event", name)
}

// staticCodec returns the codec of a static payload type (RFC 3551), and
// CodecNone for payload type 101, which nearly every phone uses for
// telephone events (RFC 4733): it is used only when neither the SDP nor a
// --codec mapping names the type (see Config.Codec), so a capture without
// SIP does not report its digits as a stream that could not be played.
func staticCodec(pt uint8) Codec {
	switch pt {
	case 0:
		return CodecPCMU
	case 8:
		return CodecPCMA
	case 18:
		return CodecG729
	case 9:
		return CodecG722
	case 13, 101:
		return CodecNone
	}
	return CodecUnknown
}

// decoder turns one RTP payload into samples and conceals lost ones.
// Durations (samples, decode's result) are in time units of 1/8000 s;
// slices of samples hold perUnit (see unitSamples) samples per unit.
// A decoder belongs to one stream and is not safe for concurrent use.
type decoder interface {
	// samples returns how many samples payload decodes to, 0 if it is not
	// a valid payload of this codec.
	samples(payload []byte) int
	// decode decodes payload into pcm, which holds samples(payload)
	// samples, and returns the count.
	decode(payload []byte, pcm []int16) int
	// conceal fills pcm with a continuation of the signal for a lost or
	// missing frame.
	conceal(pcm []int16)
	// reset forgets the signal history (new SSRC).
	reset()
	// newTalkspurt is called when playout restarts after a pause.
	newTalkspurt()
	// dtx reports that the last payload decoded ended in a silence
	// descriptor (G.729B SID): the sender has stopped sending until
	// speech resumes, and comfort fills the silence.
	dtx() bool
	// comfort fills pcm with comfort noise continuing the last silence
	// descriptor. It is called only while dtx reports true.
	comfort(pcm []int16)
	// close releases what the decoder holds outside Go memory.
	close()
}

// fecDecoder is a decoder that can rebuild the samples just before a
// packet from that packet's forward error correction data (Opus in-band
// FEC). recover fills pcm, the last samples of a gap that ends at next,
// and reports false, leaving pcm alone, when it cannot; the stream then
// conceals.
type fecDecoder interface {
	decoder
	recover(next []byte, pcm []int16) bool
}

// newCgoDecoder makes the decoder of a codec built through cgo, or
// returns the error saying it is not built in.
// rate is the session's output rate: G.722 and Opus decode at it (G.722
// at 16000 at most), G.729 at 8000.
func newCgoDecoder(c Codec, rate int) (decoder, error) {
	switch c {
	case CodecG729:
		return newG729()
	case CodecG722:
		return newG722(rate)
	case CodecOpus:
		return newOpus(rate)
	}
	return nil, fmt.Errorf("codec %v has no decoder", c)
}

// Decode tables, built from github.com/zaf/g711 so the values are the
// library's (equal to sox's on all 256 codes).
var ulawTable, alawTable [256]int16

func init() {
	for i := range 256 {
		ulawTable[i] = g711.DecodeUlawFrame(uint8(i))
		alawTable[i] = g711.DecodeAlawFrame(uint8(i))
	}
}

// g711Decoder decodes µ-law or A-law and conceals losses by pitch
// waveform substitution (see plc.go).
type g711Decoder struct {
	table *[256]int16
	plc   plc
}

func newG711(c Codec) *g711Decoder {
	d := &g711Decoder{table: &ulawTable}
	if c == CodecPCMA {
		d.table = &alawTable
	}
	return d
}

func (d *g711Decoder) samples(p []byte) int { return len(p) }

func (d *g711Decoder) decode(p []byte, pcm []int16) int {
	t := d.table
	pcm = pcm[:len(p)]
	for i, b := range p {
		pcm[i] = t[b]
	}
	d.plc.good(pcm)
	return len(p)
}

func (d *g711Decoder) conceal(pcm []int16) { d.plc.conceal(pcm) }
func (d *g711Decoder) reset()              { d.plc.reset() }
func (d *g711Decoder) newTalkspurt()       { d.plc.reset() }
func (d *g711Decoder) close()              {}
func (d *g711Decoder) dtx() bool           { return false }
func (d *g711Decoder) comfort(pcm []int16) { clear(pcm) }

// ParsePayloadTypes parses mappings written PT=NAME ("96=G729") into a map
// for Config.PayloadTypes. An error names the bad mapping.
func ParsePayloadTypes(specs []string) (map[uint8]Codec, error) {
	m := map[uint8]Codec{}
	for _, s := range specs {
		pts, name, ok := strings.Cut(s, "=")
		pt, err := strconv.Atoi(strings.TrimSpace(pts))
		if !ok || err != nil || pt < 0 || pt > 127 {
			return nil, fmt.Errorf("codec mapping %q is not PT=NAME with a payload type 0 to 127", s)
		}
		c, err := ParseCodec(strings.TrimSpace(name))
		if err != nil {
			return nil, fmt.Errorf("codec mapping %q: %v", s, err)
		}
		m[uint8(pt)] = c
	}
	return m, nil
}

// EncodingCodec maps an SDP rtpmap encoding ("G729/8000",
// "telephone-event/8000", "PCMU/8000", "G722/8000", "opus/48000/2") to
// the codec that plays it. PCMU, PCMA, G729 and G722 (and their aliases,
// see ParseCodec) are played only at a clock rate of 8000 Hz and with one
// channel; opus only at 48000 Hz with one or two channels (RFC 7587 always
// writes opus/48000/2; the decoder mixes stereo down); CN and
// telephone-event at any rate are CodecNone (known, never played);
// anything else is CodecUnknown, so a type mapped to it is dropped rather
// than decoded as another codec.
func EncodingCodec(enc string) Codec {
	name, rest, _ := strings.Cut(enc, "/")
	c, err := ParseCodec(name)
	if err != nil || strings.EqualFold(name, "none") {
		return CodecUnknown
	}
	if c == CodecNone {
		return c
	}
	rate, channels, _ := strings.Cut(rest, "/")
	if c == CodecOpus {
		if rate != "48000" || channels != "" && channels != "1" && channels != "2" {
			return CodecUnknown
		}
		return c
	}
	if rate != "" && rate != "8000" || channels != "" && channels != "1" {
		return CodecUnknown
	}
	return c
}

// SDPPayloadTypes maps the payload types of an SDP (encodings as
// EncodingCodec reads them) to codecs, then lays explicit over it: a
// type in explicit keeps explicit's codec. Types above 127 are left out.
// The result is a new map; neither argument is modified.
func SDPPayloadTypes(sdp map[uint8]string, explicit map[uint8]Codec) map[uint8]Codec {
	m := make(map[uint8]Codec, len(sdp)+len(explicit))
	for pt, enc := range sdp {
		if pt <= 127 {
			m[pt] = EncodingCodec(enc)
		}
	}
	for pt, c := range explicit {
		m[pt] = c
	}
	return m
}
