package captureserver

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/capture/capturetest"
	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/relay"
)

// TestWorkerBlockPath runs a worker over blocks of frames that are not a
// multiple of its decode chunk, mixing RTP of a monitored and an
// unmonitored call with RTCP, a malformed frame and a non-UDP frame, with
// capture.track_all_streams on and off, and checks what status shows:
// the frame, error, RTCP, RTP and matched counters, the packets counted per
// monitored stream, every stream tracked (or only the monitored ones) and
// the monitored streams' statistics looked up in the stream table
// (every packet in order: nothing lost).
func TestWorkerBlockPath(t *testing.T) {
	phone := netip.MustParseAddrPort("10.1.0.1:20000")
	gw := netip.MustParseAddrPort("10.2.0.1:30000")
	other := netip.MustParseAddrPort("10.1.0.9:20002")
	otherGW := netip.MustParseAddrPort("10.2.0.9:30002")
	const rounds = 150 // 150 rounds of 4 RTP frames and more: several ReadBatch blocks
	streams := []struct {
		src, dst netip.AddrPort
		ssrc     uint32
	}{{phone, gw, 1}, {gw, phone, 2}, {other, otherGW, 3}, {otherGW, other, 4}}
	var frames [][]byte
	var infos []capture.Info
	t0 := time.Unix(1_700_000_000, 0)
	payload := make([]byte, 160)
	add := func(f []byte, at time.Time) {
		frames = append(frames, f)
		infos = append(infos, capture.Info{Timestamp: at, CaptureLength: len(f), Length: len(f)})
	}
	rtcp, bad, nonUDP := 0, 0, 0
	for r := 0; r < rounds; r++ {
		at := t0.Add(time.Duration(r) * 20 * time.Millisecond)
		for i, s := range streams {
			add(capturetest.Build(capturetest.Frame{Src: s.src, Dst: s.dst, Payload: payload,
				RTP: &capturetest.RTP{SSRC: s.ssrc, Seq: uint16(1000*i + r), Timestamp: uint32(r) * 160}}), at.Add(time.Duration(i)*time.Millisecond))
		}
		switch r % 25 {
		case 3:
			// An RTCP receiver report on the RTP port + 1.
			add(capturetest.Build(capturetest.Frame{Src: netip.AddrPortFrom(phone.Addr(), phone.Port()+1), Dst: netip.AddrPortFrom(gw.Addr(), gw.Port()+1),
				UDPRaw: []byte{0x80, 201, 0, 1, 0, 0, 0, 1}}), at.Add(5*time.Millisecond))
			rtcp++
		case 7:
			add([]byte{1, 2, 3}, at.Add(6*time.Millisecond)) // too short for Ethernet
			bad++
		case 11:
			arp := make([]byte, 60)
			arp[12], arp[13] = 0x08, 0x06
			add(arp, at.Add(7*time.Millisecond))
			nonUDP++
		}
	}
	for _, all := range []bool{false, true} {
		t.Run(map[bool]string{false: "monitored", true: "all"}[all], func(t *testing.T) {
			s := newServer(&Config{TrackAllStreams: all}, slog.New(slog.DiscardHandler))
			s.newForwarder(relay.DialConfig{})
			t.Cleanup(func() { s.fw.Close() })
			ep, err := filter.ParseEndpoint(phone.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			s.filter.Set([]*filter.Session{{ID: "s1", Agent: "1001", Endpoints: []filter.Endpoint{ep}, Supervisor: "127.0.0.1:9"}})
			src := &capturetest.Source{Frames: frames, Infos: infos}
			w := newWorker(s, src, "test", nil)
			if err := w.run(context.Background(), false); err != nil {
				t.Fatal(err)
			}
			w.publish(true)

			st := &s.stats
			if got := st.frames.Load(); got != uint64(len(frames)) {
				t.Errorf("frames %d, want %d", got, len(frames))
			}
			if got := st.decodeErrors.Load(); got != uint64(bad) {
				t.Errorf("decode errors %d, want %d", got, bad)
			}
			if got := st.rtcp.Load(); got != uint64(rtcp) {
				t.Errorf("RTCP %d, want %d", got, rtcp)
			}
			if got := st.rtp.Load(); got != 4*rounds {
				t.Errorf("RTP %d, want %d", got, 4*rounds)
			}
			if got := st.matched.Load(); got != 2*rounds {
				t.Errorf("matched %d, want %d", got, 2*rounds)
			}
			counts := w.snapshot()
			if len(counts) != 2 {
				t.Fatalf("%d monitored streams counted, want 2: %v", len(counts), counts)
			}
			for k, n := range counts {
				if n != rounds {
					t.Errorf("stream %#x counted %d packets, want %d", k.ssrc, n, rounds)
				}
			}
			stats, tracked, overflow := w.streamStats()
			wantTracked := 2
			if all {
				wantTracked = 4
			}
			if tracked != wantTracked || overflow != 0 {
				t.Errorf("%d streams tracked, %d overflowed; want %d and 0", tracked, overflow, wantTracked)
			}
			if len(stats) != 2 {
				t.Fatalf("statistics of %d streams, want the 2 monitored: %v", len(stats), stats)
			}
			for k, x := range stats {
				if x.SSRC != 1 && x.SSRC != 2 {
					t.Errorf("statistics of unmonitored stream %+v", k)
				}
				if x.Packets != rounds || x.Lost != 0 || x.Duplicates != 0 || x.Codec != "PCMU" {
					t.Errorf("stream %#x: %d packets, lost %d, duplicates %d, codec %s; want %d, 0, 0, PCMU", x.SSRC, x.Packets, x.Lost, x.Duplicates, x.Codec, rounds)
				}
			}
		})
	}
}

// stepSource is a capture source that hands out per frames at a time and
// calls before(block) before each block.
type stepSource struct {
	capturetest.Source
	per    int
	block  int
	before func(block int)
}

func (s *stepSource) ReadBatch(frames [][]byte, infos []capture.Info) (int, error) {
	s.before(s.block)
	s.block++
	return s.Source.ReadBatch(frames[:min(s.per, len(frames))], infos)
}

// TestWorkerVerdictsFollowSessions: sessions start and stop, in the
// requested filter and in the one SIP learns, while two calls flow; with
// capture.track_all_streams (where each stream's sessions are cached with
// it) and without, each session gets exactly the packets captured while
// it matched them, once each, although both filters name it.
func TestWorkerVerdictsFollowSessions(t *testing.T) {
	phone := netip.MustParseAddrPort("10.1.0.1:20000")
	gw := netip.MustParseAddrPort("10.2.0.1:30000")
	other := netip.MustParseAddrPort("10.1.0.9:20002")
	otherGW := netip.MustParseAddrPort("10.2.0.9:30002")
	streams := []struct {
		src, dst netip.AddrPort
		ssrc     uint32
	}{{phone, gw, 1}, {gw, phone, 2}, {other, otherGW, 3}, {otherGW, other, 4}}
	const rounds, perBlock = 60, 20 // 12 blocks of 5 rounds
	var frames [][]byte
	var infos []capture.Info
	t0 := time.Unix(1_700_000_000, 0)
	for r := range rounds {
		for i, s := range streams {
			f := capturetest.Build(capturetest.Frame{Src: s.src, Dst: s.dst, Payload: make([]byte, 160),
				RTP: &capturetest.RTP{SSRC: s.ssrc, Seq: uint16(r), Timestamp: uint32(r) * 160}})
			frames = append(frames, f)
			infos = append(infos, capture.Info{Timestamp: t0.Add(time.Duration(r)*20*time.Millisecond + time.Duration(i)), CaptureLength: len(f), Length: len(f)})
		}
	}
	sess := func(id, ep string) *filter.Session {
		e, err := filter.ParseEndpoint(ep)
		if err != nil {
			t.Fatal(err)
		}
		return &filter.Session{ID: id, Agent: "1001", Endpoints: []filter.Endpoint{e}, Supervisor: "127.0.0.1:9"}
	}
	for _, all := range []bool{true, false} {
		t.Run(map[bool]string{false: "monitored", true: "all"}[all], func(t *testing.T) {
			s := newServer(&Config{TrackAllStreams: all}, slog.New(slog.DiscardHandler))
			s.agents = newAgents(s, false, nil)
			s.newForwarder(relay.DialConfig{})
			t.Cleanup(func() { s.fw.Close() })
			src := &stepSource{Source: capturetest.Source{Frames: frames, Infos: infos}, per: perBlock, before: func(b int) {
				switch b {
				case 3: // s1 on the first call's phone
					s.filter.Set([]*filter.Session{sess("s1", "10.1.0.1")})
				case 6: // s2 on the second call's phone; SIP finds the first call's gateway for both
					s.filter.Set([]*filter.Session{sess("s1", "10.1.0.1"), sess("s2", "10.1.0.9")})
					s.agents.learned.Set([]*filter.Session{sess("s1", "10.2.0.1"), sess("s2", "10.2.0.1")})
				case 9: // both move elsewhere; SIP forgets
					s.filter.Set([]*filter.Session{sess("s1", "10.7.7.1"), sess("s2", "10.7.7.2")})
					s.agents.learned.Set(nil)
				}
			}}
			w := newWorker(s, src, "test", nil)
			if err := w.run(context.Background(), false); err != nil {
				t.Fatal(err)
			}
			got := map[string]uint64{}
			for k, n := range w.counts {
				got[k.session] += n
			}
			// s1: blocks 3 to 8, both streams of the first call (named by
			// both filters from block 6: once). s2: blocks 6 to 8, both
			// calls' streams.
			want := map[string]uint64{"s1": 6 * 5 * 2, "s2": 3 * 5 * 4}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("packets forwarded per session %v, want %v", got, want)
			}
			if m := s.stats.matched.Load(); m != 6*5*2+3*5*2 {
				t.Errorf("matched %d packets, want %d", m, 6*5*2+3*5*2)
			}
		})
	}
}
