package directory

import (
	"net/netip"
	"reflect"
	"testing"
)

func mustParse(t *testing.T, yaml string) *Directory {
	t.Helper()
	d, err := Parse([]byte(yaml), "test.yaml", FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestMerge: the merged directory has every part's agents; an id in two
// parts comes whole from the first; an extension or phone an earlier
// agent has is left out of a later one (a device keeps its other
// address), so look-ups by extension and phone find one agent; nil parts
// are skipped and the parts are untouched.
func TestMerge(t *testing.T) {
	a := mustParse(t, `agents:
  - {id: "1001", name: Alice, team: Billing, extensions: ["5001"], phone_ip: 10.10.0.1}
  - {id: "1002", name: Bruno, extensions: ["5002"]}
`)
	b := mustParse(t, `agents:
  - {id: "1001", name: Alice elsewhere, team: Sales, extensions: ["6001"]}
  - {id: "2001", name: Dora, team: Sales, extensions: ["5002", "7001"], phone_ip: 10.10.0.1, phone_mac: "00:11:22:33:44:77"}
`)
	c := mustParse(t, `agents:
  - {id: "2002", name: Eve, phone_ip: 10.10.0.1}
`)
	before, _ := b.Marshal()
	m := Merge(nil, a, b, nil, c)
	if m.Len() != 4 {
		t.Fatalf("Len() = %d, want 4 (1001, 1002, 2001, 2002)", m.Len())
	}
	alice, ok := m.ByID("1001")
	if !ok || alice.Name != "Alice" || alice.Team != "Billing" || !reflect.DeepEqual(alice.Extensions, []string{"5001"}) {
		t.Errorf("1001 = %+v, want the first part's Alice", alice)
	}
	if _, ok := m.ByExtension("6001"); ok {
		t.Error("the second part's 1001 left its extension 6001 in the merge")
	}
	if ag, _ := m.ByExtension("5002"); ag.ID != "1002" {
		t.Errorf("extension 5002 is %q's, want 1002's (first part)", ag.ID)
	}
	if ag, _ := m.ByExtension("7001"); ag.ID != "2001" {
		t.Errorf("extension 7001 is %q's, want 2001's", ag.ID)
	}
	if ag, _ := m.ByIP(netip.MustParseAddr("10.10.0.1")); ag.ID != "1001" {
		t.Errorf("10.10.0.1 is %q's, want 1001's", ag.ID)
	}
	dora, _ := m.ByID("2001")
	if len(dora.Devices) != 1 || dora.Devices[0].IP.IsValid() || dora.Devices[0].MAC.String() != "00:11:22:33:44:77" {
		t.Errorf("2001's devices %+v, want its MAC alone", dora.Devices)
	}
	if ag, _ := m.ByMAC(mustMAC("00:11:22:33:44:77")); ag.ID != "2001" {
		t.Errorf("00:11:22:33:44:77 is %q's, want 2001's", ag.ID)
	}
	eve, ok := m.ByID("2002")
	if !ok || len(eve.Devices) != 0 {
		t.Errorf("2002 = %+v, want the agent without the phone 1001 has", eve)
	}
	if got := m.Teams(); !reflect.DeepEqual(got, []string{"Billing", "Sales"}) {
		t.Errorf("Teams() = %v", got)
	}
	if after, _ := b.Marshal(); string(after) != string(before) {
		t.Error("Merge modified a part")
	}
	if Merge().Len() != 0 || Merge(nil).Len() != 0 {
		t.Error("Merge of nothing is not empty")
	}
	// The merge is a directory like a loaded one: its wire form reads back.
	raw, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(raw)
	if err != nil {
		t.Fatalf("Unmarshal of the merge: %v", err)
	}
	if !reflect.DeepEqual(back.Agents(), m.Agents()) {
		t.Error("the merge does not survive its wire form")
	}
}
