package relay

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/silentmon/silentmon/filter"
)

// TestForwarderTotalsSurviveLinks: the Forwarder's totals (sent, bytes)
// count what every link sent and keep it once the links close (Retain
// with no supervisor, as when the last session stops), while Stats, which
// lists the live links, then sums to nothing; a second link adds to them.
func TestForwarderTotalsSurviveLinks(t *testing.T) {
	h := &ptHandler{}
	_, addr := startServer(t, h, ServerConfig{Role: RoleSupervisor})
	fw := NewForwarder(ForwarderConfig{Logger: quiet(), Name: "cap-1"})
	defer fw.Close()
	sess := &filter.Session{ID: "one", Agent: "1001", Supervisor: addr}
	send := func(from, n int) {
		for i := from; i < from+n; i++ {
			fw.Forward(sess, mediaPacket(uint16(i)))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := fw.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sumStats := func() (n uint64) {
		for _, st := range fw.Stats() {
			n += st.Sent
		}
		return n
	}
	send(0, 7)
	if got := fw.Totals(); got.Sent != 7 || got.Bytes == 0 || got.Dropped != 0 {
		t.Fatalf("totals with the link up: %+v, want 7 sent, some bytes, none dropped", got)
	}
	bytes := fw.Totals().Bytes
	fw.Retain(nil) // the last session stopped: the link closes
	waitFor(t, "the link to close", func() bool { return len(fw.Stats()) == 0 })
	if got := fw.Totals(); got.Sent != 7 || got.Bytes != bytes || sumStats() != 0 {
		t.Fatalf("after the link closed: totals %+v, live links' sum %d; want the totals kept (7 sent, %d bytes) and the sum 0", got, sumStats(), bytes)
	}
	send(7, 5)
	if got := fw.Totals(); got.Sent != 12 || got.Bytes <= bytes {
		t.Fatalf("after a second link: totals %+v, want 12 sent and more than %d bytes", got, bytes)
	}
}

// TestForwarderStuck: a connected link whose loop has not turned for
// longer than the bound is named; it is not once the loop turns again (a
// packet to send); a link not connected is never stuck.
func TestForwarderStuck(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	h := &ptHandler{}
	_, addr := startServer(t, h, ServerConfig{Role: RoleSupervisor})
	// Heartbeats an hour apart: the loop turns only for media.
	fw := NewForwarder(ForwarderConfig{Logger: quiet(), Name: "cap-1", Now: clock, HeartbeatInterval: time.Hour})
	defer fw.Close()
	dead := NewForwarder(ForwarderConfig{Logger: quiet(), Name: "cap-2", Now: clock})
	defer dead.Close()
	dead.Reach("127.0.0.1:1") // never connects
	sess := &filter.Session{ID: "one", Agent: "1001", Supervisor: addr}
	fw.Forward(sess, mediaPacket(0))
	waitFor(t, "the first packet", func() bool { return h.count() == 1 })
	if err := fw.Stuck(clock(), 15*time.Second); err != nil {
		t.Fatalf("just turned: %v", err)
	}
	advance(20 * time.Second)
	err := fw.Stuck(clock(), 15*time.Second)
	if want := "loop forwarder to supervisor " + addr + " has not turned for 20s (bound 15s)"; err == nil || err.Error() != want {
		t.Fatalf("stuck: %v, want %q", err, want)
	}
	if err := dead.Stuck(clock(), 15*time.Second); err != nil {
		t.Fatalf("a link never connected: %v", err)
	}
	fw.Forward(sess, mediaPacket(1))
	waitFor(t, "the loop to turn", func() bool { return fw.Stuck(clock(), 15*time.Second) == nil })
}
