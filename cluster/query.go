package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Errors of Gather, for each member whose reply is missing. Test with
// errors.Is.
var (
	// ErrNoReply: the member did not answer within the timeout (it is
	// down, cut off, or has no handler for the kind), or it has been
	// unreachable (silent for longer than Config.SessionTTL) and was not
	// waited for.
	ErrNoReply = errors.New("no reply")
	// ErrReplyTooLarge: the member's answer exceeded the bus's maximum
	// payload (Node.MaxGatherReply) and was not sent.
	ErrReplyTooLarge = errors.New("reply too large for the cluster bus")
)

// DefaultGatherTimeout is Gather's timeout when it is given 0.
const DefaultGatherTimeout = 2 * time.Second

// Headers of gather replies.
const (
	hdrMember = "Silentmon-Member" // the name of the answering member
	hdrError  = "Silentmon-Error"  // why the answer is missing
)

// maxKindLen bounds a gather kind.
const maxKindLen = 32

func validKind(kind string) bool {
	if kind == "" || len(kind) > maxKindLen {
		return false
	}
	for i := 0; i < len(kind); i++ {
		c := kind[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func (n *Node) gatherSubj(kind string) string {
	return "silentmon." + n.cfg.ClusterName + ".gather." + kind
}

// MaxGatherReply is the largest reply (and request) Gather carries: the
// bus's maximum payload (8 MiB), less room for the headers.
func (n *Node) MaxGatherReply() int {
	return int(n.nc.MaxPayload()) - 1024
}

// Gather asks every other member of the cluster a question of the given
// kind (1 to 32 characters of a-z, 0-9 and '-'; members answer through
// HandleGather with the same kind) and collects one reply per member. This
// member is not asked: the caller answers for itself.
//
// Gather publishes req once, on the subject
// "silentmon.<cluster>.gather.<kind>", with a reply inbox of its own, and
// waits until every member heard from within Config.SessionTTL or with
// an open route to this one has answered, or timeout (default DefaultGatherTimeout) passes, or ctx
// ends. replies maps each member that answered to its reply (a reply
// from a member this node did not know yet is kept too). missing maps
// every other member this node knows (members silent for longer than
// Config.TombstoneTTL are forgotten) that did not answer to why: an error
// wrapping ErrNoReply or ErrReplyTooLarge. A member that answers twice is
// counted once. err is not nil only when nothing could be asked (a bad
// kind, req larger than MaxGatherReply, ErrClosed) or ctx ended first; the
// missing members are not an error.
//
// Gather is safe for concurrent use.
func (n *Node) Gather(ctx context.Context, kind string, req []byte, timeout time.Duration) (replies map[string][]byte, missing map[string]error, err error) {
	if !validKind(kind) {
		return nil, nil, fmt.Errorf("gather: kind %q is not 1 to %d characters of a-z, 0-9 and '-'", kind, maxKindLen)
	}
	if timeout <= 0 {
		timeout = DefaultGatherTimeout
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("gather %s: %w", kind, err)
	}
	if max := n.MaxGatherReply(); len(req) > max {
		return nil, nil, fmt.Errorf("gather %s: the request of %d bytes exceeds the bus limit of %d bytes", kind, len(req), max)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, nil, ErrClosed
	}
	now := n.cfg.Now()
	known := make(map[string]bool, len(n.st.members)) // member → live
	waiting := 0
	for m := range n.st.members {
		if m == n.cfg.Name {
			continue
		}
		live := n.st.live(m, now, n.cfg.SessionTTL)
		known[m] = live
		if live {
			waiting++
		}
	}
	n.mu.Unlock()
	// A member with an open route is alive, even before its first beat.
	if rz, err := n.srv.Routez(nil); err == nil {
		for _, r := range rz.Routes {
			if m := r.RemoteName; m != "" && m != n.cfg.Name && !known[m] {
				known[m] = true
				waiting++
			}
		}
	}

	inbox := n.nc.NewRespInbox()
	sub, err := n.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, nil, gatherErr(kind, err)
	}
	defer sub.Unsubscribe()
	if err := n.nc.PublishRequest(n.gatherSubj(kind), inbox, req); err != nil {
		return nil, nil, gatherErr(kind, err)
	}

	replies = make(map[string][]byte)
	failed := make(map[string]error)
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	go func() { // Close does not wait for the timeout
		select {
		case <-n.done:
			cancel()
		case <-wctx.Done():
		}
	}()
	noResponders := false
	for waiting > 0 {
		msg, err := sub.NextMsgWithContext(wctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, fmt.Errorf("gather %s: %w", kind, ctx.Err())
			}
			if errors.Is(err, nats.ErrNoResponders) {
				noResponders = true
				break // nobody subscribes: every member is missing
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				break
			}
			return nil, nil, gatherErr(kind, err)
		}
		m := msg.Header.Get(hdrMember)
		if msg.Header.Get("Status") != "" {
			continue // a status from the server, not a member's reply
		}
		if m == "" || m == n.cfg.Name {
			continue
		}
		if _, dup := replies[m]; dup {
			continue
		}
		if _, dup := failed[m]; dup {
			continue
		}
		if e := msg.Header.Get(hdrError); e != "" {
			failed[m] = fmt.Errorf("member %s: %w: %s", m, ErrReplyTooLarge, e)
		} else {
			replies[m] = msg.Data
		}
		if known[m] {
			waiting--
		}
	}
	missing = make(map[string]error)
	for m, err := range failed {
		missing[m] = err
	}
	for m, live := range known {
		if _, ok := replies[m]; ok {
			continue
		}
		if _, ok := missing[m]; ok {
			continue
		}
		switch {
		case noResponders:
			missing[m] = fmt.Errorf("member %s: %w: no member answers %s requests", m, ErrNoReply, kind)
		case live:
			missing[m] = fmt.Errorf("member %s: %w within %v", m, ErrNoReply, timeout)
		default:
			missing[m] = fmt.Errorf("member %s: %w: unreachable (silent for longer than %v)", m, ErrNoReply, n.cfg.SessionTTL)
		}
	}
	return replies, missing, nil
}

func gatherErr(kind string, err error) error {
	if errors.Is(err, nats.ErrConnectionClosed) {
		return ErrClosed
	}
	return fmt.Errorf("gather %s: %w", kind, err)
}

// HandleGather answers the Gather requests of the given kind that other
// members send: fn receives the request and returns the reply. fn runs on
// a goroutine of the bus connection, one request of the kind at a time
// (a slow fn delays the next request of its kind only), and must not keep
// req after it returns. A reply larger than MaxGatherReply is not sent:
// the asking member gets ErrReplyTooLarge for this member instead, and the
// node logs it; fn should bound what it returns.
//
// stop unregisters the handler and waits until no call of fn runs; after
// it returns fn is not called again. fn must not call stop. Closing the node unregisters it too
// (calls in flight then finish on their own).
func (n *Node) HandleGather(kind string, fn func(req []byte) []byte) (stop func(), err error) {
	if !validKind(kind) {
		return nil, fmt.Errorf("handle gather: kind %q is not 1 to %d characters of a-z, 0-9 and '-'", kind, maxKindLen)
	}
	var (
		mu      sync.Mutex
		stopped bool
		running sync.WaitGroup
	)
	sub, err := n.nc.Subscribe(n.gatherSubj(kind), func(msg *nats.Msg) {
		mu.Lock()
		if stopped {
			mu.Unlock()
			return
		}
		running.Add(1)
		mu.Unlock()
		defer running.Done()
		if msg.Reply == "" {
			return
		}
		out := fn(msg.Data)
		reply := nats.NewMsg(msg.Reply)
		reply.Header.Set(hdrMember, n.cfg.Name)
		if max := n.MaxGatherReply(); len(out) > max {
			why := fmt.Sprintf("the reply of %d bytes exceeds the bus limit of %d bytes", len(out), max)
			n.log.Warn("gather reply not sent", "kind", kind, "err", why)
			reply.Header.Set(hdrError, why)
		} else {
			reply.Data = out
		}
		if err := n.nc.PublishMsg(reply); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			n.log.Warn("answering a gather request", "kind", kind, "err", err)
		}
	})
	if err != nil {
		return nil, gatherErr(kind, err)
	}
	if err := n.nc.Flush(); err != nil {
		sub.Unsubscribe()
		return nil, gatherErr(kind, err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			sub.Unsubscribe()
			mu.Lock()
			stopped = true
			mu.Unlock()
			running.Wait()
		})
	}, nil
}
