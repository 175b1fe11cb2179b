package playout

// resampler converts interleaved 16-bit frames from rate in to rate out by
// linear interpolation, carrying its position and last frame across calls.
// The zero value is not usable: set in, out and ch. It is not safe for
// concurrent use.
type resampler struct {
	in, out int
	ch      int
	pos     int64    // next output position, in 1/out of an input frame, from prev
	prev    [2]int16 // last input frame of the previous call
}

// process appends the resampled frames of src to dst and returns it.
func (r *resampler) process(dst, src []int16) []int16 {
	n := int64(len(src) / r.ch)
	out := int64(r.out)
	for {
		k := r.pos / out // input frame index; 0 is prev, i is src[i-1]
		if k >= n {
			break
		}
		frac := r.pos % out
		for c := 0; c < r.ch; c++ {
			var a int16
			if k == 0 {
				a = r.prev[c]
			} else {
				a = src[(k-1)*int64(r.ch)+int64(c)]
			}
			b := src[k*int64(r.ch)+int64(c)]
			v := (int64(a)*(out-frac) + int64(b)*frac) / out
			dst = append(dst, int16(v))
		}
		r.pos += int64(r.in)
	}
	if n > 0 {
		r.pos -= n * out
		for c := 0; c < r.ch; c++ {
			r.prev[c] = src[(n-1)*int64(r.ch)+int64(c)]
		}
	}
	return dst
}
