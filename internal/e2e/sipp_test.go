package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/testutil"
	"github.com/silentmon/silentmon/playout/audiotest"
)

// The call of TestSIPpCallMonitoredByAgent: agent 1001's phone sends a
// 1 kHz tone at gen's default amplitude, the far side a 440 Hz tone 6 dB
// lower, for sippTalk; before the call the phone sends a 2 kHz tone from
// the very media address the call will use, which no SIP has yet tied to
// agent 1001.
const (
	sippAgentHz, sippAgentAmp = 1000.0, 8000
	sippFarHz, sippFarAmp     = 440.0, 4000
	sippStrayHz, sippStrayAmp = 2000.0, 8000
	sippTalk                  = 7 * time.Second
	sippAgentMediaPort        = 16000
	sippFarMediaPort          = 26000
	sippStrayPackets          = 50
)

// TestSIPpCallMonitoredByAgent monitors a call between real SIP user
// agents on a voice VLAN, as a switch's SPAN port shows it: SIPp as agent
// 1001's phone (in one network namespace) calls SIPp as the far side (in
// another) with PCMU over 802.1Q VLAN 85 (untagged on a kernel without
// 802.1Q); both directions of the phone's port are mirrored with tc to
// the SPAN port of a third namespace, where smserver captures,
// smsupervisor writes a WAV and smctl drives them with quickstart's
// certificates.
//
// The session is started with smctl monitor start --agent 1001 --wait,
// before anything is known of agent 1001. RTP sent from the phone's
// media address before the call is seen on the SPAN but not captured.
// During the call, smctl agents shows agent 1001 talking, monitored by
// the session, in a PCMU call with the media addresses of the SDP, and
// the session's streams carry VLAN 85. Every RTP packet of the call
// reaches the supervisor. The WAV holds, in nearly every 100 ms window of
// the call, the agent's 1 kHz tone as the loudest (within 10 Hz) at its
// sent level, the far side's 440 Hz at its level, and nowhere the 2 kHz
// of before the call. Without SIP tracking (smserver --sip=false) the
// session captures nothing and the test fails.
func TestSIPpCallMonitoredByAgent(t *testing.T) {
	testutil.NeedRoot(t)
	sipp := testutil.NeedTool(t, "sipp", "ip", "tc")
	if testing.Short() {
		t.Skip("skipping: the SIPp call lasts about 8 s in real time")
	}
	began := time.Now()
	n := newSIPpNet(t)
	sec := quickstart(t)
	dir := t.TempDir()
	for _, f := range []string{"uac.xml", "uas.xml"} {
		b, err := os.ReadFile(filepath.Join("testdata", "sipp", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	agentMedia := netip.AddrPortFrom(n.AgentIP, sippAgentMediaPort)
	farMedia := netip.AddrPortFrom(n.FarIP, sippFarMediaPort)
	writeTonePCAP(t, filepath.Join(dir, "agent.pcap"), agentMedia, farMedia, 0x1001cafe, sippAgentHz, sippAgentAmp, sippTalk)
	writeTonePCAP(t, filepath.Join(dir, "far.pcap"), farMedia, agentMedia, 0x5001beef, sippFarHz, sippFarAmp, sippTalk)

	// The namespace of the SPAN port is the capture server's host: its
	// loopback carries the control and media links.
	const srvAddr, supAddr = "127.0.0.1:42228", "127.0.0.1:42229"
	wav := filepath.Join(dir, "agent1001.wav")
	sup := startInNetns(t, n.Span, "smsupervisor", "--listen", supAddr, "--security-dir", sec, "--output", "wav:"+wav,
		"--metrics-listen", "127.0.0.1:19229", "--min-delay-ms", "200", "--max-delay-ms", "600")
	startInNetns(t, n.Span, "smserver", "--interface", n.SpanIf, "--listen", srvAddr, "--cluster-listen", "127.0.0.1:42029",
		"--security-dir", sec, "--metrics-listen", "127.0.0.1:19228")
	ctl := func(args ...string) []string {
		return append(args, "--security-dir", sec, "--timeout", "10s")
	}
	if !pollFor(30*time.Second, 200*time.Millisecond, func() bool {
		_, _, code := smctlInNetns(t, n.Span, ctl("status", "--server", srvAddr)...)
		return code == 0
	}) {
		t.Fatalf("smserver on %s in %s did not answer within 30 s", n.SpanIf, n.Span)
	}
	so, se, code := smctlInNetns(t, n.Span, ctl("monitor", "start", "--server", srvAddr, "--agent", "1001", "--wait",
		"--supervisor", supAddr)...)
	if code != 0 {
		t.Fatalf("smctl monitor start --agent 1001 --wait exited %d: %s", code, se)
	}
	session := strings.TrimSpace(so)

	type serverStatus struct {
		Capture  struct{ Frames, RTP uint64 }
		Sessions []struct {
			ID      string
			Agent   string
			Packets uint64
			Streams []struct {
				Src, Dst  string
				Direction string
				VLAN      *int
				Packets   uint64
			}
		}
	}
	srvStatus := func() serverStatus {
		var st serverStatus
		smctlJSONInNetns(t, n.Span, &st, ctl("status", "--json", "--server", srvAddr)...)
		return st
	}
	sessionPackets := func(st serverStatus) uint64 {
		for _, s := range st.Sessions {
			if s.ID == session {
				return s.Packets
			}
		}
		t.Fatalf("smserver status has no session %s", session)
		return 0
	}
	supPackets := func() uint64 {
		var st struct{ Packets uint64 }
		smctlJSONInNetns(t, n.Span, &st, ctl("status", "--json", "--server", supAddr)...)
		return st.Packets
	}

	// Before the call: the phone's media address sends RTP the SPAN
	// sees, but no SIP ties it to agent 1001 yet.
	sendStray(t, n.Agent, agentMedia, farMedia)
	var before serverStatus
	if !pollFor(20*time.Second, 100*time.Millisecond, func() bool {
		before = srvStatus()
		return before.Capture.RTP >= sippStrayPackets
	}) {
		t.Fatalf("the SPAN port showed smserver %d RTP packets (%d frames) of the %d sent before the call: the mirror does not work",
			before.Capture.RTP, before.Capture.Frames, sippStrayPackets)
	}
	if p := sessionPackets(before); p != 0 {
		t.Errorf("before any SIP, the session of agent 1001 captured %d packets", p)
	}
	t.Logf("before the call: smserver saw %d frames, %d RTP; the session captured %d", before.Capture.Frames, before.Capture.RTP, sessionPackets(before))

	// The call.
	callStart := time.Now()
	uas := startInNetnsDir(t, n.Far, dir, sipp, "-sf", filepath.Join(dir, "uas.xml"), "-i", n.FarIP.String(), "-p", "5060",
		"-mi", n.FarIP.String(), "-mp", fmt.Sprint(sippFarMediaPort), "-m", "1", "-nostdin",
		"-timeout", "90s", "-timeout_error", "-trace_err")
	uac := startInNetnsDir(t, n.Agent, dir, sipp, net.JoinHostPort(n.FarIP.String(), "5060"),
		"-sf", filepath.Join(dir, "uac.xml"), "-i", n.AgentIP.String(), "-p", "5060",
		"-mi", n.AgentIP.String(), "-mp", fmt.Sprint(sippAgentMediaPort), "-m", "1", "-nostdin",
		"-timeout", "90s", "-timeout_error", "-trace_err")

	// During the call, smctl agents shows agent 1001 talking, with the
	// media addresses of the SDP, learned from SIP; the session's streams
	// come from VLAN 85.
	type agentList struct {
		Agents []struct {
			ID      string
			State   string
			Devices []struct{ Address, Learned string }
			Calls   []struct {
				CallID        string `json:"call_id"`
				State         string
				Local, Remote []string
				Codecs        []string
			}
			Monitored []string `json:"monitored_by_sessions"`
		}
	}
	var talking, vlanSeen, lastAgents string
	var devices []string
	polls := 0
	for (talking == "" || vlanSeen == "") && !procExited(uac) {
		polls++
		if talking == "" {
			var list agentList
			so := smctlJSONInNetns(t, n.Span, &list, ctl("agents", "--json", "--server", srvAddr)...)
			lastAgents = so
			for _, a := range list.Agents {
				if a.ID != "1001" || a.State != "talking" || !slices.Contains(a.Monitored, session) {
					continue
				}
				for _, c := range a.Calls {
					if c.State == "talking" && slices.Contains(c.Local, agentMedia.String()) &&
						slices.Contains(c.Remote, farMedia.String()) && slices.Contains(c.Codecs, "PCMU") {
						talking = so
						for _, d := range a.Devices {
							devices = append(devices, d.Address+" ("+d.Learned+")")
						}
					}
				}
			}
		}
		if vlanSeen == "" {
			st := srvStatus()
			for _, s := range st.Sessions {
				if s.ID != session || len(s.Streams) < 2 {
					continue
				}
				ok := true
				for _, x := range s.Streams {
					if n.VLAN == 0 {
						ok = ok && x.VLAN == nil
					} else {
						ok = ok && x.VLAN != nil && *x.VLAN == n.VLAN
					}
				}
				if ok {
					vlanSeen = fmt.Sprintf("%+v", s.Streams)
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if talking == "" {
		t.Errorf("in %d polls during the call, smctl agents never showed agent 1001 talking, monitored by session %s, "+
			"in a PCMU call whose media SIP gave as %s (agent's side) and %s (far side); the last answer:\n%s",
			polls, session, agentMedia, farMedia, lastAgents)
	} else {
		t.Logf("during the call (%d polls): smctl agents --json: %s", polls, strings.Join(strings.Fields(talking), " "))
		// Agent 1001 neither registered nor is in a directory: its
		// device can only come from the call's SDP.
		if want := agentMedia.String() + " (sip-call)"; !slices.Contains(devices, want) {
			t.Errorf("agent 1001's devices are %q, want %q learned from the call", devices, want)
		}
	}
	if vlanSeen == "" {
		t.Errorf("in %d polls during the call, the session never had two streams, all on VLAN %d (0: untagged)", polls, n.VLAN)
	} else {
		t.Logf("session streams: %s", vlanSeen)
	}
	uac.wait(t, 90*time.Second)
	uas.wait(t, 30*time.Second)
	callTime := time.Since(callStart)

	// Both directions of the call, every packet the SPAN copied, reach the
	// supervisor; then it finishes the WAV.
	const sent = 2 * uint64(sippTalk/sippPacketTime)
	var captured, received uint64
	pollFor(30*time.Second, 200*time.Millisecond, func() bool {
		captured = sessionPackets(srvStatus())
		received = supPackets()
		return captured >= sent && received >= captured
	})
	t.Logf("the call lasted %v; the session captured %d packets of the %d sent, the supervisor received %d", callTime.Round(time.Millisecond), captured, sent, received)
	if captured < sent*95/100 || captured > sent {
		t.Errorf("the session captured %d packets; the call sent %d", captured, sent)
	}
	if received < captured {
		t.Errorf("the supervisor received %d packets of the %d the session captured", received, captured)
	}
	sup.stop(t, syscall.SIGTERM)

	pcm := readWAV(t, wav)
	checkSIPpWAV(t, pcm)
	t.Logf("test took %v", time.Since(began).Round(time.Millisecond))
}

// procExited reports whether p has exited.
func procExited(p *proc) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// sendStray sends sippStrayPackets RTP packets of a 2 kHz tone from src, in
// namespace ns, to dst, 20 ms apart, from an unconnected socket (so that
// ICMP errors from dst do not stop it), and closes the socket.
func sendStray(t *testing.T, ns string, src, dst netip.AddrPort) {
	t.Helper()
	var conn *net.UDPConn
	if err := testutil.InNetns(ns, func() (err error) {
		conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(src))
		return err
	}); err != nil {
		t.Fatalf("open the phone's media socket %s: %v", src, err)
	}
	defer conn.Close()
	to := net.UDPAddrFromAddrPort(dst)
	next := time.Now()
	for i := range sippStrayPackets {
		if _, err := conn.WriteToUDP(toneRTP(i, 0x5757a7a7, sippStrayHz, sippStrayAmp), to); err != nil {
			t.Fatalf("send RTP from %s to %s: %v", src, dst, err)
		}
		next = next.Add(sippPacketTime)
		time.Sleep(time.Until(next))
	}
}

// checkSIPpWAV listens to the supervisor's WAV of the SIPp call in
// windows of 100 ms. The talking period runs from the first to the last
// window where the agent's tone is within 20 dB of its sent level, less
// 200 ms at each end (the start of playout and the concealment of the
// end). In it, a window is right when its loudest frequency is the
// agent's 1 kHz within 10 Hz, the 1 kHz and 440 Hz tones are within
// 1.5 dB of their sent levels, and the 2 kHz sent before the call is at
// least 40 dB below the agent's level. At least 90% of the windows of a
// talking period of at least 6 s must be right (a machine under load may
// make a few packets late), and no window anywhere holds the 2 kHz.
func checkSIPpWAV(t *testing.T, pcm []int16) {
	t.Helper()
	const win = 800 // 100 ms
	nw := len(pcm) / win
	first, last := -1, -1
	for i := range nw {
		if sippDB(audiotest.ToneLevel(pcm[i*win:(i+1)*win], sippAgentHz), sippAgentAmp) > -20 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	t.Logf("WAV: %.2f s, the agent's tone heard from %.1f s to %.1f s", float64(len(pcm))/8000, float64(first)/10, float64(last+1)/10)
	if first < 0 {
		t.Fatalf("the WAV (%.2f s) never holds the agent's %v Hz tone", float64(len(pcm))/8000, sippAgentHz)
	}
	from, to := first+2, last-2 // windows [from, to]
	windows, right := 0, 0
	var failures []string
	var worstAgent, worstFar, worstHz float64
	for i := range nw {
		w := pcm[i*win : (i+1)*win]
		stray := sippDB(audiotest.ToneLevel(w, sippStrayHz), sippAgentAmp)
		if stray > -40 {
			t.Errorf("window at %.1f s holds the %v Hz tone sent before the call at %.1f dB", float64(i)/10, sippStrayHz, stray)
		}
		if i < from || i > to {
			continue
		}
		windows++
		hz := dominantHz(w)
		la, lf := sippDB(audiotest.ToneLevel(w, sippAgentHz), sippAgentAmp), sippDB(audiotest.ToneLevel(w, sippFarHz), sippFarAmp)
		worstHz = max(worstHz, sippAbs(hz-sippAgentHz))
		worstAgent = max(worstAgent, sippAbs(la))
		worstFar = max(worstFar, sippAbs(lf))
		if sippAbs(hz-sippAgentHz) <= 10 && sippAbs(la) <= 1.5 && sippAbs(lf) <= 1.5 {
			right++
		} else if len(failures) < 5 {
			failures = append(failures, fmt.Sprintf("at %.1f s: loudest %.0f Hz, agent's tone %+.1f dB, far side's %+.1f dB", float64(i)/10, hz, la, lf))
		}
	}
	t.Logf("talking period %.1f s: %d/%d windows right; worst: loudest frequency %.0f Hz off, agent's level %.2f dB off, far side's %.2f dB off",
		float64(windows)/10, right, windows, worstHz, worstAgent, worstFar)
	if windows < 60 {
		t.Errorf("the talking period lasts %.1f s; the call carried %v of tone", float64(windows)/10, sippTalk)
	}
	if right < windows*9/10 {
		t.Errorf("only %d of %d windows right: %s", right, windows, strings.Join(failures, "; "))
	} else if len(failures) > 0 {
		t.Logf("windows wrong: %s", strings.Join(failures, "; "))
	}
	if d := float64(len(pcm)) / 8000; d > sippTalk.Seconds()+2 {
		t.Errorf("the WAV lasts %.2f s, the call's audio %v", d, sippTalk)
	}
}

func sippAbs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
