package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/silentmon/silentmon/internal/service"
	"github.com/silentmon/silentmon/internal/status"
	"github.com/silentmon/silentmon/relay"
)

// TestStatusDigitsAndUnsupported: smctl status of a supervisor prints a
// session's digits and a stream whose codec cannot be played as "iLBC
// (not supported)"; a stream without the supported field (an older
// supervisor) is not called unsupported.
func TestStatusDigitsAndUnsupported(t *testing.T) {
	no := false
	sv := status.SupervisorStatus{
		SupervisorStatus: service.SupervisorStatus{Role: relay.RoleSupervisor, Output: "null"},
		Unsupported:      map[string]uint64{"iLBC": 1},
		Sessions: []status.SupervisorSession{{
			SupervisorSession: service.SupervisorSession{ID: "s1", Agent: "1001", State: "open", Output: "null"},
			Digits:            "1234#",
			Streams: []status.PlayoutStream{
				{PlayoutStream: service.PlayoutStream{Direction: "from-agent", SSRC: "0x00001000", Codec: "iLBC", Packets: 50}, Supported: &no},
				{PlayoutStream: service.PlayoutStream{Direction: "to-agent", SSRC: "0x00002000", Codec: "PCMU", Packets: 50}},
			},
		}},
	}
	raw, err := json.Marshal(sv)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"digits":"1234#"`, `"codec":"iLBC","active":false,"packets":50`, `"supported":false`} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Fatalf("JSON %s lacks %s", raw, want)
		}
	}
	var out bytes.Buffer
	if err := printStatus(&out, raw); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"digits 1234#", "iLBC (not supported)", "codec not supported by this build: iLBC 1"} {
		if !strings.Contains(s, want) {
			t.Fatalf("status output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "PCMU (not supported)") {
		t.Fatalf("a stream without the supported field is called unsupported:\n%s", s)
	}
}
