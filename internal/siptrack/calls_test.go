package siptrack

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestCallMedia: an inbound and an outbound call with SDP offer and answer
// give, for the agent, both parties' media with their payload types.
func TestCallMedia(t *testing.T) {
	tests := []struct {
		name       string
		d          dialog
		caller     netip.AddrPort // sends the INVITE
		callee     netip.AddrPort
		offer      string
		answer     string
		lateOffer  bool // INVITE without SDP: offer in the 200 OK, answer in the ACK
		user       string
		wantLocal  []string
		wantRemote []string
		wantPT     map[uint8]string // of the user's own media
	}{
		{
			name:       "inbound from the gateway to agent 1001",
			d:          dialog{callID: "in-1", from: "+15551230000", to: "1001", fromTag: "g1", toTag: "a1", fromHost: "192.0.2.50", toHost: "10.10.0.11"},
			caller:     gateway,
			callee:     phone1001,
			offer:      sdpOf("192.0.2.50", 30000, "8 0 101", "rtpmap:8 PCMA/8000", "rtpmap:0 PCMU/8000", "rtpmap:101 telephone-event/8000", "fmtp:101 0-15"),
			answer:     sdpOf("10.10.0.11", 40000, "8 101", "rtpmap:8 PCMA/8000", "rtpmap:101 telephone-event/8000"),
			user:       "1001",
			wantLocal:  []string{"10.10.0.11:40000"},
			wantRemote: []string{"192.0.2.50:30000"},
			wantPT:     map[uint8]string{8: "PCMA/8000", 101: "telephone-event/8000"},
		},
		{
			name:       "outbound from agent 1001 with a dynamic G.729 type",
			d:          dialog{callID: "out-1", from: "1001", to: "5550100", fromTag: "a2", toTag: "g2", fromHost: "10.10.0.11", toHost: "192.0.2.50"},
			caller:     phone1001,
			callee:     gateway,
			offer:      sdpOf("10.10.0.11", 40002, "96 18 101", "rtpmap:96 G729/8000", "rtpmap:101 telephone-event/8000"),
			answer:     sdpOf("192.0.2.50", 30002, "96 101", "rtpmap:96 G729/8000", "rtpmap:101 telephone-event/8000"),
			user:       "1001",
			wantLocal:  []string{"10.10.0.11:40002"},
			wantRemote: []string{"192.0.2.50:30002"},
			wantPT:     map[uint8]string{96: "G729/8000", 18: "G729/8000", 101: "telephone-event/8000"},
		},
		{
			name:       "outbound with a late offer answered in the ACK",
			d:          dialog{callID: "late-1", from: "1001", to: "5550101", fromTag: "a3", toTag: "g3", fromHost: "10.10.0.11", toHost: "192.0.2.50"},
			caller:     phone1001,
			callee:     gateway,
			offer:      sdpOf("192.0.2.50", 30004, "0 8"),
			answer:     sdpOf("10.10.0.11", 40004, "0"),
			lateOffer:  true,
			user:       "1001",
			wantLocal:  []string{"10.10.0.11:40004"},
			wantRemote: []string{"192.0.2.50:30004"},
			wantPT:     map[uint8]string{0: "PCMU/8000"},
		},
		{
			name:       "the far end asks for the same call by its number",
			d:          dialog{callID: "out-2", from: "1001", to: "5550102", fromTag: "a4", toTag: "g4", fromHost: "10.10.0.11", toHost: "192.0.2.50"},
			caller:     phone1001,
			callee:     gateway,
			offer:      sdpOf("10.10.0.11", 40006, "8"),
			answer:     sdpOf("192.0.2.50", 30006, "8"),
			user:       "5550102",
			wantLocal:  []string{"192.0.2.50:30006"},
			wantRemote: []string{"10.10.0.11:40006"},
			wantPT:     map[uint8]string{8: "PCMA/8000"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFeeder(t, Config{})
			d := tc.d
			if tc.lateOffer {
				f.udp(tc.caller, tc.callee, d.request("INVITE", 1, false, ""))
			} else {
				f.udp(tc.caller, tc.callee, d.request("INVITE", 1, false, tc.offer))
			}
			f.udp(tc.callee, tc.caller, d.response(180, "Ringing", "INVITE", 1, ""))
			if c := f.call(d.callID); c.State != StateRinging {
				t.Fatalf("state after 180 = %q, want ringing", c.State)
			}
			if tc.lateOffer {
				f.udp(tc.callee, tc.caller, d.response(200, "OK", "INVITE", 1, tc.offer))
				f.udp(tc.caller, tc.callee, d.request("ACK", 1, true, tc.answer))
			} else {
				f.udp(tc.callee, tc.caller, d.response(200, "OK", "INVITE", 1, tc.answer))
				f.udp(tc.caller, tc.callee, d.request("ACK", 1, true, ""))
			}
			c := f.call(d.callID)
			if c.State != StateTalking || c.Answered.IsZero() || c.From != d.from || c.To != d.to {
				t.Fatalf("call = %+v, want talking, answered, from %s to %s", c, d.from, d.to)
			}
			if len(c.Legs) != 2 {
				t.Fatalf("legs = %+v, want 2", c.Legs)
			}
			got := f.tr.MediaOf(tc.user)
			if len(got) != 1 {
				t.Fatalf("MediaOf(%s) = %+v, want one call", tc.user, got)
			}
			cm := got[0]
			if cm.CallID != d.callID || cm.State != StateTalking {
				t.Errorf("call media = %s %s", cm.CallID, cm.State)
			}
			if !slices.Equal(addrs(cm.Local), tc.wantLocal) || !slices.Equal(addrs(cm.Remote), tc.wantRemote) {
				t.Errorf("local %v remote %v, want %v and %v", addrs(cm.Local), addrs(cm.Remote), tc.wantLocal, tc.wantRemote)
			}
			if !reflect.DeepEqual(cm.Local[0].PayloadTypes, tc.wantPT) {
				t.Errorf("payload types %v, want %v", cm.Local[0].PayloadTypes, tc.wantPT)
			}
			if got := f.tr.MediaOf("1002"); len(got) != 0 {
				t.Errorf("MediaOf(1002) = %+v, want nothing", got)
			}
		})
	}
}

// TestHoldResume: a re-INVITE with sendonly, inactive or c=0.0.0.0 holds
// the call, sendrecv resumes it, and a new address or port replaces the
// old one.
func TestHoldResume(t *testing.T) {
	d := dialog{callID: "hold-1", from: "1001", to: "1002", fromTag: "a", toTag: "b", fromHost: "10.10.0.11", toHost: "10.10.0.12"}
	steps := []struct {
		name      string
		fromA     bool // re-INVITE sent by 1001 (else by 1002)
		offer     string
		answer    string
		wantState string
		wantA     []string // MediaOf("1001") local media
		wantB     []string // remote
	}{
		{"sendonly holds", true, sdpOf("10.10.0.11", 40000, "8", "sendonly"), sdpOf("10.10.0.12", 40100, "8", "recvonly"), StateHeld, []string{"10.10.0.11:40000"}, []string{"10.10.0.12:40100"}},
		{"sendrecv resumes", true, sdpOf("10.10.0.11", 40000, "8", "sendrecv"), sdpOf("10.10.0.12", 40100, "8"), StateTalking, []string{"10.10.0.11:40000"}, []string{"10.10.0.12:40100"}},
		{"inactive from the other side holds", false, sdpOf("10.10.0.12", 40100, "8", "inactive"), sdpOf("10.10.0.11", 40000, "8", "inactive"), StateHeld, []string{"10.10.0.11:40000"}, []string{"10.10.0.12:40100"}},
		{"new port on resume replaces the old one", false, sdpOf("10.10.0.12", 40200, "8"), sdpOf("10.10.0.11", 40000, "8"), StateTalking, []string{"10.10.0.11:40000"}, []string{"10.10.0.12:40200"}},
		{"c=0.0.0.0 holds and leaves that address out", true, sdpOf("0.0.0.0", 40000, "8"), sdpOf("10.10.0.12", 40200, "8"), StateHeld, nil, []string{"10.10.0.12:40200"}},
		{"new address on resume", true, sdpOf("10.10.0.99", 41000, "8"), sdpOf("10.10.0.12", 40200, "8"), StateTalking, []string{"10.10.0.99:41000"}, []string{"10.10.0.12:40200"}},
	}
	f := newFeeder(t, Config{})
	f.udp(phone1001, pbx, d.request("INVITE", 1, false, sdpOf("10.10.0.11", 40000, "8")))
	f.udp(pbx, phone1001, d.response(200, "OK", "INVITE", 1, sdpOf("10.10.0.12", 40100, "8")))
	f.udp(phone1001, pbx, d.request("ACK", 1, true, ""))
	seqA, seqB := 1, 0
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.fromA {
				seqA++
				f.udp(phone1001, pbx, d.request("INVITE", seqA, true, s.offer))
				f.udp(pbx, phone1001, d.response(200, "OK", "INVITE", seqA, s.answer))
				f.udp(phone1001, pbx, d.request("ACK", seqA, true, ""))
			} else {
				r := d.reversed()
				seqB++
				f.udp(pbx, phone1001, r.request("INVITE", seqB, true, s.offer))
				f.udp(phone1001, pbx, r.response(200, "OK", "INVITE", seqB, s.answer))
				f.udp(pbx, phone1001, r.request("ACK", seqB, true, ""))
			}
			got := f.tr.MediaOf("1001")
			if len(got) != 1 {
				t.Fatalf("MediaOf = %+v", got)
			}
			if got[0].State != s.wantState {
				t.Errorf("state = %s, want %s", got[0].State, s.wantState)
			}
			if !slices.Equal(addrs(got[0].Local), s.wantA) || !slices.Equal(addrs(got[0].Remote), s.wantB) {
				t.Errorf("local %v remote %v, want %v and %v", addrs(got[0].Local), addrs(got[0].Remote), s.wantA, s.wantB)
			}
			if n := len(f.call(d.callID).Legs); n != 2 {
				t.Errorf("legs = %d, want 2 (a party's new SDP replaces its old one)", n)
			}
		})
	}
}

// TestConsultAndRetrieve: the agent holds a call, calls a colleague (a
// second call), hangs up the consult and retrieves the first call; MediaOf
// follows both calls.
func TestConsultAndRetrieve(t *testing.T) {
	a := dialog{callID: "cust", from: "+15551230000", to: "1001", fromTag: "g", toTag: "a", fromHost: "192.0.2.50", toHost: "10.10.0.11"}
	b := dialog{callID: "consult", from: "1001", to: "1002", fromTag: "c", toTag: "d", fromHost: "10.10.0.11", toHost: "10.10.0.12"}
	f := newFeeder(t, Config{})
	f.udp(gateway, phone1001, a.request("INVITE", 1, false, sdpOf("192.0.2.50", 30000, "8")))
	f.udp(phone1001, gateway, a.response(200, "OK", "INVITE", 1, sdpOf("10.10.0.11", 40000, "8")))
	f.udp(gateway, phone1001, a.request("ACK", 1, true, ""))

	ra := a.reversed()
	f.udp(phone1001, gateway, ra.request("INVITE", 1, true, sdpOf("10.10.0.11", 40000, "8", "sendonly")))
	f.udp(gateway, phone1001, ra.response(200, "OK", "INVITE", 1, sdpOf("192.0.2.50", 30000, "8", "recvonly")))
	f.udp(phone1001, phone1002, b.request("INVITE", 1, false, sdpOf("10.10.0.11", 40002, "0")))
	f.udp(phone1002, phone1001, b.response(180, "Ringing", "INVITE", 1, ""))
	f.udp(phone1002, phone1001, b.response(200, "OK", "INVITE", 1, sdpOf("10.10.0.12", 40102, "0")))

	type want struct {
		id, state     string
		local, remote []string
	}
	check := func(step string, w []want) {
		t.Helper()
		got := f.tr.MediaOf("1001")
		var g []want
		for _, c := range got {
			g = append(g, want{c.CallID, c.State, addrs(c.Local), addrs(c.Remote)})
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: MediaOf(1001) = %+v, want %+v", step, g, w)
		}
	}
	check("consulting", []want{
		{"cust", StateHeld, []string{"10.10.0.11:40000"}, []string{"192.0.2.50:30000"}},
		{"consult", StateTalking, []string{"10.10.0.11:40002"}, []string{"10.10.0.12:40102"}},
	})
	if got := f.tr.MediaOf("1002"); len(got) != 1 || got[0].CallID != "consult" {
		t.Errorf("MediaOf(1002) = %+v, want the consult call", got)
	}
	f.udp(phone1001, phone1002, b.request("BYE", 2, true, ""))
	f.udp(phone1002, phone1001, b.response(200, "OK", "BYE", 2, ""))
	f.udp(phone1001, gateway, ra.request("INVITE", 2, true, sdpOf("10.10.0.11", 40000, "8")))
	f.udp(gateway, phone1001, ra.response(200, "OK", "INVITE", 2, sdpOf("192.0.2.50", 30000, "8")))
	check("retrieved", []want{
		{"cust", StateTalking, []string{"10.10.0.11:40000"}, []string{"192.0.2.50:30000"}},
	})
}

// TestCallEnd: BYE, CANCEL and final failures end a call; a challenge
// followed by the INVITE again does not lose the call; a failed re-INVITE
// does not end a call in progress; ended calls leave MediaOf at once and
// the snapshot after CallLinger.
func TestCallEnd(t *testing.T) {
	d := dialog{callID: "end-1", from: "1001", to: "1002", fromTag: "a", toTag: "b", fromHost: "10.10.0.11", toHost: "10.10.0.12"}
	offer, answer := sdpOf("10.10.0.11", 40000, "8"), sdpOf("10.10.0.12", 40100, "8")
	established := func(f *feeder) {
		f.udp(phone1001, phone1002, d.request("INVITE", 1, false, offer))
		f.udp(phone1002, phone1001, d.response(200, "OK", "INVITE", 1, answer))
		f.udp(phone1001, phone1002, d.request("ACK", 1, true, ""))
	}
	ringing := func(f *feeder) {
		f.udp(phone1001, phone1002, d.request("INVITE", 1, false, offer))
		f.udp(phone1002, phone1001, d.response(180, "Ringing", "INVITE", 1, ""))
	}
	tests := []struct {
		name      string
		run       func(f *feeder)
		wantState string
	}{
		{"BYE from the caller", func(f *feeder) {
			established(f)
			f.udp(phone1001, phone1002, d.request("BYE", 2, true, ""))
		}, StateEnded},
		{"BYE from the callee", func(f *feeder) {
			established(f)
			r := d.reversed()
			f.udp(phone1002, phone1001, r.request("BYE", 1, true, ""))
		}, StateEnded},
		{"CANCEL while ringing", func(f *feeder) {
			ringing(f)
			f.udp(phone1001, phone1002, d.request("CANCEL", 1, false, ""))
			f.udp(phone1002, phone1001, d.response(487, "Request Terminated", "INVITE", 1, ""))
		}, StateEnded},
		{"486 Busy Here", func(f *feeder) {
			ringing(f)
			f.udp(phone1002, phone1001, d.response(486, "Busy Here", "INVITE", 1, ""))
		}, StateEnded},
		{"603 Decline", func(f *feeder) {
			ringing(f)
			f.udp(phone1002, phone1001, d.response(603, "Decline", "INVITE", 1, ""))
		}, StateEnded},
		{"407 then the INVITE again with credentials rings on", func(f *feeder) {
			f.udp(phone1001, pbx, d.request("INVITE", 1, false, offer))
			f.udp(pbx, phone1001, d.response(407, "Proxy Authentication Required", "INVITE", 1, ""))
			f.udp(phone1001, pbx, d.request("INVITE", 2, false, offer, `Proxy-Authorization: Digest username="1001"`))
			f.udp(pbx, phone1001, d.response(180, "Ringing", "INVITE", 2, ""))
		}, StateRinging},
		{"491 to a re-INVITE keeps the call", func(f *feeder) {
			established(f)
			f.udp(phone1001, phone1002, d.request("INVITE", 2, true, offer))
			f.udp(phone1002, phone1001, d.response(491, "Request Pending", "INVITE", 2, ""))
		}, StateTalking},
		{"481 to a re-INVITE ends the call", func(f *feeder) {
			established(f)
			f.udp(phone1001, phone1002, d.request("INVITE", 2, true, offer))
			f.udp(phone1002, phone1001, d.response(481, "Call/Transaction Does Not Exist", "INVITE", 2, ""))
		}, StateEnded},
		{"CANCEL after the answer does not end the call", func(f *feeder) {
			established(f)
			f.udp(phone1001, phone1002, d.request("CANCEL", 1, false, ""))
		}, StateTalking},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFeeder(t, Config{CallLinger: time.Minute})
			tc.run(f)
			c := f.call(d.callID)
			if c.State != tc.wantState {
				t.Fatalf("state = %s, want %s", c.State, tc.wantState)
			}
			media := f.tr.MediaOf("1001")
			if tc.wantState == StateEnded {
				if c.Ended.IsZero() {
					t.Error("ended call has no end time")
				}
				if len(media) != 0 {
					t.Errorf("MediaOf after the end = %+v, want nothing", media)
				}
				f.tr.Expire(c.Ended.Add(59 * time.Second))
				if len(f.tr.Snapshot().Calls) != 1 {
					t.Error("ended call dropped before CallLinger")
				}
				f.tr.Expire(c.Ended.Add(time.Minute))
				if n := len(f.tr.Snapshot().Calls); n != 0 {
					t.Errorf("%d calls after CallLinger, want 0", n)
				}
			} else if len(media) != 1 {
				t.Errorf("MediaOf = %+v, want the call", media)
			}
		})
	}
}

// TestRefer: a REFER records the transfer target (long and compact
// Refer-To).
func TestRefer(t *testing.T) {
	tests := []struct {
		name, header, want string
	}{
		{"blind transfer", "Refer-To: <sip:1003@10.20.0.1>", "1003"},
		{"attended transfer with Replaces", "Refer-To: <sip:1002@10.20.0.1?Replaces=consult%3Bto-tag%3Dd%3Bfrom-tag%3Dc>", "1002"},
		{"compact form", "r: <sip:5550199@10.20.0.1>", "5550199"},
		{"tel URI", "Refer-To: <tel:+15550142>", "+15550142"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := dialog{callID: "xfer", from: "+15551230000", to: "1001", fromTag: "g", toTag: "a", fromHost: "192.0.2.50", toHost: "10.10.0.11"}
			f := newFeeder(t, Config{})
			f.udp(gateway, phone1001, d.request("INVITE", 1, false, sdpOf("192.0.2.50", 30000, "8")))
			f.udp(phone1001, gateway, d.response(200, "OK", "INVITE", 1, sdpOf("10.10.0.11", 40000, "8")))
			r := d.reversed()
			f.udp(phone1001, gateway, r.request("REFER", 1, true, "", tc.header, "Referred-By: <sip:1001@10.10.0.11>"))
			if got := f.call("xfer").ReferredTo; got != tc.want {
				t.Errorf("ReferredTo = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestUpdateAndEarlyMedia: SDP in a 183 gives the callee's leg while
// ringing; UPDATE and its 200 OK replace the media.
func TestUpdateAndEarlyMedia(t *testing.T) {
	d := dialog{callID: "upd", from: "1001", to: "5550100", fromTag: "a", toTag: "g", fromHost: "10.10.0.11", toHost: "192.0.2.50"}
	f := newFeeder(t, Config{})
	f.udp(phone1001, gateway, d.request("INVITE", 1, false, sdpOf("10.10.0.11", 40000, "8")))
	f.udp(gateway, phone1001, d.response(183, "Session Progress", "INVITE", 1, sdpOf("192.0.2.50", 30000, "8")))
	got := f.tr.MediaOf("1001")
	if len(got) != 1 || got[0].State != StateRinging || !slices.Equal(addrs(got[0].Remote), []string{"192.0.2.50:30000"}) {
		t.Fatalf("early media: %+v", got)
	}
	f.udp(gateway, phone1001, d.response(200, "OK", "INVITE", 1, ""))
	f.udp(phone1001, gateway, d.request("UPDATE", 2, true, sdpOf("10.10.0.11", 40010, "8")))
	f.udp(gateway, phone1001, d.response(200, "OK", "UPDATE", 2, sdpOf("192.0.2.50", 30010, "8")))
	got = f.tr.MediaOf("1001")
	if len(got) != 1 || got[0].State != StateTalking ||
		!slices.Equal(addrs(got[0].Local), []string{"10.10.0.11:40010"}) ||
		!slices.Equal(addrs(got[0].Remote), []string{"192.0.2.50:30010"}) {
		t.Fatalf("after UPDATE: %+v", got)
	}
}

// TestForkedEarlyMedia: early media of a fork that did not answer is
// dropped when another fork answers.
func TestForkedEarlyMedia(t *testing.T) {
	d := dialog{callID: "fork", from: "1001", to: "2000", fromTag: "a", toTag: "x", fromHost: "10.10.0.11", toHost: "10.20.0.1"}
	e := d
	e.toTag = "y"
	f := newFeeder(t, Config{})
	f.udp(phone1001, pbx, d.request("INVITE", 1, false, sdpOf("10.10.0.11", 40000, "8")))
	f.udp(pbx, phone1001, d.response(183, "Session Progress", "INVITE", 1, sdpOf("10.30.0.1", 50000, "8")))
	f.udp(pbx, phone1001, e.response(183, "Session Progress", "INVITE", 1, sdpOf("10.30.0.2", 50002, "8")))
	if n := len(f.call("fork").Legs); n != 3 {
		t.Fatalf("legs while ringing = %d, want 3", n)
	}
	f.udp(pbx, phone1001, e.response(200, "OK", "INVITE", 1, sdpOf("10.30.0.2", 50002, "8")))
	got := f.tr.MediaOf("1001")
	if len(got) != 1 || !slices.Equal(addrs(got[0].Remote), []string{"10.30.0.2:50002"}) {
		t.Fatalf("after the answer: %+v", got)
	}
}

// TestCallLearnedMidway: a capture that starts during calls learns them
// from a re-INVITE or from the 200 OK of an INVITE it did not see.
func TestCallLearnedMidway(t *testing.T) {
	d := dialog{callID: "mid", from: "1001", to: "1002", fromTag: "a", toTag: "b", fromHost: "10.10.0.11", toHost: "10.10.0.12"}
	tests := []struct {
		name string
		run  func(f *feeder)
	}{
		{"re-INVITE", func(f *feeder) {
			f.udp(phone1001, phone1002, d.request("INVITE", 5, true, sdpOf("10.10.0.11", 40000, "8")))
			f.udp(phone1002, phone1001, d.response(200, "OK", "INVITE", 5, sdpOf("10.10.0.12", 40100, "8")))
		}},
		{"200 OK of the INVITE", func(f *feeder) {
			f.udp(phone1002, phone1001, d.response(200, "OK", "INVITE", 1, sdpOf("10.10.0.12", 40100, "8")))
			f.udp(phone1001, phone1002, d.request("ACK", 1, true, sdpOf("10.10.0.11", 40000, "8")))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFeeder(t, Config{})
			tc.run(f)
			got := f.tr.MediaOf("1002")
			if len(got) != 1 || got[0].State != StateTalking ||
				!slices.Equal(addrs(got[0].Local), []string{"10.10.0.12:40100"}) ||
				!slices.Equal(addrs(got[0].Remote), []string{"10.10.0.11:40000"}) {
				t.Fatalf("MediaOf(1002) = %+v", got)
			}
		})
	}
}
