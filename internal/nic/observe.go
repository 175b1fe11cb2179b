package nic

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/silentmon/silentmon/capture"
)

// TagPlace says where a frame's outer VLAN tag was found.
type TagPlace uint8

// Places of a VLAN tag.
const (
	NoTag        TagPlace = iota // neither in the frame nor out of band
	TagInFrame                   // 802.1Q header present in the frame
	TagOutOfBand                 // stripped by the driver, reported in PACKET_AUXDATA
)

// String names the place as the report does.
func (p TagPlace) String() string {
	switch p {
	case TagInFrame:
		return "tag in frame"
	case TagOutOfBand:
		return "tag out of band"
	}
	return "no tag"
}

// MarshalText implements encoding.TextMarshaler.
func (p TagPlace) MarshalText() ([]byte, error) {
	switch p {
	case TagInFrame:
		return []byte("frame"), nil
	case TagOutOfBand:
		return []byte("out-of-band"), nil
	}
	return []byte("none"), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *TagPlace) UnmarshalText(b []byte) error {
	switch string(b) {
	case "frame":
		*p = TagInFrame
	case "out-of-band":
		*p = TagOutOfBand
	case "none":
		*p = NoTag
	default:
		return fmt.Errorf("tag place %q is not frame, out-of-band or none", b)
	}
	return nil
}

// Observation is what the listener learnt from one frame.
type Observation struct {
	Time     time.Time      `json:"time"`
	Tag      TagPlace       `json:"tag"`
	VLAN     uint16         `json:"vlan"` // outer VLAN ID, when Tag is not NoTag
	Priority uint8          `json:"priority"`
	TPID     uint16         `json:"tpid,omitempty"`
	Src      [6]byte        `json:"-"`
	Dst      [6]byte        `json:"-"`
	SrcMAC   string         `json:"src_mac"`
	DstMAC   string         `json:"dst_mac"`
	SrcAddr  netip.AddrPort `json:"src,omitzero"`
	DstAddr  netip.AddrPort `json:"dst,omitzero"`
	Kind     capture.Kind   `json:"-"`
	// Test says the frame is a smnic test frame (its payload carries the
	// marker); Marker is then valid.
	Test   bool   `json:"test"`
	Marker Marker `json:"-"`
	// Match says the frame counts towards the verdict: it carries the
	// expected VLAN (and, when the run is known, belongs to it).
	Match bool `json:"match"`
}

// Counts are the listener's tallies.
type Counts struct {
	// Expected is the number of tagged frames the verdict needs.
	Expected int `json:"expected"`
	// Tagged counts the frames that carry the expected VLAN, with the tag
	// in the frame (InFrame) or out of band (OutOfBand).
	Tagged    int `json:"tagged"`
	InFrame   int `json:"tag_in_frame"`
	OutOfBand int `json:"tag_out_of_band"`
	// Untagged counts test frames that arrived without any tag.
	Untagged int `json:"untagged"`
	// WrongVLAN counts test frames tagged with another VLAN.
	WrongVLAN int `json:"wrong_vlan"`
	// OtherVLANs counts every frame tagged with another VLAN, by VLAN ID.
	OtherVLANs map[uint16]int `json:"other_vlans,omitempty"`
	// Other counts the frames that concern none of the above.
	Other int `json:"other_frames"`
	// Seen counts every frame read.
	Seen int `json:"frames_seen"`
	// DecodeErrors counts frames too short or malformed to decode.
	DecodeErrors int `json:"decode_errors"`
}

// Accounted is the number of test frames the listener has placed: tagged,
// untagged or on another VLAN.
func (c *Counts) Accounted() int { return c.Tagged + c.Untagged + c.WrongVLAN }

// Observer classifies frames and keeps the counts. The zero value is not
// usable; set VLAN. An Observer is not safe for concurrent use.
type Observer struct {
	// VLAN is the VLAN ID the test expects.
	VLAN uint16
	// RunID, if not zero, restricts the test frames to one run (selftest):
	// a tagged frame counts only if it carries this run's marker. With 0,
	// every frame tagged with VLAN counts, as WinDump's "vlan" filter did.
	RunID uint32
	// Counts are the tallies so far.
	Counts Counts

	pkt capture.Packet
}

// Observe decodes frame (Ethernet) with its receive info and updates the
// counts. It does not allocate, except the first time a frame of a new
// other VLAN is counted.
func (o *Observer) Observe(frame []byte, info *RxInfo) Observation {
	o.Counts.Seen++
	ci := capture.Info{VLANValid: info.VLANValid, VLANTCI: info.VLANTCI, VLANTPID: info.VLANTPID}
	ob := Observation{Time: info.Time}
	if err := o.pkt.Decode(frame, capture.LinkEthernet, &ci); err != nil {
		// A truncated frame may still say enough (its MACs and tag) to
		// be counted; keep what Decode filled.
		o.Counts.DecodeErrors++
	}
	p := &o.pkt
	ob.Src, ob.Dst = p.SrcMAC, p.DstMAC
	if tag, ok := p.OuterVLAN(); ok {
		ob.Tag = TagInFrame
		if info.VLANValid {
			ob.Tag = TagOutOfBand
		}
		ob.VLAN, ob.Priority, ob.TPID = tag.ID(), tag.Priority(), tag.TPID
	}
	ob.Kind = p.Kind
	if p.Kind != capture.KindOther {
		ob.SrcAddr, ob.DstAddr = p.Src, p.Dst
	}
	if p.Kind == capture.KindRTP || p.Kind == capture.KindUDP {
		ob.Marker, ob.Test = ParseMarker(p.UDP)
	}
	inRun := ob.Test && (o.RunID == 0 || ob.Marker.RunID == o.RunID)
	c := &o.Counts
	switch {
	case ob.Tag != NoTag && ob.VLAN == o.VLAN && (o.RunID == 0 || inRun):
		ob.Match = true
		c.Tagged++
		if ob.Tag == TagOutOfBand {
			c.OutOfBand++
		} else {
			c.InFrame++
		}
	case ob.Tag != NoTag && ob.VLAN != o.VLAN:
		if c.OtherVLANs == nil {
			c.OtherVLANs = make(map[uint16]int)
		}
		c.OtherVLANs[ob.VLAN]++
		if inRun {
			c.WrongVLAN++
		} else {
			c.Other++
		}
	case ob.Tag == NoTag && inRun:
		c.Untagged++
	default:
		c.Other++
	}
	return ob
}

// Relevant reports whether the observation concerns the test (worth a line
// in the report): it matches, is a test frame, or is tagged.
func (ob *Observation) Relevant() bool { return ob.Match || ob.Test || ob.Tag != NoTag }

// Line formats the observation as one line in the manner of the WinDump
// sample: time, the tag, source and destination.
func (ob *Observation) Line() string {
	b := make([]byte, 0, 160)
	b = ob.Time.AppendFormat(b, "15:04:05.000000")
	b = append(b, ' ')
	b = ob.appendHeaders(b)
	b = append(b, " ("...)
	b = append(b, ob.Tag.String()...)
	if ob.Test {
		b = fmt.Appendf(b, ", test frame %d", ob.Marker.Index+1)
		if ob.Marker.Total > 0 {
			b = fmt.Appendf(b, "/%d", ob.Marker.Total)
		}
	}
	b = append(b, ')')
	return string(b)
}

// Headers formats the tag, the MACs and the addresses, as Line does
// without the time and the remarks.
func (ob *Observation) Headers() string { return string(ob.appendHeaders(nil)) }

func (ob *Observation) appendHeaders(b []byte) []byte {
	if ob.Tag == NoTag {
		b = append(b, "no VLAN tag"...)
	} else {
		if ob.TPID == 0x88a8 {
			b = append(b, "802.1ad"...)
		} else {
			b = append(b, "802.1Q"...)
		}
		b = append(b, " vlan "...)
		b = strconv.AppendUint(b, uint64(ob.VLAN), 10)
		b = append(b, ", p "...)
		b = strconv.AppendUint(b, uint64(ob.Priority), 10)
	}
	b = append(b, ", "...)
	b = append(b, FormatMAC(ob.Src)...)
	b = append(b, " > "...)
	b = append(b, FormatMAC(ob.Dst)...)
	if ob.SrcAddr.IsValid() {
		b = append(b, ", "...)
		b = appendAddr(b, ob.SrcAddr)
		b = append(b, " > "...)
		b = appendAddr(b, ob.DstAddr)
		switch ob.Kind {
		case capture.KindRTP:
			b = append(b, ": UDP, RTP"...)
		case capture.KindRTCP:
			b = append(b, ": UDP, RTCP"...)
		case capture.KindUDP:
			b = append(b, ": UDP"...)
		}
	}
	return b
}

// appendAddr appends addr in tcpdump's form, address.port.
func appendAddr(b []byte, ap netip.AddrPort) []byte {
	b = ap.Addr().AppendTo(b)
	b = append(b, '.')
	return strconv.AppendUint(b, uint64(ap.Port()), 10)
}
