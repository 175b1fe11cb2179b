package playout

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// streamMemoryLimit is the heap one monitored stream may hold, at any
// session rate: the playout issue's target.
const streamMemoryLimit = 64 << 10

// TestStreamMemory measures, as BenchmarkPlayoutMemory does, the heap one
// stream holds (half a Renderer: a call's two directions) at the largest
// jitter-buffer target with a full buffer (200 ms) while it plays, at each
// session rate: a G.711 stream (upsampled in a wideband session) and, where
// built in, a G.722 and an Opus stream of 20 ms packets. Each must stay
// within 64 KiB. (Before, a 48 kHz stream held about 88 KiB: the
// decoded-sample buffer was sized for 480 ms of G.729 at 48 kHz whatever
// the stream sent.)
func TestStreamMemory(t *testing.T) {
	type tc struct {
		codec Codec
		pt    uint8
		rate  int
		pkt   func(k int) []byte
	}
	pcmu := func(k int) []byte { return make([]byte, 160) }
	var cases []tc
	for _, rate := range []int{8000, 16000, 48000} {
		cases = append(cases, tc{CodecPCMU, 0, rate, pcmu})
		if G722BuiltIn && rate >= 16000 {
			cases = append(cases, tc{CodecG722, 9, rate, pcmu})
		}
		if OpusBuiltIn && rate == 48000 {
			// a 20 ms SILK frame of silence (TOC 0x08: SILK NB 20 ms, one frame)
			cases = append(cases, tc{CodecOpus, 111, rate, func(int) []byte { return []byte{0x08, 0xff, 0xfe} }})
		}
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%v/%d", c.codec, c.rate), func(t *testing.T) {
			per := streamMemory(t, c.codec, c.pt, c.rate, c.pkt)
			t.Logf("%v at %d Hz: %.0f bytes per stream (%.1f KiB)", c.codec, c.rate, per, per/1024)
			if per > streamMemoryLimit {
				t.Errorf("%v at %d Hz: %.0f bytes per stream, over %d", c.codec, c.rate, per, streamMemoryLimit)
			}
		})
	}
}

// streamMemory returns the heap per stream of Renderers playing two
// streams of codec each, 200 ms buffered.
func streamMemory(t *testing.T, codec Codec, pt uint8, rate int, payload func(int) []byte) float64 {
	t.Helper()
	const n = 50
	rs := make([]*Renderer, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	clock := codec.ClockRate() / SampleRate * 160
	for i := range rs {
		r := NewRenderer(Config{MaxDelay: DefaultMaxDelay, InitialDelay: DefaultMaxDelay, SampleRate: rate,
			PayloadTypes: map[uint8]Codec{pt: codec}}, 1, false)
		rs[i] = r
		now := time.Unix(1_700_000_000, 0)
		for k := range 30 { // 600 ms: playing, 200 ms buffered
			p := payload(k)
			pkt := make([]byte, 12+len(p))
			pkt[0], pkt[1] = 0x80, pt
			binary.BigEndian.PutUint16(pkt[2:], uint16(k))
			binary.BigEndian.PutUint32(pkt[4:], uint32(k*clock))
			copy(pkt[12:], p)
			for dir := FromAgent; dir <= ToAgent; dir++ {
				binary.BigEndian.PutUint32(pkt[8:], uint32(dir))
				if err := r.Push(dir, now, pkt); err != nil {
					t.Fatal(err)
				}
			}
			now = now.Add(20 * time.Millisecond)
			for c := r.Render(now); len(c) > 0; c = r.Render(now) {
			}
		}
		if st := r.Stats().Total(); st.Frames == 0 || st.Invalid+st.UnknownCodec != 0 {
			t.Fatalf("the streams do not play: %+v", st)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(rs)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n / 2
	for _, r := range rs {
		r.Close()
	}
	return per
}
