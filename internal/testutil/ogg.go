package testutil

import (
	"bytes"
	"encoding/binary"
)

// OggOpus returns mono Opus packets as an Ogg Opus file (RFC 7845), for
// an independent decoder (ffmpeg) to read: one packet per page, no
// pre-skip, each page's granule position the 48 kHz samples so far, which
// samples gives per packet.
func OggOpus(pkts [][]byte, samples func(pkt []byte) int) []byte {
	var out bytes.Buffer
	seq := uint32(0)
	page := func(flags byte, granule uint64, data []byte) {
		var h bytes.Buffer
		h.WriteString("OggS")
		h.WriteByte(0)
		h.WriteByte(flags)
		binary.Write(&h, binary.LittleEndian, granule)
		binary.Write(&h, binary.LittleEndian, uint32(0x51ea)) // serial
		binary.Write(&h, binary.LittleEndian, seq)
		binary.Write(&h, binary.LittleEndian, uint32(0)) // CRC, set below
		var lacing []byte
		n := len(data)
		for n >= 255 {
			lacing = append(lacing, 255)
			n -= 255
		}
		lacing = append(lacing, byte(n))
		h.WriteByte(byte(len(lacing)))
		h.Write(lacing)
		h.Write(data)
		b := h.Bytes()
		binary.LittleEndian.PutUint32(b[22:], oggCRC(b))
		out.Write(b)
		seq++
	}
	head := []byte("OpusHead")
	head = append(head, 1, 1, 0, 0) // version, channels, pre-skip 0
	head = binary.LittleEndian.AppendUint32(head, 48000)
	head = append(head, 0, 0, 0) // gain, mapping family 0
	page(2, 0, head)
	tags := []byte("OpusTags")
	tags = binary.LittleEndian.AppendUint32(tags, 9)
	tags = append(tags, "silentmon"...)
	tags = binary.LittleEndian.AppendUint32(tags, 0)
	page(0, 0, tags)
	var granule uint64
	for i, p := range pkts {
		granule += uint64(samples(p))
		var flags byte
		if i == len(pkts)-1 {
			flags = 4
		}
		page(flags, granule, p)
	}
	return out.Bytes()
}

// oggCRC is Ogg's CRC-32 (polynomial 0x04c11db7, not reflected, zero
// initial value).
func oggCRC(b []byte) uint32 {
	var crc uint32
	for _, c := range b {
		crc ^= uint32(c) << 24
		for range 8 {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04c11db7
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
