package captureserver

import (
	"encoding/json"
	"testing"

	"github.com/silentmon/silentmon/relay"
)

// TestMergeAgents: another member's SIP devices and calls join this
// member's agents once each, the state becomes the busiest, agents only
// another member's SIP knows are added without its session list, and
// entries whose id is not valid, or parts that do not decode, are left
// out.
func TestMergeAgents(t *testing.T) {
	own := []relay.AgentStatus{
		{ID: "1001", Name: "Alice", Devices: []relay.AgentDevice{{Address: "10.10.0.1", Learned: relay.DeviceFromDirectory}},
			State: relay.AgentUnknown, Monitored: []string{"s1"}},
		{ID: "1002", State: relay.AgentIdle, Devices: []relay.AgentDevice{}},
	}
	theirs := []relay.AgentStatus{
		{ID: "1001", Devices: []relay.AgentDevice{{Address: "10.10.0.1:20000", Learned: relay.DeviceFromCall}},
			State: relay.AgentTalking, Calls: []relay.AgentCall{{CallID: "c1@pbx", State: relay.AgentTalking}}},
		{ID: "2001", State: relay.AgentRinging, Calls: []relay.AgentCall{{CallID: "c2@pbx", State: relay.AgentRinging}},
			Monitored: []string{"forged"}},
		{ID: "../x", State: relay.AgentTalking},
	}
	b, _ := json.Marshal(theirs)
	again, _ := json.Marshal(theirs[:1])
	got := mergeAgents(own, map[string][]byte{"sm-b": b, "sm-c": again, "sm-d": []byte("not json")})
	if len(got) != 3 || got[0].ID != "1001" || got[1].ID != "1002" || got[2].ID != "2001" {
		t.Fatalf("merged ids %+v, want 1001, 1002, 2001", got)
	}
	a := got[0]
	if a.State != relay.AgentTalking || len(a.Calls) != 1 || len(a.Devices) != 2 || a.Name != "Alice" || len(a.Monitored) != 1 {
		t.Fatalf("agent 1001 merged as %+v: want talking, one call, the directory and call devices once each", a)
	}
	if c := got[2]; c.State != relay.AgentRinging || c.Monitored != nil || c.Devices == nil {
		t.Fatalf("agent 2001 only another member knows: %+v", c)
	}
}
