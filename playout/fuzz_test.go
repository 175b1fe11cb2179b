package playout

import (
	"encoding/binary"
	"testing"
	"time"
)

// FuzzRenderer drives the RTP-to-jitter-buffer path with arbitrary
// sequence numbers, timestamps, payload types, sizes and arrival steps.
// Each 9-byte record is: flags (bit 0 direction, bit 1 marker, bit 2
// A-law, bit 3 alone payload type from bits 1-7, bits 3 and 4 G.729), sequence (2), timestamp (4),
// arrival step in ms (1; 255 is a jump of a day, a capture's clock
// stepping), payload size / 2 (1). Inputs of more than maxFuzzRecords
// records are skipped: the fuzzer minimizes every new input by trying
// about n² of its sub-slices, which for a few kilobytes kept it busy for a
// minute (shown as 0 execs/s); 40 records are enough for every state the
// buffer has. Invariants: no panic, the buffers' bookkeeping holds, the
// output never exceeds the time that passed (memory bounded), and each
// Render or Flush ends within a bounded number of calls (work bounded per
// packet, whatever the sequence numbers and timestamps).
func FuzzRenderer(f *testing.F) {
	// G.729: two frames, a frame and a SID, silence (DTX), two frames
	f.Add([]byte{0x18, 0, 1, 0, 0, 0, 0, 20, 10, 0x18, 0, 2, 0, 0, 0, 160, 20, 6, 0x18, 0, 3, 0, 0, 6, 64, 255, 10, 0x18, 0, 4, 0, 0, 6, 224, 20, 10})
	f.Add([]byte{0, 0, 1, 0, 0, 0, 0, 0, 80, 0, 0, 3, 64, 0, 0, 0, 0, 80, 0, 0, 4, 0, 0, 0, 160, 0, 80})    // seq gap, timestamp 37 h ahead
	f.Add([]byte{0, 0, 1, 0, 0, 0, 0, 0, 80, 0, 0, 2, 0, 0, 0, 160, 255, 80, 0, 0, 3, 0, 0, 1, 64, 20, 80}) // a day between packets
	f.Add([]byte{0, 0, 1, 0, 0, 0, 0, 20, 80, 0, 0, 2, 0, 0, 0, 160, 20, 80})
	f.Add([]byte{1, 255, 255, 255, 255, 255, 0, 0, 80, 1, 0, 0, 0, 0, 0, 160, 40, 80, 1, 0, 0, 0, 0, 0, 160, 0, 80})
	f.Add([]byte{2, 0, 5, 0, 0, 1, 0, 255, 240, 6, 0, 4, 128, 0, 0, 0, 1, 1})
	// A digit in the voice's sequence numbers: PCMU (flags 0xc0) then
	// two telephone events (payload type 101, flags 0xca) on the same
	// SSRC with the event's start timestamp, then the voice again.
	f.Add([]byte{0xc0, 0, 1, 0, 0, 0, 0, 20, 80, 0xc0, 0, 2, 0, 0, 0, 160, 20, 80,
		0xca, 0, 3, 0, 0, 1, 64, 20, 2, 0xca, 0, 4, 0, 0, 1, 64, 20, 2,
		0xc0, 0, 5, 0, 0, 2, 128, 20, 80, 0xc0, 0, 6, 0, 0, 3, 32, 20, 80})
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRenderer(t, data) })
}

// fuzzRenderer is FuzzRenderer's body.
//
// The input's length picks the session's rate (8, 16 or 48 kHz), so every
// input also runs the wideband sample buffers and the upsamplers.
func fuzzRenderer(t testing.TB, data []byte) {
	rate := [...]int{8000, 16000, 48000}[len(data)%3]
	r := NewRenderer(Config{SampleRate: rate}, 1, false)
	defer r.Close()
	start := time.Unix(1000, 0)
	now := start
	payload := make([]byte, 512)
	pkt := make([]byte, 12+512)
	out, jumps := 0, 0
	var elapsed time.Duration // without the jumps
	if len(data) > 9*maxFuzzRecords {
		return
	}
	for len(data) >= 9 {
		rec := data[:9]
		data = data[9:]
		dir := FromAgent + Direction(rec[0]&1)
		pt := uint8(0)
		if rec[0]&4 != 0 {
			pt = 8
		}
		switch rec[0] & 0x18 {
		case 0x08:
			pt = rec[0] >> 1 // anything, unknown types included
		case 0x18:
			pt = 18 // G.729: 10-byte frames, 2-byte SID (comfort noise)
		}
		n := int(rec[8]) * 2
		b := pkt[:12+n]
		b[0], b[1] = 0x80, pt
		if rec[0]&2 != 0 {
			b[1] |= 0x80
		}
		copy(b[2:8], rec[1:7])
		binary.BigEndian.PutUint32(b[8:], 0x1000+uint32(rec[0]>>4))
		copy(b[12:], payload[:n])
		step := time.Duration(rec[7]) * time.Millisecond
		if rec[7] == 255 {
			step = 24 * time.Hour
			jumps++
		} else {
			elapsed += step
		}
		now = now.Add(step)
		rounds := 0
		for c := r.Render(now); len(c) > 0; c = r.Render(now) {
			out += len(c)
			if rounds++; rounds > 1000 {
				t.Fatal("Render does not end")
			}
		}
		r.Push(dir, now, b)
		r.check(t)
	}
	// A jump may write the pause (capped) and play out what was
	// buffered before it.
	bound := int(elapsed/time.Millisecond*8) + blockLen + jumps*(maxPause+numSlots*maxSamples+heldBlocks*blockLen)
	if out > bound*r.m {
		t.Fatalf("rendered %d samples in %v and %d jumps", out, elapsed, jumps)
	}
	rounds := 0
	for c := r.Flush(); len(c) > 0; c = r.Flush() {
		out += len(c)
		if rounds++; rounds > 1000 {
			for _, s := range r.active {
				t.Logf("stream 0x%x: state %d count %d next %d high %d playTS %d startAt %d",
					s.ssrc, s.state, s.count, s.nextSeq, s.highSeq, s.playTS, s.startAt)
			}
			t.Fatalf("Flush does not end: next block %d", r.next)
		}
	}
	r.check(t)
}

// maxFuzzRecords bounds the records FuzzRenderer reads from one input.
const maxFuzzRecords = 40

// check verifies the Renderer's bookkeeping.
func (r *Renderer) check(t testing.TB) {
	t.Helper()
	if cap(r.held) != heldBlocks*blockLen*r.m*r.ch || cap(r.out) != r.cfg.SampleRate/10*r.ch {
		t.Fatal("a buffer grew")
	}
	if len(r.active) > r.cfg.MaxStreams || len(r.retired) > maxRetired {
		t.Fatalf("%d streams active, %d retired", len(r.active), len(r.retired))
	}
	for _, s := range r.active {
		used := 0
		for j := range s.slots {
			if s.slots[j].used {
				used++
				if q := s.slots[j].seq; q < s.nextSeq || q >= s.nextSeq+numSlots || q&(numSlots-1) != int64(j) {
					t.Fatalf("slot %d holds seq %d, next %d", j, q, s.nextSeq)
				}
			}
		}
		if s.count > 0 && s.lowest() == nil {
			t.Fatalf("count %d but nothing playable from seq %d to %d", s.count, s.nextSeq, s.highSeq)
		}
		if used != s.count || s.count > numSlots || s.pcmOff > s.pcmLen || s.pcmLen > maxSamples*r.m || s.pcmLen%r.m != 0 {
			t.Fatalf("count %d, used %d, pcm %d/%d", s.count, used, s.pcmOff, s.pcmLen)
		}
	}
}
