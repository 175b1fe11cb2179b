// Package console is the supervisor's web console, served by smsupervisor:
// an HTTP server with token authentication, a JSON API under /api/, a
// stream of server-sent events, and an embedded page (web/: index.html,
// app.js, style.css; no external resources) that lists the capture
// servers' agents with their call state, this supervisor's sessions with
// their live quality and level meters, the audit trail, and lets a
// supervisor start and stop monitoring and listen in the browser over
// WebRTC.
//
// # Security
//
// The console never answers without authentication. A random 128-bit
// token (NewToken), written to a 0600 file at each start (WriteTokenFile),
// opens it: GET /?token=T sets the cookie silentmon_console (HttpOnly,
// SameSite=Strict, Secure on HTTPS) and redirects to /. Every other
// request needs that cookie, an Authorization: Bearer T header, or (on
// HTTPS) a client certificate of the site CA with the client or admin
// role. Tokens are compared in constant time and never logged. POST
// requests need, besides, either the Bearer header or an Origin header
// naming this console (a page of another site cannot post with the
// cookie). On an address that is not loopback (NeedsTLS) the console
// serves HTTPS only (Config.TLS, ServerTLS); plain HTTP is refused there
// (ErrPlainOffLoopback). Request bodies are capped at 64 KiB, event
// streams at Config.MaxEventStreams, and session and agent ids are
// checked (filter.ValidID, relay.ValidAgentID) before any use. Every
// answer carries Content-Security-Policy default-src 'self',
// X-Content-Type-Options nosniff, Referrer-Policy no-referrer and
// X-Frame-Options DENY.
//
// # Sources
//
// The console reads this supervisor's sessions from a Sessions (a
// *supervisor.Supervisor), asks capture servers through a Capture
// (RelayCapture: one relay.Client with the security directory's client
// certificate), and hands browsers' WebRTC offers to a Listener (the
// webrtcout package implements it); without a Listener the page says that
// listening in the browser is not available.
//
// # Concurrency
//
// A Server is safe for concurrent use. New opens the listener; Start starts the HTTP server and
// one goroutine that polls the capture servers' agents while event
// streams are open; Close stops both, ends the open event streams and
// waits for them. After Close returns nothing of the Server runs.
package console
