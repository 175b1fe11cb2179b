package playout

import (
	"errors"
	"testing"
)

func TestParseEvents(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte
		want    []Event
		digits  string
	}{
		{"digit 5 in progress", []byte{5, 10, 0, 160}, []Event{{Code: 5, Volume: 10, Duration: 160}}, "5"},
		{"# ended, reserved bit ignored", []byte{11, 0xc0 | 7, 0x03, 0x20}, []Event{{Code: 11, End: true, Volume: 7, Duration: 800}}, "#"},
		{"several events", []byte{1, 0x8a, 0, 160, 2, 0x0a, 0, 80, 16, 0x80, 0, 1},
			[]Event{{Code: 1, End: true, Volume: 10, Duration: 160}, {Code: 2, Volume: 10, Duration: 80}, {Code: 16, End: true, Duration: 1}}, "12!"},
		{"* and D, then a tone event", []byte{10, 0, 0, 1, 15, 0, 0, 1, 32, 0, 0, 1},
			[]Event{{Code: 10, Duration: 1}, {Code: 15, Duration: 1}, {Code: 32, Duration: 1}}, "*D"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseEvents(tc.payload, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			ds := ""
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("event %d: got %v, want %v", i, got[i], tc.want[i])
				}
				if d := got[i].Digit(); d != 0 {
					ds += string(d)
				}
			}
			if ds != tc.digits {
				t.Errorf("digits %q, want %q", ds, tc.digits)
			}
		})
	}
	for _, bad := range [][]byte{nil, {}, {1, 2, 3}, {1, 2, 3, 4, 5}} {
		dst := []Event{{Code: 9}}
		got, err := ParseEvents(bad, dst)
		if !errors.Is(err, ErrBadEvent) || len(got) != 1 {
			t.Errorf("payload %v: got %v, %v; want dst unchanged and ErrBadEvent", bad, got, err)
		}
	}
}

func TestParseRedundant(t *testing.T) {
	// Two redundant blocks of type 101 (offsets 320 and 160, 4 bytes
	// each) and the primary block, as RFC 2198 sends events.
	hdr := func(pt uint8, off, n int) []byte {
		v := uint32(0x80|pt)<<24 | uint32(off)<<10 | uint32(n)
		return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
	}
	p := append(hdr(101, 320, 4), hdr(101, 160, 4)...)
	p = append(p, 101)
	p = append(p, 1, 0x8a, 1, 0x40, 2, 0x8a, 1, 0x40, 3, 0x0a, 0, 160)
	got, err := ParseRedundant(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		off  uint16
		code uint8
	}{{320, 1}, {160, 2}, {0, 3}}
	if len(got) != len(want) {
		t.Fatalf("got %d blocks, want %d", len(got), len(want))
	}
	for i, b := range got {
		ev, err := ParseEvents(b.Data, nil)
		if err != nil || b.PT != 101 || b.TSOffset != want[i].off || len(ev) != 1 || ev[0].Code != want[i].code {
			t.Errorf("block %d: %+v %v %v; want type 101, offset %d, event %d", i, b, ev, err, want[i].off, want[i].code)
		}
	}
	for _, bad := range [][]byte{nil, {0x80 | 101, 0, 4}, append(hdr(101, 0, 8), 101, 1, 2, 3, 4)} {
		if got, err := ParseRedundant(bad, nil); !errors.Is(err, ErrBadEvent) || len(got) != 0 {
			t.Errorf("payload %v: got %v, %v; want ErrBadEvent", bad, got, err)
		}
	}
}

// TestEventCounter: a digit whose packets repeat it (growing duration,
// then three end packets) counts once; the same digit pressed again (a
// new start timestamp) counts again, as does another stream's.
func TestEventCounter(t *testing.T) {
	var c EventCounter
	n := 0
	press := func(ssrc, ts uint32, code uint8) {
		for d := uint16(160); d <= 800; d += 160 {
			if c.New(ssrc, ts, Event{Code: code, Duration: d}) {
				n++
			}
		}
		for range 3 {
			if c.New(ssrc, ts, Event{Code: code, End: true, Duration: 960}) {
				n++
			}
		}
	}
	press(1, 1000, 1)
	press(1, 5000, 1)
	press(2, 5000, 1)
	press(1, 9000, 11)
	press(1, 9000, 11) // the same packets again (a duplicate path)
	if n != 4 {
		t.Fatalf("counted %d events, want 4", n)
	}
}

func TestEventsAllocs(t *testing.T) {
	p := []byte{1, 0x8a, 0, 160, 2, 0x0a, 0, 80}
	dst := make([]Event, 0, 8)
	blocks := make([]RedBlock, 0, 4)
	red := []byte{0x80 | 101, 0x02, 0x80, 4, 101, 1, 0x8a, 1, 0x40, 2, 0x8a, 1, 0x40}
	var c EventCounter
	if n := testing.AllocsPerRun(100, func() {
		dst, _ = ParseEvents(p, dst[:0])
		blocks, _ = ParseRedundant(red, blocks[:0])
		c.New(1, 2, dst[0])
	}); n != 0 {
		t.Fatalf("%v allocations per packet, want 0", n)
	}
}

func FuzzParseEvents(f *testing.F) {
	f.Add([]byte{5, 10, 0, 160})
	f.Add([]byte{1, 0x8a, 0, 160, 2, 0x0a, 0, 80})
	f.Add([]byte{0x80 | 101, 0x02, 0x80, 4, 101, 1, 0x8a, 1, 0x40, 2, 0x8a, 1, 0x40})
	f.Add([]byte{0xe5, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := ParseEvents(data, nil)
		if (err == nil) != (len(data) > 0 && len(data)%4 == 0) || err == nil && len(ev) != len(data)/4 {
			t.Fatalf("%v: %d events, %v", data, len(ev), err)
		}
		blocks, err := ParseRedundant(data, nil)
		if err != nil {
			if len(blocks) != 0 {
				t.Fatalf("%v: blocks %v with error %v", data, blocks, err)
			}
			return
		}
		total := 0
		for _, b := range blocks {
			total += len(b.Data)
			_ = b.PT
		}
		if total > len(data) || blocks[len(blocks)-1].TSOffset != 0 {
			t.Fatalf("%v: blocks %v", data, blocks)
		}
	})
}
