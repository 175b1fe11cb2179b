package directory

import (
	"errors"
	"strings"
	"testing"
)

type invalidCase struct {
	name string
	data string
	want string // the whole message
}

// y is a YAML directory whose agents are body (line 2 onwards).
func y(body string) string { return "agents:\n" + body }

func TestValidationYAML(t *testing.T) {
	long := strings.Repeat("a", 65)
	cases := []invalidCase{
		{"no id", y("  - name: Alice\n"), `agents.yaml line 2: agent has no id`},
		{"empty id", y("  - id: \"\"\n"), `agents.yaml line 2: agent has no id`},
		{"null id", y("  - id:\n"), `agents.yaml line 2: agent has no id`},
		{"id with a space", y("  - id: \"10 01\"\n"), `agents.yaml line 2: agent id "10 01" is not 1 to 64 of A-Z a-z 0-9 . _ -`},
		{"id with a slash", y("  - id: a/b\n"), `agents.yaml line 2: agent id "a/b" is not 1 to 64 of A-Z a-z 0-9 . _ -`},
		{"id dot dot", y("  - id: ..\n"), `agents.yaml line 2: agent id ".." is not 1 to 64 of A-Z a-z 0-9 . _ -`},
		{"id too long", y("  - id: " + long + "\n"), `agents.yaml line 2: agent id "` + long[:64] + `"... is not 1 to 64 of A-Z a-z 0-9 . _ -`},
		{"id a list", y("  - id: [1001]\n"), `agents.yaml line 2: id is not a single value`},
		{"name with a tab", y("  - id: \"1001\"\n    name: \"Al\\tice\"\n"), `agents.yaml line 3: name "Al\tice" of agent 1001 is not up to 128 printable characters`},
		{"name with a newline", y("  - id: \"1001\"\n    name: |\n      Alice\n      Martin\n"), `agents.yaml line 3: name "Alice\nMartin\n" of agent 1001 is not up to 128 printable characters`},
		{"name too long", y("  - id: \"1001\"\n    name: " + strings.Repeat("é", 129) + "\n"), `agents.yaml line 3: name "` + strings.Repeat("é", 32) + `"... of agent 1001 is not up to 128 printable characters`},
		{"team with a space", y("  - id: \"1001\"\n    team: Tier 2\n"), `agents.yaml line 3: team "Tier 2" of agent 1001 is not 1 to 64 of A-Z a-z 0-9 . _ -`},
		{"team too long", y("  - id: \"1001\"\n    team: " + long + "\n"), `agents.yaml line 3: team "` + long[:64] + `"... of agent 1001 is not 1 to 64 of A-Z a-z 0-9 . _ -`},
		{"extension with a space", y("  - id: \"1001\"\n    extensions:\n      - \"5001\"\n      - \"50 02\"\n"), `agents.yaml line 5: extension "50 02" of agent 1001 is not 1 to 32 of A-Z a-z 0-9 + * # . _ -`},
		{"extension with an at sign", y("  - id: \"1001\"\n    extensions: [\"5001@pbx\"]\n"), `agents.yaml line 3: extension "5001@pbx" of agent 1001 is not 1 to 32 of A-Z a-z 0-9 + * # . _ -`},
		{"extension too long", y("  - id: \"1001\"\n    extensions: [\"" + strings.Repeat("5", 33) + "\"]\n"), `agents.yaml line 3: extension "` + strings.Repeat("5", 33) + `" of agent 1001 is not 1 to 32 of A-Z a-z 0-9 + * # . _ -`},
		{"extension empty", y("  - id: \"1001\"\n    extensions: [\"\"]\n"), `agents.yaml line 3: extension "" of agent 1001 is not 1 to 32 of A-Z a-z 0-9 + * # . _ -`},
		{"extension null", y("  - id: \"1001\"\n    extensions: [~]\n"), `agents.yaml line 3: an item of extensions is not a single value`},
		{"extensions a mapping", y("  - id: \"1001\"\n    extensions: {a: 1}\n"), `agents.yaml line 3: extensions is not a list`},
		{"too many extensions", y("  - id: \"1001\"\n    extensions: [" + strings.Repeat("1,", 64) + "65]\n"), `agents.yaml line 3: agent 1001 has more than 64 extensions`},
		{"IP out of range", y("  - id: \"1001\"\n    phone_ip: 10.10.0.300\n"), `agents.yaml line 3: phone IP "10.10.0.300" of agent 1001 is not a unicast IP address`},
		{"IP a name", y("  - id: \"1001\"\n    phone_ip: phone1.example.com\n"), `agents.yaml line 3: phone IP "phone1.example.com" of agent 1001 is not a unicast IP address`},
		{"IP zoned", y("  - id: \"1001\"\n    phone_ip: fe80::1%eth0\n"), `agents.yaml line 3: phone IP "fe80::1%eth0" of agent 1001 is not a unicast IP address`},
		{"IP multicast", y("  - id: \"1001\"\n    phone_ip: 224.0.0.1\n"), `agents.yaml line 3: phone IP "224.0.0.1" of agent 1001 is not a unicast IP address`},
		{"IP unspecified", y("  - id: \"1001\"\n    phone_ip: \"::\"\n"), `agents.yaml line 3: phone IP "::" of agent 1001 is not a unicast IP address`},
		{"IP broadcast", y("  - id: \"1001\"\n    phone_ip: 255.255.255.255\n"), `agents.yaml line 3: phone IP "255.255.255.255" of agent 1001 is not a unicast IP address`},
		{"MAC short", y("  - id: \"1001\"\n    phone_mac: \"00:11:22:33:44\"\n"), `agents.yaml line 3: phone MAC "00:11:22:33:44" of agent 1001 is not a unicast Ethernet address`},
		{"MAC EUI-64", y("  - id: \"1001\"\n    phone_mac: \"00:11:22:33:44:55:66:77\"\n"), `agents.yaml line 3: phone MAC "00:11:22:33:44:55:66:77" of agent 1001 is not a unicast Ethernet address`},
		{"MAC multicast", y("  - id: \"1001\"\n    phone_mac: \"01:00:5e:00:00:01\"\n"), `agents.yaml line 3: phone MAC "01:00:5e:00:00:01" of agent 1001 is not a unicast Ethernet address`},
		{"MAC zero", y("  - id: \"1001\"\n    phone_mac: \"00:00:00:00:00:00\"\n"), `agents.yaml line 3: phone MAC "00:00:00:00:00:00" of agent 1001 is not a unicast Ethernet address`},
		{"VLAN 4095", y("  - id: \"1001\"\n    phone_ip: 10.0.0.1\n    vlan: 4095\n"), `agents.yaml line 4: VLAN "4095" of agent 1001 is not between 0 and 4094`},
		{"VLAN negative", y("  - id: \"1001\"\n    phone_ip: 10.0.0.1\n    vlan: -1\n"), `agents.yaml line 4: VLAN "-1" of agent 1001 is not between 0 and 4094`},
		{"VLAN hex", y("  - id: \"1001\"\n    phone_ip: 10.0.0.1\n    vlan: 0x55\n"), `agents.yaml line 4: VLAN "0x55" of agent 1001 is not between 0 and 4094`},
		{"VLAN without a phone", y("  - id: \"1001\"\n    vlan: 85\n"), `agents.yaml line 2: a device of agent 1001 has no phone IP or MAC`},
		{"device without a phone", y("  - id: \"1001\"\n    devices:\n      - {vlan: 85}\n"), `agents.yaml line 4: a device of agent 1001 has no phone IP or MAC`},
		{"device bad IP", y("  - id: \"1001\"\n    devices:\n      - ip: 10.0.0.1\n      - ip: 10.0.0\n"), `agents.yaml line 5: phone IP "10.0.0" of agent 1001 is not a unicast IP address`},
		{"device unknown key", y("  - id: \"1001\"\n    devices:\n      - {ip: 10.0.0.1, port: 5060}\n"), `agents.yaml line 4: unknown key "port" (expected one of ip, mac, vlan)`},
		{"device not a mapping", y("  - id: \"1001\"\n    devices: [10.0.0.1]\n"), `agents.yaml line 3: a device is not a mapping of ip, mac and vlan`},
		{"devices not a list", y("  - id: \"1001\"\n    devices: 10.0.0.1\n"), `agents.yaml line 3: devices is not a list`},
		{"too many devices", y("  - id: \"1001\"\n    devices:\n" + strings.Repeat("      - {mac: \"02:00:00:00:00:01\"}\n", 17)), `agents.yaml line 20: agent 1001 has more than 16 devices`},
		{"mobile maybe", y("  - id: \"1001\"\n    mobile: maybe\n"), `agents.yaml line 3: mobile "maybe" of agent 1001 is not true or false`},
		{"duplicate id", y("  - id: \"1001\"\n  - id: \"1002\"\n  - id: \"1001\"\n"), `agents.yaml line 4: agent id "1001" is already defined on line 2`},
		{"extension on two agents", y("  - id: \"1001\"\n    extensions: [\"5001\"]\n  - id: \"1002\"\n    extensions: [\"5002\", \"5001\"]\n"), `agents.yaml line 5: extension "5001" of agent 1002 is already agent 1001's (line 3)`},
		{"extension twice", y("  - id: \"1001\"\n    extensions: [\"5001\", \"5001\"]\n"), `agents.yaml line 3: extension "5001" is listed twice for agent 1001`},
		{"IP on two agents", y("  - id: \"1001\"\n    phone_ip: 10.10.0.1\n  - id: \"1002\"\n    phone_ip: \"::ffff:10.10.0.1\"\n"), `agents.yaml line 5: phone IP 10.10.0.1 of agent 1002 is already agent 1001's (line 3)`},
		{"IP twice", y("  - id: \"1001\"\n    phone_ip: 10.10.0.1\n    devices:\n      - {ip: 10.10.0.1, vlan: 86}\n"), `agents.yaml line 5: phone IP 10.10.0.1 is listed twice for agent 1001`},
		{"MAC on two agents", y("  - id: \"1001\"\n    phone_mac: \"00:11:22:33:44:55\"\n  - id: \"1002\"\n    phone_mac: \"00-11-22-33-44-55\"\n"), `agents.yaml line 5: phone MAC 00:11:22:33:44:55 of agent 1002 is already agent 1001's (line 3)`},
		{"unknown key", y("  - id: \"1001\"\n    phone: 10.10.0.1\n"), `agents.yaml line 3: unknown key "phone" (expected one of id, name, team, extensions, phone_ip, phone_mac, vlan, mobile, devices)`},
		{"key twice", y("  - id: \"1001\"\n    id: \"1002\"\n"), `agents.yaml line 3: the key id is given twice`},
		{"alias", y("  - id: &x \"1001\"\n    name: *x\n"), `agents.yaml line 3: name is not a single value`},
		{"agent not a mapping", y("  - 1001\n"), `agents.yaml line 2: an agent is not a mapping of id, name, team, extensions...`},
		{"agents not a list", "agents: 1001\n", `agents.yaml line 1: agents is not a list`},
		{"unknown top-level key", "agent:\n  - id: \"1001\"\n", `agents.yaml line 1: unknown key "agent" at the top level (expected agents)`},
		{"agents twice", "agents: []\nagents: []\n", `agents.yaml line 2: the key agents is given twice`},
		{"top level a list", "- id: \"1001\"\n", `agents.yaml line 1: the top level is not a mapping with the key agents`},
		{"two documents", "agents: []\n---\nagents: []\n", `agents.yaml holds more than one YAML document`},
		{"empty", "", `agents.yaml is empty (an empty directory is written agents: [])`},
		{"comments only", "# nothing yet\n", `agents.yaml is empty (an empty directory is written agents: [])`},
		{"not YAML", "agents: [\n", `agents.yaml is not valid YAML: yaml: line 1: did not find expected node content`},
		{"tab indentation", "agents:\n\t- id: 1\n", `agents.yaml is not valid YAML: yaml: line 2: found character that cannot start any token`},
	}
	runInvalid(t, cases, "agents.yaml", FormatYAML)
}

func TestValidationCSV(t *testing.T) {
	const h = "id,name,team,extensions,phone_ip,phone_mac,vlan,mobile\n"
	cases := []invalidCase{
		{"no id", h + ",Alice,Billing,5001,,,,\n", `agents.csv line 2: agent has no id`},
		{"id with a space", h + "10 01,,,,,,,\n", `agents.csv line 2: agent id "10 01" is not 1 to 64 of A-Z a-z 0-9 . _ -`},
		{"name with a control character", h + "1001,\"Al\x01ice\",,,,,,\n", `agents.csv line 2: name "Al\x01ice" of agent 1001 is not up to 128 printable characters`},
		{"name not UTF-8", h + "1001,Al\xffice,,,,,,\n", `agents.csv line 2: name "Al\xffice" of agent 1001 is not up to 128 printable characters`},
		{"team with a space", h + "1001,,Tier 2,,,,,\n", `agents.csv line 2: team "Tier 2" of agent 1001 is not 1 to 64 of A-Z a-z 0-9 . _ -`},
		{"extension with a comma", h + "1001,,,\"5001,5002\",,,,\n", `agents.csv line 2: extension "5001,5002" of agent 1001 is not 1 to 32 of A-Z a-z 0-9 + * # . _ -`},
		{"too many extensions", h + "1001,,," + strings.Repeat("1;", 65) + ",,,,\n", `agents.csv line 2: agent 1001 has more than 64 extensions`},
		{"IP bad", h + "1001,,,,10.10.0.300,,,\n", `agents.csv line 2: phone IP "10.10.0.300" of agent 1001 is not a unicast IP address`},
		{"MAC bad", h + "1001,,,,,00:11:22:33:44:zz,,\n", `agents.csv line 2: phone MAC "00:11:22:33:44:zz" of agent 1001 is not a unicast Ethernet address`},
		{"VLAN bad", h + "1001,,,,10.0.0.1,,85.5,\n", `agents.csv line 2: VLAN "85.5" of agent 1001 is not between 0 and 4094`},
		{"VLAN without a phone", h + "1001,,,,,,85,\n", `agents.csv line 2: a device of agent 1001 has no phone IP or MAC`},
		{"mobile bad", h + "1001,,,,,,,mobile\n", `agents.csv line 2: mobile "mobile" of agent 1001 is not true or false`},
		{"duplicate id after a comment", h + "1001,,,,,,,\n# Bob\n1001,,,,,,,\n", `agents.csv line 4: agent id "1001" is already defined on line 2`},
		{"extension on two agents", h + "1001,,,5001,,,,\n1002,,,5002;5001,,,,\n", `agents.csv line 3: extension "5001" of agent 1002 is already agent 1001's (line 2)`},
		{"extension twice", h + "1001,,,5001;5001,,,,\n", `agents.csv line 2: extension "5001" is listed twice for agent 1001`},
		{"IP on two agents", h + "1001,,,,10.10.0.1,,,\n1002,,,,10.10.0.1,,85,\n", `agents.csv line 3: phone IP 10.10.0.1 of agent 1002 is already agent 1001's (line 2)`},
		{"MAC on two agents", h + "1001,,,,,00:11:22:33:44:55,,\n1002,,,,,0011.2233.4455,,\n", `agents.csv line 3: phone MAC 00:11:22:33:44:55 of agent 1002 is already agent 1001's (line 2)`},
		{"row too short", h + "1001,Alice\n", `agents.csv line 2: the row has 2 fields, the header 8`},
		{"row too long", "id,name\n1001,Alice,Billing\n", `agents.csv line 2: the row has 3 fields, the header 2`},
		{"bare quote", h + "1001,Al\"ice,,,,,,\n", `agents.csv line 2: bare " in non-quoted-field`},
		{"unterminated quote", h + "1001,\"Alice,,,,,,\n", `agents.csv line 2: extraneous or missing " in quoted-field`},
		{"no id column", "name,team\nAlice,Billing\n", `agents.csv line 1: the header "name,team" has no id column`},
		{"unknown column", "id,phone\n1001,10.0.0.1\n", `agents.csv line 1: unknown column "phone" in the header (expected id,name,team,extensions,phone_ip,phone_mac,vlan,mobile)`},
		{"column twice", "id,name,ID\n1001,Alice,1001\n", `agents.csv line 1: the column id is given twice in the header`},
		{"empty", "", `agents.csv is empty (an empty directory is written as the header line alone)`},
		{"header after comments", "# agents\n# of the centre\nid,nom\n", `agents.csv line 3: unknown column "nom" in the header (expected id,name,team,extensions,phone_ip,phone_mac,vlan,mobile)`},
	}
	runInvalid(t, cases, "agents.csv", FormatCSV)
}

func TestValidationWire(t *testing.T) {
	cases := []invalidCase{
		{"not JSON", `agents`, `agent directory data is not valid: invalid character 'a' looking for beginning of value`},
		{"a list", `[]`, `agent directory data is not valid: expected { but found "["`},
		{"no version", `{"agents":[]}`, `agent directory data has no version`},
		{"version 2", `{"v":2,"agents":[]}`, `agent directory data has version 2; this build reads version 1`},
		{"version twice", `{"v":1,"v":1,"agents":[]}`, `agent directory data gives its version twice`},
		{"agents twice", `{"v":1,"agents":[],"agents":[]}`, `agent directory data gives its agents twice`},
		{"unknown key", `{"v":1,"agents":[],"extra":1}`, `agent directory data has an unknown key "extra"`},
		{"agents not a list", `{"v":1,"agents":{}}`, `agent directory data: agents is not a list: expected [ but found "{"`},
		{"unknown agent field", `{"v":1,"agents":[{"id":"1001","pin":"1234"}]}`, `agent directory data, agent 1: json: unknown field "pin"`},
		{"agent not an object", `{"v":1,"agents":[1001]}`, `agent directory data, agent 1: json: cannot unmarshal number into Go value of type directory.wireAgent`},
		{"bad id", `{"v":1,"agents":[{"id":"1001"},{"id":"../etc"}]}`, `agent directory data, agent 2: agent id "../etc" is not 1 to 64 of A-Z a-z 0-9 . _ -`},
		{"no id", `{"v":1,"agents":[{"name":"Alice"}]}`, `agent directory data, agent 1: agent has no id`},
		{"bad name", `{"v":1,"agents":[{"id":"1001","name":"Alice\u001b[2J"}]}`, `agent directory data, agent 1: name "Alice\x1b[2J" of agent 1001 is not up to 128 printable characters`},
		{"bad extension", `{"v":1,"agents":[{"id":"1001","ext":["5001\r\nVia: x"]}]}`, `agent directory data, agent 1: extension "5001\r\nVia: x" of agent 1001 is not 1 to 32 of A-Z a-z 0-9 + * # . _ -`},
		{"VLAN too big", `{"v":1,"agents":[{"id":"1001","dev":[{"ip":"10.0.0.1","vlan":5000}]}]}`, `agent directory data, agent 1: VLAN "5000" of agent 1001 is not between 0 and 4094`},
		{"VLAN negative", `{"v":1,"agents":[{"id":"1001","dev":[{"ip":"10.0.0.1","vlan":-1}]}]}`, `agent directory data, agent 1: VLAN "-1" of agent 1001 is not between 0 and 4094`},
		{"empty device", `{"v":1,"agents":[{"id":"1001","dev":[{}]}]}`, `agent directory data, agent 1: a device of agent 1001 has no phone IP or MAC`},
		{"duplicate id", `{"v":1,"agents":[{"id":"1001"},{"id":"1001"}]}`, `agent directory data, agent 2: agent id "1001" is already defined on agent 1`},
		{"IP on two agents", `{"v":1,"agents":[{"id":"1001","dev":[{"ip":"10.0.0.1"}]},{"id":"1002","dev":[{"ip":"10.0.0.1"}]}]}`, `agent directory data, agent 2: phone IP 10.0.0.1 of agent 1002 is already agent 1001's (agent 1)`},
		{"trailing data", `{"v":1,"agents":[]} {}`, `agent directory data has data after its end`},
		{"truncated", `{"v":1,"agents":[{"id":"1001"}`, `agent directory data is cut short`},
		{"cut in an agent", `{"v":1,"agents":[{"id":"10`, `agent directory data is cut short`},
		{"cut before the agents", `{"v":1,`, `agent directory data is cut short`},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Unmarshal([]byte(tt.data))
			checkInvalid(t, d, err, tt.want)
		})
	}
}

func runInvalid(t *testing.T, cases []invalidCase, name string, f Format) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.data), name, f)
			checkInvalid(t, d, err, tt.want)
		})
	}
}

func checkInvalid(t *testing.T, d *Directory, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, %d agents; want %q", d.Len(), want)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("%v does not wrap ErrInvalid", err)
	}
	if err.Error() != want {
		t.Errorf("error\n%s\nwant\n%s", err, want)
	}
	if strings.ContainsAny(err.Error(), "\n\r") {
		t.Errorf("error %q is more than one line", err)
	}
}

// TestValidValues accepts the edges of every rule.
func TestValidValues(t *testing.T) {
	data := y(`  - id: A.b_c-9
    name: ""
    extensions: ["+33 1", "*86#", "sip.user_1-x"]
  - id: "` + strings.Repeat("i", 64) + `"
    name: "` + strings.Repeat("é", 128) + `"
    team: "` + strings.Repeat("t", 64) + `"
    extensions: ["` + strings.Repeat("9", 32) + `"]
    devices:
      - {ip: "fe80::1", vlan: 0}
      - {mac: "02:00:00:00:00:01", vlan: 4094}
    mobile: YES
  - id: "3"
    name: "Zoë O'Brien-Smith (night) 🎧"
    phone_ip: 127.0.0.1
    phone_mac: "0200.0000.0002"
    vlan: 1
    mobile: 0
`)
	data = strings.Replace(data, `"+33 1"`, `"+331"`, 1)
	d, err := Parse([]byte(data), "agents.yaml", FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 3 {
		t.Fatalf("%d agents", d.Len())
	}
	a, _ := d.ByID("3")
	if a.Devices[0].MAC.String() != "02:00:00:00:00:02" || a.Devices[0].VLAN != 1 || a.Mobile {
		t.Fatalf("agent 3: %+v", a)
	}
	if a, ok := d.ByExtension("*86#"); !ok || a.ID != "A.b_c-9" {
		t.Fatalf("ByExtension(*86#) = %+v %v", a, ok)
	}
}
