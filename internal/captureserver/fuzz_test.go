package captureserver

import (
	"encoding/json"
	"testing"

	"github.com/silentmon/silentmon/internal/directory"
	"github.com/silentmon/silentmon/relay"
)

// FuzzSharedDirectory: a directory another member published (gzip of the
// directory's JSON) is read without a panic, and one that is accepted
// survives its own encoding.
func FuzzSharedDirectory(f *testing.F) {
	d, err := directory.Parse([]byte("agents:\n  - {id: \"1001\", name: Alice, team: Billing, extensions: [\"5001\"], phone_ip: 10.10.0.1}\n"),
		"agents.yaml", directory.FormatYAML)
	if err != nil {
		f.Fatal(err)
	}
	b, err := encodeDirectory(d)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeDirectory(b)
		if err != nil {
			return
		}
		again, err := encodeDirectory(d)
		if err != nil {
			return // too large to share again is possible only near the bound
		}
		d2, err := decodeDirectory(again)
		if err != nil || d2.Len() != d.Len() {
			t.Fatalf("an accepted directory of %d agents does not survive its encoding: %v", d.Len(), err)
		}
	})
}

// FuzzBinding: a binding another member stored is read without a panic;
// an accepted one names only valid devices and extensions, within the
// bounds.
func FuzzBinding(f *testing.F) {
	f.Add("1001", []byte(`{"devices":["10.10.0.1","vlan85/00:1B:54:AA:BB:CC"],"extensions":["5001"],"by":"CN=cti","at":"2026-12-02T00:00:00Z"}`))
	f.Add("1001", []byte(`{"devices":["10.10.0.1:20000-20999"]}`))
	f.Add("../x", []byte(`{}`))
	f.Fuzz(func(t *testing.T, agent string, raw []byte) {
		b, err := parseBinding(agent, raw)
		if err != nil {
			return
		}
		if !relay.ValidAgentID(agent) || len(b.eps) != len(b.Devices) || len(b.Devices) > maxBoundDevices || len(b.Extensions) > maxBoundExtensions {
			t.Fatalf("accepted binding of %q: %+v", agent, b.binding)
		}
		for _, ep := range b.eps {
			if ep.PortLo != 0 || ep.PortHi != 0 {
				t.Fatalf("accepted a bound device with ports: %+v", ep)
			}
		}
	})
}

// FuzzMergeAgents: other members' parts of smctl agents are merged
// without a panic, every agent once, sorted by id.
func FuzzMergeAgents(f *testing.F) {
	b, _ := json.Marshal([]relay.AgentStatus{{ID: "1001", State: relay.AgentTalking,
		Devices: []relay.AgentDevice{{Address: "10.10.0.1:20000", Learned: relay.DeviceFromCall}},
		Calls:   []relay.AgentCall{{CallID: "c1", State: relay.AgentTalking}}}})
	f.Add(b, b)
	f.Add([]byte(`[{"id":"../x"}]`), []byte(`null`))
	f.Fuzz(func(t *testing.T, p1, p2 []byte) {
		own := []relay.AgentStatus{{ID: "1001", State: relay.AgentUnknown, Devices: []relay.AgentDevice{}}}
		got := mergeAgents(own, map[string][]byte{"a": p1, "b": p2})
		for i := 1; i < len(got); i++ {
			if got[i-1].ID >= got[i].ID {
				t.Fatalf("merged agents not sorted or listed twice: %q then %q", got[i-1].ID, got[i].ID)
			}
		}
	})
}
