package cluster

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestGather asks a trio: every member answers; a member with a stopped
// handler, one whose reply is too large, and a dead one are missing, each
// with its reason, and the others' replies still arrive.
func TestGather(t *testing.T) {
	tr := newTrio(t, 3*time.Second, 500*time.Millisecond)
	tr.waitMesh(t)
	a, b, c := tr.nodes[0], tr.nodes[1], tr.nodes[2]

	var stops []func()
	for _, n := range tr.nodes {
		stop, err := n.HandleGather("echo", func(req []byte) []byte {
			if string(req) == "big" && n.Name() == "C" {
				return bytes.Repeat([]byte("x"), n.MaxGatherReply()+1)
			}
			return []byte(n.Name() + ":" + string(req))
		})
		if err != nil {
			t.Fatal(err)
		}
		stops = append(stops, stop)
	}
	defer func() {
		for _, s := range stops {
			s()
		}
	}()
	ctx := context.Background()

	// Every member heard from; subscriptions cross the routes a moment
	// after the mesh is up.
	waitFor(t, 10*time.Second, "replies of B and C to A", func() bool {
		r, _, err := a.Gather(ctx, "echo", []byte("q"), 200*time.Millisecond)
		return err == nil && len(r) == 2
	})
	start := time.Now()
	r, missing, err := a.Gather(ctx, "echo", []byte("q"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(r["B"]) != "B:q" || string(r["C"]) != "C:q" || len(r) != 2 || len(missing) != 0 {
		t.Fatalf("replies %q, missing %v; want B:q and C:q, none missing", r, missing)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Gather took %v with every member answering; want it to return on the last reply", d)
	}

	// Too large: C's answer is replaced by an error.
	r, missing, err = b.Gather(ctx, "echo", []byte("big"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(r["A"]) != "A:big" || len(r) != 1 || !errors.Is(missing["C"], ErrReplyTooLarge) {
		t.Fatalf("replies %q, missing %v; want A's reply and C too large", slices.Sorted(maps.Keys(r)), missing)
	}

	// C dies: still known alive for the TTL, waited for, listed missing.
	c.Close()
	tr.nodes[2] = nil
	start = time.Now()
	r, missing, err = a.Gather(ctx, "echo", []byte("q"), 400*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(r) != 1 || string(r["B"]) != "B:q" || !errors.Is(missing["C"], ErrNoReply) || len(missing) != 1 {
		t.Fatalf("after C died: replies %q, missing %v; want B's reply and C missing", slices.Sorted(maps.Keys(r)), missing)
	}
	if !strings.Contains(missing["C"].Error(), "within 400ms") {
		t.Errorf("C's reason %q does not give the timeout", missing["C"])
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("Gather returned after %v, before its timeout, with C still thought alive", d)
	}

	// B's handler stopped too: nobody answers, at once (once the end of
	// B's interest has crossed the route).
	stops[1]()
	waitFor(t, 5*time.Second, "no member answering", func() bool {
		r, missing, err = a.Gather(ctx, "echo", []byte("q"), 200*time.Millisecond)
		return err == nil && missing["B"] != nil && strings.Contains(missing["B"].Error(), "no member answers echo")
	})
	if len(r) != 0 || !errors.Is(missing["B"], ErrNoReply) || !errors.Is(missing["C"], ErrNoReply) {
		t.Fatalf("after B stopped: replies %q, missing %v; want none and B and C missing", slices.Sorted(maps.Keys(r)), missing)
	}
	stops[1] = func() {}
	stops[0]()
	stops[0] = func() {}

	// Past the TTL, C is unreachable: not waited for, still missing.
	stops[1], err = b.HandleGather("echo", func(req []byte) []byte { return []byte("B:" + string(req)) })
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "B's handler again", func() bool {
		r, _, _ := a.Gather(ctx, "echo", nil, 200*time.Millisecond)
		return len(r) == 1
	})
	tr.offset.Add(int64(10 * time.Second))
	start = time.Now()
	_, missing, err = a.Gather(ctx, "echo", []byte("q"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(missing["C"].Error(), "unreachable") {
		t.Errorf("C's reason %q, want unreachable", missing["C"])
	}
	t.Logf("gather with every known member unreachable took %v", time.Since(start))
}

func TestGatherErrors(t *testing.T) {
	tr := newTrio(t, 3*time.Second, 500*time.Millisecond)
	a := tr.nodes[0]
	ctx := context.Background()
	if _, _, err := a.Gather(ctx, "Bad.Kind", nil, time.Second); err == nil {
		t.Error("Gather with a bad kind: no error")
	}
	if _, err := a.HandleGather("", func([]byte) []byte { return nil }); err == nil {
		t.Error("HandleGather with an empty kind: no error")
	}
	if _, _, err := a.Gather(ctx, "echo", make([]byte, a.MaxGatherReply()+1), time.Second); err == nil {
		t.Error("Gather with a request over the limit: no error")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := a.Gather(cctx, "echo", nil, time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("Gather with a cancelled context: %v, want context.Canceled", err)
	}
	a.Close()
	if _, _, err := a.Gather(ctx, "echo", nil, time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("Gather on a closed node: %v, want ErrClosed", err)
	}
}
