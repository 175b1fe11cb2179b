package capture_test

import (
	"fmt"
	"testing"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/capture/capturetest"
)

// secondByteFrame is an Ethernet, IPv4, UDP frame whose payload is a
// 12-byte RTP version 2 header with second byte b and 160 bytes of
// payload: a frame the straight pass of Decode takes unless b rules it out.
func secondByteFrame(b byte) []byte {
	udp := make([]byte, 12+160)
	udp[0], udp[1] = 0x80, b
	udp[2], udp[3] = 0x12, 0x34                               // sequence number
	udp[4], udp[5], udp[6], udp[7] = 0, 0, 0x0a, 0            // timestamp
	udp[8], udp[9], udp[10], udp[11] = 0x12, 0x34, 0xab, 0xcd // SSRC
	return capturetest.Build(capturetest.Frame{SrcMAC: macA, DstMAC: macB, UDPRaw: udp})
}

// TestSecondByteBothPaths decodes a frame for each of the 256 values of
// the second byte through Decode (the straight pass where it applies) and
// through the general path alone, and checks that they agree and follow
// RFC 5761, section 4: 192 to 223 is RTCP, 72 to 76 is neither, anything
// else is RTP (marker bit and payload type).
func TestSecondByteBothPaths(t *testing.T) {
	for v := 0; v < 256; v++ {
		b := byte(v)
		t.Run(fmt.Sprintf("0x%02X", b), func(t *testing.T) {
			frame := secondByteFrame(b)
			var fast, gen capture.Packet
			ferr := fast.Decode(frame, capture.LinkEthernet, nil)
			gerr := gen.DecodeGeneral(frame, capture.LinkEthernet, nil)
			if ferr != nil || gerr != nil {
				t.Fatalf("errors %v and %v", ferr, gerr)
			}
			if fast.Kind != gen.Kind || fast.RTCPType != gen.RTCPType || fast.RTP.Marker != gen.RTP.Marker ||
				fast.RTP.PayloadType != gen.RTP.PayloadType || fast.RTP.SSRC != gen.RTP.SSRC ||
				len(fast.RTP.Payload) != len(gen.RTP.Payload) {
				t.Fatalf("the two paths disagree: Decode gives kind %v, RTCP type %d, marker %v, payload type %d; the general path kind %v, RTCP type %d, marker %v, payload type %d",
					fast.Kind, fast.RTCPType, fast.RTP.Marker, fast.RTP.PayloadType, gen.Kind, gen.RTCPType, gen.RTP.Marker, gen.RTP.PayloadType)
			}
			f1, k1, v1, m1 := fast.StreamKeyFields()
			f2, k2, v2, m2 := gen.StreamKeyFields()
			if f1 != f2 || k1 != k2 || v1 != v2 || m1 != m2 {
				t.Fatalf("different stream keys: %x %x %x %x, %x %x %x %x", f1, k1, v1, m1, f2, k2, v2, m2)
			}
			switch {
			case b >= 192 && b <= 223:
				if fast.Kind != capture.KindRTCP || fast.RTCPType != b {
					t.Fatalf("kind %v, RTCP type %d; want RTCP of type %d", fast.Kind, fast.RTCPType, b)
				}
			case b >= 72 && b <= 76:
				if fast.Kind != capture.KindUDP {
					t.Fatalf("kind %v; want plain UDP", fast.Kind)
				}
			default:
				if fast.Kind != capture.KindRTP || fast.RTP.Marker != (b&0x80 != 0) || fast.RTP.PayloadType != b&0x7f ||
					fast.RTP.SSRC != 0x1234abcd || len(fast.RTP.Payload) != 160 {
					t.Fatalf("kind %v, marker %v, payload type %d, SSRC %#x, %d payload bytes; want RTP, marker %v, payload type %d",
						fast.Kind, fast.RTP.Marker, fast.RTP.PayloadType, fast.RTP.SSRC, len(fast.RTP.Payload), b&0x80 != 0, b&0x7f)
				}
			}
		})
	}
}

// TestFeedbackIsRTCP names the edge case the two paths once disagreed on:
// 0xCD and 0xCE are RTCP feedback (RFC 4585), not RTP with the marker bit
// and payload type 77 or 78.
func TestFeedbackIsRTCP(t *testing.T) {
	for _, b := range []byte{0xCD, 0xCE} {
		var p capture.Packet
		if err := p.Decode(secondByteFrame(b), capture.LinkEthernet, nil); err != nil {
			t.Fatal(err)
		}
		if p.Kind != capture.KindRTCP || p.RTCPType != b || capture.ReasonOf(&p, nil) != capture.ReasonRTCPOther {
			t.Errorf("second byte 0x%02X: kind %v, RTCP type %d, reason %v; want RTCP feedback", b, p.Kind, p.RTCPType, capture.ReasonOf(&p, nil))
		}
	}
}
