package e2e

import (
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/capture"
)

// agentScenario is agent 1001's day: three consecutive calls from the
// phone 10.10.0.1 (new SSRCs and ports each time), the second held for
// 20 s in the middle, and a consultation call to another agent while the
// third is up; meanwhile other agents talk on their own phones.
func agentScenario() []gen.Call {
	mac := func(b ...byte) [6]byte { return [6]byte{2, 0, b[0], b[1], b[2], b[3]} }
	ep := func(ip string, port uint16, m [6]byte) gen.Endpoint {
		return gen.Endpoint{MAC: m, Addr: netip.AddrPortFrom(netip.MustParseAddr(ip), port)}
	}
	phone := func(port uint16) gen.Endpoint { return ep("10.10.0.1", port, mac(10, 10, 0, 1)) }
	call := func(id string, a, f gen.Endpoint, start, dur time.Duration, ssrc uint32, tone float64) gen.Call {
		return gen.Call{AgentID: id, Agent: a, Far: f, VLAN: 85, Priority: 5, Codec: gen.PCMU,
			Start: start, Duration: dur,
			FromAgent: gen.Direction{SSRC: ssrc, Seq: uint16(ssrc), ToneHz: tone},
			ToAgent:   gen.Direction{SSRC: ssrc + 1, Seq: uint16(ssrc >> 3), ToneHz: tone + 100}}
	}
	s := time.Second
	held := call("1001", phone(20000), ep("10.20.0.1", 30002, mac(10, 20, 0, 1)), 3*s, 24*s, 0x2000, 1000)
	held.FromAgent.Holds = []gen.Interval{{From: 2 * s, To: 22 * s}}
	held.ToAgent.Holds = []gen.Interval{{From: 2 * s, To: 22 * s}}
	return []gen.Call{
		call("1001", phone(20000), ep("10.20.0.1", 30000, mac(10, 20, 0, 1)), 0, 2*s, 0x1000, 1000),
		held,
		call("1001", phone(20010), ep("10.20.0.2", 30010, mac(10, 20, 0, 2)), 28*s, 4*s, 0x3000, 1000),
		// consultation: agent 1001 calls agent 1002's phone
		call("1001", phone(20012), ep("10.10.0.2", 21000, mac(10, 10, 0, 2)), 29*s, 2*s, 0x4000, 1200),
		// other agents, never monitored
		call("1003", ep("10.10.0.3", 20100, mac(10, 10, 0, 3)), ep("10.20.0.3", 30100, mac(10, 20, 0, 3)), 0, 32*s, 0x5000, 400),
		call("1004", ep("10.10.0.4", 20200, mac(10, 10, 0, 4)), ep("10.20.0.4", 30200, mac(10, 20, 0, 4)), 10*s, 15*s, 0x6000, 500),
	}
}

// TestSessionOutlivesCalls: one start request; the supervisor receives
// every packet of agent 1001's three calls and the consultation call, and
// nothing of the other agents; the session's recording holds exactly
// those packets.
func TestSessionOutlivesCalls(t *testing.T) {
	sec := quickstart(t)
	calls := agentScenario()
	pcap := filepath.Join(t.TempDir(), "day.pcap")
	f, err := os.Create(pcap)
	if err != nil {
		t.Fatal(err)
	}
	res, err := gen.Write(f, &gen.Config{Calls: calls, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	want := 0
	for _, st := range res.Streams {
		if calls[st.Call].AgentID == "1001" {
			want += st.Written
		}
	}
	recDir := filepath.Join(t.TempDir(), "rec")
	srvAddr, supAddr := freeAddr(t), freeAddr(t)
	sup := start(t, "smsupervisor", "--listen", supAddr, "--security-dir", sec, "--output", "null",
		"--metrics-listen", freeAddr(t))
	srv := start(t, "smserver", "--cluster-listen", "127.0.0.1:0", "--pcap", pcap, "--pcap-speed", "0",
		"--pcap-wait-session", "--exit-after-replay", "--listen", srvAddr, "--security-dir", sec,
		"--metrics-listen", freeAddr(t), "--record-dir", recDir)
	waitReady(t, sec, srvAddr)
	if _, se, code := runCmd(t, nil, "smctl", "monitor", "start", "--server", srvAddr, "--security-dir", sec,
		"--agent", "1001", "--endpoint", "10.10.0.1", "--supervisor", supAddr, "--record"); code != 0 {
		t.Fatalf("monitor start exited %d: %s", code, se)
	}
	srv.wait(t, 60*time.Second)

	// Every packet relayed reaches the supervisor.
	deadline := time.Now().Add(10 * time.Second)
	got := supervisorPackets(t, sec, supAddr)
	for got < want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		got = supervisorPackets(t, sec, supAddr)
	}
	sup.stop(t, syscall.SIGTERM)
	if got != want {
		t.Fatalf("supervisor received %d packets, want exactly the %d of agent 1001's calls", got, want)
	}
	m := regexp.MustCompile(`packets relayed (\d+)`).FindStringSubmatch(srv.stdout.String())
	if m == nil || m[1] != strconv.Itoa(want) {
		t.Fatalf("smserver summary %q, want %d packets relayed", srv.stdout.String(), want)
	}

	// The recording: one pcap, exactly agent 1001's packets, VLAN kept.
	files, _ := filepath.Glob(filepath.Join(recDir, "*agent1001*.pcap"))
	if len(files) != 1 {
		t.Fatalf("recordings %v, want one", files)
	}
	if fi, _ := os.Stat(files[0]); fi.Mode().Perm() != 0o600 {
		t.Errorf("recording mode %v, want 0600", fi.Mode().Perm())
	}
	src, err := capture.OpenFile(files[0], capture.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	frames := make([][]byte, 64)
	infos := make([]capture.Info, 64)
	var pkt capture.Packet
	phone := netip.MustParseAddr("10.10.0.1")
	n := 0
	for {
		k, err := src.ReadBatch(frames, infos)
		for i := 0; i < k; i++ {
			if err := pkt.Decode(frames[i], src.LinkType(), &infos[i]); err != nil || pkt.Kind != capture.KindRTP {
				t.Fatalf("recorded frame %d does not decode as RTP: %v", n, err)
			}
			if pkt.Src.Addr() != phone && pkt.Dst.Addr() != phone {
				t.Fatalf("recorded frame %d is %v → %v, not agent 1001's", n, pkt.Src, pkt.Dst)
			}
			if v, ok := pkt.OuterVLAN(); !ok || v.ID() != 85 || v.Priority() != 5 {
				t.Fatalf("recorded frame %d lost its VLAN tag: %+v", n, pkt.VLANs[:pkt.NumVLANs])
			}
			n++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n != want {
		t.Fatalf("recording holds %d packets, want %d", n, want)
	}
	if !strings.Contains(sup.stdout.String(), "received") {
		t.Errorf("supervisor summary: %q", sup.stdout.String())
	}
}
