package console

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/silentmon/silentmon/internal/status"
)

// digitSessions is a Sessions with Digits the test adds.
type digitSessions struct {
	fakeSessions
	mu     sync.Mutex
	digits []status.Digit
}

func (d *digitSessions) add(dir, digit string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.digits = append(d.digits, status.Digit{Seq: uint64(len(d.digits) + 1), Session: "s1", Agent: "1001",
		Direction: dir, Digit: digit, Time: "2026-12-02T04:00:00.5Z"})
}

func (d *digitSessions) DigitsSince(seq uint64) []status.Digit {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []status.Digit
	for _, x := range d.digits {
		if x.Seq > seq {
			out = append(out, x)
		}
	}
	return out
}

// TestDigitEvents: the event stream sends one "digit" event per
// telephone event received after it opened (session, agent, direction,
// digit, time), each once, in order; digits from before it opened are
// not replayed.
func TestDigitEvents(t *testing.T) {
	ds := &digitSessions{}
	ds.add("from-agent", "9") // before the stream opens
	clock := newFakeClock()
	_, base := startTest(t, Config{Sessions: ds, Clock: clock})
	req, _ := http.NewRequest("GET", base+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	evs := readEvents(t, res.Body)
	next(t, evs, "sessions")
	clock.waitTicker(t, sessionsPeriod)
	ds.add("from-agent", "1")
	ds.add("to-agent", "#")
	clock.tick(sessionsPeriod)
	var got []status.Digit
	for range 2 {
		var d status.Digit
		decode(t, next(t, evs, "digit").data, &d)
		got = append(got, d)
	}
	if got[0].Digit != "1" || got[0].Direction != "from-agent" || got[0].Session != "s1" || got[0].Agent != "1001" ||
		got[0].Time == "" || got[1].Digit != "#" || got[1].Direction != "to-agent" {
		t.Fatalf("digit events %+v, want 1 from the agent then # to the agent", got)
	}
	ds.add("from-agent", "2")
	clock.tick(sessionsPeriod)
	var d status.Digit
	decode(t, next(t, evs, "digit").data, &d)
	if d.Digit != "2" || d.Seq != 4 {
		t.Fatalf("digit event %+v, want only the new 2", d)
	}
}
