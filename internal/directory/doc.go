// Package directory is the agent directory: who the contact centre's agents
// are (id, name, team), their extensions and, when known, their phones (IP
// or MAC, voice VLAN), loaded from a YAML or CSV file that the operator
// maintains, and shared over the cluster in a compact JSON form.
//
// Everything in the file is validated before any of it is used, and the
// whole file is refused on the first problem, with one sentence naming the
// file, the line and the bad value: a directory is either entirely the
// file's content or not loaded at all. A Watcher reloads the file when it
// changes or when asked (SIGHUP); a refused reload keeps the previous
// directory.
//
// # File formats
//
// YAML:
//
//	agents:
//	  - id: "1001"
//	    name: Alice Martin
//	    team: Billing
//	    extensions: ["5001"]
//	    phone_ip: 10.10.0.1
//	    phone_mac: "00:11:22:33:44:55"
//	    vlan: 85
//	    mobile: false
//	  - id: "1002"
//	    devices:                     # several phones: a list instead
//	      - {ip: 10.10.0.2, vlan: 85}
//	      - {mac: "00:11:22:33:44:66"}
//
// CSV, with a header naming the columns (in any order; only id is
// required), extensions separated by ";" and lines starting with "#"
// ignored:
//
//	id,name,team,extensions,phone_ip,phone_mac,vlan,mobile
//	1001,Alice Martin,Billing,5001;5002,10.10.0.1,00:11:22:33:44:55,85,false
//
// The format follows the file name (.yaml, .yml, .csv), otherwise the
// content: a file whose first significant line starts with "agents:" or
// "---" is YAML, anything else CSV.
//
// # Rules
//
//   - id: 1 to 64 of A-Z a-z 0-9 . _ - (not "." or ".."), unique;
//   - name: up to 128 printable characters, optional;
//   - team: 1 to 64 of A-Z a-z 0-9 . _ -, optional;
//   - extensions: each 1 to 32 of A-Z a-z 0-9 + * # . _ - (a SIP user
//     part), at most 64 per agent, each on one agent only;
//   - phone IP: a unicast IPv4 or IPv6 address without zone, on one agent
//     only; phone MAC: a unicast Ethernet address, on one agent only;
//   - vlan: 0 (any) to 4094, only with a phone IP or MAC;
//   - mobile: true or false (also yes/no, 1/0), empty meaning false;
//   - at most 16 devices per agent, Options.MaxAgents agents and
//     Options.MaxBytes bytes.
//
// # Concurrency
//
// A Directory is immutable and safe for concurrent use; the values its
// methods return are copies the caller may keep and modify. A Watcher's
// methods are safe for concurrent use; it calls its onLoad function from
// one goroutine at a time.
package directory
