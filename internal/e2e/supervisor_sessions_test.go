package e2e

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zaf/g711"

	"github.com/silentmon/silentmon/bench/gen"
)

// TestTwoSessionsTwoFiles: agents 1001 and 1002 monitored to one
// smsupervisor with --output wav:DIR/{agent}-{session}.wav, from one
// generated capture where a third agent also talks: two files, named
// after their agent and session, each equal to the G.711 decode of its
// agent's RTP and holding no other agent's tone.
func TestTwoSessionsTwoFiles(t *testing.T) {
	sec := quickstart(t)
	// Calls start 1 s apart so that the second session is in place before
	// agent 1002's call begins; the far side of each monitored call is
	// silent, so each file is exactly its agent's stream.
	calls, err := gen.Build(gen.BuildConfig{Calls: 3, VLAN: 85, Priority: 5, Duration: 3 * time.Second,
		Spread: 3 * time.Second, AgentTone: 1000, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	calls[1].ToAgent.ToneHz = 0
	pcap := filepath.Join(t.TempDir(), "calls.pcap")
	f, err := os.Create(pcap)
	if err != nil {
		t.Fatal(err)
	}
	res, err := gen.Write(f, &gen.Config{Calls: calls, Seed: 11, Record: true})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	dir := t.TempDir()
	srvAddr, supAddr := freeAddr(t), freeAddr(t)
	sup := start(t, "smsupervisor", "--listen", supAddr, "--security-dir", sec,
		"--output", "wav:"+filepath.Join(dir, "{agent}-{session}.wav"),
		"--metrics-listen", freeAddr(t), "--min-delay-ms", "300", "--max-delay-ms", "600")
	srv := start(t, "smserver", "--cluster-listen", "127.0.0.1:0", "--pcap", pcap, "--pcap-wait-session", "--exit-after-replay",
		"--listen", srvAddr, "--security-dir", sec, "--metrics-listen", freeAddr(t))
	waitReady(t, sec, srvAddr)
	sessions := map[string]string{} // agent → session
	for _, a := range []struct{ agent, ep string }{{"1001", "10.10.0.1"}, {"1002", "10.10.0.2"}} {
		so, se, code := runCmd(t, nil, "smctl", "monitor", "start", "--server", srvAddr, "--security-dir", sec,
			"--agent", a.agent, "--endpoint", a.ep, "--supervisor", supAddr)
		if code != 0 {
			t.Fatalf("monitor start %s exited %d: %s", a.agent, code, se)
		}
		sessions[a.agent] = strings.TrimSpace(so)
	}
	srv.wait(t, 30*time.Second)
	time.Sleep(800 * time.Millisecond)

	// The supervisor's status: two open sessions with their agents, files
	// and streams.
	so, se, code := runCmd(t, nil, "smctl", "status", "--json", "--server", supAddr, "--security-dir", sec)
	if code != 0 {
		t.Fatalf("supervisor status exited %d: %s", code, se)
	}
	var st struct {
		Sessions []struct {
			ID       string   `json:"id"`
			Agent    string   `json:"agent"`
			State    string   `json:"state"`
			Output   string   `json:"output"`
			Servers  []string `json:"capture_servers"`
			WorstMOS float64  `json:"worst_mos"`
			Streams  []struct {
				Src   string `json:"src"`
				Codec string `json:"codec"`
				Lost  int    `json:"lost"`
			} `json:"streams"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(so), &st); err != nil || len(st.Sessions) != 2 {
		t.Fatalf("supervisor status %s: %v", so, err)
	}
	for _, s := range st.Sessions {
		want := filepath.Join(dir, s.Agent+"-"+sessions[s.Agent]+".wav")
		if s.ID != sessions[s.Agent] || s.State != "open" || s.Output != want || len(s.Servers) != 1 || len(s.Streams) != 2 || s.WorstMOS < 3.4 {
			t.Errorf("session status %+v; want agent's session %s writing %s", s, sessions[s.Agent], want)
		}
	}
	if so, se, code := runCmd(t, nil, "smctl", "status", "--server", supAddr, "--security-dir", sec); code != 0 || !strings.Contains(so, "agent 1002") {
		t.Errorf("smctl status exited %d: %s%s", code, so, se)
	}
	sup.stop(t, syscall.SIGTERM)
	out := sup.stdout.String()
	if !strings.Contains(out, "smsupervisor: received ") || !strings.Contains(out, "session "+sessions["1002"]+" (agent 1002)") {
		t.Errorf("summary %q", out)
	}

	tones := map[string]float64{}
	for i := range calls {
		tones[calls[i].AgentID] = calls[i].FromAgent.ToneHz
	}
	for _, agent := range []string{"1001", "1002"} {
		path := filepath.Join(dir, agent+"-"+sessions[agent]+".wav")
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", path, fi.Mode().Perm())
		}
		var want []int16
		for _, s := range res.Streams {
			if s.AgentID == agent && s.FromAgent {
				for _, p := range s.Packets {
					for _, b := range p.Payload {
						want = append(want, g711.DecodeUlawFrame(b))
					}
				}
			}
		}
		got := readWAV(t, path)
		off := alignAt(got, want)
		if off < 0 {
			t.Fatalf("agent %s: cannot align the WAV (%d samples) with the agent's %d", agent, len(got), len(want))
		}
		for i, w := range want {
			if got[off+i] != w {
				t.Fatalf("agent %s: sample %d of the agent's stream: WAV has %d, want %d", agent, i, got[off+i], w)
			}
		}
		const tail = 80 * 8 // concealment fade after the last packet
		for i, v := range got {
			if (i < off || i >= off+len(want)+tail) && v != 0 {
				t.Fatalf("agent %s: WAV sample %d is %d outside the agent's stream", agent, i, v)
			}
		}
		for other, hz := range tones {
			if other == agent {
				continue
			}
			if p, own := tonePower(got, hz), tonePower(got, tones[agent]); p*1e4 > own {
				t.Errorf("agent %s's file holds agent %s's %g Hz tone (%.3g against %.3g)", agent, other, hz, p, own)
			}
		}
		t.Logf("agent %s: %s, %d samples, the agent's %d at %d", agent, filepath.Base(path), len(got), len(want), off)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 2 {
		t.Fatalf("files %v, want 2", files)
	}
}

// alignAt returns where want starts in got: their first non-zero samples
// line up; -1 if want does not fit.
func alignAt(got, want []int16) int {
	first := func(s []int16) int {
		for i, v := range s {
			if v != 0 {
				return i
			}
		}
		return -1
	}
	off := first(got) - first(want)
	if first(got) < 0 || off < 0 || off+len(want) > len(got) {
		return -1
	}
	return off
}

// tonePower is the Goertzel power of s at hz.
func tonePower(s []int16, hz float64) float64 {
	w := 2 * math.Cos(2*math.Pi*hz/8000)
	var s1, s2 float64
	for _, v := range s {
		s0 := float64(v) + w*s1 - s2
		s2, s1 = s1, s0
	}
	return s1*s1 + s2*s2 - w*s1*s2
}
