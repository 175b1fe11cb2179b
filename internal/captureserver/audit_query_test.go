package captureserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/audit"
	"github.com/silentmon/silentmon/relay"
	smtls "github.com/silentmon/silentmon/tls"
)

// fakeGatherer answers Gather with other members' queriers, and lists
// missing members.
type fakeGatherer struct {
	members map[string]*auditQuerier
	missing map[string]error
	asked   int
}

func (g *fakeGatherer) Gather(_ context.Context, kind string, req []byte, _ time.Duration) (map[string][]byte, map[string]error, error) {
	g.asked++
	if kind != auditGatherKind {
		return nil, nil, fmt.Errorf("kind %q", kind)
	}
	replies := map[string][]byte{}
	for name, q := range g.members {
		replies[name] = q.serveMember(req)
	}
	return replies, g.missing, nil
}

var auditT0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func auditAt(s int) time.Time { return auditT0.Add(time.Duration(s) * time.Second) }

// writeTrail writes recs as a trail file of member (rotated: the first
// half in path.1).
func writeTrail(t *testing.T, dir, member string, recs []audit.Record) string {
	t.Helper()
	path := filepath.Join(dir, member+".log")
	var old, cur bytes.Buffer
	for i, r := range recs {
		r.Member = member
		if r.Endpoints == nil {
			r.Endpoints = []string{}
		}
		b, _ := json.Marshal(&r)
		w := &cur
		if i < len(recs)/2 {
			w = &old
		}
		w.Write(append(b, '\n'))
	}
	cur.WriteString(`{"time":"2026-03-01T09:00:00Z","action":"st` + "\n") // torn
	if err := os.WriteFile(path+".1", old.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	// The rotated file is older.
	os.Chtimes(path+".1", auditT0, auditT0)
	if err := os.WriteFile(path, cur.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func capRec(s int, session, agent string) audit.Record {
	return audit.Record{Time: auditAt(s), Action: audit.ActionCaptureBegin, SessionID: session, Agent: agent, Supervisor: "10.0.1.5:42228"}
}

// twoMembers writes the trails of sm1 and sm2, with records of equal
// times on both and a run of 4 equal times on sm2.
func twoMembers(t *testing.T) (sm1, sm2 *auditQuerier) {
	dir := t.TempDir()
	var r1, r2 []audit.Record
	for i := range 10 {
		r1 = append(r1, capRec(i*2, fmt.Sprintf("s1-%d", i), "1001"))
		r2 = append(r2, capRec(i*2+1, fmt.Sprintf("s2-%d", i), "1001"))
	}
	r1 = append(r1, capRec(30, "s1-x", "1002"))
	for i := range 4 {
		r2 = append(r2, capRec(30, fmt.Sprintf("s2-run%d", i), "1001"))
	}
	r2 = append(r2, capRec(40, "s2-last", "1001"))
	sm1 = &auditQuerier{member: "sm1", file: writeTrail(t, dir, "sm1", r1)}
	sm2 = &auditQuerier{member: "sm2", file: writeTrail(t, dir, "sm2", r2)}
	return sm1, sm2
}

func sessionsOf(t *testing.T, raw []json.RawMessage) []string {
	t.Helper()
	recs, err := decodeRecords(raw)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.SessionID
	}
	return out
}

// TestAuditQueryMerged: one page with every member's records, sorted;
// a member that did not answer is listed with its error and the answer
// is incomplete; malformed lines are counted per member.
func TestAuditQueryMerged(t *testing.T) {
	sm1, sm2 := twoMembers(t)
	sm1.gather = &fakeGatherer{members: map[string]*auditQuerier{"sm2": sm2},
		missing: map[string]error{"sm3": errors.New("member sm3: no reply within 2s")}}
	rep, err := sm1.answer(context.Background(), memberAuditRequest{Agent: "1001", Until: auditAt(30), Limit: 100, Budget: relay.MaxAuditRecordBytes})
	if err != nil {
		t.Fatal(err)
	}
	got := sessionsOf(t, rep.Records)
	var want []string
	for i := range 10 {
		want = append(want, fmt.Sprintf("s1-%d", i), fmt.Sprintf("s2-%d", i))
	}
	if !slices.Equal(got, want) {
		t.Errorf("records %v, want %v", got, want)
	}
	if rep.Complete || rep.Truncated {
		t.Errorf("complete %v truncated %v, want false false", rep.Complete, rep.Truncated)
	}
	wantMembers := []relay.AuditMember{
		{Name: "sm1", Records: 10, Malformed: 1},
		{Name: "sm2", Records: 10, Malformed: 1},
		{Name: "sm3", Error: "member sm3: no reply within 2s"},
	}
	if !slices.Equal(rep.Members, wantMembers) {
		t.Errorf("members %+v, want %+v", rep.Members, wantMembers)
	}

	// Every member answered: complete.
	sm1.gather = &fakeGatherer{members: map[string]*auditQuerier{"sm2": sm2}}
	rep, err = sm1.answer(context.Background(), memberAuditRequest{Session: "s2-last", Limit: 100, Budget: relay.MaxAuditRecordBytes})
	if err != nil {
		t.Fatal(err)
	}
	if got := sessionsOf(t, rep.Records); !rep.Complete || !slices.Equal(got, []string{"s2-last"}) {
		t.Errorf("session s2-last: complete %v, records %v", rep.Complete, got)
	}

	// A member without an audit file says so.
	none := &auditQuerier{member: "sm9"}
	rep, err = none.answer(context.Background(), memberAuditRequest{Limit: 10, Budget: relay.MaxAuditRecordBytes})
	if err != nil || rep.Complete || len(rep.Members) != 1 || !strings.Contains(rep.Members[0].Error, "no audit file") {
		t.Errorf("no audit file: %+v, %v", rep, err)
	}
}

// TestAuditQueryPaging follows pages of at most 3 records (runs of equal
// times are not split, records at since are sent again) and finds the
// same records as one big page, each once.
func TestAuditQueryPaging(t *testing.T) {
	sm1, sm2 := twoMembers(t)
	g := &fakeGatherer{members: map[string]*auditQuerier{"sm2": sm2}}
	sm1.gather = g
	ctx := context.Background()
	full, err := sm1.answer(ctx, memberAuditRequest{Limit: 1000, Budget: relay.MaxAuditRecordBytes})
	if err != nil || full.Truncated {
		t.Fatalf("one page: truncated %v, %v", full.Truncated, err)
	}
	for _, limit := range []int{1, 2, 3, 5} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			q := memberAuditRequest{Limit: limit, Budget: relay.MaxAuditRecordBytes}
			var lists [][]audit.Record
			pages := 0
			for {
				pages++
				if pages > 100 {
					t.Fatal("more than 100 pages")
				}
				rep, err := sm1.answer(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				recs, err := decodeRecords(rep.Records)
				if err != nil {
					t.Fatal(err)
				}
				counted := 0
				for _, r := range recs {
					if !r.Time.Equal(q.Since) {
						counted++
					}
				}
				// Beyond the limit only to finish the run of 5 at 30 s (4 on sm2, 1 on sm1).
				if counted > limit && !(counted <= 5 && recs[len(recs)-1].Time.Equal(auditAt(30))) {
					t.Errorf("page %d from %v holds %d new records, limit %d", pages, q.Since, counted, limit)
				}
				lists = append(lists, recs)
				if !rep.Truncated {
					break
				}
				if counted == 0 {
					t.Fatalf("page %d from %v made no progress", pages, q.Since)
				}
				q.Since = recs[len(recs)-1].Time
			}
			got := audit.Merge(lists...)
			raw, _ := encodeRecords(got)
			if a, b := sessionsOf(t, raw), sessionsOf(t, full.Records); !slices.Equal(a, b) {
				t.Errorf("pages give\n  %v\nwant\n  %v", a, b)
			}
			t.Logf("limit %d: %d pages", limit, pages)
		})
	}
}

func TestAuditPageBudget(t *testing.T) {
	recs := []audit.Record{capRec(1, "a", "1"), capRec(2, "b", "1"), capRec(2, "c", "1"), capRec(3, "d", "1")}
	one, _ := json.Marshal(&recs[0])
	size := len(one) + 1
	for _, tc := range []struct {
		name          string
		since         time.Time
		limit, budget int
		n             int
		trunc, err    bool
	}{
		{"all", time.Time{}, 10, 10 * size, 4, false, false},
		{"limit cuts before a run", time.Time{}, 2, 10 * size, 1, true, false},
		{"first run over the limit", auditAt(1), 1, 10 * size, 3, true, false},
		{"budget", time.Time{}, 10, 2 * size, 1, true, false},
		{"first run over the budget", auditAt(1), 10, 2 * size, 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, trunc, err := auditPage(recs, tc.since, tc.limit, tc.budget)
			if n != tc.n || trunc != tc.trunc || (err != nil) != tc.err {
				t.Errorf("auditPage = %d, %v, %v; want %d, %v, error %v", n, trunc, err, tc.n, tc.trunc, tc.err)
			}
		})
	}
}

// TestAuditQueryAuthorization: an administrator may ask, another
// certificate is refused (unauthorized), anyone may on a plaintext
// listener; bad queries are refused (bad-request). Through the relay, the
// client gets the member's own trail.
func TestAuditQueryAuthorization(t *testing.T) {
	ts := newTestServer(t, t.TempDir())
	admin, other := peerWithCert(t, "admin"), peerWithCert(t, "other")
	_, fp := smtls.PeerIdentity(admin.TLS)
	ts.admins[mustNormalize(t, fp)] = true
	if err := ts.audit.Write(capRec(1, "s1", "1001")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := ts.AuditQuery(ctx, other, &relay.AuditQuery{}); !isCode(err, relay.CodeUnauthorized) {
		t.Errorf("a certificate that is not an administrator's: %v, want unauthorized", err)
	}
	for name, p := range map[string]*relay.Peer{"admin": admin, "insecure": {}} {
		rep, err := ts.AuditQuery(ctx, p, &relay.AuditQuery{Agent: "1001"})
		if err != nil || !rep.Complete || len(rep.Records) != 1 {
			t.Errorf("%s: %+v, %v; want one record, complete", name, rep, err)
		}
	}
	for _, q := range []relay.AuditQuery{
		{Agent: "a/b"}, {Session: "../x"}, {Since: "yesterday"}, {Until: "2026-13-01T00:00:00Z"},
		{Since: "2026-03-01T10:00:00Z", Until: "2026-03-01T09:00:00Z"}, {Limit: -1},
	} {
		if _, err := ts.AuditQuery(ctx, admin, &q); !isCode(err, relay.CodeBadRequest) {
			t.Errorf("%+v: %v, want bad-request", q, err)
		}
	}

	cl := dialClient(t, ts.addr)
	rep, err := cl.AuditQuery(ctx, relay.AuditQuery{Session: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := sessionsOf(t, rep.Records); !slices.Equal(got, []string{"s1"}) || !rep.Complete ||
		len(rep.Members) != 1 || rep.Members[0].Name != "test-1" || rep.Members[0].Records != 1 {
		t.Errorf("through the relay: records %v, %+v", got, rep)
	}
}
