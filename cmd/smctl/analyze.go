package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/internal/cli"
)

func newAnalyzeCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "analyze FILE",
		Short: "Per-RTP-stream statistics of a pcap or pcapng file",
		Long: `Per-RTP-stream statistics of a pcap or pcapng file (Ethernet, Linux cooked
SLL or SLL2, raw IP; 802.1Q and QinQ tags). A UDP datagram counts as RTP when
it passes tshark's RTP heuristic (version 2, a payload type outside the RTCP
range 72-76, a header that fits) and neither of its ports is a well-known
service's (every port below 1024, SIP 5060/5061, mDNS 5353, SSDP 1900, ...):
DNS, NBNS, NTP, DHCP or SNMP datagrams that happen to look like RTP are not
streams. Packets, Lost, Max Delta, Max Jitter and Mean Jitter are computed as
tshark -o rtp.heuristic_rtp:TRUE -z rtp,streams computes them, so the two can
be compared; the RFC 3550 figures (expected, cumulative loss split into
network and capture loss, duplicates, out of order, interarrival jitter) are
given alongside, and "sequential" says whether the stream showed two
consecutive sequence numbers in a row (RFC 3550's probation).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, _ := cmd.Flags().GetBool("json")
			return runAnalyze(args[0], asJSON, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().Bool("json", false, "print JSON")
	return c
}

// countingReader counts the bytes read, for the progress bar.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func runAnalyze(path string, asJSON bool, stdout, stderr io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return cli.Failf("open capture %q: %v", path, unwrapPathError(err))
	}
	defer f.Close()
	var size int64
	if st, err := f.Stat(); err == nil {
		if st.IsDir() {
			return cli.Failf("capture %q is a directory, not a pcap or pcapng file", path)
		}
		size = st.Size()
	}
	cr := &countingReader{r: f}
	src, err := capture.NewFileSource(cr, capture.FileOptions{})
	if err != nil {
		return cli.Failf("capture %q: %v", path, err)
	}
	opts := capture.AnalyzeOptions{}
	var bar *progressBar
	if fd, ok := stderr.(*os.File); ok && term.IsTerminal(int(fd.Fd())) && size > 0 {
		bar = &progressBar{w: stderr, start: time.Now(), size: size, read: &cr.n}
		opts.Progress = bar.update
	}
	a, err := capture.Analyze(src, opts)
	bar.finish()
	if err != nil {
		return cli.Failf("read capture %q: %v", path, err)
	}
	rep := newAnalyzeReport(a)
	if asJSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(rep)
	}
	printAnalyzeTable(stdout, a, rep)
	return nil
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// progressBar draws on a terminal's stderr once the work has lasted more
// than two seconds.
type progressBar struct {
	w     io.Writer
	start time.Time
	size  int64
	read  *atomic.Int64
	drawn bool
}

func (b *progressBar) update(frames uint64) {
	el := time.Since(b.start)
	if el < 2*time.Second {
		return
	}
	frac := float64(b.read.Load()) / float64(b.size)
	if frac > 1 {
		frac = 1
	}
	const width = 40
	n := int(frac * width)
	fmt.Fprintf(b.w, "\r[%s%s] %3.0f%% %d frames %s", strings.Repeat("#", n), strings.Repeat(" ", width-n), frac*100, frames, el.Truncate(time.Second))
	b.drawn = true
}

func (b *progressBar) finish() {
	if b != nil && b.drawn {
		fmt.Fprintf(b.w, "\r%s\r", strings.Repeat(" ", 80))
	}
}

// analyzeStream is one stream in the JSON of DESIGN.md, with RFC 3550
// figures added after the contract's fields.
type analyzeStream struct {
	SSRC         string  `json:"ssrc"`
	Src          string  `json:"src"`
	Dst          string  `json:"dst"`
	VLAN         *uint16 `json:"vlan"`
	PayloadType  uint8   `json:"payload_type"`
	Codec        string  `json:"codec"`
	Packets      uint64  `json:"packets"`
	Lost         int64   `json:"lost"`
	MaxDeltaMs   float64 `json:"max_delta_ms"`
	MaxJitterMs  float64 `json:"max_jitter_ms"`
	MeanJitterMs float64 `json:"mean_jitter_ms"`

	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Expected    int64     `json:"expected"`
	LostRFC3550 int64     `json:"lost_rfc3550"`
	Duplicates  uint64    `json:"duplicates"`
	OutOfOrder  uint64    `json:"out_of_order"`
	JitterMs    float64   `json:"jitter_ms"`
	LostNetwork uint64    `json:"lost_network"`
	LostCapture uint64    `json:"lost_capture"`
	Sequential  bool      `json:"sequential"`
}

type analyzeCapture struct {
	Frames       uint64            `json:"frames"`
	NonRTP       uint64            `json:"non_rtp"`
	DecodeErrors uint64            `json:"decode_errors"`
	RTP          uint64            `json:"rtp"`
	RTCP         uint64            `json:"rtcp"`
	Reasons      map[string]uint64 `json:"reasons"`
	Overflow     uint64            `json:"streams_over_cap"`
}

type analyzeReport struct {
	Streams []analyzeStream `json:"streams"`
	Capture analyzeCapture  `json:"capture"`
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func newAnalyzeReport(a *capture.Analysis) analyzeReport {
	r := analyzeReport{Streams: make([]analyzeStream, 0, len(a.Streams))}
	for _, s := range a.Streams {
		as := analyzeStream{
			SSRC: fmt.Sprintf("0x%08x", s.SSRC), Src: s.Src.String(), Dst: s.Dst.String(),
			PayloadType: s.PayloadType, Codec: s.Codec, Packets: s.Packets, Lost: s.WSLost,
			MaxDeltaMs: round3(s.WSMaxDelta), MaxJitterMs: round3(s.WSMaxJitter), MeanJitterMs: round3(s.WSMeanJitter),
			Start: s.First.UTC(), End: s.Last.UTC(), Expected: s.Expected, LostRFC3550: s.Lost,
			Duplicates: s.Duplicates, OutOfOrder: s.OutOfOrder, JitterMs: round3(s.Jitter),
			LostNetwork: s.LostNetwork, LostCapture: s.LostCapture, Sequential: s.Sequential,
		}
		if s.VLAN != capture.NoVLAN {
			v := s.VLAN
			as.VLAN = &v
		}
		r.Streams = append(r.Streams, as)
	}
	c := &a.Counters
	rtcp := c.Counts[capture.ReasonRTCPSR] + c.Counts[capture.ReasonRTCPRR] + c.Counts[capture.ReasonRTCPOther]
	r.Capture = analyzeCapture{
		Frames: c.Frames, DecodeErrors: c.Errors(), RTP: c.Counts[capture.ReasonRTP], RTCP: rtcp,
		NonRTP: c.Frames - c.Errors() - c.Counts[capture.ReasonRTP], Reasons: map[string]uint64{},
		Overflow: a.Overflow,
	}
	for i, n := range c.Counts {
		if n != 0 {
			r.Capture.Reasons[capture.Reason(i).String()] = n
		}
	}
	return r
}

func printAnalyzeTable(w io.Writer, a *capture.Analysis, r analyzeReport) {
	fmt.Fprintln(w, "========================= RTP Streams ========================")
	fmt.Fprintf(w, "%13s %13s %21s %21s %10s %4s %8s %5s %12s %5s %5s %13s %14s %15s %10s\n",
		"Start time", "End time", "Src", "Dst", "SSRC", "VLAN", "Payload", "Pkts", "Lost", "Dup", "OOO",
		"Max Delta(ms)", "Max Jitter(ms)", "Mean Jitter(ms)", "Jitter(ms)")
	for i, s := range r.Streams {
		st := a.Streams[i]
		vlan := "-"
		if s.VLAN != nil {
			vlan = fmt.Sprint(*s.VLAN)
		}
		pct := 0.0
		if exp := s.Lost + int64(s.Packets); exp > 0 {
			pct = float64(s.Lost) * 100 / float64(exp) // as tshark: over its own expected count
		}
		fmt.Fprintf(w, "%13.6f %13.6f %21s %21s %10s %4s %8s %5d %5d (%4.1f%%) %5d %5d %13.3f %14.3f %15.3f %10.3f\n",
			st.First.Sub(a.First).Seconds(), st.Last.Sub(a.First).Seconds(), s.Src, s.Dst, strings.ToUpper(s.SSRC[2:]),
			vlan, s.Codec, s.Packets, s.Lost, pct, s.Duplicates, s.OutOfOrder, s.MaxDeltaMs, s.MaxJitterMs, s.MeanJitterMs, s.JitterMs)
	}
	fmt.Fprintln(w, "==============================================================")
	fmt.Fprintf(w, "%d frames: %d RTP, %d RTCP, %d other, %d not decoded\n",
		r.Capture.Frames, r.Capture.RTP, r.Capture.RTCP, r.Capture.NonRTP-r.Capture.RTCP, r.Capture.DecodeErrors)
}
