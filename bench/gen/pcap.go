package gen

import (
	"bufio"
	"encoding/binary"
	"io"
	"time"
)

const (
	pcapMagicMicro = 0xa1b2c3d4
	pcapMagicNano  = 0xa1b23c4d
	linkEthernet   = 1
	pcapSnaplen    = 65535
)

// pcapWriter writes a little-endian pcap stream with Ethernet link type.
type pcapWriter struct {
	w     *bufio.Writer
	nano  bool
	hdr   [16]byte
	bytes int64
}

func newPcapWriter(w io.Writer, nano bool) (*pcapWriter, error) {
	p := &pcapWriter{w: bufio.NewWriterSize(w, 256<<10), nano: nano}
	var h [24]byte
	magic := uint32(pcapMagicMicro)
	if nano {
		magic = pcapMagicNano
	}
	binary.LittleEndian.PutUint32(h[0:], magic)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], pcapSnaplen)
	binary.LittleEndian.PutUint32(h[20:], linkEthernet)
	_, err := p.w.Write(h[:])
	p.bytes = 24
	return p, err
}

// resolution returns the pcap's time resolution.
func (p *pcapWriter) resolution() time.Duration {
	if p.nano {
		return time.Nanosecond
	}
	return time.Microsecond
}

func (p *pcapWriter) writePacket(ts time.Time, frame []byte) error {
	sec := ts.Unix()
	frac := uint32(ts.Nanosecond())
	if !p.nano {
		frac /= 1000
	}
	binary.LittleEndian.PutUint32(p.hdr[0:], uint32(sec))
	binary.LittleEndian.PutUint32(p.hdr[4:], frac)
	binary.LittleEndian.PutUint32(p.hdr[8:], uint32(len(frame)))
	binary.LittleEndian.PutUint32(p.hdr[12:], uint32(len(frame)))
	if _, err := p.w.Write(p.hdr[:]); err != nil {
		return err
	}
	_, err := p.w.Write(frame)
	p.bytes += int64(16 + len(frame))
	return err
}

func (p *pcapWriter) flush() error { return p.w.Flush() }
