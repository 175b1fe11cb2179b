//go:build unix

package bench_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/relay"
	smtls "github.com/silentmon/silentmon/tls"
)

// relayLoad describes one relay load run: Calls monitored calls (two RTP
// streams each, one per direction) spread round-robin over Supervisors
// supervisor services, at Rate packets per second in total for Duration.
type relayLoad struct {
	Calls       int
	Supervisors int
	Rate        int // packets per second, all streams together
	Duration    time.Duration
	PacketLen   int // bytes of RTP (header and payload) per packet
}

func (l relayLoad) streams() int { return 2 * l.Calls }
func (l relayLoad) total() int   { return int(int64(l.Rate) * int64(l.Duration) / int64(time.Second)) }

// relayResult is what one run measured.
type relayResult struct {
	Sent, Received int64
	Lost           int64 // sent to a supervisor that works and never received
	LostStalled    int64 // sent to the stalled supervisor and not received during the run
	Duplicates     int64
	Misrouted      int64 // wrong session, direction or content
	Dropped        uint64
	P50, P99, Max  time.Duration
	CPU            time.Duration // user + system of the whole process
	Wall           time.Duration // first packet forwarded to last received
	// WorstWindowMax is the largest latency of the packets sent in the
	// worst 100 ms window, which starts WorstWindowAt into the run.
	WorstWindowMax, WorstWindowAt time.Duration
	// SchedP99 is the p99 of how late a goroutine sleeping 500 µs wakes
	// up during the run: the part of the latency tail that the machine,
	// not the relay, causes.
	SchedP99 time.Duration
	// ForwardP999 and ForwardMax are the 99.9th percentile and the
	// largest time one Forward call took: the capture loop's stall.
	ForwardP999, ForwardMax time.Duration
}

// recorder is the supervisor side: a relay.Handler that checks every
// media packet against what was sent and records its latency, capture
// (Forward) time to arrival. It is safe for concurrent use: the servers'
// connections call Media concurrently.
type recorder struct {
	relay.MediaOnly
	load     relayLoad
	sessions []*filter.Session
	perSeq   int // words per stream in seen

	lat  []int64         // nanoseconds, by send order; 0 until received
	seen []atomic.Uint64 // one bit per (stream, sequence number)

	received, dups, misrouted, warm atomic.Int64
	bySup                           []atomic.Int64 // received per supervisor
}

func newRecorder(load relayLoad, sessions []*filter.Session) *recorder {
	perStream := load.total()/load.streams() + 1
	words := (perStream + 63) / 64
	return &recorder{
		load:     load,
		sessions: sessions,
		perSeq:   words,
		lat:      make([]int64, load.total()),
		seen:     make([]atomic.Uint64, words*load.streams()),
		bySup:    make([]atomic.Int64, load.Supervisors),
	}
}

// warmSSRC marks the packets that open the connections before a run.
const warmSSRC = 0xffffffff

func (r *recorder) Media(_ *relay.Peer, f *relay.MediaFrame) error {
	var mp relay.MediaPacket
	for {
		ok, err := f.Next(&mp)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		now := time.Now().UnixNano()
		if len(mp.Data) < 12 {
			r.misrouted.Add(1)
			continue
		}
		ssrc := binary.BigEndian.Uint32(mp.Data[8:12])
		if ssrc == warmSSRC {
			r.warm.Add(1)
			continue
		}
		stream := int(ssrc)
		seq := int(binary.BigEndian.Uint16(mp.Data[2:4]))
		if stream >= r.load.streams() || seq >= r.perSeq*64 || len(mp.Data) != r.load.PacketLen ||
			string(f.Session) != r.sessions[stream/2].ID || mp.Direction != streamDir(stream) {
			r.misrouted.Add(1)
			continue
		}
		bit := uint64(1) << (seq % 64)
		if r.seen[stream*r.perSeq+seq/64].Or(bit)&bit != 0 {
			r.dups.Add(1)
			continue
		}
		// The latency is written before the count that publishes it: the
		// run reads lat after seeing every packet counted.
		if i := seq*r.load.streams() + stream; i < len(r.lat) {
			r.lat[i] = now - mp.Time
		}
		r.bySup[(stream/2)%r.load.Supervisors].Add(1)
		r.received.Add(1)
	}
}

func (r *recorder) Status(context.Context, *relay.Peer) (any, error) {
	return map[string]int64{"received": r.received.Load()}, nil
}

func (r *recorder) Closed(*relay.Peer, error) {}

// handler is one supervisor's relay.Handler. It hands media to the rig's
// current recorder, so runs can swap recorders without restarting the
// servers, and blocks while its supervisor is the stalled one.
type handler struct {
	rig *relayRig
	idx int
}

func (h *handler) Media(p *relay.Peer, f *relay.MediaFrame) error {
	if int(h.rig.stalled.Load()) == h.idx+1 {
		<-h.rig.unstall
	}
	return h.rig.cur.Load().Media(p, f)
}
func (h *handler) StartMonitor(ctx context.Context, p *relay.Peer, req *relay.StartMonitor) (*relay.SessionStatus, error) {
	return h.rig.cur.Load().StartMonitor(ctx, p, req)
}
func (h *handler) StopMonitor(ctx context.Context, p *relay.Peer, req *relay.StopMonitor) (*relay.SessionStatus, error) {
	return h.rig.cur.Load().StopMonitor(ctx, p, req)
}
func (h *handler) Status(ctx context.Context, p *relay.Peer) (any, error) {
	return h.rig.cur.Load().Status(ctx, p)
}
func (h *handler) Closed(p *relay.Peer, err error) { h.rig.cur.Load().Closed(p, err) }

func streamDir(stream int) filter.Direction {
	if stream%2 == 0 {
		return filter.FromAgent
	}
	return filter.ToAgent
}

// relayRig is a capture-side Forwarder connected over mutual TLS on
// loopback to Supervisors relay servers in the supervisor role, with
// certificates made by smtls.Quickstart.
type relayRig struct {
	load relayLoad
	cur  atomic.Pointer[recorder]
	// stalled is 1 + the index of a supervisor whose handler blocks
	// until unstall is closed; 0 for none.
	stalled     atomic.Int32
	unstall     chan struct{}
	unstallOnce sync.Once
	servers     []*relay.Server
	serveWG     sync.WaitGroup
	fw          *relay.Forwarder
	sessions    []*filter.Session
	src, dst    []netip.AddrPort // per stream
}

func newRelayRig(tb testing.TB, load relayLoad) *relayRig {
	tb.Helper()
	dir := tb.TempDir()
	if err := smtls.Quickstart(dir, smtls.QuickstartOptions{}); err != nil {
		tb.Fatal(err)
	}
	srvTLS, err := smtls.ServerConfig(dir, smtls.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	cliTLS, err := smtls.ClientConfig(dir, smtls.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := &relayRig{load: load, unstall: make(chan struct{})}
	r.cur.Store(newRecorder(load, nil))
	addrs := make([]string, load.Supervisors)
	for i := range addrs {
		inner, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			r.close()
			tb.Fatal(err)
		}
		ln := smtls.Listen(inner, srvTLS, nil)
		s := relay.NewServer(relay.ServerConfig{Handler: &handler{rig: r, idx: i}, Logger: quiet, Name: fmt.Sprintf("supervisor%d", i),
			Role: relay.RoleSupervisor})
		r.servers = append(r.servers, s)
		addrs[i] = inner.Addr().String()
		r.serveWG.Add(1)
		go func() {
			defer r.serveWG.Done()
			s.Serve(ln)
		}()
	}
	r.fw = relay.NewForwarder(relay.ForwarderConfig{
		Dial:   relay.DialConfig{TLS: cliTLS, TOS: 0xb8},
		Name:   "capture-bench",
		Logger: quiet,
	})
	for c := 0; c < load.Calls; c++ {
		phone := netip.AddrFrom4([4]byte{10, 10, byte(c / 250), byte(c%250 + 1)})
		far := netip.AddrFrom4([4]byte{10, 20, byte(c / 250), byte(c%250 + 1)})
		r.sessions = append(r.sessions, &filter.Session{
			ID:         fmt.Sprintf("sess-%04d", c),
			Agent:      fmt.Sprint(1001 + c),
			Endpoints:  []filter.Endpoint{{IP: phone}},
			Supervisor: addrs[c%load.Supervisors],
		})
		a, b := netip.AddrPortFrom(phone, uint16(20000+2*c)), netip.AddrPortFrom(far, uint16(30000+2*c))
		r.src = append(r.src, a, b)
		r.dst = append(r.dst, b, a)
	}
	return r
}

// release lets a stalled supervisor go on.
func (r *relayRig) release() { r.unstallOnce.Do(func() { close(r.unstall) }) }

func (r *relayRig) close() {
	r.release()
	if r.fw != nil {
		r.fw.Close()
	}
	for _, s := range r.servers {
		s.Close()
	}
	r.serveWG.Wait()
}

// warmUp opens every supervisor connection (dial, TLS handshake, hello)
// so that the run measures the steady state, as in production where the
// connections outlive calls.
func (r *relayRig) warmUp(tb testing.TB) {
	tb.Helper()
	rec := r.cur.Load()
	data := make([]byte, r.load.PacketLen)
	data[0] = 0x80
	binary.BigEndian.PutUint32(data[8:12], warmSSRC)
	for i := 0; i < r.load.Supervisors; i++ {
		r.fw.Forward(r.sessions[i], &relay.MediaPacket{Direction: filter.FromAgent, Time: time.Now().UnixNano(),
			Src: r.src[2*i], Dst: r.dst[2*i], Data: data})
	}
	deadline := time.Now().Add(10 * time.Second)
	for rec.warm.Load() < int64(r.load.Supervisors) {
		if time.Now().After(deadline) {
			tb.Fatalf("warm-up: %d of %d supervisors reached; forwarder %+v", rec.warm.Load(), r.load.Supervisors, r.fw.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

// schedProbe measures wake-up lateness while a run goes on.
type schedProbe struct {
	done chan struct{}
	out  chan time.Duration
}

func startSchedProbe() *schedProbe {
	p := &schedProbe{done: make(chan struct{}), out: make(chan time.Duration, 1)}
	go func() {
		const nap = 500 * time.Microsecond
		var late []int64
		for {
			select {
			case <-p.done:
				if len(late) == 0 {
					p.out <- 0
					return
				}
				slices.Sort(late)
				p.out <- time.Duration(late[len(late)*99/100])
				return
			default:
			}
			t0 := time.Now()
			time.Sleep(nap)
			late = append(late, int64(time.Since(t0)-nap))
		}
	}()
	return p
}

// stop ends the probe and returns the p99 lateness.
func (p *schedProbe) stop() time.Duration {
	close(p.done)
	return <-p.out
}

func rusage() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// run forwards load.Rate packets per second, spread evenly over the
// streams (stream k sends sequence number n at n×streams+k packet slots
// from the start), as a capture loop would after matching, then waits for
// everything to arrive, except what goes to a stalled supervisor.
func (r *relayRig) run(tb testing.TB) relayResult {
	tb.Helper()
	load := r.load
	rec := newRecorder(load, r.sessions)
	r.cur.Store(rec)
	stalled := int(r.stalled.Load()) - 1 // -1: none
	var dropped0 uint64
	for _, st := range r.fw.Stats() {
		dropped0 += st.Dropped + st.Lost
	}
	streams, total := load.streams(), load.total()
	slot := time.Second / time.Duration(load.Rate)
	data := make([]byte, load.PacketLen)
	data[0] = 0x80 // RTP version 2, PCMU
	for i := 12; i < len(data); i++ {
		data[i] = 0xff
	}
	sentBy := make([]int64, load.Supervisors)
	fwd := make([]int64, total) // duration of each Forward call
	var mp relay.MediaPacket
	probe := startSchedProbe()
	cpu0 := rusage()
	start := time.Now()
	sent := 0
	for sent < total {
		due := min(int(time.Since(start)/slot)+1, total)
		for ; sent < due; sent++ {
			k, seq := sent%streams, sent/streams
			binary.BigEndian.PutUint16(data[2:4], uint16(seq))
			binary.BigEndian.PutUint32(data[4:8], uint32(160*seq))
			binary.BigEndian.PutUint32(data[8:12], uint32(k))
			t0 := time.Now()
			mp = relay.MediaPacket{Direction: streamDir(k), Src: r.src[k], Dst: r.dst[k], VLAN: 85, Data: data,
				Time: t0.UnixNano()}
			r.fw.Forward(r.sessions[k/2], &mp)
			fwd[sent] = int64(time.Since(t0))
			sentBy[(k/2)%load.Supervisors]++
		}
		time.Sleep(100 * time.Microsecond)
	}
	expect := int64(total)
	if stalled >= 0 {
		expect -= sentBy[stalled]
	} else {
		// Flush waits for every queue, so not with a stalled supervisor.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := r.fw.Flush(ctx); err != nil {
			tb.Logf("flush: %v", err)
		}
		cancel()
	}
	// Flushed means written to the sockets; wait for the servers to read
	// it, or for a second of nothing new.
	last, idle := rec.received.Load(), time.Now()
	for rec.received.Load()+rec.misrouted.Load()+rec.dups.Load() < expect && time.Since(idle) < time.Second {
		time.Sleep(time.Millisecond)
		if n := rec.received.Load(); n != last {
			last, idle = n, time.Now()
		}
	}
	res := relayResult{Wall: time.Since(start), CPU: rusage() - cpu0, Sent: int64(total)}
	res.SchedP99 = probe.stop()
	res.Received = rec.received.Load()
	res.Duplicates = rec.dups.Load()
	res.Misrouted = rec.misrouted.Load()
	for i := range sentBy {
		lost := sentBy[i] - rec.bySup[i].Load()
		if i == stalled {
			res.LostStalled += lost
		} else {
			res.Lost += lost
		}
	}
	for _, st := range r.fw.Stats() {
		res.Dropped += st.Dropped + st.Lost
	}
	res.Dropped -= dropped0
	slices.Sort(fwd)
	res.ForwardP999 = time.Duration(fwd[min(total-1, total*999/1000)])
	res.ForwardMax = time.Duration(fwd[total-1])
	lat := make([]int64, 0, len(rec.lat))
	w := max(1, load.Rate/10)
	for i, d := range rec.lat {
		if d != 0 {
			lat = append(lat, d)
		}
		// The worst window of 100 ms of sending, to tell a stall from a
		// steady backlog.
		if (i+1)%w == 0 || i == len(rec.lat)-1 {
			win := rec.lat[i/w*w : i+1]
			if m := slices.Max(win); time.Duration(m) > res.WorstWindowMax {
				res.WorstWindowMax = time.Duration(m)
				res.WorstWindowAt = time.Duration(i/w) * 100 * time.Millisecond
			}
		}
	}
	if n := len(lat); n > 0 {
		slices.Sort(lat)
		res.P50 = time.Duration(lat[n/2])
		res.P99 = time.Duration(lat[min(n-1, n*99/100)])
		res.Max = time.Duration(lat[n-1])
	}
	return res
}

var errLoad = errors.New("relay load target missed")
