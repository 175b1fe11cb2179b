// Package webrtcout plays a monitored session's audio to browsers over
// WebRTC (github.com/pion/webrtc/v4): the web console posts the browser's
// SDP offer, Answer returns the answer, and the peer connection carries
// the session's audio in 20 ms packets.
//
// # Codecs
//
// Opus (RFC 7587, opus/48000/2) is preferred: when every audio section of
// the offer lists it (a browser's does by default) the session's audio is
// encoded with libopus at the session's own rate, 8, 16 or 48 kHz, with
// no resampling: mono, 20 ms frames, application VoIP, in-band FEC on
// (tuned for 5 % loss), DTX off, at OpusBitrate (32 kbit/s narrowband, 48
// kbit/s wideband, 64 kbit/s fullband). The RTP timestamps advance at 48
// kHz whatever the rate (960 per packet) and the answer's format
// parameters say sprop-stereo=0 and sprop-maxcapturerate (the session's
// rate), which the web console shows. An offer without Opus gets PCMU at
// 8 kHz, a wideband session downsampled with playout.Downsampler (its
// content above 4 kHz filtered out, not folded). A build without cgo
// offers PCMU only and says so once in its log when the Server is made.
//
// # Tracks
//
// An offer with one audio transceiver (recvonly or sendrecv) gets one
// track: the session's two directions mixed with saturation as the WAV
// output mixes them. An offer with two or more gets two tracks, the
// agent's side on the first transceiver (stream and track id "agent",
// TrackAgent) and the customer's on the second ("customer",
// TrackCustomer), each carrying its direction alone, so that the page can
// weigh them (a balance) and mix them itself. Further transceivers stay
// without a track.
//
// # Audio path
//
// Each listener subscribes to the session's tap (supervisor.Tap: 20 ms
// stereo frames at the session's rate, agent left, customer right) and
// sends one packet per
// track every 20 ms of a ticker: the oldest queued frame, or silence when the tap has
// none, so the browser's jitter buffer stays fed while nothing plays. A
// listener that falls behind (the tap's burst after a pause, a stalled
// goroutine) drops its oldest frames down to two queued, so the delay
// added here stays within 60 ms. The levels (RMS over the last 100 ms per
// direction, in dBFS) and the pipeline delay come from the same frames.
//
// # Network
//
// No ICE servers: host candidates only, loopback included, for a browser
// on the same host or LAN. The browser's mDNS (.local) candidates are
// resolved where multicast works; otherwise its connectivity checks
// reach the answer's candidates and the pair is found from them.
//
// # Bounds and lifetime
//
// At most Config.MaxPerSession listeners per session (8) and
// Config.MaxListeners in all (32); Answer refuses more with an error
// wrapping ErrSessionFull or ErrTooManyListeners. A session not playing
// yet is waited for (Config.SessionWait, 10 s: the first media of a
// session just started may be on its way). A peer connection that does
// not connect within Config.ConnectTimeout (30 s) is closed. A listener
// ends when its browser closes or loses the connection (ICE
// disconnected, failed or closed), when its session ends, or at Close.
//
// # Use
//
// New(Config{Source: sup}) with a *supervisor.Supervisor; a package that
// declares its own Listener interface with its own Levels type of the
// same fields takes As[ThatLevels]{server}. Listeners(session) counts a
// session's browsers and PipelineDelay(session) is the delay from capture
// to the network here, for the page.
//
// # Concurrency
//
// A Server is safe for concurrent use. Each listener runs one sending
// goroutine and one per track reading the browser's RTCP; Close stops them all and
// waits. After Close returns nothing runs and Answer returns an error
// wrapping net.ErrClosed.
package webrtcout
