package directory

import (
	"fmt"
	"strings"
	"testing"
)

// bigDirectory writes n agents, each with a name, a team, two extensions
// and a phone, as YAML and as CSV.
func bigDirectory(n int) (yamlData, csvData []byte) {
	var y, c strings.Builder
	y.WriteString("agents:\n")
	c.WriteString("id,name,team,extensions,phone_ip,phone_mac,vlan,mobile\n")
	for i := 0; i < n; i++ {
		ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		mac := fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&255, i>>8&255, i&255)
		fmt.Fprintf(&y, "  - id: \"a%06d\"\n    name: Agent number %d\n    team: team%d\n    extensions: [\"%d\", \"+331%08d\"]\n    phone_ip: %s\n    phone_mac: \"%s\"\n    vlan: 85\n",
			i, i, i%50, 100000+i, i, ip, mac)
		fmt.Fprintf(&c, "a%06d,Agent number %d,team%d,%d;+331%08d,%s,%s,85,false\n", i, i, i%50, 100000+i, i, ip, mac)
	}
	return []byte(y.String()), []byte(c.String())
}

// BenchmarkParse loads directories of the default maximum size (100,000
// agents): the cost of a reload.
func BenchmarkParse(b *testing.B) {
	const n = 50_000 // a YAML file of 100,000 such agents is over 16 MiB
	y, c := bigDirectory(n)
	d, err := Parse(c, "agents.csv", FormatCSV)
	if err != nil {
		b.Fatal(err)
	}
	wire, err := d.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		data []byte
		run  func([]byte) (*Directory, error)
	}{
		{"yaml", y, func(b []byte) (*Directory, error) { return Parse(b, "agents.yaml", FormatYAML) }},
		{"csv", c, func(b []byte) (*Directory, error) { return Parse(b, "agents.csv", FormatCSV) }},
		{"wire", wire, Unmarshal},
	} {
		b.Run(fmt.Sprintf("%s/agents=%d", tt.name, n), func(b *testing.B) {
			b.SetBytes(int64(len(tt.data)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				d, err := tt.run(tt.data)
				if err != nil || d.Len() != n {
					b.Fatal(err)
				}
			}
		})
	}
}
