package capture

import "strconv"

// Static RTP payload types (RFC 3551) with their encoding names and clock
// rates. Dynamic types (96-127) have no rate without signalling.
var payloadTypes = [96]struct {
	name string
	rate uint32
}{
	0: {"PCMU", 8000}, 1: {"1016", 8000}, 2: {"G721", 8000}, 3: {"GSM", 8000},
	4: {"G723", 8000}, 5: {"DVI4", 8000}, 6: {"DVI4", 16000}, 7: {"LPC", 8000},
	8: {"PCMA", 8000}, 9: {"G722", 8000}, 10: {"L16", 44100}, 11: {"L16", 44100},
	12: {"QCELP", 8000}, 13: {"CN", 8000}, 14: {"MPA", 90000}, 15: {"G728", 8000},
	16: {"DVI4", 11025}, 17: {"DVI4", 22050}, 18: {"G729", 8000}, 19: {"CN", 8000},
	25: {"CelB", 90000}, 26: {"JPEG", 90000}, 28: {"nv", 90000}, 31: {"H261", 90000},
	32: {"MPV", 90000}, 33: {"MP2T", 90000}, 34: {"H263", 90000},
}

// CodecName returns the encoding name of an RTP payload type: "PCMU",
// "PCMA", "G729", ... for static types, "dynamic-96" and so on otherwise.
func CodecName(pt uint8) string {
	if int(pt) < len(payloadTypes) && payloadTypes[pt].name != "" {
		return payloadTypes[pt].name
	}
	if pt >= 96 && pt <= 127 {
		return "dynamic-" + strconv.Itoa(int(pt))
	}
	return "unassigned-" + strconv.Itoa(int(pt))
}

// ClockRate returns the RTP clock rate of a static payload type in Hz, or
// 0 when it is unknown (dynamic types).
func ClockRate(pt uint8) uint32 {
	if int(pt) < len(payloadTypes) {
		return payloadTypes[pt].rate
	}
	return 0
}
