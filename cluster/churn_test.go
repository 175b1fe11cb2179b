package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/audit"
)

// The tests of this file run the real smserver three times (A, B, C) in
// network namespaces (see e2eLab), every member's SPAN port carrying the
// same call of agent 1001, and measure at the supervisor what the
// member deaths cost the session's audio. Each member forwards what it
// sees; the supervisor keeps the first copy of each packet ("new") and
// drops the others, so audio only stops when no live member forwards.

// callPPS is the packet rate of the generated calls: one RTP packet every
// 20 ms, as a G.711 phone sends.
const callPPS = 50

// accepted returns the packets of session id the supervisor kept (the
// first copy of each), in order of arrival.
func accepted(ps []supPacket, id string) []supPacket {
	var out []supPacket
	for _, p := range ps {
		if p.session == id && p.accepted {
			out = append(out, p)
		}
	}
	return out
}

// longestGap is the longest time in [from, to] without a kept packet:
// between two consecutive packets, or from from to the first one, or
// from the last one to to. at is where the gap began.
func longestGap(ps []supPacket, from, to time.Time) (gap time.Duration, at time.Time) {
	prev := from
	for _, p := range ps {
		if p.at.Before(from) {
			continue
		}
		if p.at.After(to) {
			break
		}
		if d := p.at.Sub(prev); d > gap {
			gap, at = d, prev
		}
		prev = p.at
	}
	if d := to.Sub(prev); d > gap {
		gap, at = d, prev
	}
	return gap, at
}

// afterKill describes the audio around a kill at time k: resume is the
// time from the kill to the next kept packet, gap the interval between
// the kept packets on either side of the kill, last the member that sent
// the kept packet before it. ok is false when no packet came after k.
type afterKill struct {
	resume, gap time.Duration
	last        string
	ok          bool
}

func aroundKill(ps []supPacket, k time.Time) afterKill {
	i, _ := slices.BinarySearchFunc(ps, k, func(p supPacket, t time.Time) int { return p.at.Compare(t) })
	for i < len(ps) && !ps[i].at.After(k) {
		i++
	}
	if i == len(ps) || i == 0 {
		return afterKill{}
	}
	return afterKill{resume: ps[i].at.Sub(k), gap: ps[i].at.Sub(ps[i-1].at), last: ps[i-1].from, ok: true}
}

// senders is the set of members whose copies of session id's packets
// reached the supervisor (kept or dropped as duplicates) at or after
// since.
func senders(ps []supPacket, id string, since time.Time) map[string]int {
	out := map[string]int{}
	for _, p := range ps {
		if p.session == id && !p.at.Before(since) {
			out[p.from]++
		}
	}
	return out
}

// missingIn counts the packets of want (the call, in order) between the
// first and the last kept one that the supervisor never kept, and the
// packets kept more than once (a duplicate that slipped through).
func missingIn(ps []supPacket, want []string) (missing, doubled, first, last int) {
	index := make(map[string]int, len(want))
	for i, w := range want {
		index[w] = i
	}
	got := make([]int, len(want))
	first, last = len(want), -1
	for _, p := range ps {
		i, ok := index[p.rtp]
		if !ok {
			continue
		}
		got[i]++
		first, last = min(first, i), max(last, i)
	}
	for i := first; i <= last; i++ {
		if got[i] == 0 {
			missing++
		}
		if got[i] > 1 {
			doubled++
		}
	}
	return missing, doubled, first, last
}

// startCall starts the session on A, waits for the three members to hold
// it, and replays the same call of d on the three SPAN ports at once. It
// returns the session id, the call's packets and the replays; the replays
// are killed when the test ends.
func startCall(t *testing.T, lab *e2eLab, d time.Duration) (string, []string, []*exec.Cmd) {
	t.Helper()
	for i := range 3 {
		lab.startServer(i)
	}
	lab.waitMesh(60 * time.Second)
	id := lab.startSession(0, "1001", "10.9.0.5")
	waitFor(t, 15*time.Second, "session "+id+" on A, B and C", func() bool {
		return lab.hasSess(0, id) && lab.hasSess(1, id) && lab.hasSess(2, id)
	})
	pcap := filepath.Join(lab.dir, "call.pcap")
	want := rtpCapture(t, pcap, 1, int(d/time.Second)*callPPS)
	var replays []*exec.Cmd
	for i := range 3 {
		replays = append(replays, lab.replay(lab.ns[i], pcap, callPPS))
	}
	t.Cleanup(func() {
		for _, r := range replays {
			if r.ProcessState == nil {
				r.Process.Kill()
				r.Wait()
			}
		}
	})
	// Every member streams: the supervisor has copies from A, B and C.
	began := time.Now()
	waitFor(t, 20*time.Second, "copies of the call from A, B and C at the supervisor", func() bool {
		ps, _ := lab.supervisorPackets(0)
		return len(senders(ps, id, began)) == 3
	})
	return id, want, replays
}

// TestMemberKilledSessionContinues: a session started once with one-shot
// smctl on A, whose agent's call A, B and C all see; A is killed with
// SIGKILL. The supervisor's audio has no gap of a second or more, it goes
// on until the end of the call (past the 15 s session TTL, when B adopts
// the session), and A restarted holds the session and streams it again.
func TestMemberKilledSessionContinues(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the member-death test in -short mode")
	}
	lab := newE2ELab(t, "") // the product's defaults: refresh 5 s, session TTL 15 s
	const call = 30 * time.Second
	id, want, replays := startCall(t, lab, call)
	replayed := time.Now()
	time.Sleep(5 * time.Second)
	killed := lab.kill(0)
	t.Logf("smserver A (the session's owner) killed with SIGKILL %v into the call", killed.Sub(replayed).Round(time.Millisecond))
	for _, r := range replays {
		if err := r.Wait(); err != nil {
			t.Fatalf("tcpreplay: %v", err)
		}
	}
	time.Sleep(time.Second) // the last packets on their way
	ps, _ := lab.supervisorPackets(0)
	kept := accepted(ps, id)
	if len(kept) == 0 {
		t.Fatal("the supervisor kept no packet of the session")
	}
	k := aroundKill(kept, killed)
	if !k.ok {
		t.Fatalf("no packet of the session reached the supervisor after A was killed")
	}
	end := kept[len(kept)-1].at
	gap, gapAt := longestGap(kept, killed, end)
	wholeGap, _ := longestGap(kept, kept[0].at, end)
	missing, doubled, first, last := missingIn(kept, want)
	after := senders(ps, id, killed.Add(500*time.Millisecond))
	t.Logf("audio at the supervisor: %d packets kept of the call's %d (first #%d, last #%d, %d missing between them, %d kept twice)",
		len(kept), len(want), first+1, last+1, missing, doubled)
	t.Logf("A killed: the packet before the kill came from %s; the next one arrived %v after the kill, %v after the one before it",
		k.last, k.resume.Round(time.Microsecond), k.gap.Round(time.Microsecond))
	t.Logf("longest gap after the kill %v (at %v after the kill), over the whole call %v; senders after the kill %v",
		gap.Round(time.Microsecond), gapAt.Sub(killed).Round(time.Millisecond), wholeGap.Round(time.Microsecond), after)
	if gap >= time.Second {
		t.Errorf("the audio stopped for %v after A was killed, want under 1 s", gap)
	}
	if last != len(want)-1 {
		t.Errorf("the session stopped streaming before the end of the call: the last packet kept is #%d of %d", last+1, len(want))
	}
	if after["A"] > 0 || after["B"] == 0 || after["C"] == 0 {
		t.Errorf("senders after A's death %v, want B and C", after)
	}
	if end.Sub(killed) < call-10*time.Second {
		t.Errorf("the audio ended %v after the kill, want the rest of the call", end.Sub(killed))
	}
	t.Logf("owner after the kill as B sees it: %s", lab.ownerOn(1, id))

	// A restarted holds the session and streams it again: the agent's
	// next packets appear on A's SPAN port only.
	restarted := time.Now()
	lab.startServer(0)
	waitFor(t, 30*time.Second, "restarted A to hold the session", func() bool { return lab.hasSess(0, id) })
	t.Logf("restarted A holds the session %v after its start", time.Since(restarted).Round(time.Millisecond))
	more := rtpCapture(t, filepath.Join(lab.dir, "after-restart.pcap"), 30000, 100)
	from := len(lab.supOut.String())
	if err := lab.replay(lab.ns[0], filepath.Join(lab.dir, "after-restart.pcap"), 200).Wait(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the packets seen by restarted A at the supervisor", func() bool {
		ps, _ := lab.supervisorPackets(from)
		m, _, f, l := missingIn(accepted(ps, id), more)
		return f == 0 && l == len(more)-1 && m == 0
	})
	ps, _ = lab.supervisorPackets(from)
	if s := senders(ps, id, time.Time{}); len(s) != 1 || s["A"] == 0 {
		t.Errorf("after A's restart the packets came from %v, want A only", s)
	}
}

// churnDuration is how long TestChurn kills and restarts members: 60 s,
// or SILENTMON_CHURN_DURATION (a Go duration such as 5m; give go test a
// -timeout long enough).
func churnDuration(t *testing.T) time.Duration {
	s := os.Getenv("SILENTMON_CHURN_DURATION")
	if s == "" {
		return 60 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 10*time.Second {
		t.Fatalf("SILENTMON_CHURN_DURATION is %q; give a duration of at least 10s, such as 5m", s)
	}
	return d
}

// churnSeed is the seed of TestChurn's choices: SILENTMON_CHURN_SEED to
// repeat a run, else the clock.
func churnSeed(t *testing.T) uint64 {
	if s := os.Getenv("SILENTMON_CHURN_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SILENTMON_CHURN_SEED is %q, not an unsigned integer", s)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// TestChurn: three members see the agent's call; every 5 to 20 s (kill to
// kill) one member chosen at random is killed with SIGKILL and restarted
// 0.5 to 3 s later, so at most one is down at a time, for 60 s (or
// SILENTMON_CHURN_DURATION). Then the session is stopped once on a member
// chosen at random. The supervisor never went 2 s without audio, and the
// three members' merged audit trail holds one accepted start, one
// accepted stop, one end (stopped) after the stop, no broken line, and
// per member capture periods that pair up (see checkPeriods).
func TestChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the churn test in -short mode")
	}
	duration, seed := churnDuration(t), churnSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	t.Logf("churn for %v, seed %d (SILENTMON_CHURN_SEED=%d repeats the choices)", duration, seed, seed)
	lab := newE2ELab(t, "") // the product's defaults: refresh 5 s, session TTL 15 s
	id, want, _ := startCall(t, lab, duration+90*time.Second)

	type kill struct {
		member      int
		at, restart time.Time
	}
	var kills []kill
	churn := time.Now()
	stopChurn := churn.Add(duration)
	next := churn.Add(5*time.Second + time.Duration(rng.Int64N(int64(15*time.Second))))
	for next.Before(stopChurn) {
		time.Sleep(time.Until(next))
		i, down := rng.IntN(3), 500*time.Millisecond+time.Duration(rng.Int64N(int64(2500*time.Millisecond)))
		at := lab.kill(i)
		time.Sleep(down)
		lab.startServer(i)
		kills = append(kills, kill{member: i, at: at, restart: time.Now()})
		t.Logf("%6.1f s: killed %s, restarted after %v", at.Sub(churn).Seconds(), lab.names[i], down.Round(time.Millisecond))
		next = at.Add(5*time.Second + time.Duration(rng.Int64N(int64(15*time.Second))))
	}
	time.Sleep(time.Until(stopChurn))

	// Every member holds the session and streams it before the stop, so
	// that each one's last capture period ends with the stop.
	waitFor(t, 60*time.Second, "A, B and C to hold the session after the churn", func() bool {
		return lab.hasSess(0, id) && lab.hasSess(1, id) && lab.hasSess(2, id)
	})
	waitFor(t, 30*time.Second, "each member's current run to begin a capture period", func() bool {
		for i := range 3 {
			recs, _, err := audit.ReadFile(lab.auditFile(i), audit.Query{Session: id, Since: lab.procs[i].started})
			if err != nil || !slices.ContainsFunc(recs, func(r audit.Record) bool { return r.Action == audit.ActionCaptureBegin }) {
				return false
			}
		}
		return true
	})
	stopOn := rng.IntN(3)
	stopSent := time.Now()
	if out, err := lab.ctl(lab.ns[stopOn], "monitor", "stop", "--server", lab.addr[stopOn]+":42228", "--session", id); err != nil {
		t.Fatalf("smctl monitor stop on %s: %v: %s", lab.names[stopOn], err, out)
	}
	stopped := time.Now()
	waitFor(t, 10*time.Second, "the session to end on A, B and C", func() bool { return !lab.anyHas(id) })
	t.Logf("stopped on %s %v after the churn began", lab.names[stopOn], stopSent.Sub(churn).Round(time.Millisecond))

	// The audio: the longest time without a kept packet from the start
	// of the churn to the stop, and around each kill.
	ps, _ := lab.supervisorPackets(0)
	kept := accepted(ps, id)
	gap, gapAt := longestGap(kept, churn, stopSent)
	var inChurn []supPacket
	for _, p := range kept {
		if !p.at.Before(churn) && p.at.Before(stopSent) {
			inChurn = append(inChurn, p)
		}
	}
	missing, doubled, first, last := missingIn(inChurn, want)
	byMember := map[string]int{}
	for _, p := range inChurn {
		byMember[p.from]++
	}
	var resumes []time.Duration
	fromKilled, maxKillGap := 0, time.Duration(0)
	for _, k := range kills {
		a := aroundKill(kept, k.at)
		if !a.ok {
			t.Errorf("no audio after the kill of %s at %.1f s", lab.names[k.member], k.at.Sub(churn).Seconds())
			continue
		}
		resumes = append(resumes, a.resume)
		maxKillGap = max(maxKillGap, a.gap)
		if a.last == lab.names[k.member] {
			fromKilled++
		}
	}
	slices.Sort(resumes)
	restarts := [3]int{}
	for _, k := range kills {
		restarts[k.member]++
	}
	t.Logf("kills %d (A %d, B %d, C %d), restarts %d", len(kills), restarts[0], restarts[1], restarts[2], len(kills))
	t.Logf("audio during the churn: %d packets kept (#%d to #%d of the call), %d missing, %d kept twice; first copies by member %v",
		len(inChurn), first+1, last+1, missing, doubled, byMember)
	t.Logf("longest gap without audio from the churn's start to the stop: %v (at %.1f s)", gap.Round(time.Microsecond), gapAt.Sub(churn).Seconds())
	if len(resumes) > 0 {
		t.Logf("from a kill to the next packet at the supervisor: min %v, median %v, max %v; largest interval across a kill %v; "+
			"%d of %d kills hit the member whose copy the supervisor had kept last",
			resumes[0].Round(time.Microsecond), resumes[len(resumes)/2].Round(time.Microsecond), resumes[len(resumes)-1].Round(time.Microsecond),
			maxKillGap.Round(time.Microsecond), fromKilled, len(kills))
	}
	if gap >= 2*time.Second {
		t.Errorf("the supervisor went %v without audio during the churn (at %.1f s), want under 2 s", gap, gapAt.Sub(churn).Seconds())
	}

	// The audit trail, once every member has ended its capture period.
	runs := make([][]time.Time, 3)
	for i := range 3 {
		for _, r := range lab.runs[i] {
			runs[i] = append(runs[i], r.started)
		}
	}
	var recs []audit.Record
	var problems []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		recs = mergedAudit(t, lab, id)
		var cut [3]int
		problems, cut = checkPeriods(recs, lab.names, runs, stopSent)
		if len(problems) == 0 || time.Now().After(deadline) {
			if len(problems) == 0 {
				t.Logf("capture periods cut by a kill (begin without end): A %d, B %d, C %d", cut[0], cut[1], cut[2])
			}
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, p := range problems {
		t.Error(p)
	}
	counts := map[string]int{}
	var starts, stops, ends []audit.Record
	for _, r := range recs {
		key := r.Action
		if r.Result != "" {
			key += " " + r.Result
		}
		counts[key]++
		switch r.Action {
		case audit.ActionStart:
			starts = append(starts, r)
		case audit.ActionStop:
			stops = append(stops, r)
		case audit.ActionEnd:
			ends = append(ends, r)
		}
	}
	var keys []string
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s %d,", k, counts[k])
	}
	t.Logf("merged audit of the session: %d lines:%s", len(recs), strings.TrimSuffix(b.String(), ","))
	if len(starts) != 1 || starts[0].Result != audit.ResultAccepted {
		t.Errorf("start lines %+v, want one accepted", starts)
	}
	if len(stops) != 1 || stops[0].Result != audit.ResultAccepted || stops[0].Member != lab.names[stopOn] {
		t.Errorf("stop lines %+v, want one accepted, on %s", stops, lab.names[stopOn])
	}
	if len(ends) != 1 || ends[0].Reason != audit.ReasonStopped || ends[0].Time.Before(stopSent) || ends[0].Time.After(stopped.Add(5*time.Second)) {
		t.Errorf("end lines %+v, want one, reason %q, after the stop at %v", ends, audit.ReasonStopped, stopSent)
	}
}

// mergedAudit runs smctl audit --file over the three members' trails for
// session id and returns the records; a malformed line (smctl reports it
// on stderr, audit.ReadFile counts it) fails the test.
func mergedAudit(t *testing.T, lab *e2eLab, id string) []audit.Record {
	t.Helper()
	args := []string{"audit", "--session", id, "--json"}
	for i := range 3 {
		args = append(args, "--file", lab.auditFile(i)+"*")
		_, st, err := audit.ReadFile(lab.auditFile(i)+"*", audit.Query{})
		if err != nil {
			t.Fatal(err)
		}
		if st.Malformed != 0 {
			t.Fatalf("%s: %d malformed lines of %d", lab.auditFile(i), st.Malformed, st.Lines)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(lab.smctl, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("smctl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Fatalf("smctl audit said on stderr: %s", stderr.String())
	}
	var recs []audit.Record
	dec := json.NewDecoder(&stdout)
	for dec.More() {
		var r audit.Record
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("smctl audit --json: %v", err)
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("smctl audit --json: %v", err)
		}
		recs = append(recs, r)
	}
	return recs
}

// checkPeriods checks the capture-begin and capture-end lines of each
// member, run by run (runs[i] holds the start times of member i's runs; a
// line belongs to the run started last before its time). The rule:
//
//   - within a run, the lines alternate begin, end, begin, end…, starting
//     with a begin, and every end counts packets;
//   - a run killed with SIGKILL (every run but the last) may finish with a
//     begin that has no end: the member died while streaming and could
//     not write one. Such a period is "cut by a kill"; a run has at most
//     one, its last;
//   - the last run of each member (alive at the stop) began a period and
//     ended it at or after the stop.
//
// It returns what breaks the rule and the periods cut by a kill per
// member.
func checkPeriods(recs []audit.Record, names [3]string, runs [][]time.Time, stop time.Time) (problems []string, cut [3]int) {
	for i, name := range names {
		byRun := make([][]audit.Record, len(runs[i]))
		for _, r := range recs {
			if r.Member != name || (r.Action != audit.ActionCaptureBegin && r.Action != audit.ActionCaptureEnd) {
				continue
			}
			j := len(runs[i]) - 1
			for j > 0 && r.Time.Before(runs[i][j]) {
				j--
			}
			byRun[j] = append(byRun[j], r)
		}
		for j, lines := range byRun {
			lastRun := j == len(byRun)-1
			open := false
			for _, r := range lines {
				switch {
				case r.Action == audit.ActionCaptureBegin && open:
					problems = append(problems, fmt.Sprintf("member %s run %d: capture-begin at %v while a period is open", name, j+1, r.Time))
				case r.Action == audit.ActionCaptureEnd && !open:
					problems = append(problems, fmt.Sprintf("member %s run %d: capture-end at %v without a begin", name, j+1, r.Time))
				case r.Action == audit.ActionCaptureEnd && r.Packets == 0:
					problems = append(problems, fmt.Sprintf("member %s run %d: capture-end at %v counts no packet", name, j+1, r.Time))
				}
				open = r.Action == audit.ActionCaptureBegin
			}
			switch {
			case open && !lastRun:
				cut[i]++
			case open:
				problems = append(problems, fmt.Sprintf("member %s: the capture period of its last run has no end after the stop", name))
			case lastRun && (len(lines) == 0 || lines[len(lines)-1].Time.Before(stop)):
				problems = append(problems, fmt.Sprintf("member %s: its last run has no capture period ended by the stop", name))
			}
		}
	}
	return problems, cut
}
