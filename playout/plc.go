package playout

import "math"

// plc conceals lost G.711 frames by pitch waveform substitution, after the
// method of ITU-T G.711 Appendix I: the pitch period of the last good
// samples is found by autocorrelation, the last period is repeated, the
// repetition is attenuated by 20% per 10 ms after the first 10 ms (silent
// after 60 ms), and the first good samples after a loss are cross-faded
// with the continued repetition over 4 ms so the seam does not click.
//
// The constants below are in samples at 8 kHz; k scales them for a
// decoder writing k samples per 1/8000 s (G.722 at 16 kHz: 2), so the
// pitch range, the fades and the history keep their durations.
//
// The zero value is ready to use at 8 kHz. A plc is not safe for
// concurrent use.
type plc struct {
	k       int                      // samples per 1/8000 s; 0 is 1
	hist    [plcMaxK * plcHist]int16 // last good samples, oldest first, in the last k*plcHist
	have    int                      // valid samples at the end of the history
	period  int                      // pitch period while concealing, 0 when not
	phase   int                      // position inside the repeated period
	erased  int                      // samples concealed in the current loss
	pending bool                     // the next good frame starts with a cross-fade
}

const (
	plcHist    = 390 // 48.75 ms
	plcMinLag  = 40  // 5 ms: 200 Hz
	plcMaxLag  = 120 // 15 ms: 66 Hz
	plcWindow  = 160 // correlation window
	plcFull    = 80  // 10 ms at full gain
	plcFade    = 400 // then to zero over 50 ms
	plcOverlap = 32  // 4 ms cross-fade at the end of a loss
	plcMaxK    = 2   // 16 kHz at most
)

func (p *plc) reset() { *p = plc{k: p.k} }

// scale returns k, at least 1 and at most plcMaxK.
func (p *plc) scale() int { return min(max(p.k, 1), plcMaxK) }

// h returns the history: the last scale()*plcHist samples.
func (p *plc) h() []int16 { return p.hist[len(p.hist)-p.scale()*plcHist:] }

// good records decoded samples; after a loss it cross-fades their start
// with the concealment (modifying pcm).
func (p *plc) good(pcm []int16) {
	k := p.scale()
	if p.pending && p.period > 0 {
		n := min(plcOverlap*k, len(pcm))
		for i := range n {
			c := int32(p.next())
			w := int32(i + 1)
			v := (c*(int32(n)+1-w) + int32(pcm[i])*w) / (int32(n) + 1)
			pcm[i] = int16(v)
		}
	}
	p.pending, p.period, p.erased, p.phase = false, 0, 0, 0
	h, n := p.h(), k*plcHist
	if len(pcm) >= n {
		copy(h, pcm[len(pcm)-n:])
	} else {
		copy(h, h[len(pcm):])
		copy(h[n-len(pcm):], pcm)
	}
	p.have = min(n, p.have+len(pcm))
}

// next returns the next sample of the repeated period, attenuated.
func (p *plc) next() int16 {
	h := p.h()
	s := h[len(h)-p.period+p.phase]
	p.phase++
	if p.phase == p.period {
		p.phase = 0
	}
	m := p.scale()
	full, fade := plcFull*m, plcFade*m
	k := p.erased
	p.erased++
	switch {
	case k < full:
		return s
	case k >= full+fade:
		return 0
	}
	return int16(int32(s) * int32(full+fade-k) / int32(fade))
}

func (p *plc) conceal(pcm []int16) {
	if k := p.scale(); p.have < k*(plcMaxLag+plcWindow) {
		clear(pcm)
		return
	}
	if p.period == 0 {
		p.period = p.pitch()
		p.phase = 0
	}
	for i := range pcm {
		pcm[i] = p.next()
	}
	p.pending = true
}

// pitch returns the lag in [plcMinLag, plcMaxLag] with the largest
// normalized autocorrelation over the last plcWindow samples.
func (p *plc) pitch() int {
	h := p.h()
	k := p.scale()
	end := len(h)
	best, bestLag := math.Inf(-1), k*plcMinLag
	for lag := k * plcMinLag; lag <= k*plcMaxLag; lag++ {
		var c, e int64
		for n := end - k*plcWindow; n < end; n++ {
			a, b := int64(h[n]), int64(h[n-lag])
			c += a * b
			e += b * b
		}
		if e == 0 {
			continue
		}
		if score := float64(c) / math.Sqrt(float64(e)); score > best {
			best, bestLag = score, lag
		}
	}
	return bestLag
}
