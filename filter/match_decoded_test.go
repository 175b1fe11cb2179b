package filter

import (
	"fmt"
	"testing"

	"github.com/silentmon/silentmon/capture"
)

// TestMatchAllDecodedEqualsHand: MatchAll answers the same for a packet
// from Decode (whose IPv4 addresses it reads through Packet.IPv4) and for
// the same packet filled in by hand (read from Src and Dst), for every
// matching case, every address pair of the sessions' endpoints and their
// neighbours, and every VLAN combination, with dst empty and not empty.
func TestMatchAllDecodedEqualsHand(t *testing.T) {
	f := New()
	f.Set(testSessions(t))
	check := func(name string, p *capture.Packet) {
		t.Helper()
		if _, _, ok := p.IPv4(); !ok && p.Src.Addr().Is4() && p.Dst.Addr().Is4() && p.Kind != capture.KindOther {
			t.Fatalf("%s: a decoded IPv4 packet has no IPv4()", name)
		}
		hand := capture.Packet{Kind: p.Kind, SrcMAC: p.SrcMAC, DstMAC: p.DstMAC, HasMAC: p.HasMAC,
			VLANs: p.VLANs, NumVLANs: p.NumVLANs, Src: p.Src, Dst: p.Dst}
		if _, _, ok := hand.IPv4(); ok {
			t.Fatalf("%s: a packet filled in by hand has IPv4()", name)
		}
		for _, pre := range [][]Match{nil, {{Session: &Session{ID: "other"}, Direction: ToAgent}}} {
			got := fmt.Sprint(f.MatchAll(p, append([]Match(nil), pre...)))
			want := fmt.Sprint(f.MatchAll(&hand, append([]Match(nil), pre...)))
			if got != want {
				t.Fatalf("%s: MatchAll of the decoded packet %s, of the same filled in by hand %s", name, got, want)
			}
		}
	}
	for _, c := range matchCases() {
		check(c.name, c.f.decode(t, c.info))
	}
	frameGrid(func(name string, fr frame) { check(name, fr.decode(t, nil)) })
}

// frameGrid calls f with a frame for every pair of the test sessions'
// addresses and their neighbours, ports at the edges of the sessions'
// ranges, and every VLAN combination.
func frameGrid(f func(name string, fr frame)) {
	addrs := []string{"10.1.0.1", "10.1.0.2", "10.9.0.1", "10.9.0.2", "10.1.0.5", "10.1.0.7", "10.1.0.8", "10.1.0.10", "10.30.0.1"}
	ports := []string{"20000", "20999", "21000", "30500", "40000", "19999"}
	vlans := [][]uint16{nil, {85}, {300, 85}, {86}}
	for _, s := range addrs {
		for _, d := range addrs {
			for i, port := range ports {
				for _, v := range vlans {
					fr := frame{src: ap(s + ":" + port), dst: ap(d + ":" + ports[(i+1)%len(ports)]), vlans: v, ssrc: 1}
					f(fmt.Sprintf("%s:%s→%s vlans %v", s, port, d, v), fr)
				}
			}
		}
	}
}

// TestMatchAllOneRule: an address with a single rule (read from its
// index entry on the packet path) still has that rule's port range and
// VLAN checked, in both directions, for decoded packets.
func TestMatchAllOneRule(t *testing.T) {
	f := New()
	f.Set([]*Session{
		{ID: "gw", Agent: "2001", Endpoints: mustEndpoints(t, "10.9.0.3:20000-20999"), Supervisor: "127.0.0.1:42228"},
		{ID: "vl", Agent: "2002", Endpoints: mustEndpoints(t, "vlan85/10.1.0.20"), Supervisor: "127.0.0.1:42228"},
	})
	cases := []struct {
		src, dst string
		vlans    []uint16
		want     string
	}{
		{"10.9.0.3:19999", "10.30.0.1:40000", nil, ""},
		{"10.9.0.3:20000", "10.30.0.1:40000", nil, "gw/from-agent"},
		{"10.9.0.3:20999", "10.30.0.1:40000", nil, "gw/from-agent"},
		{"10.9.0.3:21000", "10.30.0.1:40000", nil, ""},
		{"10.30.0.1:40000", "10.9.0.3:20500", nil, "gw/to-agent"},
		{"10.30.0.1:40000", "10.9.0.3:21000", nil, ""},
		{"10.1.0.20:4000", "10.30.0.1:40000", []uint16{85}, "vl/from-agent"},
		{"10.1.0.20:4000", "10.30.0.1:40000", []uint16{86}, ""},
		{"10.1.0.20:4000", "10.30.0.1:40000", nil, ""},
		{"10.30.0.1:40000", "10.1.0.20:4000", []uint16{300, 85}, "vl/to-agent"},
		{"10.30.0.1:40000", "10.1.0.20:4000", []uint16{85}, "vl/to-agent"},
		{"10.30.0.1:40000", "10.1.0.20:4000", []uint16{300, 86}, ""},
	}
	for _, c := range cases {
		p := frame{src: ap(c.src), dst: ap(c.dst), vlans: c.vlans, ssrc: 1}.decode(t, nil)
		got := ""
		for _, m := range f.MatchAll(p, nil) {
			got += m.Session.ID + "/" + m.Direction.String()
		}
		if got != c.want {
			t.Errorf("%s → %s vlans %v: MatchAll gives %q, want %q", c.src, c.dst, c.vlans, got, c.want)
		}
	}
}

// TestMatchBriefEqualsMatchAll: for every frame that capture's
// Brief.Decode takes, MatchBrief answers what MatchAll answers for the
// Packet of the same frame, with dst empty and not empty: every matching
// case, every address pair of the sessions' endpoints and their
// neighbours, every VLAN combination, and tags from the kernel. Frames
// with two tags are left to Decode (Brief.Decode refuses them), which the
// test checks too.
func TestMatchBriefEqualsMatchAll(t *testing.T) {
	f := New()
	f.Set(testSessions(t))
	briefs := 0
	check := func(name string, fr frame, info *capture.Info) {
		t.Helper()
		b := fr.bytes()
		var br capture.Brief
		if !br.Decode(b, info) {
			if len(fr.vlans) < 2 && !fr.notUDP && fr.src.Addr().Is4() && (info == nil || len(fr.vlans) == 0) {
				t.Fatalf("%s: Brief.Decode refused a frame of its path", name)
			}
			return
		}
		briefs++
		var p capture.Packet
		if err := p.Decode(b, capture.LinkEthernet, info); err != nil {
			t.Fatal(err)
		}
		for _, pre := range [][]Match{nil, {{Session: &Session{ID: "other"}, Direction: ToAgent}}} {
			got := fmt.Sprint(f.MatchBrief(&br, append([]Match(nil), pre...)))
			want := fmt.Sprint(f.MatchAll(&p, append([]Match(nil), pre...)))
			if got != want {
				t.Fatalf("%s: MatchBrief %s, MatchAll %s", name, got, want)
			}
		}
	}
	for _, c := range matchCases() {
		check(c.name, c.f, c.info)
	}
	frameGrid(func(name string, fr frame) {
		check(name, fr, nil)
		if len(fr.vlans) == 0 {
			check(name+" kernel tag 85", fr, &capture.Info{VLANValid: true, VLANTCI: 5<<13 | 85})
		}
	})
	if briefs < 500 {
		t.Fatalf("only %d frames took Brief.Decode's path", briefs)
	}
}
