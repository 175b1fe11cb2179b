package capture

import "math"

// wsState reproduces the per-stream analysis of Wireshark's RTP stream
// statistics (tshark -z rtp,streams), so that its Lost, Max Delta, Max
// Jitter and Mean Jitter can be compared figure for figure. Times are in
// milliseconds as float64, measured from the table's epoch, as Wireshark
// measures them from the first frame of the capture.
type wsState struct {
	startSeq, stopSeq, seqNum uint16
	under                     bool
	cycles                    uint32
	firstTS                   uint32
	pt                        uint8
	rate                      uint32  // clock rate of pt
	tickMs                    float64 // float64(rate/1000), as Wireshark divides
	time                      float64 // arrival of the last in-sequence packet
	lastNominal               float64
	delta                     float64
	jitter                    float64
	maxDelta                  float64
	maxJitter                 float64
	meanJitter                float64
	total                     uint32
}

// nsToMs converts the way Wireshark's nstime_to_msec does, so rounding
// matches.
func nsToMs(ns int64) float64 {
	return float64(ns/1e9)*1000 + float64(ns%1e9)/1e6
}

func (w *wsState) start(p *Packet, now int64) {
	h := &p.RTP
	*w = wsState{
		startSeq: h.SequenceNumber, stopSeq: h.SequenceNumber, seqNum: h.SequenceNumber,
		firstTS: h.Timestamp, pt: h.PayloadType, time: nsToMs(now), total: 1,
	}
	w.setRate(h.PayloadType)
}

func (w *wsState) setRate(pt uint8) {
	w.rate = ClockRate(pt)
	w.tickMs = float64(w.rate / 1000)
}

func (w *wsState) update(p *Packet, now int64) {
	h := &p.RTP
	cur := nsToMs(now)
	seq := h.SequenceNumber
	d := h.Timestamp - w.firstTS
	inTime := (w.firstTS <= h.Timestamp && d < 0x80000000) ||
		(w.firstTS > h.Timestamp && uint64(w.firstTS)+uint64(0xffffffff-h.Timestamp) < 0x80000000)

	switch {
	case seq < w.startSeq && inTime && !w.under:
		w.cycles++
		w.under = true
	case seq == 0 && w.stopSeq == 65535 && inTime && !w.under:
		w.cycles++
		w.under = true
	case seq > w.startSeq && inTime && w.under:
		w.under = false
	}
	switch {
	case inTime && w.seqNum+1 == seq:
		w.seqNum = seq
	case inTime && w.seqNum == 65535 && seq == 0:
		w.seqNum = seq
	case inTime && (int(w.seqNum)+1 < int(seq) || int(w.seqNum)-int(seq) > 0xff00):
		w.seqNum = seq
	}

	cn := h.PayloadType == 13 || h.PayloadType == 19
	followCN := w.pt == 13 || w.pt == 19
	if h.PayloadType != w.pt {
		w.setRate(h.PayloadType)
	}
	w.pt = h.PayloadType
	rate := w.rate

	var diff float64
	if inTime {
		if rate != 0 {
			nominal := float64(h.Timestamp-w.firstTS) / w.tickMs
			expected := w.time + (nominal - w.lastNominal)
			diff = math.Abs(cur - expected)
			w.jitter = (15*w.jitter + diff) / 16
			w.delta = cur - w.time
			w.lastNominal = nominal
		} else {
			w.delta = cur - w.time
		}
	}
	if !h.Marker && !cn && inTime && !followCN {
		if w.delta > w.maxDelta {
			w.maxDelta = w.delta
		}
		if rate != 0 {
			if w.jitter > w.maxJitter {
				w.maxJitter = w.jitter
			}
			w.meanJitter = (w.meanJitter*float64(w.total-1) + w.jitter) / float64(w.total)
		}
	}
	if inTime {
		w.time = cur
	}
	w.stopSeq = seq
	w.total++
}

func (w *wsState) lost() int64 {
	expected := int64(w.stopSeq) + int64(w.cycles)*0x10000 - int64(w.startSeq) + 1
	return expected - int64(w.total)
}
