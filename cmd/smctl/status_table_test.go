package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/service"
	"github.com/silentmon/silentmon/internal/status"
	"github.com/silentmon/silentmon/relay"
)

// TestStatusTableAligned: smctl status lays out one row per session with
// its id, agent, start time (local), requester (the certificate's common
// name, cut to 32 characters with "…"), supervisor, the state of the link
// to it, packets, drops, worst MOS ("-" when unknown) and owner; every
// column starts (or, for numbers, ends) at the header's offset in every
// row, whatever the lengths of ids and agents and the detail lines
// between rows; an unreachable supervisor's last error is shown under its
// session's row. (Before, the columns drifted after each detail line and
// there was no start time, requester or MOS column.)
func TestStatusTableAligned(t *testing.T) {
	started := time.Date(2026, 12, 2, 3, 4, 5, 0, time.UTC)
	longAgent := strings.Repeat("a", 64)
	longID := strings.Repeat("0123456789abcdef", 4)
	longName := "operations desk of the night shift, building 7"
	const refused = "cannot connect to the supervisor at 10.9.9.9:42228: connection refused"
	st := status.ServerStatus{Server: "cap-1", Sessions: []status.SessionStatus{
		{ID: "s1", Agent: "1001", Supervisor: "10.1.1.1:42228", SupervisorState: "connected", Packets: 7,
			Started: started.Format(time.RFC3339), Requester: "CN=desk 1,O=example", WorstMOS: 4.1, Owner: "cap-1"},
		{ID: longID, Agent: longAgent, Supervisor: "10.9.9.9:42228", SupervisorState: "connecting", Packets: 123456789,
			Started: started.Format(time.RFC3339), Requester: "CN=" + longName + ",O=example", QueueDrops: 12,
			SupervisorError: refused, SupervisorErrorSince: started.Format(time.RFC3339), Owner: "cap-2",
			Streams: []status.StreamStatus{{SSRC: "0x00001001", Direction: "from-agent", Src: "10.10.0.3:20000", Dst: "10.20.0.3:30000", Packets: 9, Codec: "PCMU", MOS: 4.2}}},
		{ID: "s3", Agent: "x", Supervisor: "h:1", SupervisorState: "idle"},
	}}
	raw, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := printStatus(&b, raw); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	local := started.Local().Format("2006-01-02 15:04:05")
	want := map[string][]string{ // by session id: the cells of its row
		"s1":   {"s1", "1001", local, "desk 1", "10.1.1.1:42228", "connected", "7", "0", "4.10", "cap-1"},
		longID: {longID, longAgent, local, string([]rune(longName)[:31]) + "…", "10.9.9.9:42228", "unreachable", "123456789", "12", "-", "cap-2"},
		"s3":   {"s3", "x", "-", "-", "h:1", "idle", "0", "0", "-", "-"},
	}
	checkAligned(t, out, []string{"SESSION", "AGENT", "STARTED", "REQUESTER", "SUPERVISOR", "STATE", "PACKETS", "DROPS", "MOS", "OWNER"},
		map[string]bool{"PACKETS": true, "DROPS": true, "MOS": true}, want)
	if !strings.Contains(out, "\n  supervisor error: "+refused+"\n") {
		t.Errorf("the unreachable supervisor's error is not shown under its session:\n%s", out)
	}
	if !strings.Contains(out, "MOS 4.20") {
		t.Errorf("the stream's MOS is not shown:\n%s", out)
	}
}

// checkAligned checks that out has a header row (starting with the first
// of header) with every column in order, and one row per key of want (the
// row starting with the key) whose cells start at their header's offset,
// or end where it ends for the columns in right.
func checkAligned(t *testing.T, out string, header []string, right map[string]bool, want map[string][]string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	var head []rune
	for _, l := range lines {
		if strings.HasPrefix(l, header[0]+" ") {
			head = []rune(l)
		}
	}
	if head == nil {
		t.Fatalf("no header row starting with %s:\n%s", header[0], out)
	}
	offsets := make([]int, len(header))
	for i, h := range header {
		offsets[i] = strings.Index(string(head), h) // the header is ASCII
		if offsets[i] < 0 || (i > 0 && offsets[i] <= offsets[i-1]) {
			t.Fatalf("header %q lacks column %s in order", string(head), h)
		}
	}
	found := 0
	for _, l := range lines {
		id, _, _ := strings.Cut(l, " ")
		cells, ok := want[id]
		if !ok {
			continue
		}
		found++
		row := []rune(l)
		for i, h := range header {
			c := []rune(cells[i])
			if right[h] {
				end := offsets[i] + len(h)
				if end > len(row) || end < len(c) || string(row[end-len(c):end]) != cells[i] {
					t.Errorf("row %.8s: column %s does not end with %q at offset %d:\n%s\n%s", id, h, cells[i], end, string(head), l)
				}
				continue
			}
			if offsets[i]+len(c) > len(row) || string(row[offsets[i]:offsets[i]+len(c)]) != cells[i] {
				t.Errorf("row %.8s: column %s does not start with %q at offset %d:\n%s\n%s", id, h, cells[i], offsets[i], string(head), l)
			}
		}
	}
	if found != len(want) {
		t.Fatalf("%d rows, want %d:\n%s", found, len(want), out)
	}
}

// TestSupervisorStatusTableAligned: smctl status of a supervisor service
// lays out one row per session (id, agent, state, start time, capture
// servers, packets, seconds written, worst MOS or "-"), aligned whatever
// the lengths and the stream tables between rows, with the agent and the
// output on the line under each row.
func TestSupervisorStatusTableAligned(t *testing.T) {
	started := time.Date(2026, 12, 2, 3, 4, 5, 0, time.UTC)
	longAgent := strings.Repeat("b", 64)
	longID := strings.Repeat("fedcba9876543210", 4)
	sv := service.SupervisorStatus{Role: relay.RoleSupervisor, Output: "wav:/var/lib/silentmon/{agent}-{session}.wav", Sessions: []service.SupervisorSession{
		{ID: "s1", Agent: "1001", State: "open", Output: "/var/lib/silentmon/1001-s1.wav", Servers: []string{"cap-1"},
			Started: started.Format(time.RFC3339), Packets: 250, SecondsWritten: 5, WorstMOS: 4.3,
			Streams: []service.PlayoutStream{{Direction: "from-agent", SSRC: "0x00001001", Codec: "PCMU", Packets: 250, MOS: 4.3}}},
		{ID: longID, Agent: longAgent, State: "closed", Closed: "stopped", Output: "null", Servers: []string{"capture-server-number-two.example", "cap-3"},
			Started: started.Format(time.RFC3339), Packets: 1234567, SecondsWritten: 24691.3},
	}}
	raw, err := json.Marshal(sv)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := printStatus(&b, raw); err != nil {
		t.Fatal(err)
	}
	local := started.Local().Format("2006-01-02 15:04:05")
	checkAligned(t, b.String(), []string{"SESSION", "AGENT", "STATE", "STARTED", "FROM", "PACKETS", "WRITTEN s", "MOS"},
		map[string]bool{"PACKETS": true, "WRITTEN s": true, "MOS": true}, map[string][]string{
			"s1":   {"s1", "1001", "open", local, "cap-1", "250", "5.0", "4.30"},
			longID: {longID, longAgent, "closed (stopped)", local, "capture-server-number-two.example, cap-3", "1234567", "24691.3", "-"},
		})
	if !strings.Contains(b.String(), "\n  agent 1001, output /var/lib/silentmon/1001-s1.wav: ") {
		t.Errorf("no agent and output line under the session:\n%s", b.String())
	}
}
