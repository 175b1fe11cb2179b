package e2e

import (
	"encoding/json"
	"syscall"
	"testing"
	"time"
)

// supervisorPackets returns the packets a supervisor service has received,
// or -1 if it does not answer.
func supervisorPackets(t *testing.T, sec, addr string) int {
	so, _, code := runCmd(t, nil, "smctl", "status", "--json", "--server", addr, "--security-dir", sec, "--timeout", "1s")
	if code != 0 {
		return -1
	}
	var st struct {
		Packets int `json:"packets"`
	}
	if json.Unmarshal([]byte(so), &st) != nil {
		return -1
	}
	return st.Packets
}

// TestSupervisorRestartResumes: the supervisor service is killed mid-call
// and started again on the same address; the capture server reconnects and
// the stream resumes within a second, without a new request.
func TestSupervisorRestartResumes(t *testing.T) {
	sec := quickstart(t)
	pcap, _ := writeCapture(t, 3, 8*time.Second)
	srvAddr, supAddr := freeAddr(t), freeAddr(t)
	supArgs := []string{"--listen", supAddr, "--security-dir", sec, "--output", "null", "--metrics-listen", "127.0.0.1:0"}
	sup := start(t, "smsupervisor", supArgs...)
	srv := start(t, "smserver", "--cluster-listen", "127.0.0.1:0", "--pcap", pcap, "--pcap-wait-session",
		"--listen", srvAddr, "--security-dir", sec, "--metrics-listen", freeAddr(t))
	waitReady(t, sec, srvAddr)
	if _, se, code := runCmd(t, nil, "smctl", "monitor", "start", "--server", srvAddr, "--security-dir", sec,
		"--agent", "1001", "--endpoint", "10.10.0.1", "--supervisor", supAddr); code != 0 {
		t.Fatalf("monitor start exited %d: %s", code, se)
	}
	deadline := time.Now().Add(5 * time.Second)
	for supervisorPackets(t, sec, supAddr) < 50 {
		if time.Now().After(deadline) {
			t.Fatal("no media reached the first supervisor")
		}
		time.Sleep(50 * time.Millisecond)
	}
	sup.cmd.Process.Signal(syscall.SIGKILL)
	<-sup.done
	time.Sleep(time.Second) // the call goes on; the capture server queues

	sup2 := start(t, "smsupervisor", supArgs...)
	back := time.Now()
	for {
		if n := supervisorPackets(t, sec, supAddr); n > 0 {
			t.Logf("restarted supervisor received %d packets %v after it started", n, time.Since(back))
			break
		}
		if time.Since(back) > 3*time.Second {
			t.Fatalf("media did not resume after the supervisor restarted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Within one second of the service answering, media flows: the
	// status poll above includes the service's own start-up.
	if d := time.Since(back); d > 2*time.Second {
		t.Fatalf("media resumed %v after the restart, want within a second of the service being up", d)
	}
	so, _, code := runCmd(t, nil, "smctl", "status", "--json", "--server", srvAddr, "--security-dir", sec)
	if code != 0 {
		t.Fatal("capture server status failed")
	}
	var st struct {
		Supervisors []struct {
			Reconnects int `json:"reconnects"`
			State      string
		} `json:"supervisors"`
	}
	json.Unmarshal([]byte(so), &st)
	if len(st.Supervisors) != 1 || st.Supervisors[0].Reconnects < 1 {
		t.Fatalf("capture server status %s: want one supervisor with a reconnection", so)
	}
	srv.stop(t, syscall.SIGTERM)
	sup2.stop(t, syscall.SIGTERM)
}
