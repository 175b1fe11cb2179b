// Package supervisor is the engine of the supervisor service
// (cmd/smsupervisor): a relay.Handler that takes the media capture servers
// push, one playout.Player per monitored session, the sessions' outputs
// (a WAV file each, a null sink each, or one PortAudio device shared by
// all), their status and their metrics.
//
// # Sessions
//
// A session is known by the id its media frames carry (relay.MediaFrame
// Session). The id comes from the network and is checked before any use:
// 1 to 64 bytes of A-Z a-z 0-9 . _ - and neither "." nor ".."; a frame or
// notice with another id is dropped and counted (Stats.BadSessionIDs),
// never used in a file name. A session's Player (its own jitter buffers,
// decoder and mixer: sessions never share one) is created on its first
// media packet, if fewer than Config.MaxSessions sessions are open;
// otherwise the packets are dropped and counted (Stats.Refused) and the
// refusal is logged once until a session closes. The capture server
// announces a session with its agent before its first media
// (relay.SessionNotice), so the agent is known when the output is opened;
// without a notice the agent is "unknown". A session is closed, and its
// file finalised, when every capture server that announced it said it
// stopped (a stop from a server that neither announced the session nor
// sent its media is ignored), when no media arrived for Config.IdleTimeout, or at Close.
// Media of a closed session that arrives later opens a new session (a new
// file).
//
// # Outputs
//
// "wav:PATH" writes each session to its own 16-bit mono WAV at the session's rate (8, 16 or 48 kHz) file.
// PATH's file name may hold {session} and {agent} (the agent made safe:
// characters outside the id set become "_", an empty one "unknown"); the
// directory must exist (it is not created) and may not hold placeholders.
// A PATH without placeholders is used by the first session; later ones
// get "-SESSION" inserted before the extension. An existing file is never
// truncated: the name takes "-1", "-2", ... before the extension until a
// free one is created (O_EXCL, mode 0600). A file that cannot be created
// leaves the session playing to a null sink, logged and shown in its
// status. "null" gives each session a null sink. "portaudio[:DEVICE]"
// opens the device once (at New); every session has a Player, but only the
// most recently started session's samples reach the device: the others
// are jitter-buffered, decoded and counted, their samples discarded. When
// the playing session closes, the most recently started of the others
// takes over at the next block boundary.
//
// # Concurrency
//
// A Supervisor is safe for concurrent use: relay.Server calls Media and
// Session from one goroutine per connection, Status from any, and
// Collect from the metrics server. The session table is an immutable map
// published through an atomic.Pointer, so the media path looks a session
// up without a lock; opening and closing sessions take a mutex and
// publish a new table. Each Player has its own goroutine writing its sink.
// The device of a portaudio output is written under a mutex by whichever
// Player is playing; the playing session is an atomic.Pointer read by
// every Player's sink before writing. New starts one goroutine (the idle
// reaper); Close stops it, closes every session (their Players and files)
// and the device, and waits; after Close, Media drops what it is given and
// opens nothing.
package supervisor
