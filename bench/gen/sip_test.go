package gen

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pion/srtp/v3"
	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/internal/testutil"
)

// sipScenario returns the named scenario with SIP, skipping when it needs
// G.729 and this build has no bcg729.
func sipScenario(t *testing.T, name string, seed uint64) *ScenarioSpec {
	t.Helper()
	s, err := ScenarioWithSIP(name, seed)
	if errors.Is(err, ErrCodecUnavailable) {
		t.Skipf("skipping %s: %v", name, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// allSIPNames lists every scenario that can be written with SIP.
func allSIPNames() []string { return append(ScenarioNames(), SIPScenarioNames()...) }

// tsharkLines runs tshark on path with args and returns its output lines
// split into tab-separated fields.
func tsharkLines(t *testing.T, tshark, path string, args ...string) [][]string {
	t.Helper()
	out, err := exec.Command(tshark, append([]string{"-n", "-r", path, "-o", "tcp.desegment_tcp_streams:TRUE",
		"-E", "occurrence=a", "-E", "aggregator=|"}, args...)...).Output()
	if err != nil {
		t.Fatalf("tshark %s: %v", strings.Join(args, " "), err)
	}
	var lines [][]string
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if l != "" {
			lines = append(lines, strings.Split(l, "\t"))
		}
	}
	return lines
}

// sdpKey is one SDP body as tshark and the manifest describe it.
type sdpKey struct {
	callID, addr, proto, formats, rtpmap, dir, crypto string
}

func (m SDPMedia) key(callID string) sdpKey {
	var f, r []string
	for _, pt := range m.PayloadTypes {
		f = append(f, strconv.Itoa(pt))
		r = append(r, fmt.Sprintf("%d %s", pt, m.Rtpmap[strconv.Itoa(pt)]))
	}
	return sdpKey{callID, m.Addr, m.Proto, strings.Join(f, " "), strings.Join(r, ","), m.Direction, m.Crypto}
}

// TestSIPScenariosTshark writes every scenario with SIP and has tshark's
// sip and sdp dissectors read it (TCP reassembled): per Call-ID the
// sequence of methods and responses, and per SDP body the connection
// address, media port, protocol, payload types, rtpmap, direction and
// crypto line must be the manifest's, in order; every REGISTER too.
func TestSIPScenariosTshark(t *testing.T) {
	tshark := testutil.NeedTool(t, "tshark")
	for _, name := range allSIPNames() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := sipScenario(t, name, 3)
			m := s.Manifest
			if m.SIP == nil || len(m.SIP.Calls) == 0 || len(m.SIP.Registrations) == 0 {
				t.Fatalf("manifest has no SIP calls or registrations: %+v", m.SIP)
			}
			var buf bytes.Buffer
			if _, err := s.Write(&buf); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), name+".pcap")
			writeFile(t, path, buf.Bytes())

			// Messages per Call-ID, in capture order.
			got := map[string][]string{}
			registers := 0
			for _, f := range tsharkLines(t, tshark, path, "-Y", "sip", "-T", "fields", "-e", "sip.Call-ID",
				"-e", "sip.Method", "-e", "sip.Status-Code", "-e", "sip.CSeq.method") {
				ids, methods, codes, cseqs := strings.Split(f[0], "|"), strings.Split(f[1], "|"), strings.Split(f[2], "|"), strings.Split(f[3], "|")
				// A segment with two messages: a request or a response each.
				mi, ci := 0, 0
				for i, id := range ids {
					if mi < len(methods) && methods[mi] != "" && (ci >= len(codes) || codes[ci] == "" || len(ids) == 1) {
						got[id] = append(got[id], methods[mi])
						mi++
					} else {
						got[id] = append(got[id], codes[ci]+" "+cseqs[i])
						ci++
					}
					if got[id][len(got[id])-1] == "REGISTER" {
						registers++
					}
				}
			}
			if registers != len(m.SIP.Registrations) {
				t.Errorf("tshark sees %d REGISTERs, the manifest lists %d", registers, len(m.SIP.Registrations))
			}
			for _, c := range m.SIP.Calls {
				if !slices.Equal(got[c.CallID], c.Messages) {
					t.Errorf("call %s: tshark sees %v, manifest says %v", c.CallID, got[c.CallID], c.Messages)
				}
			}
			if len(got) != len(m.SIP.Calls)+len(m.SIP.Registrations) {
				t.Errorf("tshark sees %d Call-IDs, manifest has %d calls and %d registrations", len(got), len(m.SIP.Calls), len(m.SIP.Registrations))
			}

			// SDP bodies in capture order.
			var want, seen []sdpKey
			for _, c := range m.SIP.Calls {
				for _, md := range c.Media {
					want = append(want, md.key(c.CallID))
				}
			}
			for _, f := range tsharkLines(t, tshark, path, "-Y", "sdp", "-T", "fields", "-e", "sip.Call-ID",
				"-e", "sdp.connection_info.address", "-e", "sdp.media.port", "-e", "sdp.media.proto", "-e", "sdp.media",
				"-e", "sdp.media_attr") {
				k := sdpKey{callID: f[0], addr: f[1] + ":" + f[2], proto: f[3]}
				if mf := strings.Fields(f[4]); len(mf) > 3 {
					k.formats = strings.Join(mf[3:], " ")
				}
				var rtpmap []string
				for _, a := range strings.Split(f[5], "|") {
					switch {
					case strings.HasPrefix(a, "rtpmap:"):
						rtpmap = append(rtpmap, strings.TrimPrefix(a, "rtpmap:"))
					case strings.HasPrefix(a, "crypto:"):
						k.crypto = strings.TrimPrefix(a, "crypto:")
					case a == sendrecv || a == sendonly || a == recvonly || a == inactive:
						k.dir = a
					}
				}
				k.rtpmap = strings.Join(rtpmap, ",")
				seen = append(seen, k)
			}
			sortKeys := func(ks []sdpKey) {
				slices.SortStableFunc(ks, func(a, b sdpKey) int { return strings.Compare(a.callID, b.callID) })
			}
			sortKeys(want)
			sortKeys(seen)
			if !slices.Equal(want, seen) {
				t.Errorf("SDP bodies differ:\ntshark   %v\nmanifest %v", seen, want)
			}
			t.Logf("%d calls, %d registrations, %d SDP bodies agree with tshark", len(m.SIP.Calls), len(m.SIP.Registrations), len(seen))
		})
	}
}

// TestSIPManifestConsistent checks the signalling truth against the RTP
// the manifest describes: every signalled leg's addresses are the SDP's
// of its call, the INVITE precedes the leg's first packet and the BYE
// follows its last, each non-mobile agent registered before each call
// from the address it calls from, and every leg of agent 1001 has a call.
func TestSIPManifestConsistent(t *testing.T) {
	for _, name := range allSIPNames() {
		t.Run(name, func(t *testing.T) {
			s := sipScenario(t, name, 3)
			m := s.Manifest
			calls := map[string]*SIPCall{}
			for i := range m.SIP.Calls {
				calls[m.SIP.Calls[i].CallID] = &m.SIP.Calls[i]
			}
			for _, l := range m.Legs {
				if l.Agent == "1001" && l.Monitored && l.CallID == "" {
					t.Errorf("leg %s of agent 1001 has no SIP call", l.Name)
				}
				if l.CallID == "" {
					continue
				}
				c := calls[l.CallID]
				if c == nil || c.Agent != l.Agent && l.Agent != "" {
					t.Fatalf("leg %s: call %q is not its agent's: %+v", l.Name, l.CallID, c)
				}
				agentSide, farSide := l.Dst, l.Src
				if l.Direction == FromAgent {
					agentSide, farSide = l.Src, l.Dst
				}
				has := func(party, addr string) bool {
					return slices.ContainsFunc(c.Media, func(md SDPMedia) bool { return md.Party == party && md.Addr == addr })
				}
				if !has("agent", agentSide) || !has("far", farSide) {
					t.Errorf("leg %s (%s → %s) is not in the SDP of call %s: %+v", l.Name, l.Src, l.Dst, c.CallID, c.Media)
				}
				for _, sp := range l.Active {
					if sp.FromMS <= c.InviteMS || sp.ToMS > c.ByeMS {
						t.Errorf("leg %s active %v outside its call's INVITE %d ms and BYE %d ms", l.Name, sp, c.InviteMS, c.ByeMS)
					}
				}
				if l.SRTP != nil && !slices.ContainsFunc(c.Media, func(md SDPMedia) bool {
					return md.Proto == "RTP/SAVP" && strings.HasSuffix(md.Crypto, "inline:"+l.SRTP.Key)
				}) {
					t.Errorf("leg %s: SRTP key %s is in no a=crypto line of its call", l.Name, l.SRTP.Key)
				}
			}
			for _, c := range m.SIP.Calls {
				if c.Mobile {
					continue
				}
				ip := strings.Split(c.AgentSignalling, ":")[0]
				if !slices.ContainsFunc(m.SIP.Registrations, func(r SIPRegistration) bool {
					return r.Agent == c.Agent && r.AtMS < c.InviteMS && strings.Contains(r.Contact, "@"+ip+":")
				}) {
					t.Errorf("call %s of agent %s from %s: no registration from that address before it", c.CallID, c.Agent, ip)
				}
			}
			// The JSON round trip keeps the signalling.
			var js bytes.Buffer
			if err := m.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			back, err := ReadManifest(&js)
			if err != nil {
				t.Fatal(err)
			}
			j1, _ := json.Marshal(m)
			j2, _ := json.Marshal(back)
			if !bytes.Equal(j1, j2) {
				t.Error("the manifest's SIP does not survive a JSON round trip")
			}
		})
	}
}

// rtpRecords returns the pcap records (header and frame) of the RTP
// frames of a capture, in order.
func rtpRecords(t *testing.T, b []byte) [][]byte {
	t.Helper()
	pkts, _ := readFrames(t, b)
	var out [][]byte
	rec := b[24:]
	for i := 0; len(rec) >= 16; i++ {
		n := int(le32(rec[8:]))
		if pkts[i].Kind == capture.KindRTP {
			out = append(out, rec[:16+n])
		}
		rec = rec[16+n:]
	}
	return out
}

// TestSIPKeepsRTP: with SIP, every scenario's RTP frames and their
// capture times are byte for byte those written without it, and its legs
// are the same but for their Call-IDs.
func TestSIPKeepsRTP(t *testing.T) {
	for _, name := range ScenarioNames() {
		t.Run(name, func(t *testing.T) {
			plain := scenarioOrSkip(t, name, 11)
			sip := sipScenario(t, name, 11)
			var a, b bytes.Buffer
			ra, err := plain.Write(&a)
			if err != nil {
				t.Fatal(err)
			}
			rb, err := sip.Write(&b)
			if err != nil {
				t.Fatal(err)
			}
			x, y := rtpRecords(t, a.Bytes()), rtpRecords(t, b.Bytes())
			if len(x) == 0 || len(x) != len(y) {
				t.Fatalf("%d RTP frames without SIP, %d with", len(x), len(y))
			}
			for i := range x {
				if !bytes.Equal(x[i], y[i]) {
					t.Fatalf("RTP frame %d differs with SIP", i)
				}
			}
			if rb.Datagrams <= ra.Datagrams || plain.Manifest.SIP != nil {
				t.Fatalf("SIP added %d frames; the plain manifest's SIP is %v", rb.Datagrams-ra.Datagrams, plain.Manifest.SIP)
			}
			legs := slices.Clone(sip.Manifest.Legs)
			for i := range legs {
				legs[i].CallID = ""
			}
			j1, _ := json.Marshal(plain.Manifest.Legs)
			j2, _ := json.Marshal(legs)
			if !bytes.Equal(j1, j2) {
				t.Fatal("the legs differ with SIP")
			}
			other := 0
			for _, o := range sip.Manifest.Other {
				other += o.Packets
			}
			if other != rb.Datagrams {
				t.Fatalf("manifest lists %d non-RTP frames, %d written", other, rb.Datagrams)
			}
		})
	}
}

// TestSRTPScenario decrypts the SRTP call of sip-srtp-sdes with the keys
// of the manifest: every packet authenticates and decrypts to the payload
// the generator encoded, which the capture does not carry in the clear.
func TestSRTPScenario(t *testing.T) {
	s := sipScenario(t, "sip-srtp-sdes", 2)
	var buf bytes.Buffer
	if _, err := s.Write(&buf); err != nil {
		t.Fatal(err)
	}
	pkts, _ := readFrames(t, buf.Bytes())
	n := 0
	for _, l := range s.Manifest.Legs {
		if l.SRTP == nil {
			continue
		}
		key, err := base64.StdEncoding.DecodeString(l.SRTP.Key)
		if err != nil || l.SRTP.Suite != "AES_CM_128_HMAC_SHA1_80" || len(key) != 30 {
			t.Fatalf("leg %s: SRTP %+v: %v", l.Name, l.SRTP, err)
		}
		ctx, err := srtp.CreateContext(key[:16], key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
		if err != nil {
			t.Fatal(err)
		}
		plain := s.result.Streams[l.stream].Packets
		i := 0
		for _, p := range pkts {
			if p.Kind != capture.KindRTP || fmt.Sprintf("0x%08x", p.RTP.SSRC) != l.SSRC {
				continue
			}
			udp := p.UDP
			dec, err := ctx.DecryptRTP(nil, udp, nil)
			if err != nil {
				t.Fatalf("leg %s packet %d: %v", l.Name, i, err)
			}
			if !bytes.Equal(dec[12:], plain[i].Payload) || bytes.Equal(udp[12:12+len(plain[i].Payload)], plain[i].Payload) {
				t.Fatalf("leg %s packet %d: decrypted payload differs, or the payload is in the clear", l.Name, i)
			}
			i++
		}
		if i != len(plain) || i == 0 {
			t.Fatalf("leg %s: %d SRTP packets, %d written", l.Name, i, len(plain))
		}
		n++
	}
	if n != 2 {
		t.Fatalf("%d SRTP legs, want 2", n)
	}
}

// TestSIPScenariosListenIdeal: the SIP scenarios' manifests serve the
// listening checker for agent 1001: the ideal session is right, and one
// with a foreign leg mixed in (another agent's call on the same gateway
// or address) is not.
func TestSIPScenariosListenIdeal(t *testing.T) {
	for _, name := range SIPScenarioNames() {
		t.Run(name, func(t *testing.T) {
			s := scenarioOrSkip(t, name, 5)
			if !s.Manifest.IsMonitored("1001") || s.Manifest.SIP == nil {
				t.Fatalf("agent 1001 is not monitored or there is no SIP: %+v", s.Manifest.Monitored)
			}
			pcm, _, err := s.IdealAudio("1001")
			if err != nil {
				t.Fatal(err)
			}
			r := CheckListening(s.Manifest, "1001", pcm)
			if !r.OK() || r.Windows < int(s.Manifest.DurationMS/100)/3 {
				t.Fatalf("%v", r.String())
			}
			bad, _, err := s.idealAudio(func(l *Leg) bool { return l.Agent == "1001" && l.Monitored || l.Agent == "1050" })
			if err != nil {
				t.Fatal(err)
			}
			if r := CheckListening(s.Manifest, "1001", bad); r.OK() {
				t.Fatalf("agent 1050's call mixed in passes: %v", r.String())
			}
		})
	}
}

// TestSIPTCPSplit: in sip-tcp-split, tshark finds the messages with SDP
// only by reassembling TCP: without reassembly it sees none of them
// whole, and at least one segment carries two messages.
func TestSIPTCPSplit(t *testing.T) {
	tshark := testutil.NeedTool(t, "tshark")
	s := scenarioOrSkip(t, "sip-tcp-split", 1)
	var buf bytes.Buffer
	if _, err := s.Write(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tcp.pcap")
	writeFile(t, path, buf.Bytes())
	count := func(desegment, filter string) int {
		out, err := exec.Command(tshark, "-n", "-r", path, "-o", "tcp.desegment_tcp_streams:"+desegment, "-Y", filter).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(out), "\n")
	}
	bodies := 0
	for _, c := range s.Manifest.SIP.Calls {
		if c.Transport == "tcp" {
			bodies += len(c.Media)
		}
	}
	if got := count("TRUE", "sdp && tcp"); got != bodies || bodies < 6 {
		t.Errorf("with reassembly tshark sees %d SDP bodies over TCP, manifest %d", got, bodies)
	}
	if got := count("FALSE", "sdp && tcp"); got != 0 {
		t.Errorf("without reassembly tshark sees %d SDP bodies: the messages are not split", got)
	}
	if got := count("TRUE", `sip.Status-Code == 100 && sip.Status-Code == 180 && tcp`); got != 2 {
		t.Errorf("%d segments carry a 100 Trying and a 180 Ringing, want 2", got)
	}
	if got := count("TRUE", "tcp.analysis.flags && !tcp.analysis.window_update"); got != 0 {
		t.Errorf("tshark's TCP analysis flags %d segments (sequence numbers inconsistent)", got)
	}
}
