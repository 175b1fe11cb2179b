package nic

import (
	"strings"
	"testing"
	"time"
)

// untaggedFrame builds a test frame and removes its in-frame tag.
func untaggedFrame(spec FrameSpec) []byte {
	buf := make([]byte, FrameLen)
	BuildFrame(buf, &spec)
	return append(append([]byte(nil), buf[:12]...), buf[16:]...)
}

// foreignFrame is an untagged RTP frame without the marker.
func foreignFrame() []byte {
	b := untaggedFrame(FrameSpec{})
	b[len(b)-PayloadLen] = 'X'
	return b
}

func taggedFrame(spec FrameSpec) []byte {
	buf := make([]byte, FrameLen)
	BuildFrame(buf, &spec)
	return buf
}

func TestObserve(t *testing.T) {
	run := FrameSpec{VLAN: 85, Priority: 5, RunID: 42, Total: 5}
	other := FrameSpec{VLAN: 85, Priority: 5, RunID: 43}
	v86 := FrameSpec{VLAN: 86, Priority: 5, RunID: 42}
	oob := func(vlan uint16) *RxInfo { return &RxInfo{VLANValid: true, VLANTCI: 5<<13 | vlan} }
	tests := []struct {
		name   string
		runID  uint32
		frame  []byte
		info   *RxInfo
		tag    TagPlace
		match  bool
		counts Counts
	}{
		{"tag in frame", 42, taggedFrame(run), &RxInfo{}, TagInFrame, true, Counts{Tagged: 1, InFrame: 1}},
		{"tag out of band", 42, untaggedFrame(run), oob(85), TagOutOfBand, true, Counts{Tagged: 1, OutOfBand: 1}},
		{"untagged test frame", 42, untaggedFrame(run), &RxInfo{}, NoTag, false, Counts{Untagged: 1}},
		{"test frame on VLAN 86 in frame", 42, taggedFrame(v86), &RxInfo{}, TagInFrame, false, Counts{WrongVLAN: 1, OtherVLANs: map[uint16]int{86: 1}}},
		{"test frame on VLAN 86 out of band", 42, untaggedFrame(v86), oob(86), TagOutOfBand, false, Counts{WrongVLAN: 1, OtherVLANs: map[uint16]int{86: 1}}},
		{"another run's frame does not count", 42, taggedFrame(other), &RxInfo{}, TagInFrame, false, Counts{Other: 1}},
		{"any frame with the VLAN counts when listening", 0, taggedFrame(other), &RxInfo{}, TagInFrame, true, Counts{Tagged: 1, InFrame: 1}},
		{"foreign untagged frame", 0, make([]byte, 60), &RxInfo{}, NoTag, false, Counts{Other: 1}},
		{"foreign frame on VLAN 10", 0, foreignFrame(), oob(10), TagOutOfBand, false, Counts{Other: 1, OtherVLANs: map[uint16]int{10: 1}}},
		{"runt frame", 0, []byte{1, 2, 3}, &RxInfo{}, NoTag, false, Counts{Other: 1, DecodeErrors: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &Observer{VLAN: 85, RunID: tt.runID}
			ob := o.Observe(tt.frame, tt.info)
			if ob.Tag != tt.tag || ob.Match != tt.match {
				t.Errorf("observation tag %v match %v, want %v %v", ob.Tag, ob.Match, tt.tag, tt.match)
			}
			tt.counts.Seen = 1
			got := o.Counts
			if got.OtherVLANs == nil && tt.counts.OtherVLANs == nil {
				got.OtherVLANs, tt.counts.OtherVLANs = map[uint16]int{}, map[uint16]int{}
			}
			if got.Tagged != tt.counts.Tagged || got.InFrame != tt.counts.InFrame || got.OutOfBand != tt.counts.OutOfBand ||
				got.Untagged != tt.counts.Untagged || got.WrongVLAN != tt.counts.WrongVLAN || got.Other != tt.counts.Other ||
				got.Seen != tt.counts.Seen || got.DecodeErrors != tt.counts.DecodeErrors || len(got.OtherVLANs) != len(tt.counts.OtherVLANs) {
				t.Errorf("counts %+v, want %+v", got, tt.counts)
			}
			for k, v := range tt.counts.OtherVLANs {
				if got.OtherVLANs[k] != v {
					t.Errorf("other VLAN %d: %d, want %d", k, got.OtherVLANs[k], v)
				}
			}
		})
	}
}

func TestObservationLine(t *testing.T) {
	ts := time.Date(2026, 1, 2, 14, 28, 44, 567601000, time.Local)
	spec := FrameSpec{Src: [6]byte{0, 9, 0x43, 0x74, 0x55, 0x94}, Dst: [6]byte{0, 0xd0, 0x59, 0xd8, 0xf7, 0xd9}, VLAN: 85, Priority: 5, RunID: 1, Index: 1, Total: 5}
	o := &Observer{VLAN: 85}
	ob := o.Observe(untaggedFrame(spec), &RxInfo{Time: ts, VLANValid: true, VLANTCI: 5<<13 | 85})
	want := "14:28:44.567601 802.1Q vlan 85, p 5, 00:09:43:74:55:94 > 00:d0:59:d8:f7:d9, 10.85.0.1.21562 > 10.85.0.2.16384: UDP, RTP (tag out of band, test frame 2/5)"
	if got := ob.Line(); got != want {
		t.Errorf("line\n got %s\nwant %s", got, want)
	}
	ob = o.Observe(untaggedFrame(spec), &RxInfo{Time: ts})
	if got := ob.Line(); !strings.HasPrefix(got, "14:28:44.567601 no VLAN tag, 00:09:43:74:55:94 > ") || !strings.HasSuffix(got, "(no tag, test frame 2/5)") {
		t.Errorf("untagged line %s", got)
	}
	if h := ob.Headers(); strings.Contains(h, "14:28") || !strings.HasPrefix(h, "no VLAN tag") {
		t.Errorf("headers %s", h)
	}
}

func TestTagPlaceText(t *testing.T) {
	for _, p := range []TagPlace{NoTag, TagInFrame, TagOutOfBand} {
		b, err := p.MarshalText()
		var q TagPlace
		if err != nil || q.UnmarshalText(b) != nil || q != p {
			t.Errorf("%v: round trip through %q gave %v", p, b, q)
		}
	}
	var q TagPlace
	if q.UnmarshalText([]byte("hub")) == nil {
		t.Error("unknown tag place accepted")
	}
}
