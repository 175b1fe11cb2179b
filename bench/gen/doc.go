// Package gen writes synthetic VoIP call captures: RTP over UDP over IPv4 or
// IPv6, optionally 802.1Q tagged (and 802.1ad QinQ), as a pcap file with
// Ethernet link type.
//
// A capture is described by a Config: explicit calls (both directions of
// each call, with addresses, VLAN, codec, packet time, start offset,
// duration, audio, SSRCs, start sequence numbers and timestamps, and hold
// intervals) plus impairments (random loss, burst loss, jitter, reordering,
// duplicates) driven by a seed, so that the same Config always produces the
// same bytes. Build produces N calls with distinct addresses for load tests
// and the demo.
//
// The payload is real audio, a tone or caller-supplied PCM samples, encoded
// with the call's codec (G.711 µ-law, A-law; G.729, G.722 and Opus when
// built with cgo and bcg729, libspandsp and libopus), so tests can compare
// what a decoder renders with what went in. G.722 goes on payload type 9
// (encoded from the 8 kHz audio in spandsp's narrowband mode, RTP clock
// 8000); Opus on 111 (OpusPayloadType, 32 kbit/s, RTP clock 48000: 960
// per 20 ms), with a=rtpmap:111 opus/48000/2 in the SDP and telephone
// events at 48000. Write returns, per stream, what it wrote and what it
// dropped.
//
// # Timing model
//
// Packet k of a direction is due at Call.Start + k×Ptime after Config.Epoch.
// Impairments only ever delay a packet (jitter is uniform in [0, Jitter],
// reordering adds ReorderDelay, a duplicate follows its original after
// DuplicateDelay), and the file is written in non-decreasing capture time
// order, so jitter larger than the packet time also reorders. Lost packets
// consume sequence numbers; hold intervals do not (the phone stops sending,
// then resumes with the next sequence number, a timestamp that reflects the
// elapsed time and the marker bit set).
//
// Frames are built into one reused buffer and streamed to the writer, so
// memory stays proportional to the number of streams, not of packets,
// unless Config.Record asks for the written packets. Config.Datagrams adds
// non-RTP UDP (DNS, NBNS) at given capture times.
//
// # Call-flow scenarios
//
// Scenario(name, seed) returns a contact-centre call flow (ScenarioNames
// lists them: hold-resume, resume-new-ssrc, consult-retrieve,
// consult-overlap, blind-transfer, attended-transfer, conference,
// stray-packet, two-vlans, music-on-hold, g729b-silence, loss-jitter,
// multi-agent) as a Config plus a Manifest; docs/scenarios.md describes
// each. Every leg carries a tone of its own, so a listener can tell who
// is audible; every scenario also holds an unrelated call (agent 1050) and
// DNS and NBNS datagrams. gencalls --scenario NAME writes the capture and
// the manifest as JSON:
//
//	{"scenario": "hold-resume", "description": "...",
//	 "epoch": "2024-01-01T09:00:00Z",        // capture time of offset 0
//	 "duration_ms": 12000,
//	 "monitored": [{"agent": "1001", "endpoints": ["10.10.0.1"]}],
//	 "legs": [{"agent": "1001", "name": "customer",
//	   "direction": "to-agent",              // or "from-agent", "other"
//	   "tone_hz": 500, "amplitude": 8000,
//	   "ssrc": "0x1f7c8189", "src": "10.20.0.1:30000", "dst": "10.10.0.1:20000",
//	   "vlan": 85,                            // null when untagged
//	   "active": [{"from_ms": 0, "to_ms": 4000}, {"from_ms": 8000, "to_ms": 12000}],
//	   "lost": [{"from_ms": 1220, "to_ms": 1300}], // omitted when none
//	   "events": [{"from_ms": 1000, "to_ms": 1100}], // DTMF digits sent instead of the voice; omitted when none
//	   "monitored": true, "codec": "PCMU"}],
//	 "other": [{"protocol": "dns", "src": "10.10.0.1:51234", "dst": "10.0.0.53:53",
//	   "vlan": 85, "packets": 6}],
//	 "expected": {"customer": {"packets": 400, "sent": 400, "lost": 0,
//	   "reordered": 0, "duplicates": 0}}}
//
// A leg is one voice on one RTP stream; legs of an agent with "monitored"
// true must be heard in that agent's session when they are active, every
// other leg never (another agent's call, a call transferred away, music on
// hold sent to the customer). A conference bridge's mix is one stream with
// one leg per mixed voice, and the same voice keeps its tone on every
// stream that carries it.
//
// # SIP signalling
//
// ScenarioWithSIP(name, seed) writes the same scenario with its SIP/SDP
// signalling in the same capture (gencalls --scenario NAME --sip); the
// scenarios of SIPScenarioNames (sip-inbound-outbound, sip-mobile-gateway,
// sip-softphone-ip-change, sip-tcp-split, sip-srtp-sdes) always have it.
// Calls are signalled between the agent's phone (port 5060) and the PBX
// at PBXAddr (10.0.0.10:5060): REGISTER and 200 OK before the phone's
// first call, INVITE with the SDP offer, 100 Trying, 180 Ringing, 200 OK
// with the answer, ACK, re-INVITEs (sendonly, recvonly, sendrecv) for
// holds and media moves, REFER and NOTIFY for transfers, and BYE and
// 200 OK after the last RTP packet. The SDP's c= and m= lines are the
// addresses and ports of the RTP the generator writes, with an rtpmap
// for each payload type (and telephone-event/8000 on 101 with G.729).
// Adding signalling never changes the RTP: its random draws come from a
// generator of their own. Over TCP (sip-tcp-split) messages are real
// segments with consistent sequence numbers after a handshake; those with
// SDP are split over two or three segments, and each 100 Trying shares a
// segment with the 180 Ringing. Call.SRTP encrypts a call's RTP with
// SRTP (sip-srtp-sdes: RTP/SAVP with a=crypto SDES keys).
//
// The manifest's "sip" object is the signalling truth: the registrations
// (agent, extension, contact, transport) and, per dialog, the Call-ID,
// direction, caller and callee, transport, the messages in order
// ("INVITE", "180 INVITE", "200 BYE") and each SDP body's party, address,
// protocol, payload types, rtpmap, direction and crypto line. Each
// signalled leg has its "call_id", an SRTP leg its "srtp" suite and key.
//
// # Listening
//
// CheckListening(manifest, agent, pcm) judges a rendered session (8 kHz
// mono) against the manifest in 100 ms windows: it aligns the audio with
// the manifest (the audio's first sample is the first audible packet),
// then measures each leg's tone with a Goertzel filter: active legs must be
// audible, held and foreign legs silent, and a window where all the
// agent's legs are inactive quiet. A digit period (the leg's "events",
// not in its "active" spans) must be silent, not the voice concealed. ScenarioSpec.IdealAudio renders what a
// perfect session sounds like.
package gen
