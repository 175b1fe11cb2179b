package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/silentmon/silentmon/internal/status"
)

// TestStatusShowsEncrypted: a stream of SRTP without keys is shown as
// "encrypted (SRTP, no keys), not forwarded", and its JSON field kept.
func TestStatusShowsEncrypted(t *testing.T) {
	st := status.ServerStatus{Server: "cap-1", Sessions: []status.SessionStatus{{ID: "s1", Agent: "1001",
		Endpoints: []string{}, SRTPUndecryptable: 7, Streams: []status.StreamStatus{
			{SSRC: "0x00005555", Direction: "from-agent", Src: "10.10.0.3:20000", Dst: "10.20.0.3:30000", Packets: 7, Encrypted: "srtp-no-keys"},
			{SSRC: "0x00001001", Direction: "to-agent", Src: "10.20.0.3:30000", Dst: "10.10.0.3:20000", Packets: 9, Codec: "PCMU"}}}}}
	raw, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"encrypted":"srtp-no-keys"`) || !strings.Contains(string(raw), `"srtp_undecryptable":7`) {
		t.Fatalf("JSON %s lacks the encrypted fields", raw)
	}
	var b bytes.Buffer
	if err := printStatus(&b, raw); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	var enc, plain string
	for _, l := range lines {
		if strings.Contains(l, "0x00005555") {
			enc = l
		}
		if strings.Contains(l, "0x00001001") {
			plain = l
		}
	}
	if !strings.Contains(enc, "encrypted (SRTP, no keys), not forwarded") || strings.Contains(plain, "encrypted") {
		t.Fatalf("status:\n%s", b.String())
	}
}
