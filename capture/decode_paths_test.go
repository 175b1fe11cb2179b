package capture_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/silentmon/silentmon/capture"
)

// samePacket fails unless p and g, decoded from frame, are equal in every
// field, slices compared by where they start in frame and their length
// and capacity, and in the stream key and IPv4 addresses.
func samePacket(t *testing.T, name string, frame []byte, p, g *capture.Packet, perr, gerr error) {
	t.Helper()
	off := func(b []byte) [3]int {
		if b == nil {
			return [3]int{-1, 0, 0}
		}
		if len(b) == 0 && cap(b) == 0 {
			return [3]int{-2, 0, 0}
		}
		return [3]int{int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) - uintptr(unsafe.Pointer(unsafe.SliceData(frame)))), len(b), cap(b)}
	}
	pc, gc := *p, *g
	pu, gu := off(pc.UDP), off(gc.UDP)
	pp, gp := off(pc.RTP.Payload), off(gc.RTP.Payload)
	pt, gt := off(pc.TCP), off(gc.TCP)
	// Tags beyond NumVLANs mean nothing.
	for i := pc.NumVLANs; i < capture.MaxVLANs; i++ {
		pc.VLANs[i] = capture.VLANTag{}
	}
	for i := gc.NumVLANs; i < capture.MaxVLANs; i++ {
		gc.VLANs[i] = capture.VLANTag{}
	}
	pc.UDP, gc.UDP, pc.RTP.Payload, gc.RTP.Payload, pc.TCP, gc.TCP = nil, nil, nil, nil, nil, nil
	// Where the IPv4 header starts is noted by the straight pass only.
	pc.SetBriefOffset(0)
	gc.SetBriefOffset(0)
	if perr != gerr || !reflect.DeepEqual(pc, gc) || pu != gu || pp != gp || pt != gt {
		t.Fatalf("%s: Decode and the general path differ:\n%+v %v %v %v %v\n%+v %v %v %v %v", name, pc, pu, pp, pt, perr, gc, gu, gp, gt, gerr)
	}
	var s1, s2 [4]uint64
	f1, k1, v1, m1 := p.StreamKeyFields()
	f2, k2, v2, m2 := g.StreamKeyFields()
	s1, s2 = [4]uint64{f1, k1, uint64(v1), uint64(m1)}, [4]uint64{f2, k2, uint64(v2), uint64(m2)}
	if s1 != s2 {
		t.Fatalf("%s: stream keys differ: %x, general %x", name, s1, s2)
	}
	a1, b1, ok1 := p.IPv4()
	a2, b2, ok2 := g.IPv4()
	if a1 != a2 || b1 != b2 || ok1 != ok2 {
		t.Fatalf("%s: IPv4() differs: %x %x %v, general %x %x %v", name, a1, b1, ok1, a2, b2, ok2)
	}
}

// sameBrief fails unless Brief.Decode of frame, when it takes it, agrees
// with g, the general path's Packet of the frame: an RTP packet with the
// same Brief, every field and accessor compared.
func sameBrief(t *testing.T, name string, frame []byte, lt capture.LinkType, info *capture.Info, g *capture.Packet, gerr error) {
	t.Helper()
	var b capture.Brief
	if lt != capture.LinkEthernet || !b.Decode(frame, info) {
		return
	}
	if gerr != nil || g.Kind != capture.KindRTP || b != g.BriefOf().WithOffset(b.Offset()) {
		t.Fatalf("%s: Brief.Decode took the frame as %+v; the general path: %v %v %+v", name, b, gerr, g.Kind, g.BriefOf())
	}
	var fb capture.Packet
	fb.FromBrief(&b, frame, info)
	samePacket(t, name+" FromBrief", frame, &fb, g, nil, gerr)
	vlan, tagged := b.VLAN()
	s4, d4, ok := b.IPv4()
	gs4, gd4, _ := g.IPv4()
	if b.Src() != g.Src || b.Dst() != g.Dst || b.SrcPort() != g.Src.Port() || b.DstPort() != g.Dst.Port() ||
		!ok || s4 != gs4 || d4 != gd4 || tagged != (g.NumVLANs == 1) || (tagged && vlan != g.VLANs[0].ID()) ||
		b.SrcMAC() != g.SrcMAC || b.DstMAC() != g.DstMAC || b.SSRC() != g.RTP.SSRC ||
		b.SequenceNumber() != g.RTP.SequenceNumber || b.Timestamp() != g.RTP.Timestamp ||
		b.PayloadType() != g.RTP.PayloadType || b.Marker() != g.RTP.Marker || b.PayloadLen() != len(g.RTP.Payload) {
		t.Fatalf("%s: the Brief's accessors disagree with the Packet:\n%+v\n%+v", name, b, g)
	}
}

// TestDecodePathsAgree: Decode (whose straight pass takes the common
// frames) and the general path alone decode every frame of the golden
// captures in testdata and of FuzzDecode's committed corpus to the same
// Packet, every field compared, into a Packet that held another frame
// before (so that a field the straight pass forgot to write shows); and
// Brief.Decode takes only frames the general path finds to be RTP, with
// the same fields. At least one frame of every golden capture of RTP over
// Ethernet and IPv4 must take the Brief's path.
func TestDecodePathsAgree(t *testing.T) {
	var frames []struct {
		name string
		b    []byte
		lt   capture.LinkType
		info *capture.Info
	}
	add := func(name string, b []byte, lt capture.LinkType, info *capture.Info) {
		frames = append(frames, struct {
			name string
			b    []byte
			lt   capture.LinkType
			info *capture.Info
		}{name, b, lt, info})
	}
	pcaps, _ := filepath.Glob(filepath.Join("testdata", "*.pcap"))
	if len(pcaps) == 0 {
		t.Fatal("no golden captures in testdata")
	}
	for _, f := range pcaps {
		src, err := capture.OpenFile(f, capture.FileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		bufs, infos := make([][]byte, 16), make([]capture.Info, 16)
		for k := 0; ; {
			n, err := src.ReadBatch(bufs, infos)
			for j := 0; j < n; j, k = j+1, k+1 {
				b, info, name := append([]byte(nil), bufs[j]...), infos[j], f+"#"+strconv.Itoa(k)
				add(name, b, src.LinkType(), &info)
				add(name+" without info", b, src.LinkType(), nil)
				add(name+" with a kernel tag", b, src.LinkType(), &capture.Info{VLANValid: true, VLANTCI: 85})
			}
			if err != nil {
				break
			}
		}
		src.Close()
	}
	corpus, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecode", "*"))
	if len(corpus) == 0 {
		t.Fatal("no FuzzDecode corpus in testdata/fuzz")
	}
	for _, f := range corpus {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != 5 || !strings.HasPrefix(lines[1], "[]byte(") {
			t.Fatalf("%s: not a FuzzDecode corpus file", f)
		}
		b, err1 := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		lt, err2 := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(lines[2], "uint16("), ")"), 0, 16)
		valid, err3 := strconv.ParseBool(strings.TrimSuffix(strings.TrimPrefix(lines[3], "bool("), ")"))
		tci, err4 := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(lines[4], "uint16("), ")"), 0, 16)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			t.Fatalf("%s: %v %v %v %v", f, err1, err2, err3, err4)
		}
		add(f, []byte(b), capture.LinkType(lt), &capture.Info{VLANValid: valid, VLANTCI: uint16(tci)})
	}
	var p, g capture.Packet
	briefs := 0
	for i, fr := range frames {
		// Fill both with the previous frame first.
		prev := frames[(i+len(frames)-1)%len(frames)]
		_ = p.Decode(prev.b, prev.lt, prev.info)
		_ = g.Decode(prev.b, prev.lt, prev.info)
		perr := p.Decode(fr.b, fr.lt, fr.info)
		gerr := g.DecodeGeneral(fr.b, fr.lt, fr.info)
		samePacket(t, fr.name, fr.b, &p, &g, perr, gerr)
		sameBrief(t, fr.name, fr.b, fr.lt, fr.info, &g, gerr)
		var b capture.Brief
		if fr.lt == capture.LinkEthernet && b.Decode(fr.b, fr.info) {
			briefs++
		}
	}
	if briefs < 100 {
		t.Fatalf("only %d frames took Brief.Decode's path", briefs)
	}
}

// TestDecodeBriefs: over the golden captures, in windows of seven frames,
// DecodeBriefs takes exactly the frames Brief.Decode takes, in order,
// stopping at the first it refuses, each into the Brief Brief.Decode
// makes of it, with its capture time; and it takes nothing beyond the
// shortest of its three slices.
func TestDecodeBriefs(t *testing.T) {
	pcaps, _ := filepath.Glob(filepath.Join("testdata", "*.pcap"))
	taken, refused := 0, 0
	var good []byte
	var goodInfo capture.Info
	for _, f := range pcaps {
		src, err := capture.OpenFile(f, capture.FileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var frames [][]byte
		var infos []capture.Info
		bufs, is := make([][]byte, 16), make([]capture.Info, 16)
		for {
			n, err := src.ReadBatch(bufs, is)
			for j := range n {
				frames, infos = append(frames, append([]byte(nil), bufs[j]...)), append(infos, is[j])
			}
			if err != nil {
				break
			}
		}
		lt := src.LinkType()
		src.Close()
		if lt != capture.LinkEthernet {
			continue
		}
		var bs [7]capture.Brief
		for i := 0; i < len(frames); {
			w := min(len(bs), len(frames)-i)
			k := capture.DecodeBriefs(bs[:], frames[i:i+w], infos[i:])
			for j := range k {
				var want capture.Brief
				if !want.Decode(frames[i+j], &infos[i+j]) || bs[j] != want || bs[j].Time() != infos[i+j].Timestamp.UnixNano() {
					t.Fatalf("%s#%d: DecodeBriefs made %+v, Brief.Decode %+v", f, i+j, bs[j], want)
				}
			}
			taken += k
			if k > 0 {
				good, goodInfo = frames[i], infos[i]
			}
			if k < w {
				var b capture.Brief
				if b.Decode(frames[i+k], &infos[i+k]) {
					t.Fatalf("%s#%d: DecodeBriefs stopped at a frame Brief.Decode takes", f, i+k)
				}
				refused++
				k++
			}
			i += k
		}
	}
	if taken < 100 || refused == 0 {
		t.Fatalf("%d frames taken and %d refused: the captures do not try both", taken, refused)
	}
	// Nothing beyond the shortest slice.
	two := [][]byte{good, good}
	infos := []capture.Info{goodInfo, goodInfo}
	if n := capture.DecodeBriefs(make([]capture.Brief, 1), two, infos); n != 1 {
		t.Fatalf("DecodeBriefs took %d frames into 1 Brief", n)
	}
	if n := capture.DecodeBriefs(make([]capture.Brief, 2), two, infos[:1]); n != 1 {
		t.Fatalf("DecodeBriefs took %d frames with 1 Info", n)
	}
	if n := capture.DecodeBriefs(make([]capture.Brief, 2), two[:1], infos); n != 1 {
		t.Fatalf("DecodeBriefs took %d of 1 frame", n)
	}
}
