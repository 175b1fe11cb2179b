package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
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
consecutive sequence numbers in a row (RFC 3550's probation).

The SIP in the capture (UDP and TCP on --sip-port, 5060 by default) is
followed as the capture server follows it: a stream sent to (or from) a
media address of a call's SDP takes its payload type names and clock rates
from that SDP's rtpmap, so G.729 on dynamic type 96 is named G729 and its
jitter uses the 8 kHz clock, as tshark does with the same SIP; the JSON
gives the stream's "call_id" and "clock_rate", and "payload_types" when the
stream carried more than one (telephone-event on 101 beside the audio). A
stream whose SDP negotiated SRTP (RTP/SAVP, RTP/SAVPF, a=crypto) is shown as
"SRTP (codec)" and "encrypted":true.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, _ := cmd.Flags().GetBool("json")
			ports, err := sipPorts(cmd)
			if err != nil {
				return err
			}
			return runAnalyze(args[0], asJSON, ports, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().Bool("json", false, "print JSON")
	c.Flags().StringArray("sip-port", []string{"5060"}, "port of the SIP in the capture; repeatable")
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

func runAnalyze(path string, asJSON bool, ports []uint16, stdout, stderr io.Writer) error {
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
	tee := newSIPTee(src, ports)
	a, err := capture.Analyze(tee, opts)
	bar.finish()
	if err != nil {
		return cli.Failf("read capture %q: %v", path, err)
	}
	rep := newAnalyzeReport(a, tee)
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

	// From the SIP in the capture: the stream's clock rate (the SDP's for
	// a dynamic type), its call, every payload type it carried when more
	// than one, and whether its SDP negotiated SRTP.
	ClockRate    uint32          `json:"clock_rate,omitempty"`
	CallID       string          `json:"call_id,omitempty"`
	PayloadTypes []analyzePTInfo `json:"payload_types,omitempty"`
	Encrypted    bool            `json:"encrypted,omitempty"`

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

// analyzePTInfo is one payload type of a stream that carried several.
type analyzePTInfo struct {
	PayloadType uint8  `json:"payload_type"`
	Codec       string `json:"codec"`
	ClockRate   uint32 `json:"clock_rate,omitempty"`
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

func newAnalyzeReport(a *capture.Analysis, tee *sipTee) analyzeReport {
	r := analyzeReport{Streams: make([]analyzeStream, 0, len(a.Streams))}
	for i := range a.Streams {
		s := &a.Streams[i]
		var sd *sdpStream
		if tee != nil {
			sd = tee.stream(s)
		}
		if sd != nil && sd.sdpClock {
			s.WSMaxJitter, s.WSMeanJitter, s.Jitter = sd.jit.maxJitter, sd.jit.meanJitter, sd.jit.jitter
		}
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
		as.ClockRate = s.ClockRate
		if sd != nil && sd.matched {
			as.CallID, as.Encrypted = sd.match.callID, sd.match.srtp
			as.Codec, as.ClockRate, _ = ptInfo(&sd.match, s.PayloadType)
		}
		if sd != nil && len(sd.pts) > 1 {
			var m *sdpMatch
			if sd.matched {
				m = &sd.match
			}
			for _, pt := range sd.pts {
				name, rate, _ := ptInfo(m, pt)
				as.PayloadTypes = append(as.PayloadTypes, analyzePTInfo{PayloadType: pt, Codec: name, ClockRate: rate})
			}
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
			vlan, tableCodec(&s), s.Packets, s.Lost, pct, s.Duplicates, s.OutOfOrder, s.MaxDeltaMs, s.MaxJitterMs, s.MeanJitterMs, s.JitterMs)
	}
	fmt.Fprintln(w, "==============================================================")
	fmt.Fprintf(w, "%d frames: %d RTP, %d RTCP, %d other, %d not decoded\n",
		r.Capture.Frames, r.Capture.RTP, r.Capture.RTCP, r.Capture.NonRTP-r.Capture.RTCP, r.Capture.DecodeErrors)
}

// tableCodec is the Payload column of a stream: its codec, or every
// payload type's as tshark lists them ("G729, telephone-event"), as
// "SRTP (...)" when its SDP negotiated SRTP.
func tableCodec(s *analyzeStream) string {
	c := s.Codec
	if len(s.PayloadTypes) > 1 {
		names := make([]string, 0, len(s.PayloadTypes))
		for _, p := range s.PayloadTypes {
			if !slices.Contains(names, p.Codec) {
				names = append(names, p.Codec)
			}
		}
		c = strings.Join(names, ", ")
	}
	if s.Encrypted {
		c = "SRTP (" + c + ")"
	}
	return c
}

// sipPorts returns the ports of --sip-port.
func sipPorts(cmd *cobra.Command) ([]uint16, error) {
	specs, _ := cmd.Flags().GetStringArray("sip-port")
	var ports []uint16
	for _, ps := range specs {
		n, err := strconv.Atoi(ps)
		if err != nil || n < 1 || n > 65535 {
			return nil, cli.Usagef("--sip-port %q is not a port from 1 to 65535", ps)
		}
		ports = append(ports, uint16(n))
	}
	return ports, nil
}
