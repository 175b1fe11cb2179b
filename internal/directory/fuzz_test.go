package directory

import (
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// checkDirectory checks what every accepted directory must satisfy: agents
// sorted by unique valid ids, every lookup consistent with Agents, and a
// wire round trip that gives the same directory.
func checkDirectory(t *testing.T, d *Directory) {
	t.Helper()
	as := d.Agents()
	if len(as) != d.Len() {
		t.Fatalf("Len %d, %d agents", d.Len(), len(as))
	}
	teams := map[string]int{}
	for i, a := range as {
		if i > 0 && as[i-1].ID >= a.ID {
			t.Fatalf("agents not sorted by unique id: %q then %q", as[i-1].ID, a.ID)
		}
		if !ValidID(a.ID) || !ValidName(a.Name) || (a.Team != "" && !ValidTeam(a.Team)) {
			t.Fatalf("invalid agent accepted: %+v", a)
		}
		if b, ok := d.ByID(a.ID); !ok || !reflect.DeepEqual(a, b) {
			t.Fatalf("ByID(%q) = %+v %v", a.ID, b, ok)
		}
		for _, x := range a.Extensions {
			if b, ok := d.ByExtension(x); !ok || b.ID != a.ID || !ValidExtension(x) {
				t.Fatalf("extension %q of %s: ByExtension gives %q %v", x, a.ID, b.ID, ok)
			}
		}
		for _, dev := range a.Devices {
			if !dev.IP.IsValid() && dev.MAC == nil || dev.VLAN > 4094 || (dev.MAC != nil && len(dev.MAC) != 6) {
				t.Fatalf("invalid device accepted: %+v", dev)
			}
			if dev.IP.IsValid() {
				if b, ok := d.ByIP(dev.IP); !ok || b.ID != a.ID {
					t.Fatalf("ByIP(%v) = %q %v, want %s", dev.IP, b.ID, ok, a.ID)
				}
			}
			if dev.MAC != nil {
				if b, ok := d.ByMAC(dev.MAC); !ok || b.ID != a.ID {
					t.Fatalf("ByMAC(%v) = %q %v, want %s", dev.MAC, b.ID, ok, a.ID)
				}
			}
		}
		if a.Team != "" {
			teams[a.Team]++
		}
	}
	if got := d.Teams(); len(got) != len(teams) || !slices.IsSorted(got) {
		t.Fatalf("Teams() = %v, want the %d teams sorted", got, len(teams))
	}
	for team, n := range teams {
		if len(d.ByTeam(team)) != n {
			t.Fatalf("ByTeam(%q) has %d agents, want %d", team, len(d.ByTeam(team)), n)
		}
	}
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(b)
	if err != nil {
		t.Fatalf("Unmarshal(Marshal()) = %v for %s", err, b)
	}
	if !reflect.DeepEqual(back.Agents(), as) {
		t.Fatalf("wire round trip changed the directory:\n%+v\n%+v", as, back.Agents())
	}
}

// checkError checks a refusal: one line, wrapping a sentinel.
func checkError(t *testing.T, err error, name string) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error %q wraps no sentinel", err)
	}
	if msg := err.Error(); strings.ContainsAny(msg, "\n\r") || !strings.HasPrefix(msg, name) && !strings.HasPrefix(msg, "agent directory "+name) {
		t.Fatalf("error %q is not one line starting with %q", msg, name)
	}
}

func addSeeds(f *testing.F) {
	for _, p := range []string{"testdata/agents.yaml", "testdata/agents.csv"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"agents: []\n", "id\n", "agents:\n  - id: a\n    devices: [{ip: 10.0.0.1}, {mac: \"02:00:00:00:00:01\", vlan: 5}]\n",
		"agents:\n  - id: &a x\n    name: *a\n", "id,extensions\n1,5001;5002\n2,5002\n",
		`{"v":1,"agents":[{"id":"1","ext":["5"],"dev":[{"ip":"::1","vlan":3}]}]}`,
	} {
		f.Add([]byte(s))
	}
}

// FuzzLoad reads arbitrary bytes as a YAML file, a CSV file and by
// content: nothing panics, a refusal is one line naming the file, and an
// accepted directory satisfies checkDirectory.
func FuzzLoad(f *testing.F) {
	addSeeds(f)
	o := Options{MaxAgents: 1000}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, tt := range []struct {
			name string
			f    Format
		}{{"fuzz.yaml", FormatYAML}, {"fuzz.csv", FormatCSV}, {"fuzz", FormatAuto}} {
			d, err := o.Parse(b, tt.name, tt.f)
			if err != nil {
				checkError(t, err, tt.name)
				continue
			}
			checkDirectory(t, d)
		}
	})
}

// FuzzUnmarshal reads arbitrary bytes as the wire form, as a member does
// with what a peer sent: nothing panics, a refusal is one line, and an
// accepted directory satisfies checkDirectory.
func FuzzUnmarshal(f *testing.F) {
	addSeeds(f)
	if d, err := Load("testdata/agents.yaml"); err == nil {
		b, _ := d.Marshal()
		f.Add(b)
	}
	o := Options{MaxAgents: 1000}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := o.Unmarshal(b)
		if err != nil {
			checkError(t, err, wireSource)
			return
		}
		checkDirectory(t, d)
	})
}
