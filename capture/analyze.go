package capture

import (
	"fmt"
	"io"
	"time"
)

// Analysis is the result of Analyze.
type Analysis struct {
	Streams  []StreamStats
	Counters DecodeCounters
	// Overflow counts RTP packets of streams beyond the table's cap.
	Overflow uint64
	// First and Last are the capture times of the first and last frames.
	First, Last time.Time
}

// AnalyzeOptions configures Analyze. The zero value is ready.
type AnalyzeOptions struct {
	// MaxStreams caps the streams tracked (default 100000).
	MaxStreams int
	// Progress, if not nil, is called about every 65536 frames with the
	// number of frames read so far.
	Progress func(frames uint64)
}

// Analyze reads src to its end, decodes every frame and tracks every RTP
// stream. Arrival times are measured from the first frame, as Wireshark
// does. It returns the first read error other than io.EOF.
func Analyze(src Source, opts AnalyzeOptions) (*Analysis, error) {
	t := NewStreamTable(StreamTableConfig{MaxStreams: opts.MaxStreams, IdleTimeout: 1 << 62})
	a := &Analysis{}
	const batch = 64
	frames := make([][]byte, batch)
	infos := make([]Info, batch)
	bs := make([]Brief, batch)
	lt := src.LinkType()
	var p Packet
	var next uint64 = 1 << 16
	for {
		n, err := src.ReadBatch(frames, infos)
		if n > 0 {
			if a.Counters.Frames == 0 {
				a.First = infos[0].Timestamp
				t.SetEpoch(a.First)
			}
			a.Last = infos[n-1].Timestamp
		}
		// Runs of the common RTP frames go through Briefs (the capture
		// worker's path), the rest through a whole Packet, in order.
		for i := 0; i < n; i++ {
			if lt == LinkEthernet {
				k := DecodeBriefs(bs, frames[i:n], infos[i:n])
				t.UpdateBriefs(bs[:k])
				a.Counters.Frames += uint64(k)
				a.Counters.Counts[ReasonRTP] += uint64(k)
				if i += k; i == n {
					break
				}
			}
			derr := p.Decode(frames[i], lt, &infos[i])
			if a.Counters.Count(&p, derr) == ReasonRTP {
				t.Update(&p, infos[i].Timestamp)
			}
		}
		if opts.Progress != nil && a.Counters.Frames >= next {
			opts.Progress(a.Counters.Frames)
			next = a.Counters.Frames + 1<<16
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return a, fmt.Errorf("after %d frames: %w", a.Counters.Frames, err)
		}
	}
	a.Streams = t.Snapshot(nil)
	a.Overflow = t.Overflow()
	return a, nil
}
