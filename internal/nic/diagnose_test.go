package nic

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDiagnose(t *testing.T) {
	upState := func(feats map[string]bool) *State {
		return &State{Name: "eth1", MAC: "00:d0:59:d8:f7:d9", Up: true, Running: true, Driver: "e1000e", Features: feats}
	}
	tests := []struct {
		name     string
		c        Counts
		s        Situation
		verdict  string
		code     string
		contains []string // in summary, cause, fix or notes
	}{
		{"all in frame", Counts{Expected: 5, Tagged: 5, InFrame: 5}, Situation{Rx: upState(nil)},
			Pass, CodeTagInFrame, []string{"5 of 5", "VLAN 85", "in the frame"}},
		{"all out of band, offload on", Counts{Expected: 5, Tagged: 5, OutOfBand: 5},
			Situation{Rx: upState(map[string]bool{FeatureRxVLANParse: true})},
			Pass, CodeTagOutOfBand, []string{"out of band", "fine for silentmon", "eth1 has rx-vlan-offload on"}},
		{"more than expected", Counts{Expected: 5, Tagged: 7, InFrame: 7}, Situation{},
			Pass, CodeTagInFrame, []string{"7 of 5"}},
		{"untagged", Counts{Expected: 5, Untagged: 5}, Situation{Rx: upState(nil), Selftest: true},
			Fail, CodeTagStripped, []string{"no VLAN tag at all", "sub-interface", "eth1.85", "ethtool -K eth1 rxvlan"}},
		{"mostly untagged, some tagged", Counts{Expected: 5, Tagged: 2, InFrame: 2, Untagged: 3}, Situation{Rx: upState(nil)},
			Fail, CodeTagStripped, []string{"2 of 5 arrived tagged"}},
		{"wrong VLAN test frames", Counts{Expected: 5, WrongVLAN: 5, OtherVLANs: map[uint16]int{86: 5}}, Situation{Rx: upState(nil), Selftest: true},
			Fail, CodeWrongVLAN, []string{"5 test frames", "VLAN 86, not VLAN 85", "--vlan 86"}},
		{"listen sees only other VLANs", Counts{Expected: 5, Other: 9, OtherVLANs: map[uint16]int{10: 2, 86: 7}}, Situation{Rx: upState(nil)},
			Fail, CodeWrongVLAN, []string{"9 tagged frames", "VLAN 10, 86", "--vlan 86"}},
		{"selftest ignores foreign VLAN traffic", Counts{Expected: 5, Other: 2, OtherVLANs: map[uint16]int{10: 2}}, Situation{Rx: upState(nil), Selftest: true},
			Fail, CodeNothing, nil},
		{"incomplete", Counts{Expected: 5, Tagged: 3, OutOfBand: 3}, Situation{Rx: upState(nil), Timeout: 10 * time.Second},
			Fail, CodeIncomplete, []string{"only 3 of 5", "10s", "ethtool -S eth1"}},
		{"interface down", Counts{Expected: 5}, Situation{Rx: &State{Name: "eth1"}},
			Fail, CodeInterfaceDown, []string{"ip link set eth1 up"}},
		{"no carrier", Counts{Expected: 5}, Situation{Rx: &State{Name: "eth1", Up: true}},
			Fail, CodeNoCarrier, []string{"no carrier", "cabl", "no carrier,"}},
		{"nothing, link up, other traffic", Counts{Expected: 5, Seen: 12, Other: 12},
			Situation{Rx: upState(map[string]bool{FeatureRxVLANFilter: true}), Timeout: time.Second},
			Fail, CodeNothing, []string{"12 other frames", "SPAN", "--dst-mac 00:d0:59:d8:f7:d9", "has rx-vlan-filter on"}},
		{"nothing, state unknown", Counts{Expected: 5}, Situation{PromiscError: errors.New("operation not permitted")},
			Fail, CodeNothing, []string{"the interface"}},
		{"send failed", Counts{Expected: 5}, Situation{Rx: upState(nil), Selftest: true, Tx: &State{Name: "eth0"}, SendError: errors.New("network is down")},
			Fail, CodeSendFailed, []string{"network is down", "ip link set eth0 up", "sender eth0: down"}},
		{"promiscuous refused", Counts{Expected: 5}, Situation{Rx: upState(nil), PromiscError: errors.New("operation not permitted")},
			Fail, CodeNothing, []string{"promiscuous mode could not be turned on"}},
		{"features unreadable", Counts{Expected: 5, Tagged: 5, InFrame: 5}, Situation{Rx: &State{Name: "eth1", Up: true, Running: true, FeaturesError: "ETHTOOL_GSSET_INFO: operation not supported"}},
			Pass, CodeTagInFrame, []string{"could not be read"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.s.VLAN == 0 {
				tt.s.VLAN = 85
			}
			d := Diagnose(&tt.c, &tt.s)
			if d.Verdict != tt.verdict || d.Code != tt.code {
				t.Fatalf("got %s %s (%s), want %s %s", d.Verdict, d.Code, d.Summary, tt.verdict, tt.code)
			}
			if d.Verdict == Fail && (d.Cause == "" || d.Fix == "") {
				t.Errorf("FAIL without cause or fix: %+v", d)
			}
			all := strings.Join(append([]string{d.Summary, d.Cause, d.Fix}, d.Notes...), "\n")
			for _, s := range tt.contains {
				if !strings.Contains(all, s) {
					t.Errorf("diagnosis lacks %q:\n%s", s, all)
				}
			}
		})
	}
}
