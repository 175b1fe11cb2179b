package siptrack

import "time"

// Defaults of Config, used for zero (or negative) fields.
const (
	DefaultPort             = 5060
	DefaultMaxCalls         = 10000
	DefaultMaxRegistrations = 10000
	DefaultCallLinger       = 30 * time.Second
	DefaultTCPBufferLimit   = 64 << 10
	DefaultMaxTCPFlows      = 1024
	DefaultTCPIdle          = 2 * time.Minute
	DefaultRegisterExpires  = 3600 * time.Second
	DefaultRingTimeout      = 5 * time.Minute
	DefaultCallIdle         = 6 * time.Hour

	// pendingRegisterLife is how long a REGISTER waits for its final
	// response (RFC 3261 timer F: 64 × T1).
	pendingRegisterLife = 32 * time.Second
)

// Config configures a Tracker. The zero value of every field means its
// documented default; negative values also mean the default.
type Config struct {
	// Ports are the UDP and TCP ports that carry SIP. Default [5060].
	// Port 0 entries are ignored.
	Ports []uint16

	// MaxCalls bounds the calls kept (ringing, talking, held and ended
	// ones kept for status). When full, the oldest ended call is dropped;
	// when no call has ended, a new call is refused and counted
	// (Stats.CallsRefused). Default 10000.
	MaxCalls int

	// MaxRegistrations bounds the registrations (extension and contact
	// pairs) kept, and separately the REGISTER transactions waiting for
	// their final response. New ones beyond it are refused and counted
	// (Stats.RegistrationsRefused). Default 10000.
	MaxRegistrations int

	// CallLinger is how long an ended call stays in the snapshot for
	// status before Expire drops it. Default 30 s.
	CallLinger time.Duration

	// TCPBufferLimit bounds the bytes held for one TCP flow while a
	// message is incomplete; it is also the largest message read over
	// TCP. A flow going over it is reset and counted (Stats.TCPDropped).
	// Default 64 KiB.
	TCPBufferLimit int

	// MaxTCPFlows bounds the TCP flows (one per direction) whose
	// reassembly state is kept. When full, the least recently used flow
	// is dropped (Stats.TCPFlowsEvicted). Default 1024.
	MaxTCPFlows int

	// TCPIdle is how long a TCP flow may stay silent before Expire drops
	// its state (and any incomplete message). Default 2 minutes.
	TCPIdle time.Duration

	// RegisterExpires is the lifetime of a binding whose REGISTER and
	// 200 OK give no expiry (RFC 3261 suggests 3600 s). Default 1 hour.
	RegisterExpires time.Duration

	// RingTimeout ends, at Expire, a call that is still ringing and has
	// had no SIP message for this long (its final response was not
	// seen). Default 5 minutes.
	RingTimeout time.Duration

	// CallIdle ends, at Expire, an answered call that has had no SIP
	// message for this long (its BYE was not seen). Default 6 hours.
	CallIdle time.Duration

	// OnChange, if set, is called whenever registrations or calls change
	// in a way that matters to MediaOf: a binding added, moved or
	// removed, a call added, ended or dropped, its state or its media
	// changed. A registration refresh that only extends the expiry does
	// not call it. It runs on the goroutine that called Packet,
	// TCPSegment or Expire, outside the tracker's lock, at most once per
	// such call; it may call Snapshot and MediaOf.
	OnChange func()
}

func (c Config) withDefaults() Config {
	if len(c.Ports) == 0 {
		c.Ports = []uint16{DefaultPort}
	}
	if c.MaxCalls <= 0 {
		c.MaxCalls = DefaultMaxCalls
	}
	if c.MaxRegistrations <= 0 {
		c.MaxRegistrations = DefaultMaxRegistrations
	}
	if c.CallLinger <= 0 {
		c.CallLinger = DefaultCallLinger
	}
	if c.TCPBufferLimit <= 0 {
		c.TCPBufferLimit = DefaultTCPBufferLimit
	}
	if c.MaxTCPFlows <= 0 {
		c.MaxTCPFlows = DefaultMaxTCPFlows
	}
	if c.TCPIdle <= 0 {
		c.TCPIdle = DefaultTCPIdle
	}
	if c.RegisterExpires <= 0 {
		c.RegisterExpires = DefaultRegisterExpires
	}
	if c.RingTimeout <= 0 {
		c.RingTimeout = DefaultRingTimeout
	}
	if c.CallIdle <= 0 {
		c.CallIdle = DefaultCallIdle
	}
	return c
}
