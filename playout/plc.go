package playout

import "math"

// plc conceals lost G.711 frames by pitch waveform substitution, after the
// method of ITU-T G.711 Appendix I: the pitch period of the last good
// samples is found by autocorrelation, the last period is repeated, the
// repetition is attenuated by 20% per 10 ms after the first 10 ms (silent
// after 60 ms), and the first good samples after a loss are cross-faded
// with the continued repetition over 4 ms so the seam does not click.
//
// The zero value is ready to use. A plc is not safe for concurrent use.
type plc struct {
	hist    [plcHist]int16 // last good samples, oldest first
	have    int            // valid samples at the end of hist
	period  int            // pitch period while concealing, 0 when not
	phase   int            // position inside the repeated period
	erased  int            // samples concealed in the current loss
	pending bool           // the next good frame starts with a cross-fade
}

const (
	plcHist    = 390 // 48.75 ms
	plcMinLag  = 40  // 5 ms: 200 Hz
	plcMaxLag  = 120 // 15 ms: 66 Hz
	plcWindow  = 160 // correlation window
	plcFull    = 80  // 10 ms at full gain
	plcFade    = 400 // then to zero over 50 ms
	plcOverlap = 32  // 4 ms cross-fade at the end of a loss
)

func (p *plc) reset() { *p = plc{} }

// good records decoded samples; after a loss it cross-fades their start
// with the concealment (modifying pcm).
func (p *plc) good(pcm []int16) {
	if p.pending && p.period > 0 {
		n := min(plcOverlap, len(pcm))
		for i := range n {
			c := int32(p.next())
			w := int32(i + 1)
			v := (c*(int32(n)+1-w) + int32(pcm[i])*w) / (int32(n) + 1)
			pcm[i] = int16(v)
		}
	}
	p.pending, p.period, p.erased, p.phase = false, 0, 0, 0
	if len(pcm) >= plcHist {
		copy(p.hist[:], pcm[len(pcm)-plcHist:])
	} else {
		copy(p.hist[:], p.hist[len(pcm):])
		copy(p.hist[plcHist-len(pcm):], pcm)
	}
	p.have = min(plcHist, p.have+len(pcm))
}

// next returns the next sample of the repeated period, attenuated.
func (p *plc) next() int16 {
	s := p.hist[plcHist-p.period+p.phase]
	p.phase++
	if p.phase == p.period {
		p.phase = 0
	}
	k := p.erased
	p.erased++
	switch {
	case k < plcFull:
		return s
	case k >= plcFull+plcFade:
		return 0
	}
	return int16(int32(s) * int32(plcFull+plcFade-k) / plcFade)
}

func (p *plc) conceal(pcm []int16) {
	if p.have < plcMaxLag+plcWindow {
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
	h := p.hist[:]
	end := len(h)
	best, bestLag := math.Inf(-1), plcMinLag
	for lag := plcMinLag; lag <= plcMaxLag; lag++ {
		var c, e int64
		for n := end - plcWindow; n < end; n++ {
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
