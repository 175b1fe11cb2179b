package captureserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/audit"
	"github.com/silentmon/silentmon/relay"
	smtls "github.com/silentmon/silentmon/tls"
)

// auditGatherKind is the cluster question a member asks the others for
// their part of an audit query.
const auditGatherKind = "audit"

// auditGatherTimeout bounds the wait for the other members' parts; it is
// well under smctl's default request timeout (10 s).
const auditGatherTimeout = 2 * time.Second

// auditGatherer asks the other members of the cluster (cluster.Node).
type auditGatherer interface {
	Gather(ctx context.Context, kind string, req []byte, timeout time.Duration) (map[string][]byte, map[string]error, error)
}

// memberAuditRequest is one member's question to the others on the bus.
type memberAuditRequest struct {
	Agent   string    `json:"agent,omitempty"`
	Session string    `json:"session,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	Until   time.Time `json:"until,omitzero"`
	Limit   int       `json:"limit"`
	Budget  int       `json:"budget"`
}

// memberAuditReply is one member's part: its first records from Since
// on, cut like a reply page (auditPage).
type memberAuditReply struct {
	Member    string            `json:"member"`
	Records   []json.RawMessage `json:"records"`
	Truncated bool              `json:"truncated,omitempty"`
	Malformed int               `json:"malformed,omitempty"`
	Error     string            `json:"error,omitempty"`
}

// auditQuerier answers audit queries for one member: its own trail, and
// the others' through gather (nil without a cluster).
type auditQuerier struct {
	member  string
	file    string // the audit file; "" when none is configured
	gather  auditGatherer
	timeout time.Duration
}

func (s *server) auditQuerier() *auditQuerier {
	a := &auditQuerier{member: s.cfg.Name, file: s.cfg.AuditFile, timeout: auditGatherTimeout}
	if s.node != nil {
		a.gather = s.node
	}
	return a
}

// mayAudit reports whether the peer may query the audit trail: an
// administrator (admin role, or security.admins), or anyone on an
// --insecure listener, which has no identity.
func (s *server) mayAudit(p *relay.Peer) bool {
	return p.TLS == nil || s.isAdmin(p)
}

// AuditQuery implements relay.AuditHandler: the merged answer of every
// member of the cluster, one page at a time (relay.AuditQuery says how
// pages are cut). Only an administrator may ask.
func (s *server) AuditQuery(ctx context.Context, p *relay.Peer, req *relay.AuditQuery) (*relay.AuditReply, error) {
	if !s.mayAudit(p) {
		subject, _ := smtls.PeerIdentity(p.TLS)
		s.log.Info("audit query refused: not an administrator", "peer", p.Addr, "subject", subject)
		return nil, &relay.Error{Code: relay.CodeUnauthorized,
			Message: fmt.Sprintf("only an administrator (a certificate with the admin role, or one listed in security.admins) may query the audit trail; the certificate %q is not one", subject)}
	}
	mq, err := parseAuditQuery(req)
	if err != nil {
		return nil, &relay.Error{Code: relay.CodeBadRequest, Message: err.Error()}
	}
	return s.auditQuerier().answer(ctx, mq)
}

// serveAuditGather answers the other members' audit questions on the
// cluster bus; without a cluster it does nothing. The answer ends when
// the node closes.
func (s *server) serveAuditGather() {
	if s.node == nil {
		return
	}
	a := s.auditQuerier()
	if _, err := s.node.HandleGather(auditGatherKind, a.serveMember); err != nil {
		s.log.Error("cannot answer the other members' audit queries", "err", err)
	}
}

// parseAuditQuery checks a query from the wire.
func parseAuditQuery(req *relay.AuditQuery) (memberAuditRequest, error) {
	mq := memberAuditRequest{Agent: req.Agent, Session: req.Session, Limit: req.Limit, Budget: relay.MaxAuditRecordBytes}
	if mq.Agent != "" && !filter.ValidAgent(mq.Agent) {
		return mq, fmt.Errorf("agent %q is not 1 to %d printable characters without a slash", mq.Agent, filter.MaxAgentLen)
	}
	if mq.Session != "" && !filter.ValidID(mq.Session) {
		return mq, fmt.Errorf("session id %q is not 1 to 64 characters of A-Z a-z 0-9 . _ -", mq.Session)
	}
	var err error
	if mq.Since, err = parseAuditTime("since", req.Since); err != nil {
		return mq, err
	}
	if mq.Until, err = parseAuditTime("until", req.Until); err != nil {
		return mq, err
	}
	if !mq.Since.IsZero() && !mq.Until.IsZero() && !mq.Since.Before(mq.Until) {
		return mq, fmt.Errorf("since %s is not before until %s", req.Since, req.Until)
	}
	if mq.Limit < 0 {
		return mq, fmt.Errorf("limit %d is negative", mq.Limit)
	}
	mq.clamp()
	return mq, nil
}

func parseAuditTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 time", name, s)
	}
	return t, nil
}

// clamp applies the defaults and bounds of limit and budget.
func (mq *memberAuditRequest) clamp() {
	if mq.Limit <= 0 {
		mq.Limit = relay.DefaultAuditLimit
	}
	mq.Limit = min(mq.Limit, relay.MaxAuditLimit)
	if mq.Budget <= 0 || mq.Budget > relay.MaxAuditRecordBytes {
		mq.Budget = relay.MaxAuditRecordBytes
	}
}

func (mq *memberAuditRequest) query() audit.Query {
	return audit.Query{Agent: mq.Agent, Session: mq.Session, Since: mq.Since, Until: mq.Until}
}

// serveMember answers another member's question (HandleGather).
func (a *auditQuerier) serveMember(req []byte) []byte {
	var mq memberAuditRequest
	var rep memberAuditReply
	if err := json.Unmarshal(req, &mq); err != nil {
		rep = memberAuditReply{Member: a.member, Error: fmt.Sprintf("bad audit question: %v", err)}
	} else {
		mq.clamp()
		rep = a.local(mq)
	}
	b, err := json.Marshal(&rep)
	if err != nil { // a record always encodes
		b, _ = json.Marshal(&memberAuditReply{Member: a.member, Error: err.Error()})
	}
	return b
}

// trailPattern is the audit file and its rotated files (audit.log.1,
// audit.log-20260301.gz...): the file's path followed by *, unless the
// path holds glob characters itself.
func (a *auditQuerier) trailPattern() string {
	if strings.ContainsAny(a.file, `*?[\`) {
		return a.file
	}
	return a.file + "*"
}

// local reads this member's trail and cuts its first page.
func (a *auditQuerier) local(mq memberAuditRequest) memberAuditReply {
	rep := memberAuditReply{Member: a.member, Records: []json.RawMessage{}}
	if a.file == "" {
		rep.Error = "no audit file is configured (audit.file)"
		return rep
	}
	recs, st, err := audit.ReadFile(a.trailPattern(), mq.query())
	rep.Malformed = st.Malformed
	if err != nil && !errors.Is(err, fs.ErrNotExist) { // no file yet: no event yet
		rep.Error = err.Error()
		return rep
	}
	for i := range recs {
		if recs[i].Member == "" {
			recs[i].Member = a.member
		}
	}
	n, trunc, err := auditPage(recs, mq.Since, mq.Limit, mq.Budget)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	rep.Truncated = trunc
	rep.Records, _ = encodeRecords(recs[:n])
	return rep
}

// answer merges this member's part with the others' into one page.
func (a *auditQuerier) answer(ctx context.Context, mq memberAuditRequest) (*relay.AuditReply, error) {
	parts := []memberAuditReply{a.local(mq)}
	if a.gather != nil {
		req, err := json.Marshal(&mq)
		if err != nil {
			return nil, err
		}
		replies, missing, err := a.gather.Gather(ctx, auditGatherKind, req, a.timeout)
		if err != nil {
			return nil, fmt.Errorf("asking the other members: %w", err)
		}
		for name, b := range replies {
			var p memberAuditReply
			if err := json.Unmarshal(b, &p); err != nil {
				p = memberAuditReply{Error: fmt.Sprintf("bad reply: %v", err)}
			}
			p.Member = name
			parts = append(parts, p)
		}
		for name, err := range missing {
			parts = append(parts, memberAuditReply{Member: name, Error: err.Error()})
		}
	}
	slices.SortFunc(parts, func(x, y memberAuditReply) int { return strings.Compare(x.Member, y.Member) })

	// A truncated part holds its member's records up to its last time
	// only: the merged page stops at the earliest such time.
	var cutoff time.Time
	cut := false
	lists := make([][]audit.Record, 0, len(parts))
	for i := range parts {
		p := &parts[i]
		if p.Error != "" {
			continue
		}
		recs, err := decodeRecords(p.Records)
		if err != nil {
			p.Error = fmt.Sprintf("bad reply: %v", err)
			continue
		}
		if p.Truncated && len(recs) > 0 {
			if last := recs[len(recs)-1].Time; !cut || last.Before(cutoff) {
				cutoff, cut = last, true
			}
		}
		lists = append(lists, recs)
	}
	merged := audit.Merge(lists...)
	if cut {
		merged = merged[:cutAfter(merged, cutoff)]
	}
	n, trunc, err := auditPage(merged, mq.Since, mq.Limit, mq.Budget)
	if err != nil {
		return nil, err
	}
	records, err := encodeRecords(merged[:n])
	if err != nil {
		return nil, err
	}
	rep := &relay.AuditReply{Records: records, Complete: true, Truncated: trunc || cut}
	count := map[string]int{}
	for i := range merged[:n] {
		count[merged[i].Member]++
	}
	for _, p := range parts {
		m := relay.AuditMember{Name: p.Member, Records: count[p.Member], Malformed: p.Malformed, Error: p.Error}
		if p.Error != "" {
			rep.Complete = false
		}
		rep.Members = append(rep.Members, m)
	}
	return rep, nil
}

// cutAfter returns how many of the sorted recs have a time not after t.
func cutAfter(recs []audit.Record, t time.Time) int {
	n, _ := slices.BinarySearchFunc(recs, t, func(r audit.Record, t time.Time) int {
		if r.Time.After(t) {
			return 1
		}
		return -1
	})
	return n
}

// auditPage returns how many of recs (sorted by time, all from since on)
// make a page: every record at exactly since, which does not count
// against limit, then whole runs of records of equal time while the
// count stays within limit (the first such run always, so that each page
// makes progress) and their encoded size within budget bytes. trunc
// says that records remain. A first run too large for budget is an
// error: it cannot be sent.
func auditPage(recs []audit.Record, since time.Time, limit, budget int) (n int, trunc bool, err error) {
	counted, size := 0, 0
	for n < len(recs) {
		t := recs[n].Time
		end := n
		runSize := 0
		for end < len(recs) && recs[end].Time.Equal(t) {
			b, err := json.Marshal(&recs[end])
			if err != nil {
				return 0, false, err
			}
			runSize += len(b) + 1
			end++
		}
		atSince := !since.IsZero() && t.Equal(since)
		if !atSince && counted > 0 && counted+(end-n) > limit {
			return n, true, nil
		}
		if size+runSize > budget {
			if counted == 0 {
				return 0, false, fmt.Errorf("the %d audit records at %s (with those before them) take %d bytes, more than one reply holds (%d)",
					end-n, t.UTC().Format(time.RFC3339Nano), size+runSize, budget)
			}
			return n, true, nil
		}
		size += runSize
		if !atSince {
			counted += end - n
		}
		n = end
	}
	return n, false, nil
}

func encodeRecords(recs []audit.Record) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, len(recs))
	for i := range recs {
		b, err := json.Marshal(&recs[i])
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func decodeRecords(raw []json.RawMessage) ([]audit.Record, error) {
	out := make([]audit.Record, len(raw))
	for i, b := range raw {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		if out[i].Endpoints == nil {
			out[i].Endpoints = []string{}
		}
	}
	return out, nil
}
