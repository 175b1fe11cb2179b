package filter

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/capture"
)

// testSessions is the monitored set most matching tests run against.
func testSessions(t testing.TB) []*Session {
	mk := func(id, agent string, eps ...string) *Session {
		return &Session{ID: id, Agent: agent, Endpoints: mustEndpoints(t, eps...), Supervisor: "127.0.0.1:42228"}
	}
	return []*Session{
		mk("phone", "1001", "10.1.0.1"),
		mk("desk", "1002", "00:1b:54:00:00:02"),
		mk("mobile", "1003", "10.9.0.1:20000-20999"),
		mk("mobile2", "1004", "10.9.0.1:21000-21999"),
		mk("vlan", "1005", "vlan85/10.1.0.5"),
		mk("v6", "1006", "2001:db8::6"),
		mk("p7a", "1007", "10.1.0.7"),
		mk("p7b", "1007", "10.1.0.7"),
		mk("both", "1008", "10.1.0.8", "10.9.0.2:30000-30999"),
		mk("vlanmac", "1009", "vlan85/00:1b:54:00:00:09"),
		mk("qinq", "1010", "vlan300.85/10.1.0.10"),
		mk("qinqmac", "1011", "vlan300.85/00:1b:54:00:00:11"),
	}
}

type want struct {
	id  string
	dir Direction
}

func (w want) String() string { return w.id + "/" + w.dir.String() }

// matchCase is one packet and the sessions it must match.
type matchCase struct {
	name string
	f    frame
	info *capture.Info
	want []want // in any order; nil means no match
}

func matchCases() []matchCase {
	var (
		phoneMAC = mac("02:00:00:00:00:01")
		farMAC   = mac("02:00:00:00:99:99")
		deskMAC  = mac("00:1b:54:00:00:02")
		vmMAC    = mac("00:1b:54:00:00:09")
		gwMAC    = mac("02:00:00:00:09:01")
	)
	ip4 := func(src, dst string) frame {
		return frame{srcMAC: phoneMAC, dstMAC: farMAC, src: ap(src), dst: ap(dst), ssrc: 0x1234}
	}
	with := func(f frame, mod func(*frame)) frame { mod(&f); return f }
	return []matchCase{
		{name: "phone sends", f: ip4("10.1.0.1:20000", "10.20.0.1:30000"), want: []want{{"phone", FromAgent}}},
		{name: "phone receives", f: ip4("10.20.0.1:30000", "10.1.0.1:20000"), want: []want{{"phone", ToAgent}}},
		{name: "unmonitored", f: ip4("10.1.0.99:20000", "10.20.0.99:30000")},
		{name: "phone TCP", f: with(ip4("10.1.0.1:20000", "10.20.0.1:30000"), func(f *frame) { f.notUDP = true })},

		{name: "desktop sends", f: frame{srcMAC: deskMAC, dstMAC: farMAC, src: ap("10.1.0.2:20000"), dst: ap("10.20.0.1:30000")},
			want: []want{{"desk", FromAgent}}},
		{name: "desktop receives", f: frame{srcMAC: gwMAC, dstMAC: deskMAC, src: ap("10.20.0.1:30000"), dst: ap("10.1.0.2:20000")},
			want: []want{{"desk", ToAgent}}},
		{name: "desktop IP without its MAC", f: frame{srcMAC: farMAC, dstMAC: gwMAC, src: ap("10.1.0.2:20000"), dst: ap("10.20.0.1:30000")}},

		{name: "gateway leg sends, low port", f: ip4("10.9.0.1:20000", "10.30.0.1:40000"), want: []want{{"mobile", FromAgent}}},
		{name: "gateway leg sends", f: ip4("10.9.0.1:20010", "10.30.0.1:40000"), want: []want{{"mobile", FromAgent}}},
		{name: "gateway leg receives, high port", f: ip4("10.30.0.1:40000", "10.9.0.1:20999"), want: []want{{"mobile", ToAgent}}},
		{name: "gateway below range", f: ip4("10.9.0.1:19999", "10.30.0.1:40000")},
		{name: "gateway other agent unmonitored", f: ip4("10.30.0.1:40000", "10.9.0.1:22000")},
		{name: "gateway second agent", f: ip4("10.9.0.1:21500", "10.30.0.1:40000"), want: []want{{"mobile2", FromAgent}}},
		{name: "gateway far port in range does not count", f: ip4("10.30.0.1:20010", "10.9.0.1:23000")},

		{name: "VLAN 85", f: with(ip4("10.1.0.5:20000", "10.20.0.5:30000"), func(f *frame) { f.vlans = []uint16{85} }),
			want: []want{{"vlan", FromAgent}}},
		{name: "VLAN 85 receive", f: with(ip4("10.20.0.5:30000", "10.1.0.5:20000"), func(f *frame) { f.vlans = []uint16{85} }),
			want: []want{{"vlan", ToAgent}}},
		{name: "VLAN 86", f: with(ip4("10.1.0.5:20000", "10.20.0.5:30000"), func(f *frame) { f.vlans = []uint16{86} })},
		{name: "VLAN untagged", f: ip4("10.1.0.5:20000", "10.20.0.5:30000")},
		{name: "VLAN stripped by the kernel", f: ip4("10.1.0.5:20000", "10.20.0.5:30000"),
			info: &capture.Info{VLANValid: true, VLANTCI: 5<<13 | 85}, want: []want{{"vlan", FromAgent}}},
		{name: "VLAN QinQ outer 85", f: with(ip4("10.1.0.5:20000", "10.20.0.5:30000"), func(f *frame) { f.vlans = []uint16{85, 100} }),
			want: []want{{"vlan", FromAgent}}},
		{name: "VLAN QinQ inner 85", f: with(ip4("10.1.0.5:20000", "10.20.0.5:30000"), func(f *frame) { f.vlans = []uint16{100, 85} }),
			want: []want{{"vlan", FromAgent}}},
		{name: "VLAN QinQ inner 85 receive", f: with(ip4("10.20.0.5:30000", "10.1.0.5:20000"), func(f *frame) { f.vlans = []uint16{100, 85} }),
			want: []want{{"vlan", ToAgent}}},
		{name: "VLAN QinQ neither tag 85", f: with(ip4("10.1.0.5:20000", "10.20.0.5:30000"), func(f *frame) { f.vlans = []uint16{100, 86} })},
		{name: "VLAN 85 in a third tag", f: with(ip4("10.1.0.5:20000", "10.20.0.5:30000"), func(f *frame) { f.vlans = []uint16{100, 200, 85} })},
		{name: "VLAN QinQ outer stripped by the kernel, inner 85", f: with(ip4("10.1.0.5:20000", "10.20.0.5:30000"), func(f *frame) { f.vlans = []uint16{85} }),
			info: &capture.Info{VLANValid: true, VLANTCI: 100, VLANTPID: 0x88a8}, want: []want{{"vlan", FromAgent}}},
		{name: "VLAN QinQ MAC endpoint inner 85", f: frame{srcMAC: farMAC, dstMAC: vmMAC, vlans: []uint16{100, 85}, src: ap("10.20.0.9:30000"), dst: ap("10.1.0.9:20000")},
			want: []want{{"vlanmac", ToAgent}}},

		{name: "QinQ pair", f: with(ip4("10.1.0.10:20000", "10.20.0.10:30000"), func(f *frame) { f.vlans = []uint16{300, 85} }),
			want: []want{{"qinq", FromAgent}}},
		{name: "QinQ pair receive", f: with(ip4("10.20.0.10:30000", "10.1.0.10:20000"), func(f *frame) { f.vlans = []uint16{300, 85} }),
			want: []want{{"qinq", ToAgent}}},
		{name: "QinQ pair with a third tag", f: with(ip4("10.1.0.10:20000", "10.20.0.10:30000"), func(f *frame) { f.vlans = []uint16{300, 85, 7} }),
			want: []want{{"qinq", FromAgent}}},
		{name: "QinQ pair outer stripped by the kernel", f: with(ip4("10.1.0.10:20000", "10.20.0.10:30000"), func(f *frame) { f.vlans = []uint16{85} }),
			info: &capture.Info{VLANValid: true, VLANTCI: 5<<13 | 300, VLANTPID: 0x88a8}, want: []want{{"qinq", FromAgent}}},
		{name: "QinQ pair reversed", f: with(ip4("10.1.0.10:20000", "10.20.0.10:30000"), func(f *frame) { f.vlans = []uint16{85, 300} })},
		{name: "QinQ pair wrong inner", f: with(ip4("10.1.0.10:20000", "10.20.0.10:30000"), func(f *frame) { f.vlans = []uint16{300, 86} })},
		{name: "QinQ pair wrong outer", f: with(ip4("10.1.0.10:20000", "10.20.0.10:30000"), func(f *frame) { f.vlans = []uint16{301, 85} })},
		{name: "QinQ pair inner alone", f: with(ip4("10.1.0.10:20000", "10.20.0.10:30000"), func(f *frame) { f.vlans = []uint16{85} })},
		{name: "QinQ pair outer alone", f: with(ip4("10.1.0.10:20000", "10.20.0.10:30000"), func(f *frame) { f.vlans = []uint16{300} })},
		{name: "QinQ pair untagged", f: ip4("10.1.0.10:20000", "10.20.0.10:30000")},
		{name: "QinQ pair MAC endpoint", f: frame{srcMAC: mac("00:1b:54:00:00:11"), dstMAC: farMAC, vlans: []uint16{300, 85}, src: ap("10.1.0.11:20000"), dst: ap("10.20.0.11:30000")},
			want: []want{{"qinqmac", FromAgent}}},
		{name: "QinQ pair MAC endpoint wrong outer", f: frame{srcMAC: mac("00:1b:54:00:00:11"), dstMAC: farMAC, vlans: []uint16{100, 85}, src: ap("10.1.0.11:20000"), dst: ap("10.20.0.11:30000")}},
		{name: "VLAN on an unrestricted endpoint", f: with(ip4("10.1.0.1:20000", "10.20.0.1:30000"), func(f *frame) { f.vlans = []uint16{42} }),
			want: []want{{"phone", FromAgent}}},
		{name: "VLAN MAC endpoint", f: frame{srcMAC: vmMAC, dstMAC: farMAC, vlans: []uint16{85}, src: ap("10.1.0.9:20000"), dst: ap("10.20.0.9:30000")},
			want: []want{{"vlanmac", FromAgent}}},
		{name: "VLAN MAC endpoint wrong VLAN", f: frame{srcMAC: farMAC, dstMAC: vmMAC, vlans: []uint16{86}, src: ap("10.20.0.9:30000"), dst: ap("10.1.0.9:20000")}},

		{name: "IPv6 sends", f: ip4("[2001:db8::6]:20000", "[2001:db8::99]:30000"), want: []want{{"v6", FromAgent}}},
		{name: "IPv6 receives", f: ip4("[2001:db8::99]:30000", "[2001:db8::6]:20000"), want: []want{{"v6", ToAgent}}},
		{name: "IPv6 unmonitored", f: ip4("[2001:db8::7]:20000", "[2001:db8::99]:30000")},

		{name: "two sessions on one endpoint", f: ip4("10.1.0.7:20000", "10.20.0.7:30000"),
			want: []want{{"p7a", FromAgent}, {"p7b", FromAgent}}},
		{name: "two sessions on one endpoint receive", f: ip4("10.20.0.7:30000", "10.1.0.7:20000"),
			want: []want{{"p7a", ToAgent}, {"p7b", ToAgent}}},
		{name: "between two monitored agents", f: ip4("10.1.0.1:20000", "10.1.0.7:20002"),
			want: []want{{"phone", FromAgent}, {"p7a", ToAgent}, {"p7b", ToAgent}}},
		{name: "IP phone calls desktop", f: frame{srcMAC: phoneMAC, dstMAC: deskMAC, src: ap("10.1.0.1:20000"), dst: ap("10.1.0.2:20002")},
			want: []want{{"phone", FromAgent}, {"desk", ToAgent}}},
		{name: "desktop calls IP phone", f: frame{srcMAC: deskMAC, dstMAC: phoneMAC, src: ap("10.1.0.2:20002"), dst: ap("10.1.0.1:20000")},
			want: []want{{"desk", FromAgent}, {"phone", ToAgent}}},
		{name: "session with both ends of a packet appears once", f: ip4("10.1.0.8:20000", "10.9.0.2:30010"),
			want: []want{{"both", FromAgent}}},
		{name: "session with both ends reversed", f: ip4("10.9.0.2:30010", "10.1.0.8:20000"),
			want: []want{{"both", FromAgent}}},
	}
}

func gotWants(ms []Match) []want {
	out := make([]want, len(ms))
	for i, m := range ms {
		out[i] = want{m.Session.ID, m.Direction}
	}
	return out
}

func sortWants(ws []want) []want {
	ws = slices.Clone(ws)
	slices.SortFunc(ws, func(a, b want) int { return strings.Compare(a.id, b.id) })
	return ws
}

func TestMatch(t *testing.T) {
	f := New()
	f.Set(testSessions(t))
	for _, tt := range matchCases() {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.f.decode(t, tt.info)
			got := f.MatchAll(p, nil)
			if g, w := sortWants(gotWants(got)), sortWants(tt.want); !slices.Equal(g, w) {
				t.Fatalf("MatchAll = %v, want %v", g, w)
			}
			m, ok := f.Match(p)
			if ok != (len(tt.want) > 0) {
				t.Fatalf("Match ok = %v, want %v", ok, len(tt.want) > 0)
			}
			if ok && m != got[0] {
				t.Fatalf("Match = %v, want the first of MatchAll %v", want{m.Session.ID, m.Direction}, gotWants(got))
			}
			// MatchAll appends: what dst held is kept.
			prev := []Match{{Session: &Session{ID: "earlier"}, Direction: ToAgent}}
			more := f.MatchAll(p, prev)
			if len(more) != 1+len(got) || more[0].Session.ID != "earlier" {
				t.Fatalf("MatchAll did not append to dst: %v", gotWants(more))
			}
		})
	}
}

func TestMatchDirectionSourceFirst(t *testing.T) {
	// The "both" session owns both ends of the packet: the source decides.
	f := New()
	f.Set(testSessions(t))
	for _, tt := range []struct {
		f   frame
		dir Direction
	}{
		{frame{src: ap("10.1.0.8:20000"), dst: ap("10.9.0.2:30010")}, FromAgent},
		{frame{src: ap("10.9.0.2:30010"), dst: ap("10.1.0.8:20000")}, FromAgent},
		{frame{src: ap("10.9.0.2:29999"), dst: ap("10.1.0.8:20000")}, ToAgent},
	} {
		m, ok := f.Match(tt.f.decode(t, nil))
		if !ok || m.Session.ID != "both" || m.Direction != tt.dir {
			t.Errorf("%v → %v: %v %v, want both/%v", tt.f.src, tt.f.dst, m, ok, tt.dir)
		}
	}
}

func TestEmptyFilter(t *testing.T) {
	f := New()
	p := frame{src: ap("10.1.0.1:20000"), dst: ap("10.20.0.1:30000")}.decode(t, nil)
	if m, ok := f.Match(p); ok {
		t.Fatalf("empty filter matched %v", m)
	}
	if got := f.MatchAll(p, nil); len(got) != 0 {
		t.Fatalf("empty filter matched %v", gotWants(got))
	}
	if len(f.Sessions()) != 0 {
		t.Fatalf("empty filter has sessions %v", f.Sessions())
	}
	if _, ok := f.Session("x"); ok {
		t.Fatal("empty filter found session x")
	}
	if f.Remove("x") {
		t.Fatal("Remove on an empty filter reported a removal")
	}
}

func TestSetAddRemove(t *testing.T) {
	eps := func(s ...string) []Endpoint { return mustEndpoints(t, s...) }
	p1 := frame{src: ap("10.1.0.1:20000"), dst: ap("10.20.0.1:30000")}.decode(t, nil)
	p2 := frame{src: ap("10.20.0.2:30000"), dst: ap("10.1.0.2:20000")}.decode(t, nil)
	ids := func(f *Filter, p *capture.Packet) []string {
		var out []string
		for _, m := range f.MatchAll(p, nil) {
			out = append(out, m.Session.ID)
		}
		slices.Sort(out)
		return out
	}
	f := New()
	input := []*Session{
		{ID: "b", Agent: "1002", Endpoints: eps("10.1.0.2")},
		{ID: "a", Agent: "1001", Endpoints: eps("10.1.0.1")},
	}
	f.Set(input)
	input[0] = &Session{ID: "z", Agent: "9", Endpoints: eps("10.1.0.1")} // Set must have copied
	var got []string
	for _, s := range f.Sessions() {
		got = append(got, s.ID)
	}
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Sessions = %v, want [a b] sorted", got)
	}
	if s, ok := f.Session("b"); !ok || s.Agent != "1002" {
		t.Fatalf("Session(b) = %v, %v", s, ok)
	}
	if _, ok := f.Session("c"); ok {
		t.Fatal("Session(c) found")
	}
	if g := ids(f, p1); !slices.Equal(g, []string{"a"}) {
		t.Fatalf("p1 matched %v, want [a]", g)
	}

	// Add a second session on agent 1001's phone.
	f.Add(&Session{ID: "c", Agent: "1001", Endpoints: eps("10.1.0.1")})
	if g := ids(f, p1); !slices.Equal(g, []string{"a", "c"}) {
		t.Fatalf("after Add, p1 matched %v, want [a c]", g)
	}
	// Add with an existing ID replaces it: b now watches another phone.
	f.Add(&Session{ID: "b", Agent: "1002", Endpoints: eps("10.1.0.3")})
	if g := ids(f, p2); len(g) != 0 {
		t.Fatalf("replaced session still matches its old endpoint: %v", g)
	}
	if n := len(f.Sessions()); n != 3 {
		t.Fatalf("%d sessions after replacing one, want 3", n)
	}
	if !f.Remove("a") {
		t.Fatal("Remove(a) reported no removal")
	}
	if f.Remove("a") {
		t.Fatal("second Remove(a) reported a removal")
	}
	if g := ids(f, p1); !slices.Equal(g, []string{"c"}) {
		t.Fatalf("after Remove, p1 matched %v, want [c]", g)
	}
	f.Set(nil)
	if g := ids(f, p1); len(g) != 0 || len(f.Sessions()) != 0 {
		t.Fatalf("after Set(nil): matched %v, %d sessions", g, len(f.Sessions()))
	}
}

// TestSessionOutlivesCalls plays two consecutive calls of one agent's
// phone, with new SSRCs, new RTP ports and different far ends, generated
// as a real capture: every packet of both calls belongs to the session,
// with the right direction, and a call of another phone does not.
func TestSessionOutlivesCalls(t *testing.T) {
	phone := netip.MustParseAddr("10.10.0.1")
	call := func(agentPort uint16, far string, start time.Duration, ssrc uint32) gen.Call {
		return gen.Call{
			AgentID:   "1001",
			Agent:     gen.Endpoint{MAC: [6]byte{2, 0, 10, 10, 0, 1}, Addr: netip.AddrPortFrom(phone, agentPort)},
			Far:       gen.Endpoint{MAC: [6]byte{2, 0, 10, 20, 0, 1}, Addr: netip.MustParseAddrPort(far)},
			VLAN:      85,
			Start:     start,
			Duration:  200 * time.Millisecond,
			FromAgent: gen.Direction{SSRC: ssrc, ToneHz: 1000},
			ToAgent:   gen.Direction{SSRC: ssrc + 1},
		}
	}
	other := call(20000, "10.20.0.3:30000", 0, 0x300)
	other.Agent.Addr = netip.MustParseAddrPort("10.10.0.2:20000")
	cfg := &gen.Config{Calls: []gen.Call{
		call(20000, "10.20.0.1:30000", 0, 0x100),
		call(20102, "10.20.0.2:31000", time.Second, 0x200),
		other,
	}}
	var buf bytes.Buffer
	res, err := gen.Write(&buf, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := New()
	f.Set([]*Session{{ID: "s1", Agent: "1001", Endpoints: mustEndpoints(t, "vlan85/10.10.0.1")}})

	src, err := capture.NewFileSource(&buf, capture.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	frames := make([][]byte, 64)
	infos := make([]capture.Info, 64)
	var p capture.Packet
	seen := map[uint32]int{} // SSRC → matched packets
	total := 0
	for {
		n, err := src.ReadBatch(frames, infos)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			total++
			if err := p.Decode(frames[i], src.LinkType(), &infos[i]); err != nil {
				t.Fatal(err)
			}
			m, ok := f.Match(&p)
			mine := p.Src.Addr() == phone || p.Dst.Addr() == phone
			if ok != mine {
				t.Fatalf("packet %v → %v ssrc %#x: matched %v, want %v", p.Src, p.Dst, p.RTP.SSRC, ok, mine)
			}
			if !ok {
				continue
			}
			wantDir := ToAgent
			if p.Src.Addr() == phone {
				wantDir = FromAgent
			}
			if m.Direction != wantDir || m.Session.ID != "s1" {
				t.Fatalf("packet %v → %v: %s/%v, want s1/%v", p.Src, p.Dst, m.Session.ID, m.Direction, wantDir)
			}
			seen[p.RTP.SSRC]++
		}
	}
	if total != res.Frames {
		t.Fatalf("read %d frames, the generator wrote %d", total, res.Frames)
	}
	for _, st := range res.Streams[:4] {
		if seen[st.SSRC] != st.Written || st.Written == 0 {
			t.Errorf("stream %#x (%v → %v): %d packets matched, %d written", st.SSRC, st.Src, st.Dst, seen[st.SSRC], st.Written)
		}
	}
	if len(seen) != 4 {
		t.Errorf("matched %d streams, want the 4 of the agent's two calls", len(seen))
	}
}

// TestMatchAllocs enforces the zero-allocation packet path.
func TestMatchAllocs(t *testing.T) {
	f := New()
	f.Set(testSessions(t))
	dst := make([]Match, 0, 8)
	for _, tt := range matchCases() {
		p := tt.f.decode(t, tt.info)
		if n := testing.AllocsPerRun(100, func() { dst = f.MatchAll(p, dst[:0]) }); n != 0 {
			t.Errorf("%s: MatchAll allocates %v times per packet", tt.name, n)
		}
		if n := testing.AllocsPerRun(100, func() { f.Match(p) }); n != 0 {
			t.Errorf("%s: Match allocates %v times per packet", tt.name, n)
		}
	}
}

// TestConcurrentMatchAndUpdate runs matchers against a filter that is
// being changed; run it with -race. Every match a reader sees must be
// consistent with some published table: the session it names owns one of
// the packet's addresses, and the session that is never removed always
// matches.
func TestConcurrentMatchAndUpdate(t *testing.T) {
	base := testSessions(t)
	f := New()
	f.Set(base)
	cases := matchCases()
	pkts := make([]*capture.Packet, len(cases))
	for i, c := range cases {
		pkts[i] = c.f.decode(t, c.info)
	}
	stable := frame{src: ap("10.1.0.1:20000"), dst: ap("10.20.0.1:30000")}.decode(t, nil)
	extra := frame{src: ap("10.1.0.50:20000"), dst: ap("10.20.0.50:30000")}.decode(t, nil)
	all := append(pkts, extra)

	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	var matched, extraSeen atomic.Int64
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := make([]Match, 0, 8)
			for !stop.Load() {
				for _, p := range all {
					dst = f.MatchAll(p, dst[:0])
					for _, m := range dst {
						if !owns(m.Session, p) {
							errs <- fmt.Errorf("session %s matched %v → %v, which it does not own", m.Session.ID, p.Src, p.Dst)
							return
						}
					}
					matched.Add(int64(len(dst)))
					if p == extra && len(dst) > 0 {
						extraSeen.Add(1)
					}
				}
				if m, ok := f.Match(stable); !ok || m.Session.ID != "phone" {
					errs <- fmt.Errorf("the phone session, never removed, did not match: %v %v", m, ok)
					return
				}
			}
		}()
	}
	eps := mustEndpoints(t, "10.1.0.50")
	for i := 0; i < 300; i++ {
		id := fmt.Sprintf("extra%d", i%7)
		f.Add(&Session{ID: id, Agent: "2000", Endpoints: eps})
		f.Add(&Session{ID: "p7a", Agent: "1007", Endpoints: mustEndpoints(t, "10.1.0.7")})
		if i%3 == 0 {
			f.Remove(id)
			f.Remove("mobile")
		}
		if i%10 == 0 {
			f.Set(base)
		}
	}
	f.Add(&Session{ID: "extra-last", Agent: "2000", Endpoints: eps})
	// Let the readers see the final table before stopping them.
	deadline := time.Now().Add(5 * time.Second)
	for before := extraSeen.Load(); extraSeen.Load() == before && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if matched.Load() == 0 || extraSeen.Load() == 0 {
		t.Fatalf("readers matched %d packets, extra %d times", matched.Load(), extraSeen.Load())
	}
	if m, ok := f.Match(extra); !ok || !strings.HasPrefix(m.Session.ID, "extra") {
		t.Fatalf("final table: extra packet matched %v %v", m, ok)
	}
}

// owns reports whether one of s's endpoints names the packet's source or
// destination address (MAC endpoints by MAC).
func owns(s *Session, p *capture.Packet) bool {
	return ownsSide(s, p, true) || ownsSide(s, p, false)
}

// ownsSide reports whether one of s's endpoints names the packet's source
// (src) or destination address, on a VLAN the endpoint accepts.
func ownsSide(s *Session, p *capture.Packet, src bool) bool {
	ip, hw := p.Dst.Addr(), p.DstMAC
	if src {
		ip, hw = p.Src.Addr(), p.SrcMAC
	}
	for _, e := range s.Endpoints {
		if ((e.HasMAC && p.HasMAC && e.MAC == hw) || (!e.HasMAC && e.IP == ip)) && onVLAN(e, p) {
			return true
		}
	}
	return false
}

// onVLAN says, independently of the filter's own code, whether p is on a
// VLAN that e accepts: e.VLAN in the outer or the inner tag, or exactly
// e.OuterVLAN outside e.VLAN.
func onVLAN(e Endpoint, p *capture.Packet) bool {
	tags := p.VLANs[:min(p.NumVLANs, 2)]
	if e.VLAN == 0 {
		return true
	}
	if e.OuterVLAN != 0 {
		return len(tags) == 2 && tags[0].ID() == e.OuterVLAN && tags[1].ID() == e.VLAN
	}
	for _, t := range tags {
		if t.ID() == e.VLAN {
			return true
		}
	}
	return false
}

// FuzzMatch decodes arbitrary frames and matches them against the test
// sessions: nothing panics, Match returns the first of MatchAll, MatchAll
// names a session at most once and only sessions that own one of the
// packet's addresses, with the direction of an address it owns (source
// for FromAgent, destination for ToAgent), and every session that owns
// one (in its port range) is named; MatchBrief answers as MatchAll for a
// frame capture's Brief.Decode takes.
func FuzzMatch(f *testing.F) {
	for _, c := range matchCases() {
		f.Add(c.f.bytes())
	}
	sessions := testSessions(f)
	fl := New()
	fl.Set(sessions)
	// The sessions without MAC endpoints, in two filters (as smserver's
	// requested and SIP-learned ones) behind a Verdicts, whose address
	// bitmap then answers for the packets no session wants.
	ipA, ipB := New(), New()
	for i, s := range sessions {
		if !slices.ContainsFunc(s.Endpoints, func(e Endpoint) bool { return e.HasMAC }) {
			if i%2 == 0 {
				ipA.Add(s)
			} else {
				ipB.Add(s)
			}
		}
	}
	v := NewVerdicts(ipA, ipB)
	v.Begin(capture.NewStreamTable(capture.StreamTableConfig{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p capture.Packet
		if p.Decode(b, capture.LinkEthernet, nil) != nil {
			return
		}
		all := fl.MatchAll(&p, nil)
		var br capture.Brief
		if br.Decode(b, nil) {
			if got := fl.MatchBrief(&br, nil); fmt.Sprint(got) != fmt.Sprint(all) {
				t.Fatalf("MatchBrief = %v, MatchAll = %v", gotWants(got), gotWants(all))
			}
			want := DropRepeated(append(ipA.MatchBrief(&br, nil), ipB.MatchBrief(&br, nil)...), len(ipA.MatchBrief(&br, nil)))
			if got := v.Match(&br); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("Verdicts.Match = %v, the filters %v", gotWants(got), gotWants(want))
			}
			if v.Screen([]capture.Brief{br}) == 0 && len(want) > 0 {
				t.Fatalf("Screen left out a packet the filters want: %v", gotWants(want))
			}
		}
		m, ok := fl.Match(&p)
		if ok != (len(all) > 0) || (ok && m != all[0]) {
			t.Fatalf("Match = %v %v, MatchAll = %v", m, ok, gotWants(all))
		}
		seen := map[*Session]bool{}
		for _, m := range all {
			if seen[m.Session] {
				t.Fatalf("session %s twice in %v", m.Session.ID, gotWants(all))
			}
			seen[m.Session] = true
			if !owns(m.Session, &p) {
				t.Fatalf("session %s matched %v → %v, which it does not own", m.Session.ID, p.Src, p.Dst)
			}
			if m.Direction != FromAgent && m.Direction != ToAgent {
				t.Fatalf("direction %v", m.Direction)
			}
			if !ownsSide(m.Session, &p, m.Direction == FromAgent) {
				t.Fatalf("session %s matched %v → %v %v, but does not own that side", m.Session.ID, p.Src, p.Dst, m.Direction)
			}
		}
		// And none is missed: every session with an endpoint that names
		// one side, on its VLAN and in its port range, is matched.
		if p.Kind == capture.KindOther {
			return
		}
		for _, s := range sessions {
			if !seen[s] && (ownsPort(s, &p, true) || ownsPort(s, &p, false)) {
				t.Fatalf("session %s owns %v → %v but was not matched (%v)", s.ID, p.Src, p.Dst, gotWants(all))
			}
		}
	})
}

// ownsPort is ownsSide with the endpoints' port ranges.
func ownsPort(s *Session, p *capture.Packet, src bool) bool {
	ip, hw, port := p.Dst.Addr(), p.DstMAC, p.Dst.Port()
	if src {
		ip, hw, port = p.Src.Addr(), p.SrcMAC, p.Src.Port()
	}
	for _, e := range s.Endpoints {
		inRange := e.PortHi == 0 || (port >= e.PortLo && port <= e.PortHi)
		if ((e.HasMAC && p.HasMAC && e.MAC == hw) || (!e.HasMAC && e.IP == ip)) && onVLAN(e, p) && inRange {
			return true
		}
	}
	return false
}

func TestDirection(t *testing.T) {
	// The numbers are on the relay's wire: they must not change.
	for _, tt := range []struct {
		d    Direction
		num  uint8
		name string
	}{
		{FromAgent, 1, "from-agent"},
		{ToAgent, 2, "to-agent"},
		{Direction(7), 7, "direction(7)"},
	} {
		if uint8(tt.d) != tt.num || tt.d.String() != tt.name {
			t.Errorf("direction %d %q, want %d %q", uint8(tt.d), tt.d.String(), tt.num, tt.name)
		}
	}
}

// TestMatchSeesOneTable swaps between two session sets that monitor the
// same phone under different sessions while readers match its packets:
// every MatchAll sees exactly one of the two sets, never both, never
// neither (a lookup reads one published table).
func TestMatchSeesOneTable(t *testing.T) {
	ep := mustEndpoints(t, "10.1.0.60", "10.9.0.60:20000-20999")
	one := []*Session{{ID: "x1", Agent: "1", Endpoints: ep}, {ID: "x2", Agent: "1", Endpoints: ep}}
	two := []*Session{{ID: "y1", Agent: "1", Endpoints: ep}, {ID: "y2", Agent: "1", Endpoints: ep}}
	f := New()
	f.Set(one)
	p := frame{src: ap("10.1.0.60:20000"), dst: ap("10.9.0.60:20010")}.decode(t, nil)

	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	var seen [2]atomic.Int64
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := make([]Match, 0, 4)
			for !stop.Load() {
				dst = f.MatchAll(p, dst[:0])
				ids := sortWants(gotWants(dst))
				switch {
				case slices.Equal(ids, []want{{"x1", FromAgent}, {"x2", FromAgent}}):
					seen[0].Add(1)
				case slices.Equal(ids, []want{{"y1", FromAgent}, {"y2", FromAgent}}):
					seen[1].Add(1)
				default:
					errs <- fmt.Errorf("MatchAll saw %v, a mix of tables or none", ids)
					return
				}
			}
		}()
	}
	for i := 0; i < 2000; i++ {
		if i%2 == 0 {
			f.Set(two)
		} else {
			f.Set(one)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if seen[0].Load()+seen[1].Load() == 0 {
		t.Fatal("readers matched nothing")
	}
}

func TestValidIDAndAgent(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"9f2c61d04be3a871", true}, {"a.b_c-D", true}, {"", false}, {".", false}, {"..", false},
		{"x/../../outside/pwned", false}, {"a b", false}, {"a\x00", false}, {strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false}, {"é", false},
	} {
		if got := ValidID(tc.id); got != tc.want {
			t.Errorf("ValidID(%q) = %v", tc.id, got)
		}
	}
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"1001", true}, {"Jane Doe", true}, {"Zoë", true}, {"", false}, {"a/b", false}, {`a\b`, false},
		{"a\nb", false}, {"\x1b[31m", false}, {strings.Repeat("a", 65), false}, {"\xff", false},
	} {
		if got := ValidAgent(tc.name); got != tc.want {
			t.Errorf("ValidAgent(%q) = %v", tc.name, got)
		}
	}
	ep, err := ParseEndpoint("10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{ID: "x/../y", Agent: "1001", Endpoints: []Endpoint{ep}}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), `"x/../y"`) {
		t.Errorf("Validate of a traversing id: %v", err)
	}
}
