package gen

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// ListenOptions tunes CheckListening. The zero value means the defaults
// written on each field.
type ListenOptions struct {
	// Window is the length of a checked window; 0 means 100 ms.
	Window time.Duration
	// Guard is how far from a leg's start or end (and from a lost packet)
	// a window must be to be checked: one window plus a jitter-buffer
	// allowance. 0 means 200 ms.
	Guard time.Duration
	// Search bounds the alignment search around the expected start;
	// 0 means 2 s. The search step is 10 ms.
	Search time.Duration
	// AudibleDB is the lowest level, in dB relative to the level the leg
	// was sent at, at which an active leg counts as audible; 0 means −20.
	AudibleDB float64
	// PresentDB is the level, relative to the level a leg was sent at,
	// from which a leg that must not be heard counts as heard; 0 means −30.
	PresentDB float64
	// SilenceDBFS is the highest RMS level, in dB relative to full scale,
	// of a window where every leg of the agent is inactive (comfort noise
	// is allowed); 0 means −40.
	SilenceDBFS float64
	// MaxFailures bounds ListenResult.Failures; 0 means 10.
	MaxFailures int
	// EventMargin is how far inside a leg's digit period (Leg.Events) its
	// silence is checked; 0 means 10 ms. Periods shorter than 2×margin
	// plus 20 ms are not checked.
	EventMargin time.Duration
}

func (o *ListenOptions) defaults() {
	if o.Window <= 0 {
		o.Window = 100 * time.Millisecond
	}
	if o.Guard <= 0 {
		o.Guard = 200 * time.Millisecond
	}
	if o.Search <= 0 {
		o.Search = 2 * time.Second
	}
	if o.AudibleDB == 0 {
		o.AudibleDB = -20
	}
	if o.PresentDB == 0 {
		o.PresentDB = -30
	}
	if o.SilenceDBFS == 0 {
		o.SilenceDBFS = -40
	}
	if o.MaxFailures <= 0 {
		o.MaxFailures = 10
	}
	if o.EventMargin <= 0 {
		o.EventMargin = 10 * time.Millisecond
	}
}

// ListenResult is the verdict of CheckListening.
type ListenResult struct {
	Agent string
	// Offset is the capture time, from the manifest's epoch, that the
	// checker aligned with sample 0 of the audio.
	Offset time.Duration
	// Windows were checked, Right of them passed; Skipped windows were
	// too close to a leg's start or end to judge.
	Windows, Right, Skipped int
	// Failures describe the first failing windows in words.
	Failures []string
}

// OK reports whether at least one window was checked and all were right.
func (r *ListenResult) OK() bool { return r.Windows > 0 && r.Right == r.Windows }

// String summarises the result on one line, with the first failure.
func (r *ListenResult) String() string {
	s := fmt.Sprintf("agent %s: %d/%d windows right, %d skipped, aligned at %.2f s", r.Agent, r.Right, r.Windows,
		r.Skipped, r.Offset.Seconds())
	if len(r.Failures) > 0 {
		s += "; first failure: " + r.Failures[0]
	}
	return s
}

// CheckListening checks by ear, so to speak, that pcm (8 kHz mono, the
// rendered output of agent's monitoring session) is what m says the
// agent's session must sound like, with the default ListenOptions.
func CheckListening(m *Manifest, agent string, pcm []int16) ListenResult {
	return ListenOptions{}.Check(m, agent, pcm)
}

// listenTone is one frequency the checker measures.
type listenTone struct {
	hz        float64
	amplitude float64
	legs      []*Leg // the agent's monitored legs of this tone; none for a forbidden tone
	other     *Leg   // for a forbidden tone: a leg that carries it
	coef      float64
}

// Check is CheckListening with options o.
//
// The audio's sample 0 is the capture time of the first audible packet,
// which the checker does not know exactly: it first aligns the audio with
// the manifest, trying offsets within o.Search of the agent's first
// active leg in 10 ms steps, and keeps the one where the most
// (10 ms hop, tone) pairs agree with the manifest. It then splits the
// audio into windows of o.Window and measures, with a Hann-windowed
// Goertzel filter, the level of every leg's tone. In each window:
//   - every monitored leg of the agent that is active over the whole
//     window widened by o.Guard on each side, and lost no packet there,
//     must be audible (level ≥ o.AudibleDB relative to its sent level);
//   - the tone of every monitored leg of the agent that is inactive over
//     the widened window must be absent (level < o.PresentDB);
//   - the tone of any other leg (another agent's, a non-monitored leg,
//     one that reaches no agent's phone) must be absent at all times;
//   - when every monitored leg is inactive, the window's RMS level must be
//     at most o.SilenceDBFS.
//
// Each digit period of a monitored leg (Leg.Events: the phone sent
// telephone events instead of the voice) is checked as one more window,
// o.EventMargin inside its ends: the leg's tone must be absent (level <
// o.PresentDB), as silence or comfort noise, not the concealment of a
// lost voice. It is skipped when another leg of the same tone is active.
//
// Windows where a monitored leg starts or ends within the guard are
// skipped. Pauses are expected at their real length; audio missing at the
// end counts as silence. Legs that share a tone (the same voice through a
// conference bridge) are judged together: the tone must be heard when any
// of them is active.
func (o ListenOptions) Check(m *Manifest, agent string, pcm []int16) ListenResult {
	o.defaults()
	res := ListenResult{Agent: agent}
	fail := func(format string, args ...any) {
		if len(res.Failures) < o.MaxFailures {
			res.Failures = append(res.Failures, fmt.Sprintf(format, args...))
		}
	}
	var tones []*listenTone
	find := func(hz float64) *listenTone {
		for _, t := range tones {
			if t.hz == hz {
				return t
			}
		}
		t := &listenTone{hz: hz, coef: 2 * math.Cos(2*math.Pi*hz/SampleRate)}
		tones = append(tones, t)
		return t
	}
	first := time.Duration(-1)
	for i := range m.Legs {
		l := &m.Legs[i]
		if l.Agent != agent || !l.Monitored || l.ToneHz <= 0 {
			continue
		}
		t := find(l.ToneHz)
		t.legs = append(t.legs, l)
		t.amplitude = max(t.amplitude, float64(l.Amplitude))
		for _, sp := range l.Active {
			if first < 0 || sp.from() < first {
				first = sp.from()
			}
		}
	}
	if first < 0 {
		fail("agent %s has no monitored leg in the manifest of %s", agent, m.Scenario)
		return res
	}
	nMon := len(tones)
	for i := range m.Legs {
		l := &m.Legs[i]
		if l.ToneHz <= 0 || slices.ContainsFunc(tones[:nMon], func(t *listenTone) bool { return t.hz == l.ToneHz }) {
			continue
		}
		t := find(l.ToneHz)
		if t.other == nil {
			t.other = l
		}
		t.amplitude = max(t.amplitude, float64(l.Amplitude))
	}
	for _, t := range tones {
		if t.amplitude <= 0 {
			t.amplitude = DefaultAmplitude
		}
	}

	const hop = SampleRate / 100 // 10 ms
	win := int(o.Window * SampleRate / time.Second)
	search := int(o.Search / (10 * time.Millisecond))
	end := time.Duration(m.DurationMS) * time.Millisecond
	// Pad so that every window up to the manifest's end, at any offset
	// tried, lies within the audio; missing audio is silence.
	hops := int((end-first)/(10*time.Millisecond)) + search + win/hop + 1
	audio := make([]float64, hops*hop+win)
	for i := 0; i < len(pcm) && i < len(audio); i++ {
		audio[i] = float64(pcm[i])
	}
	hann := make([]float64, win)
	var hsum float64
	for i := range hann {
		hann[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(win))
		hsum += hann[i]
	}
	// level[h][t]: dB of tone t in the window starting at hop h, relative
	// to the tone's sent amplitude; rms[h] in dBFS.
	level := make([][]float64, hops)
	rms := make([]float64, hops)
	buf := make([]float64, win)
	for h := range level {
		seg := audio[h*hop : h*hop+win]
		var e float64
		for i, v := range seg {
			buf[i] = v * hann[i]
			e += v * v
		}
		rms[h] = 10 * math.Log10(e/float64(win)/(32768*32768)+1e-12)
		level[h] = make([]float64, len(tones))
		for ti, t := range tones {
			var s1, s2 float64
			for _, v := range buf {
				s1, s2 = v+t.coef*s1-s2, s1
			}
			w := 2 * math.Pi * t.hz / SampleRate
			re := s1 - s2*math.Cos(w)
			im := s2 * math.Sin(w)
			a := 2 * math.Sqrt(re*re+im*im) / hsum
			level[h][ti] = 20 * math.Log10(a/t.amplitude+1e-9)
		}
	}

	// Alignment: offset = first + d×10 ms. For every 10 ms step c of
	// capture time and every tone of the agent's legs that must be present
	// over the whole window [c, c+window), the pair scores the level
	// measured at the matching hop of the audio, clamped to [−80, 0] dB,
	// plus 40; where the tone must be absent, −40 minus that level. So
	// agreement scores up to +40, disagreement down to −40, and even a
	// 10 ms error costs something. Steps before the audio's first sample
	// are not scored (a renderer may drop what precedes the first audible
	// packet); after its end the audio is silence. Audio past the
	// manifest's end must be silent too. The best offset has the highest
	// mean score.
	bestScore, bestD := math.Inf(-1), 0
	// Steps run past the manifest's end, where every leg is inactive, as
	// far as the audio can reach at any offset tried.
	steps := int(first/(10*time.Millisecond)) + search + hops
	want := make([][]int8, steps+1) // the tones' strict states at each step
	for c := range want {
		from := time.Duration(c) * 10 * time.Millisecond
		want[c] = make([]int8, nMon)
		for ti, t := range tones[:nMon] {
			want[c][ti] = int8(state(t.legs, from, from+o.Window, 0, true))
		}
	}
	for d := -search; d <= search; d++ {
		score, n := 0.0, 0
		for c := 0; c <= steps; c++ {
			h := c - int(first/(10*time.Millisecond)) - d
			if h < 0 {
				continue
			}
			for ti := range nMon {
				lv := -80.0
				if h < hops {
					lv = max(-80, min(0, level[h][ti]))
				}
				switch want[c][ti] {
				case stActive:
					score += lv + 40
					n++
				case stInactive:
					score -= lv + 40
					n++
				}
			}
		}
		if n > 0 {
			score /= float64(n)
		}
		if score > bestScore || score == bestScore && abs(d) < abs(bestD) {
			bestScore, bestD = score, d
		}
	}
	res.Offset = first + time.Duration(bestD)*10*time.Millisecond

	step := win / hop
	for j := 0; ; j++ {
		from := res.Offset + time.Duration(j)*o.Window
		if from+o.Window > end {
			break
		}
		if from < 0 {
			continue
		}
		h := j * step
		if h >= hops {
			break
		}
		span := fmt.Sprintf("window %.1f–%.1f s (wav %.1f s)", from.Seconds(), (from + o.Window).Seconds(),
			(time.Duration(j) * o.Window).Seconds())
		skip := false
		st := make([]int, nMon)
		for ti, t := range tones[:nMon] {
			st[ti] = state(t.legs, from, from+o.Window, o.Guard, true)
			if st[ti] == stTransition {
				skip = true
			}
		}
		if skip {
			res.Skipped++
			continue
		}
		res.Windows++
		ok := true
		allInactive := true
		for ti, t := range tones {
			lv := level[h][ti]
			if ti >= nMon {
				if lv >= o.PresentDB {
					ok = false
					fail("%s: %s leg %g Hz of agent %q (not this session's) audible (%.1f dB)", span,
						t.other.Name, t.hz, t.other.Agent, lv)
				}
				continue
			}
			switch st[ti] {
			case stActive:
				allInactive = false
				if lv < o.AudibleDB {
					ok = false
					fail("%s: %s leg %g Hz inaudible (%.1f dB)", span, t.legs[0].Name, t.hz, lv)
				}
			case stLossy:
				allInactive = false
			case stInactive:
				if lv >= o.PresentDB {
					ok = false
					fail("%s: %s leg %g Hz audible while inactive or held (%.1f dB)", span, t.legs[0].Name, t.hz, lv)
				}
			}
		}
		if allInactive && rms[h] > o.SilenceDBFS {
			ok = false
			fail("%s: not silent while every leg is inactive (%.1f dBFS)", span, rms[h])
		}
		if ok {
			res.Right++
		}
	}
	o.checkEvents(&res, tones[:nMon], audio, fail)
	return res
}

// checkEvents checks that the digit periods of the monitored legs are
// silent in audio (padded pcm) aligned at res.Offset; see Check. A jitter
// buffer's delay moves between talkspurts (each digit ends one), so each
// digit is aligned on its own within eventSearch: at the shift where the
// voice before and after it is loudest against the digit.
func (o ListenOptions) checkEvents(res *ListenResult, tones []*listenTone, audio []float64, fail func(string, ...any)) {
	const edge = 60 * time.Millisecond // the voice measured on each side
	level := func(t *listenTone, from, to time.Duration) (float64, bool) {
		a := int((from - res.Offset) * SampleRate / time.Second)
		z := int((to - res.Offset) * SampleRate / time.Second)
		if a < 0 || z > len(audio) || z <= a {
			return 0, false
		}
		return toneLevel(audio[a:z], t.hz, t.amplitude), true
	}
	for _, t := range tones {
		for _, l := range t.legs {
			for _, ev := range l.Events {
				from, to := ev.from()+o.EventMargin, ev.to()-o.EventMargin
				if to-from < 20*time.Millisecond || state(t.legs, from, to, 0, false) != stInactive {
					continue
				}
				// The sides that are voice, with no packet lost.
				pre := state(t.legs, ev.from()-edge-o.EventMargin, ev.from()-o.EventMargin, 0, true) == stActive
				post := state(t.legs, ev.to()+o.EventMargin, ev.to()+edge+o.EventMargin, 0, true) == stActive
				best, bestS, mid, found := math.Inf(-1), time.Duration(0), 0.0, false
				for s := -eventSearch; s <= eventSearch; s += 5 * time.Millisecond {
					m, ok := level(t, from+s, to+s)
					if !ok {
						continue
					}
					score := 0.0
					if pre {
						if v, ok := level(t, ev.from()-edge-o.EventMargin+s, ev.from()-o.EventMargin+s); ok {
							score = v
						}
					}
					if post {
						if v, ok := level(t, ev.to()+o.EventMargin+s, ev.to()+edge+o.EventMargin+s); ok && (!pre || v < score) {
							score = v
						}
					}
					if score -= m; score > best || score == best && s.Abs() < bestS.Abs() {
						best, bestS, mid, found = score, s, m, true
					}
				}
				if !found {
					continue
				}
				res.Windows++
				if mid >= o.PresentDB {
					fail("digit %.2f–%.2f s: %s leg %g Hz heard at %.1f dB: the voice concealed, not silent",
						ev.from().Seconds(), ev.to().Seconds(), l.Name, t.hz, mid)
					continue
				}
				res.Right++
			}
		}
	}
}

// eventSearch bounds the alignment of a digit period around the audio's
// offset.
const eventSearch = 50 * time.Millisecond

// toneLevel returns the level of hz in seg, Hann-windowed, in dB relative
// to amplitude.
func toneLevel(seg []float64, hz, amplitude float64) float64 {
	w := 2 * math.Pi * hz / SampleRate
	c := 2 * math.Cos(w)
	var s1, s2, hsum float64
	for i, v := range seg {
		h := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(len(seg)))
		hsum += h
		s1, s2 = v*h+c*s1-s2, s1
	}
	re := s1 - s2*math.Cos(w)
	im := s2 * math.Sin(w)
	a := 2 * math.Sqrt(re*re+im*im) / hsum
	return 20 * math.Log10(a/amplitude+1e-9)
}

// Window states of a tone.
const (
	stInactive   = iota // no leg of the tone is active near the window
	stActive            // a leg is active over the whole widened window
	stTransition        // a leg starts or ends within the guard
	stLossy             // active, but a packet was lost near the window
)

// state returns the state of a tone carried by legs over [from, to)
// widened by guard on each side; lossy reports lost packets as stLossy.
func state(legs []*Leg, from, to, guard time.Duration, lossy bool) int {
	from, to = from-guard, to+guard
	st := stInactive
	for _, l := range legs {
		for _, sp := range l.Active {
			if sp.from() <= from && sp.to() >= to {
				lost := false
				if lossy {
					for _, ls := range l.Lost {
						if ls.from() < to && ls.to() > from {
							lost = true
						}
					}
				}
				if !lost {
					return stActive
				}
				st = stLossy
			} else if sp.from() < to && sp.to() > from && st == stInactive {
				st = stTransition
			}
		}
	}
	return st
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
