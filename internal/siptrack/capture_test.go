package siptrack

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// realCaptures are the captures under testdata/captures (see its README)
// with the SIP ports they use and the tshark options that make it read
// SIP on them.
var realCaptures = []struct {
	file     string
	ports    []uint16
	decodeAs []string
	// Known disagreements: SIP messages the SIP parser refuses, SDP
	// bodies the SDP parser refuses (and their frames).
	badSIP, badSDP int
	badSDPFrames   []int
}{
	{file: "sip_ipv4_tcp.pcap", ports: []uint16{5060}},
	{file: "sip_ipv4_tcp_fragmented.pcap", ports: []uint16{6060}, decodeAs: []string{"-d", "tcp.port==6060,sip"}},
	{file: "sip_ipv4_tcp_retrans.pcap", ports: []uint16{5060, 5160}, decodeAs: []string{"-d", "udp.port==5160,sip"}},
	// Its URIs hold IPv6 addresses without brackets
	// (sip:4321@fec0:0:0:0:216:d3ff:fe0d:22c:5060), which RFC 3261
	// forbids and sipgo refuses.
	{file: "sip_ipv6_udp.pcap", ports: []uint16{5060}, badSIP: 6},
	// Frame 1 is an attack: its c= line holds an SQL injection and its
	// body is cut short of its Content-Length.
	{file: "ipip0.pcap", ports: []uint16{5060}, badSDP: 1, badSDPFrames: []int{1}},
	{file: "fax_t38_sip.pcap", ports: []uint16{5060}},
}

// segment is one UDP datagram or TCP segment of a capture.
type segment struct {
	frame    int
	ts       time.Time
	vlan     uint16
	src, dst netip.AddrPort
	tcp      bool
	seq      uint32
	payload  []byte
}

// readSegments returns the UDP and TCP payloads of a capture whose source
// or destination port is a SIP port, decoded with gopacket (the innermost
// IP header counts, for IP in IP).
func readSegments(tb testing.TB, path string, isSIP func(uint16) bool) []segment {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	var out []segment
	for frame := 1; ; frame++ {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			tb.Fatalf("%s frame %d: %v", path, frame, err)
		}
		pkt := gopacket.NewPacket(data, r.LinkType(), gopacket.DecodeOptions{NoCopy: true})
		var srcIP, dstIP netip.Addr
		var vlan uint16
		ip := func(a net.IP) netip.Addr { x, _ := netip.AddrFromSlice(a); return x.Unmap() }
		for _, l := range pkt.Layers() {
			switch l := l.(type) {
			case *layers.Dot1Q:
				if vlan == 0 {
					vlan = l.VLANIdentifier
				}
			case *layers.IPv4:
				srcIP, dstIP = ip(l.SrcIP), ip(l.DstIP)
			case *layers.IPv6:
				srcIP, dstIP = ip(l.SrcIP), ip(l.DstIP)
			case *layers.UDP:
				if isSIP(uint16(l.SrcPort)) || isSIP(uint16(l.DstPort)) {
					out = append(out, segment{frame, ci.Timestamp, vlan, netip.AddrPortFrom(srcIP, uint16(l.SrcPort)), netip.AddrPortFrom(dstIP, uint16(l.DstPort)), false, 0, l.Payload})
				}
			case *layers.TCP:
				if isSIP(uint16(l.SrcPort)) || isSIP(uint16(l.DstPort)) {
					out = append(out, segment{frame, ci.Timestamp, vlan, netip.AddrPortFrom(srcIP, uint16(l.SrcPort)), netip.AddrPortFrom(dstIP, uint16(l.DstPort)), true, l.Seq, l.Payload})
				}
			}
		}
	}
}

func feed(tr *Tracker, segs []segment) {
	for _, s := range segs {
		if s.tcp {
			tr.TCPSegment(s.ts, s.vlan, s.src, s.dst, s.seq, s.payload)
		} else {
			tr.Packet(s.ts, s.vlan, s.src, s.dst, false, s.payload)
		}
	}
}

// pdmlNode is an element of tshark's PDML output.
type pdmlNode struct {
	XMLName  xml.Name
	Name     string     `xml:"name,attr"`
	Show     string     `xml:"show,attr"`
	Children []pdmlNode `xml:",any"`
}

// tsharkMsg is what tshark's dissectors say about one SIP message.
type tsharkMsg struct {
	frame  int
	fields map[string][]string // sip.* fields
	sdp    map[string][]string // sdp.* fields of its body, nil without SDP
}

func (n *pdmlNode) collect(into map[string][]string, stopAt string) {
	for i := range n.Children {
		c := &n.Children[i]
		if c.XMLName.Local == "proto" && c.Name == stopAt {
			continue
		}
		if c.XMLName.Local == "field" && c.Name != "" {
			into[c.Name] = append(into[c.Name], c.Show)
		}
		c.collect(into, stopAt)
	}
}

func (n *pdmlNode) find(proto string, out *[]*pdmlNode) {
	for i := range n.Children {
		c := &n.Children[i]
		if c.XMLName.Local == "proto" && c.Name == proto {
			*out = append(*out, c)
			continue
		}
		c.find(proto, out)
	}
}

// tsharkMessages runs tshark on path and returns every SIP message it
// dissects, in order.
func tsharkMessages(t *testing.T, path string, decodeAs []string) []tsharkMsg {
	t.Helper()
	args := append([]string{"-r", path, "-n"}, decodeAs...)
	args = append(args, "-Y", "sip", "-T", "pdml")
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark %s: %v", strings.Join(args, " "), err)
	}
	var doc pdmlNode
	if err := xml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("tshark's PDML: %v", err)
	}
	var msgs []tsharkMsg
	for i := range doc.Children {
		pkt := &doc.Children[i]
		info := map[string][]string{}
		var geninfo []*pdmlNode
		pkt.find("geninfo", &geninfo)
		for _, g := range geninfo {
			g.collect(info, "")
		}
		var frame int
		if len(info["num"]) > 0 {
			fmt.Sscan(info["num"][0], &frame)
		}
		var sips []*pdmlNode
		pkt.find("sip", &sips)
		for _, s := range sips {
			m := tsharkMsg{frame: frame, fields: map[string][]string{}}
			s.collect(m.fields, "sdp")
			var sdps []*pdmlNode
			s.find("sdp", &sdps)
			for _, d := range sdps {
				if m.sdp == nil {
					m.sdp = map[string][]string{}
				}
				d.collect(m.sdp, "")
			}
			msgs = append(msgs, m)
		}
	}
	return msgs
}

func first(m map[string][]string, k string) string {
	if v := m[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// sdpFacts is what both sides say about one SDP body.
type sdpFacts struct {
	mlines []string          // "kind port profile formats", sorted
	addrs  []string          // c= addresses, sorted, unique
	rtpmap map[string]string // payload type → encoding from a=rtpmap
}

func (s sdpFacts) String() string {
	return fmt.Sprintf("m=%q c=%v rtpmap=%v", s.mlines, s.addrs, s.rtpmap)
}

func uniqSorted(s []string) []string {
	sort.Strings(s)
	return slices.Compact(s)
}

// tsharkFacts turns tshark's sdp fields into facts.
func tsharkFacts(t *testing.T, f map[string][]string) sdpFacts {
	want := sdpFacts{addrs: uniqSorted(slices.Clone(f["sdp.connection_info.address"])), rtpmap: map[string]string{}}
	offered := map[string]bool{}
	for _, m := range f["sdp.media"] {
		fs := strings.Fields(m)
		if len(fs) < 3 {
			t.Fatalf("tshark m= line %q", m)
		}
		port, _, _ := strings.Cut(fs[1], "/")
		formats := fs[3:]
		if !strings.Contains(fs[2], "RTP") {
			formats = []string{"-"}
		}
		for _, p := range formats {
			offered[p] = true
		}
		slices.Sort(formats)
		want.mlines = append(want.mlines, fmt.Sprintf("%s %s %s %s", fs[0], port, fs[2], strings.Join(formats, " ")))
	}
	sort.Strings(want.mlines)
	for _, a := range f["sdp.media_attr"] {
		if v, ok := strings.CutPrefix(a, "rtpmap:"); ok {
			pt, enc, _ := strings.Cut(v, " ")
			if offered[pt] {
				// rtpmap lines of payload types no m= line offers are
				// not the tracker's business.
				want.rtpmap[pt] = strings.TrimSpace(enc)
			}
		}
	}
	return want
}

// trackerFacts turns the tracker's media into facts, naming in rtpmap the
// payload types tshark saw an rtpmap for; the others must have their
// static names.
func trackerFacts(t *testing.T, media []Media, rtpmap map[string]string) sdpFacts {
	got := sdpFacts{rtpmap: map[string]string{}}
	for _, m := range media {
		formats := []string{"-"}
		if m.PayloadTypes != nil {
			formats = nil
			for pt, enc := range m.PayloadTypes {
				p := fmt.Sprint(pt)
				formats = append(formats, p)
				if _, ok := rtpmap[p]; ok {
					got.rtpmap[p] = enc
				} else if enc != staticPayloadTypes[pt] {
					t.Errorf("payload type %d named %q without rtpmap", pt, enc)
				}
			}
			slices.Sort(formats)
		}
		got.mlines = append(got.mlines, fmt.Sprintf("%s %d %s %s", m.Kind, m.Addr.Port(), m.Profile, strings.Join(formats, " ")))
		if m.Addr.IsValid() {
			got.addrs = append(got.addrs, m.Addr.Addr().String())
		}
	}
	sort.Strings(got.mlines)
	got.addrs = uniqSorted(got.addrs)
	return got
}

// TestRealCaptures feeds real captures through the tracker and checks
// that tshark's sip and sdp dissectors agree with what it learned: the
// number of SIP messages, the Call-IDs of the calls, the registered
// extensions, and for every SDP of a call its media lines (type, port,
// profile, payload types), connection addresses and rtpmap encodings.
// Known disagreements (input the SIP or SDP parser refuses) are listed
// per capture and checked to be counted as malformed.
func TestRealCaptures(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark is not installed: the comparison with its SIP and SDP dissectors is skipped")
	}
	for _, rc := range realCaptures {
		t.Run(rc.file, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("testdata", "captures", rc.file)
			tr := New(Config{Ports: rc.ports, CallLinger: 1e6 * time.Hour, RingTimeout: 1e6 * time.Hour})
			segs := readSegments(t, path, tr.IsSIPPort)

			type key struct {
				frame  int
				callID string
			}
			mine := map[key][]Media{}
			frame := 0
			tr.sdpSeen = func(id string, m []Media) { mine[key{frame, id}] = append(mine[key{frame, id}], m...) }
			for _, s := range segs {
				frame = s.frame
				feed(tr, []segment{s})
			}
			st := tr.Stats()
			msgs := tsharkMessages(t, path, rc.decodeAs)

			if int(st.Messages) != len(msgs)-rc.badSIP || st.Malformed != uint64(rc.badSIP) || st.SDPMalformed != uint64(rc.badSDP) {
				t.Errorf("tracker read %d messages (%d malformed, %d bad SDP), tshark %d; want %d and %d refused",
					st.Messages, st.Malformed, st.SDPMalformed, len(msgs), rc.badSIP, rc.badSDP)
			}

			// Calls: Call-IDs of INVITEs and of their 101 to 299 responses.
			wantCalls, wantRegs := []string{}, []string{}
			for _, m := range msgs {
				method, cseq, status := first(m.fields, "sip.Method"), first(m.fields, "sip.CSeq.method"), first(m.fields, "sip.Status-Code")
				var code int
				fmt.Sscan(status, &code)
				if method == "INVITE" || (cseq == "INVITE" && code > 100 && code < 300) {
					wantCalls = append(wantCalls, first(m.fields, "sip.Call-ID"))
				}
				if cseq == "REGISTER" && code == 200 {
					wantRegs = append(wantRegs, first(m.fields, "sip.to.user"))
				}
			}
			gotCalls, gotRegs := []string{}, []string{}
			for _, c := range tr.Snapshot().Calls {
				gotCalls = append(gotCalls, c.CallID)
			}
			for _, r := range tr.Snapshot().Registrations {
				gotRegs = append(gotRegs, r.Extension)
			}
			if gotCalls, wantCalls = uniqSorted(gotCalls), uniqSorted(wantCalls); !slices.Equal(gotCalls, wantCalls) && rc.badSIP == 0 {
				t.Errorf("calls %q, tshark %q", gotCalls, wantCalls)
			}
			if gotRegs, wantRegs = uniqSorted(gotRegs), uniqSorted(wantRegs); !slices.Equal(gotRegs, wantRegs) {
				t.Errorf("registered %q, tshark %q", gotRegs, wantRegs)
			}

			// SDP of the calls, message by message.
			calls := map[string]bool{}
			for _, id := range gotCalls {
				calls[id] = true
			}
			compared, nmedia := 0, 0
			for _, m := range msgs {
				id := first(m.fields, "sip.Call-ID")
				if m.sdp == nil || !calls[id] || first(m.fields, "sip.CSeq.method") == "OPTIONS" {
					continue
				}
				k := key{m.frame, id}
				media, ok := mine[k]
				if !ok {
					if slices.Contains(rc.badSDPFrames, m.frame) {
						continue
					}
					t.Errorf("frame %d: tracker read no SDP of call %s; tshark %v", m.frame, id, tsharkFacts(t, m.sdp))
					continue
				}
				delete(mine, k)
				want := tsharkFacts(t, m.sdp)
				got := trackerFacts(t, media, want.rtpmap)
				if got.String() != want.String() {
					t.Errorf("frame %d call %s:\n tracker %v\n tshark  %v", m.frame, id, got, want)
				}
				compared++
				nmedia += len(media)
			}
			for k := range mine {
				t.Errorf("frame %d: tracker read SDP of call %s that tshark did not", k.frame, k.callID)
			}
			t.Logf("%s: %d SIP messages, %d calls, %d registrations, %d SDP bodies (%d media lines) agree with tshark; %d messages and %d SDP bodies refused as expected",
				rc.file, len(msgs), len(wantCalls), len(wantRegs), compared, nmedia, rc.badSIP, rc.badSDP)
		})
	}
}
