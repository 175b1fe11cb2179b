package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// auditHandler serves audit queries from a fixed list of records, one
// per second from t0, in pages of req.Limit (no runs of equal times).
// Hello name "intruder" is refused like a certificate that is not an
// administrator's.
type auditHandler struct {
	testHandler
	records int
	huge    bool // answer with more than a frame holds
	queries []AuditQuery
}

var auditT0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func (h *auditHandler) AuditQuery(ctx context.Context, p *Peer, req *AuditQuery) (*AuditReply, error) {
	h.mu.Lock()
	h.queries = append(h.queries, *req)
	h.mu.Unlock()
	if p.Hello.Name == "intruder" {
		return nil, &Error{Code: CodeUnauthorized, Message: "only an administrator may query the audit trail"}
	}
	if h.huge {
		return &AuditReply{Records: []json.RawMessage{json.RawMessage(`"` + strings.Repeat("x", DefaultMaxFrame) + `"`)}}, nil
	}
	since := auditT0
	if req.Since != "" {
		var err error
		if since, err = time.Parse(time.RFC3339Nano, req.Since); err != nil {
			return nil, &Error{Code: CodeBadRequest, Message: err.Error()}
		}
	}
	rep := &AuditReply{Complete: true, Members: []AuditMember{{Name: "sm1"}}}
	for i := range h.records {
		at := auditT0.Add(time.Duration(i) * time.Second)
		if at.Before(since) {
			continue
		}
		if len(rep.Records) == req.Limit+1 { // the record at since is sent again
			rep.Truncated = true
			break
		}
		rep.Records = append(rep.Records, json.RawMessage(fmt.Sprintf(`{"time":%q,"action":"end","n":%d}`, at.Format(time.RFC3339Nano), i)))
	}
	rep.Members[0].Records = len(rep.Records)
	return rep, nil
}

// TestAuditQueryRoundTrip: the server lists the audit feature, the
// client follows the pages (since = time of the last record), and a
// refusal arrives as an *Error with its code.
func TestAuditQueryRoundTrip(t *testing.T) {
	h := &auditHandler{records: 10}
	_, addr := startServer(t, h, ServerConfig{Name: "sm1"})
	ctx := context.Background()
	cl, err := Dial(ctx, ClientConfig{Servers: []string{addr}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	q := AuditQuery{Agent: "1001", Limit: 3, Until: "2026-03-02T00:00:00Z"}
	seen := map[int]bool{}
	pages := 0
	for {
		pages++
		rep, err := cl.AuditQuery(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Complete || len(rep.Members) != 1 || rep.Members[0].Name != "sm1" || rep.RequestID == 0 {
			t.Fatalf("page %d: %+v", pages, rep)
		}
		var last struct {
			Time string `json:"time"`
			N    int    `json:"n"`
		}
		for _, r := range rep.Records {
			if err := json.Unmarshal(r, &last); err != nil {
				t.Fatal(err)
			}
			seen[last.N] = true
		}
		if !rep.Truncated {
			break
		}
		q.Since = last.Time
		if pages > 10 {
			t.Fatal("more than 10 pages")
		}
	}
	if len(seen) != 10 || pages < 3 {
		t.Errorf("%d records in %d pages, want 10 in 3 or more", len(seen), pages)
	}
	h.mu.Lock()
	first := h.queries[0]
	h.mu.Unlock()
	if first.Agent != "1001" || first.Limit != 3 || first.Until != "2026-03-02T00:00:00Z" || first.Since != "" {
		t.Errorf("the server got %+v", first)
	}

	intruder, err := Dial(ctx, ClientConfig{Servers: []string{addr}, Logger: quiet(), Name: "intruder"})
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	_, err = intruder.AuditQuery(ctx, AuditQuery{})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeUnauthorized || !errors.Is(err, ErrRemote) {
		t.Errorf("a non-administrator's query: %v, want an unauthorized *Error", err)
	}
}

// TestAuditQueryTooLarge: a reply over the frame limit is not sent; the
// client gets an internal error and the connection stays up.
func TestAuditQueryTooLarge(t *testing.T) {
	h := &auditHandler{huge: true}
	_, addr := startServer(t, h, ServerConfig{})
	ctx := context.Background()
	cl, err := Dial(ctx, ClientConfig{Servers: []string{addr}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, err = cl.AuditQuery(ctx, AuditQuery{})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeInternal || !strings.Contains(e.Message, "frame limit") {
		t.Fatalf("oversized reply: %v, want an internal error naming the frame limit", err)
	}
	if _, err := cl.Status(ctx); err != nil || cl.Failovers() != 0 {
		t.Errorf("after the refusal: status %v, %d failovers", err, cl.Failovers())
	}
}

// TestAuditQueryNotSupported: a server whose handler does not answer
// audit queries does not list the feature; the client sends nothing and
// says so. A raw query to it is answered bad-request.
func TestAuditQueryNotSupported(t *testing.T) {
	h := &testHandler{}
	_, addr := startServer(t, h, ServerConfig{})
	ctx := context.Background()
	cl, err := Dial(ctx, ClientConfig{Servers: []string{addr}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.AuditQuery(ctx, AuditQuery{}); !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), addr) {
		t.Errorf("query to a server without the feature: %v, want ErrNotSupported naming %s", err, addr)
	}

	c, r := rawDial(t, addr)
	defer c.Close()
	b, _ := AppendJSON(nil, MsgHello, Hello{Versions: []int{Version}, Role: RoleClient})
	b, _ = AppendJSON(b, MsgAuditQuery, AuditQuery{RequestID: 7})
	c.Write(b)
	var hello Hello
	if typ, body, err := r.Next(); err != nil || typ != MsgHello || DecodeJSON(typ, body, &hello) != nil || hello.HasFeature(FeatureAudit) {
		t.Fatalf("hello: %v %s %v, want a hello without the audit feature", typ, body, err)
	}
	typ, body, err := r.Next()
	if err != nil || typ != MsgError {
		t.Fatalf("raw query: %v %s %v, want an error", typ, body, err)
	}
	var e Error
	DecodeJSON(typ, body, &e)
	if e.Code != CodeBadRequest || e.RequestID != 7 {
		t.Errorf("raw query: %+v, want bad-request for request 7", e)
	}
}
