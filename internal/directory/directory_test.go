package directory

import (
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func mustMAC(s string) net.HardwareAddr {
	hw, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return hw
}

// wantAgents is the content of testdata/agents.yaml, sorted by id.
func wantAgents() []Agent {
	return []Agent{
		{ID: "0999", Name: "Night shift", Team: "Support-2",
			Devices: []Device{{IP: netip.MustParseAddr("2001:db8::99")}}},
		{ID: "1001", Name: "Alice Martin", Team: "Billing", Extensions: []string{"5001"},
			Devices: []Device{{IP: netip.MustParseAddr("10.10.0.1"), MAC: mustMAC("00:11:22:33:44:55"), VLAN: 85}}},
		{ID: "1002", Name: "Bruno Léger", Team: "Billing", Extensions: []string{"5002", "+33140000002"},
			Devices: []Device{{IP: netip.MustParseAddr("10.10.0.2"), VLAN: 85}, {MAC: mustMAC("00:11:22:33:44:66")}}},
		{ID: "1003", Name: "Chloé Durand", Team: "Sales", Extensions: []string{"*86", "5003"}, Mobile: true},
	}
}

func TestLoadYAML(t *testing.T) {
	d, err := Load("testdata/agents.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.Agents(), wantAgents(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Agents() =\n%+v\nwant\n%+v", got, want)
	}
	if d.Len() != 4 {
		t.Fatalf("Len() = %d, want 4", d.Len())
	}
}

func TestLoadCSV(t *testing.T) {
	d, err := Load("testdata/agents.csv")
	if err != nil {
		t.Fatal(err)
	}
	// The CSV holds the YAML's agents but 1002, whose two phones a row
	// cannot carry.
	want := slices.DeleteFunc(wantAgents(), func(a Agent) bool { return a.ID == "1002" })
	if got := d.Agents(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Agents() =\n%+v\nwant\n%+v", got, want)
	}
}

func TestCSVColumnsInAnyOrder(t *testing.T) {
	d, err := Parse([]byte("\uFEFFExtensions, ID ,mobile\r\n\"5001; 5002;\",1001,YES\r\n"), "agents.csv", FormatCSV)
	if err != nil {
		t.Fatal(err)
	}
	want := []Agent{{ID: "1001", Extensions: []string{"5001", "5002"}, Mobile: true}}
	if got := d.Agents(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Agents() = %+v, want %+v", got, want)
	}
}

func TestEmptyDirectories(t *testing.T) {
	for _, tt := range []struct {
		name, data string
		f          Format
	}{
		{"yaml list", "agents: []\n", FormatYAML},
		{"yaml null", "agents:\n", FormatYAML},
		{"csv header", "id,name\n", FormatCSV},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.data), "agents", tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if d.Len() != 0 || len(d.Agents()) != 0 || len(d.Teams()) != 0 {
				t.Fatalf("directory not empty: %+v", d.Agents())
			}
		})
	}
	var zero Directory
	if _, ok := zero.ByID("1001"); ok || zero.Len() != 0 || zero.ByTeam("x") != nil {
		t.Fatal("the zero Directory is not empty")
	}
}

func TestFormatOf(t *testing.T) {
	for path, want := range map[string]Format{
		"a.yaml": FormatYAML, "/etc/silentmon/AGENTS.YML": FormatYAML, "x.csv": FormatCSV,
		"agents": FormatAuto, "agents.txt": FormatAuto, "agents.yaml.bak": FormatAuto,
	} {
		if got := FormatOf(path); got != want {
			t.Errorf("FormatOf(%q) = %v, want %v", path, got, want)
		}
	}
}

// TestFormatByContent loads files whose names say nothing, and YAML
// content under a name that does not say YAML.
func TestFormatByContent(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ name, data string }{
		{"agents", "# comment\n\nagents:\n  - id: \"1001\"\n    extensions: [5001]\n"},
		{"agents.txt", "---\nagents: [{id: \"1001\", extensions: [\"5001\"]}]\n"},
		{"agents.conf", "{agents: [{id: \"1001\", extensions: [\"5001\"]}]}\n"},
		{"agents.list", "# comment\nid,extensions\n1001,5001\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name)
			if err := os.WriteFile(p, []byte(tt.data), 0o600); err != nil {
				t.Fatal(err)
			}
			d, err := Load(p)
			if err != nil {
				t.Fatal(err)
			}
			if a, ok := d.ByExtension("5001"); !ok || a.ID != "1001" {
				t.Fatalf("ByExtension(5001) = %+v %v", a, ok)
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: %v", err)
	}
	_, err = Load(dir)
	if !errors.Is(err, ErrInvalid) || err.Error() != "agent directory "+dir+" is not a regular file" {
		t.Fatalf("a directory: %v", err)
	}
	p := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(p, []byte("agents:\n  - id: \"1001\"\n    extensions: [\"50 01\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(p)
	if want := p + ` line 3: extension "50 01" of agent 1001 is not 1 to 32 of A-Z a-z 0-9 + * # . _ -`; err == nil || err.Error() != want {
		t.Fatalf("Load: %v\nwant %s", err, want)
	}
}

func TestLimits(t *testing.T) {
	dir := t.TempDir()
	yamlData := "agents:\n  - id: a\n  - id: b\n  - id: c\n"
	csvData := "id\na\nb\nc\n"
	wire := []byte(`{"v":1,"agents":[{"id":"a"},{"id":"b"},{"id":"c"}]}`)
	p := filepath.Join(dir, "agents.yaml")
	if err := os.WriteFile(p, []byte(yamlData), 0o600); err != nil {
		t.Fatal(err)
	}
	three := Options{MaxAgents: 3}
	two := Options{MaxAgents: 2}
	small := Options{MaxBytes: int64(len(yamlData)) - 1}
	for _, tt := range []struct {
		name string
		run  func(Options) (*Directory, error)
		want string // with two or small; "" means allowed with three
	}{
		{"yaml agents", func(o Options) (*Directory, error) { return o.Parse([]byte(yamlData), "agents.yaml", FormatYAML) }, "agents.yaml holds more than 2 agents"},
		{"csv agents", func(o Options) (*Directory, error) { return o.Parse([]byte(csvData), "agents.csv", FormatCSV) }, "agents.csv holds more than 2 agents"},
		{"wire agents", func(o Options) (*Directory, error) { return o.Unmarshal(wire) }, "agent directory data holds more than 2 agents"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if d, err := tt.run(three); err != nil || d.Len() != 3 {
				t.Fatalf("with room for 3: %v", err)
			}
			_, err := tt.run(two)
			if !errors.Is(err, ErrTooLarge) || err.Error() != tt.want {
				t.Fatalf("with room for 2: %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := small.Load(p); !errors.Is(err, ErrTooLarge) || err.Error() != "agent directory "+p+" is larger than 37 bytes" {
		t.Fatalf("Load over MaxBytes: %v", err)
	}
	if _, err := (Options{MaxBytes: int64(len(wire)) - 1}).Unmarshal(wire); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Unmarshal over MaxBytes: %v", err)
	}
	if d, err := (Options{MaxBytes: int64(len(yamlData))}).Load(p); err != nil || d.Len() != 3 {
		t.Fatalf("Load at MaxBytes: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	var o Options
	if o.maxBytes() != 16<<20 || o.maxAgents() != 100000 {
		t.Fatalf("defaults %d bytes, %d agents", o.maxBytes(), o.maxAgents())
	}
}

func TestLookups(t *testing.T) {
	d, err := Load("testdata/agents.yaml")
	if err != nil {
		t.Fatal(err)
	}
	byID := func(id string) Agent {
		for _, a := range wantAgents() {
			if a.ID == id {
				return a
			}
		}
		t.Fatalf("no agent %s in wantAgents", id)
		return Agent{}
	}
	for _, tt := range []struct {
		what string
		got  func() (Agent, bool)
		want string // "" means not found
	}{
		{"ByID 1002", func() (Agent, bool) { return d.ByID("1002") }, "1002"},
		{"ByID 0999", func() (Agent, bool) { return d.ByID("0999") }, "0999"},
		{"ByID 999", func() (Agent, bool) { return d.ByID("999") }, ""},
		{"ByID empty", func() (Agent, bool) { return d.ByID("") }, ""},
		{"ByExtension 5001", func() (Agent, bool) { return d.ByExtension("5001") }, "1001"},
		{"ByExtension +33140000002", func() (Agent, bool) { return d.ByExtension("+33140000002") }, "1002"},
		{"ByExtension *86", func() (Agent, bool) { return d.ByExtension("*86") }, "1003"},
		{"ByExtension 1001", func() (Agent, bool) { return d.ByExtension("1001") }, ""},
		{"ByIP 10.10.0.2", func() (Agent, bool) { return d.ByIP(netip.MustParseAddr("10.10.0.2")) }, "1002"},
		{"ByIP mapped", func() (Agent, bool) { return d.ByIP(netip.MustParseAddr("::ffff:10.10.0.1")) }, "1001"},
		{"ByIP 2001:db8::99", func() (Agent, bool) { return d.ByIP(netip.MustParseAddr("2001:db8::99")) }, "0999"},
		{"ByIP unknown", func() (Agent, bool) { return d.ByIP(netip.MustParseAddr("10.10.0.3")) }, ""},
		{"ByIP zero", func() (Agent, bool) { return d.ByIP(netip.Addr{}) }, ""},
		{"ByMAC", func() (Agent, bool) { return d.ByMAC(mustMAC("00:11:22:33:44:66")) }, "1002"},
		{"ByMAC unknown", func() (Agent, bool) { return d.ByMAC(mustMAC("00:11:22:33:44:77")) }, ""},
		{"ByMAC short", func() (Agent, bool) { return d.ByMAC(net.HardwareAddr{1, 2}) }, ""},
	} {
		t.Run(tt.what, func(t *testing.T) {
			a, ok := tt.got()
			if tt.want == "" {
				if ok {
					t.Fatalf("found %+v", a)
				}
				return
			}
			if !ok || !reflect.DeepEqual(a, byID(tt.want)) {
				t.Fatalf("got %+v %v, want %+v", a, ok, byID(tt.want))
			}
		})
	}
	if got := d.Teams(); !slices.Equal(got, []string{"Billing", "Sales", "Support-2"}) {
		t.Errorf("Teams() = %v", got)
	}
	var ids []string
	for _, a := range d.ByTeam("Billing") {
		ids = append(ids, a.ID)
	}
	if !slices.Equal(ids, []string{"1001", "1002"}) {
		t.Errorf("ByTeam(Billing) = %v", ids)
	}
	if got := d.ByTeam("billing"); got != nil {
		t.Errorf("ByTeam(billing) = %+v: team names are case-sensitive", got)
	}
	if got := d.ByTeam(""); got != nil {
		t.Errorf("ByTeam(\"\") = %+v", got)
	}
}

// TestImmutable changes everything the methods returned and checks that
// the directory did not change.
func TestImmutable(t *testing.T) {
	d, err := Load("testdata/agents.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, as := range [][]Agent{d.Agents(), d.ByTeam("Billing")} {
		for i := range as {
			as[i].ID = "x"
			for j := range as[i].Extensions {
				as[i].Extensions[j] = "x"
			}
			for j := range as[i].Devices {
				as[i].Devices[j].VLAN = 7
				if as[i].Devices[j].MAC != nil {
					as[i].Devices[j].MAC[0] = 0xfe
				}
			}
		}
	}
	a, _ := d.ByID("1001")
	a.Extensions[0] = "x"
	a.Devices[0].MAC[1] = 0xfe
	d.Teams()[0] = "x"
	if got := d.Agents(); !reflect.DeepEqual(got, wantAgents()) {
		t.Fatalf("the directory changed:\n%+v", got)
	}
	if got := d.Teams(); got[0] != "Billing" {
		t.Fatalf("Teams() changed: %v", got)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	d, err := Load("testdata/agents.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"agents":[` +
		`{"id":"0999","name":"Night shift","team":"Support-2","dev":[{"ip":"2001:db8::99"}]},` +
		`{"id":"1001","name":"Alice Martin","team":"Billing","ext":["5001"],"dev":[{"ip":"10.10.0.1","mac":"00:11:22:33:44:55","vlan":85}]},` +
		`{"id":"1002","name":"Bruno Léger","team":"Billing","ext":["5002","+33140000002"],"dev":[{"ip":"10.10.0.2","vlan":85},{"mac":"00:11:22:33:44:66"}]},` +
		`{"id":"1003","name":"Chloé Durand","team":"Sales","ext":["*86","5003"],"mobile":true}]}`
	if string(b) != want {
		t.Fatalf("Marshal:\n%s\nwant\n%s", b, want)
	}
	back, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Agents(), d.Agents()) {
		t.Fatalf("round trip:\n%+v\nwant\n%+v", back.Agents(), d.Agents())
	}
	if back.Teams()[0] != "Billing" {
		t.Fatalf("Teams() after the round trip: %v", back.Teams())
	}
	var empty Directory
	if b, err := empty.Marshal(); err != nil || string(b) != `{"v":1,"agents":[]}` {
		t.Fatalf("empty Marshal: %s %v", b, err)
	}
	if d, err := Unmarshal([]byte(`{"agents":[],"v":1}`)); err != nil || d.Len() != 0 {
		t.Fatalf("empty Unmarshal: %v", err)
	}
}
