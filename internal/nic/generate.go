package nic

// The sample frames of the test ship as testdata/vlan-sample.pcap, written by
// the project's call generator: one call, both directions, five 20 ms RTP
// packets each way, 802.1Q VLAN 85 priority 5, as the original procedure's
// sample capture. `smnic send --pcap testdata/vlan-sample.pcap` sends them.
//go:generate go run ../../bench/cmd/gencalls --calls 1 --vlan 85 --priority 5 --duration 100ms --seed 85 --quiet --out ../../testdata/vlan-sample.pcap
