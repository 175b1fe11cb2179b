package playout

import (
	"encoding/binary"
	"testing"
	"time"
)

// TestPushRenderNoAllocs: once a call plays, pushing a packet of each
// direction and rendering what is due allocates nothing.
func TestPushRenderNoAllocs(t *testing.T) {
	r := NewRenderer(Config{}, 2, false)
	defer r.Close()
	pkt := boundPkt(0, 0)
	now := time.Unix(1000, 0)
	seq, ts := uint16(0), uint32(0)
	step := func() {
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], ts)
		for dir := FromAgent; dir <= ToAgent; dir++ {
			if err := r.Push(dir, now, pkt); err != nil {
				t.Fatal(err)
			}
		}
		seq++
		ts += 160
		now = now.Add(20 * time.Millisecond)
		for c := r.Render(now); len(c) > 0; c = r.Render(now) {
		}
	}
	for range 50 { // past the start of playout
		step()
	}
	if n := testing.AllocsPerRun(200, step); n != 0 {
		t.Fatalf("%v allocations per packet pair, want 0", n)
	}
	if st := r.Stats().Total(); st.Frames == 0 {
		t.Fatal("nothing played")
	}
}
