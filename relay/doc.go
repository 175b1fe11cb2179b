// Package relay implements the framed wire protocol on TCP/TLS port 42228
// between clients, capture servers and supervisor services: control
// messages (hello, start and stop monitor, heartbeat, status, error) and
// media frames carrying captured RTP with session, direction and capture
// time. See PROTOCOL.md.
package relay
