package nic

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Defaults of the test, as the original procedure ran it: five frames.
const (
	DefaultCount         = 5
	DefaultInterval      = 100 * time.Millisecond
	DefaultListenTimeout = 10 * time.Second
	DefaultSelftestWait  = 2 * time.Second
	maxReportedFrames    = 64
	snapLen              = 2048
)

// Result is the outcome of a listen or a selftest.
type Result struct {
	Mode        string        `json:"mode"` // "listen" or "selftest"
	Engine      string        `json:"engine"`
	Interface   string        `json:"interface"`
	TxInterface string        `json:"tx_interface,omitempty"`
	VLAN        uint16        `json:"vlan"`
	Sent        int           `json:"sent,omitempty"`
	SendError   string        `json:"send_error,omitempty"`
	Verdict     string        `json:"verdict"`
	Counts      Counts        `json:"counts"`
	Diagnosis   Diagnosis     `json:"diagnosis"`
	Rx          *State        `json:"rx_state,omitempty"`
	Tx          *State        `json:"tx_state,omitempty"`
	ElapsedMS   float64       `json:"elapsed_ms"`
	Frames      []Observation `json:"frames"`
}

// frameSource is what the listener reads from: a Receiver or capture's
// ring.
type frameSource interface {
	Read(buf []byte, deadline time.Time) (RxInfo, error)
	State() (State, error)
	PromiscError() error
	HardwareAddr() [6]byte
	Close() error
}

var (
	_ frameSource = (*Receiver)(nil)
	_ frameSource = (*ringReceiver)(nil)
)

// openSource opens the listener of engine on name.
func openSource(engine, name string, o Options) (frameSource, error) {
	switch engine {
	case "", EngineSocket:
		return OpenReceiver(name, o)
	case EngineRing:
		return openRing(name, o)
	}
	return nil, fmt.Errorf("engine %q is not %s or %s", engine, EngineSocket, EngineRing)
}

// Passed reports whether the verdict is PASS.
func (r *Result) Passed() bool { return r.Verdict == Pass }

// ListenConfig configures Listen. Zero values take the defaults named.
type ListenConfig struct {
	Interface string
	Options   Options
	VLAN      uint16        // default DefaultVLAN
	Count     int           // default DefaultCount
	Timeout   time.Duration // default DefaultListenTimeout
	// Engine is EngineSocket (default) or EngineRing.
	Engine string
	// OnFrame, if not nil, is called from Listen's goroutine for every
	// frame that concerns the test.
	OnFrame func(*Observation)
	// Ready, if not nil, is called once the socket is listening.
	Ready func()
}

func (c *ListenConfig) defaults() {
	if c.VLAN == 0 {
		c.VLAN = DefaultVLAN
	}
	if c.Count <= 0 {
		c.Count = DefaultCount
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultListenTimeout
	}
}

// Listen captures on cfg.Interface until Count frames tagged with VLAN have
// arrived or Timeout has passed (or ctx ends), then diagnoses. The error is
// for failures to run the test at all (no interface, no permission); a
// FAIL verdict is a Result with a nil error.
func Listen(ctx context.Context, cfg ListenConfig) (*Result, error) {
	cfg.defaults()
	r, err := openSource(cfg.Engine, cfg.Interface, cfg.Options)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if cfg.Ready != nil {
		cfg.Ready()
	}
	start := time.Now()
	obs := &Observer{VLAN: cfg.VLAN}
	obs.Counts.Expected = cfg.Count
	res := &Result{Mode: "listen", Engine: engineName(cfg.Engine), Interface: cfg.Interface, VLAN: cfg.VLAN, Frames: []Observation{}}
	deadline := start.Add(cfg.Timeout)
	err = receive(ctx, r, obs, res, deadline, cfg.OnFrame, func(c *Counts) bool { return c.Tagged >= cfg.Count })
	if err != nil {
		return nil, err
	}
	res.ElapsedMS = float64(time.Since(start).Microseconds()) / 1000
	finish(res, r, obs, &Situation{VLAN: cfg.VLAN, Timeout: cfg.Timeout})
	return res, nil
}

// receive reads frames into obs until done reports true, the deadline
// passes or ctx ends.
func receive(ctx context.Context, r frameSource, obs *Observer, res *Result, deadline time.Time,
	onFrame func(*Observation), done func(*Counts) bool) error {
	buf := make([]byte, snapLen)
	for !done(&obs.Counts) {
		if ctx.Err() != nil {
			return nil
		}
		step := time.Now().Add(100 * time.Millisecond)
		if step.After(deadline) {
			step = deadline
		}
		info, err := r.Read(buf, step)
		if errors.Is(err, ErrTimeout) {
			if !time.Now().Before(deadline) {
				return nil
			}
			continue
		}
		if errors.Is(err, ErrInterfaceDown) {
			// Nothing arrives on a down interface; wait, it may come up.
			if !sleepUntil(ctx, step) || !time.Now().Before(deadline) {
				return nil
			}
			continue
		}
		if err != nil {
			return err
		}
		if info.Time.IsZero() {
			info.Time = time.Now()
		}
		ob := obs.Observe(buf[:info.Len], &info)
		if !ob.Relevant() {
			continue
		}
		ob.SrcMAC, ob.DstMAC = FormatMAC(ob.Src), FormatMAC(ob.Dst)
		if len(res.Frames) < maxReportedFrames {
			res.Frames = append(res.Frames, ob)
		}
		if onFrame != nil {
			onFrame(&ob)
		}
	}
	return nil
}

func finish(res *Result, r frameSource, obs *Observer, s *Situation) {
	res.Counts = obs.Counts
	if st, err := r.State(); err == nil {
		res.Rx = &st
		s.Rx = &st
	}
	s.PromiscError = r.PromiscError()
	res.Diagnosis = Diagnose(&res.Counts, s)
	res.Verdict = res.Diagnosis.Verdict
}

// SendConfig configures Send. Zero values take the defaults named.
type SendConfig struct {
	Interface string
	Options   Options
	Dst       [6]byte // default broadcast
	VLAN      uint16  // default DefaultVLAN
	Priority  uint8   // 802.1p priority; set HasPriority to send 0
	// HasPriority says Priority was given; otherwise DefaultPriority.
	HasPriority bool
	Count       int           // default DefaultCount
	Interval    time.Duration // between frames; negative: none; 0: DefaultInterval
	// Frames, if not empty, are sent instead of built test frames (from a
	// capture), cycling through them until Count frames are sent, each
	// with its destination MAC rewritten to Dst. They must be Ethernet.
	Frames [][]byte
	// RunID marks built test frames; 0 picks a random one.
	RunID uint32
	// OnSent, if not nil, is called after each frame is sent.
	OnSent func(i int, frame []byte)
}

// SendResult says what Send did.
type SendResult struct {
	Sent  int
	Src   [6]byte
	RunID uint32
}

// Send sends cfg.Count frames on cfg.Interface.
func Send(ctx context.Context, cfg SendConfig) (SendResult, error) {
	s, err := OpenSender(cfg.Interface, cfg.Options)
	if err != nil {
		return SendResult{}, err
	}
	defer s.Close()
	return sendOn(ctx, s, &cfg)
}

func (c *SendConfig) defaults() {
	if c.VLAN == 0 && len(c.Frames) == 0 {
		c.VLAN = DefaultVLAN
	}
	if !c.HasPriority {
		c.Priority = DefaultPriority
	}
	if c.Count <= 0 {
		c.Count = DefaultCount
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Dst == ([6]byte{}) {
		c.Dst = Broadcast
	}
	if c.RunID == 0 {
		c.RunID = NewRunID()
	}
}

// NewRunID returns a random, non-zero run identifier.
func NewRunID() uint32 {
	var b [4]byte
	for {
		_, _ = rand.Read(b[:])
		if id := binary.BigEndian.Uint32(b[:]); id != 0 {
			return id
		}
	}
}

func sendOn(ctx context.Context, s *Sender, cfg *SendConfig) (SendResult, error) {
	cfg.defaults()
	res := SendResult{Src: s.HardwareAddr(), RunID: cfg.RunID}
	buf := make([]byte, max(FrameLen, snapLen))
	spec := FrameSpec{Dst: cfg.Dst, Src: res.Src, VLAN: cfg.VLAN, Priority: cfg.Priority,
		RunID: cfg.RunID, Total: uint16(min(cfg.Count, 0xffff))}
	for i := 0; i < cfg.Count; i++ {
		if i > 0 && cfg.Interval > 0 {
			t := time.NewTimer(cfg.Interval)
			select {
			case <-ctx.Done():
				t.Stop()
				return res, ctx.Err()
			case <-t.C:
			}
		} else if ctx.Err() != nil {
			return res, ctx.Err()
		}
		var frame []byte
		if len(cfg.Frames) > 0 {
			src := cfg.Frames[i%len(cfg.Frames)]
			frame = buf[:copy(buf, src)]
			if err := RewriteDst(frame, cfg.Dst); err != nil {
				return res, err
			}
		} else {
			spec.Index = uint16(i)
			n, err := BuildFrame(buf, &spec)
			if err != nil {
				return res, err
			}
			frame = buf[:n]
		}
		if err := s.Send(frame); err != nil {
			return res, err
		}
		res.Sent++
		if cfg.OnSent != nil {
			cfg.OnSent(i, frame)
		}
	}
	return res, nil
}

// SelftestConfig configures Selftest. Zero values take the defaults named.
type SelftestConfig struct {
	Tx, Rx               string
	TxOptions, RxOptions Options
	// Dst is the frames' destination MAC; default the receiver's MAC.
	Dst         [6]byte
	VLAN        uint16 // default DefaultVLAN
	Priority    uint8
	HasPriority bool          // Priority was given; otherwise DefaultPriority
	Count       int           // default DefaultCount
	Interval    time.Duration // default DefaultInterval; negative: none
	// Wait is how long to keep listening after the last frame is sent;
	// default DefaultSelftestWait.
	Wait time.Duration
	// Engine is EngineSocket (default) or EngineRing.
	Engine  string
	OnFrame func(*Observation)
}

// Selftest sends test frames on cfg.Tx and listens for them on cfg.Rx
// (two NICs on the same switch or hub, or a veth pair), then diagnoses.
// Only frames of this run count. The error is for failures to run the
// test; a FAIL verdict is a Result with a nil error.
func Selftest(ctx context.Context, cfg SelftestConfig) (*Result, error) {
	if cfg.VLAN == 0 {
		cfg.VLAN = DefaultVLAN
	}
	if cfg.Count <= 0 {
		cfg.Count = DefaultCount
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Wait <= 0 {
		cfg.Wait = DefaultSelftestWait
	}
	r, err := openSource(cfg.Engine, cfg.Rx, cfg.RxOptions)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	s, err := OpenSender(cfg.Tx, cfg.TxOptions)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if cfg.Dst == ([6]byte{}) {
		cfg.Dst = r.HardwareAddr()
	}
	scfg := SendConfig{Dst: cfg.Dst, VLAN: cfg.VLAN, Priority: cfg.Priority, HasPriority: cfg.HasPriority,
		Count: cfg.Count, Interval: cfg.Interval, RunID: NewRunID()}
	start := time.Now()
	obs := &Observer{VLAN: cfg.VLAN, RunID: scfg.RunID}
	obs.Counts.Expected = cfg.Count

	sendCtx, cancel := context.WithCancel(ctx)
	type sent struct {
		res SendResult
		err error
	}
	sentc := make(chan sent, 1)
	go func() {
		res, err := sendOn(sendCtx, s, &scfg)
		sentc <- sent{res, err}
	}()
	// Listen while sending, then Wait more; stop early once every frame
	// of the run is accounted for.
	interval := max(cfg.Interval, 0)
	deadline := start.Add(time.Duration(cfg.Count)*interval + cfg.Wait)
	res := &Result{Mode: "selftest", Engine: engineName(cfg.Engine), Interface: cfg.Rx, TxInterface: cfg.Tx, VLAN: cfg.VLAN, Frames: []Observation{}}
	rerr := receive(ctx, r, obs, res, deadline, cfg.OnFrame, func(c *Counts) bool { return c.Accounted() >= cfg.Count })
	cancel()
	sr := <-sentc
	if rerr != nil {
		return nil, rerr
	}
	res.Sent = sr.res.Sent
	sit := &Situation{VLAN: cfg.VLAN, Timeout: time.Since(start).Round(time.Millisecond), Selftest: true}
	if sr.err != nil && !errors.Is(sr.err, context.Canceled) {
		// The frames did not all leave: diagnose what did arrive, and say
		// why sending stopped.
		res.SendError = sr.err.Error()
		sit.SendError = sr.err
	}
	res.ElapsedMS = float64(time.Since(start).Microseconds()) / 1000
	if st, err := s.State(); err == nil {
		res.Tx = &st
		sit.Tx = &st
	}
	finish(res, r, obs, sit)
	return res, nil
}

// sleepUntil waits until t or the end of ctx; it reports whether t came.
func sleepUntil(ctx context.Context, t time.Time) bool {
	tm := time.NewTimer(time.Until(t))
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

func engineName(e string) string {
	if e == "" {
		return EngineSocket
	}
	return e
}
