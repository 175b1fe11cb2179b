package filter

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

func TestParseEndpoint(t *testing.T) {
	mac := [6]byte{0x00, 0x1b, 0x54, 0xaa, 0xbb, 0xcc}
	tests := []struct {
		in   string
		want Endpoint
		str  string // String() of the result; "" means the input itself
	}{
		{in: "10.1.2.3", want: Endpoint{IP: netip.MustParseAddr("10.1.2.3")}},
		{in: "  10.1.2.3\t", want: Endpoint{IP: netip.MustParseAddr("10.1.2.3")}, str: "10.1.2.3"},
		{in: "2001:db8::7", want: Endpoint{IP: netip.MustParseAddr("2001:db8::7")}},
		{in: "::ffff:10.1.2.3", want: Endpoint{IP: netip.MustParseAddr("10.1.2.3")}, str: "10.1.2.3"},
		{in: "10.1.2.3:5004", want: Endpoint{IP: netip.MustParseAddr("10.1.2.3"), PortLo: 5004, PortHi: 5004}},
		{in: "10.1.2.3:20000-20999", want: Endpoint{IP: netip.MustParseAddr("10.1.2.3"), PortLo: 20000, PortHi: 20999}},
		{in: "10.1.2.3:1-65535", want: Endpoint{IP: netip.MustParseAddr("10.1.2.3"), PortLo: 1, PortHi: 65535}},
		{in: "10.1.2.3:7000-7000", want: Endpoint{IP: netip.MustParseAddr("10.1.2.3"), PortLo: 7000, PortHi: 7000}, str: "10.1.2.3:7000"},
		{in: "[2001:db8::7]:20000-20999", want: Endpoint{IP: netip.MustParseAddr("2001:db8::7"), PortLo: 20000, PortHi: 20999}},
		{in: "[::ffff:10.1.2.3]:5004", want: Endpoint{IP: netip.MustParseAddr("10.1.2.3"), PortLo: 5004, PortHi: 5004}, str: "10.1.2.3:5004"},
		{in: "00:1b:54:aa:bb:cc", want: Endpoint{MAC: mac, HasMAC: true}},
		{in: "00:1B:54:AA:BB:CC", want: Endpoint{MAC: mac, HasMAC: true}, str: "00:1b:54:aa:bb:cc"},
		{in: "vlan85/10.1.2.3", want: Endpoint{IP: netip.MustParseAddr("10.1.2.3"), VLAN: 85}},
		{in: "VLAN85/10.1.2.3", want: Endpoint{IP: netip.MustParseAddr("10.1.2.3"), VLAN: 85}, str: "vlan85/10.1.2.3"},
		{in: "vlan1/00:1b:54:aa:bb:cc", want: Endpoint{MAC: mac, HasMAC: true, VLAN: 1}},
		{in: "vlan4094/[2001:db8::7]:20000-20999", want: Endpoint{IP: netip.MustParseAddr("2001:db8::7"), PortLo: 20000, PortHi: 20999, VLAN: 4094}},
		{in: "vlan085/10.1.2.3:5004", want: Endpoint{IP: netip.MustParseAddr("10.1.2.3"), PortLo: 5004, PortHi: 5004, VLAN: 85}, str: "vlan85/10.1.2.3:5004"},
		{in: "vlan300.85/10.1.2.3", want: Endpoint{IP: netip.MustParseAddr("10.1.2.3"), VLAN: 85, OuterVLAN: 300}},
		{in: "VLAN300.85/00:1B:54:AA:BB:CC", want: Endpoint{MAC: mac, HasMAC: true, VLAN: 85, OuterVLAN: 300}, str: "vlan300.85/00:1b:54:aa:bb:cc"},
		{in: "vlan0300.085/[2001:db8::7]:20000-20999", want: Endpoint{IP: netip.MustParseAddr("2001:db8::7"), PortLo: 20000, PortHi: 20999, VLAN: 85, OuterVLAN: 300},
			str: "vlan300.85/[2001:db8::7]:20000-20999"},
		{in: "vlan4094.1/10.1.2.3:5004", want: Endpoint{IP: netip.MustParseAddr("10.1.2.3"), PortLo: 5004, PortHi: 5004, VLAN: 1, OuterVLAN: 4094}},
		{in: "vlan85.85/10.1.2.3", want: Endpoint{IP: netip.MustParseAddr("10.1.2.3"), VLAN: 85, OuterVLAN: 85}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseEndpoint(tt.in)
			if err != nil {
				t.Fatalf("ParseEndpoint(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseEndpoint(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if !got.Valid() {
				t.Errorf("%+v is not Valid", got)
			}
			want := tt.str
			if want == "" {
				want = tt.in
			}
			if s := got.String(); s != want {
				t.Errorf("String() = %q, want %q", s, want)
			}
			again, err := ParseEndpoint(got.String())
			if err != nil || again != got {
				t.Errorf("round trip of %q: %+v, %v; want %+v", got.String(), again, err, got)
			}
		})
	}
}

func TestParseEndpointErrors(t *testing.T) {
	tests := []struct {
		in string
		// mention is a fragment the error must contain besides the quoted
		// input: the part that is wrong.
		mention string
	}{
		{"", "empty"},
		{"   ", "empty"},
		{"vlan85/", "empty"},
		{"vlan85", "vlanN/ADDRESS"},
		{"vlan0/10.1.2.3", `VLAN "0"`},
		{"vlan4095/10.1.2.3", `VLAN "4095"`},
		{"vlan/10.1.2.3", `VLAN ""`},
		{"vlanx/10.1.2.3", `VLAN "x"`},
		{"vlan-1/10.1.2.3", `VLAN "-1"`},
		{"vlan85/vlan86/10.1.2.3", "not an IP address"},
		{"vlan300.85", "vlanOUTER.INNER/ADDRESS"},
		{"vlan300.85/", "empty"},
		{"vlan.85/10.1.2.3", `outer VLAN ""`},
		{"vlan300./10.1.2.3", `inner VLAN ""`},
		{"vlan0.85/10.1.2.3", `outer VLAN "0"`},
		{"vlan4095.85/10.1.2.3", `outer VLAN "4095"`},
		{"vlan300.0/10.1.2.3", `inner VLAN "0"`},
		{"vlan300.4095/10.1.2.3", `inner VLAN "4095"`},
		{"vlan300.85.7/10.1.2.3", `inner VLAN "85.7"`},
		{"vlan300,85/10.1.2.3", `VLAN "300,85"`},
		{"vlanx.85/10.1.2.3", `outer VLAN "x"`},
		{"10.1.2", "not an IP address"},
		{"10.1.2.300", "not an IP address"},
		{"phone.example.com", "not an IP address"},
		{"phone.example.com:5004", `"phone.example.com" is not an IP address`},
		{"fe80::1%eth0", "zoned"},
		{"[fe80::1%eth0]:5004", `"fe80::1%eth0" is not an IP address`},
		{"10.1.2.3:", `"" is not a port`},
		{"10.1.2.3:0", `"0" is not a port`},
		{"10.1.2.3:65536", `"65536" is not a port`},
		{"10.1.2.3:20999-20000", `"20999-20000" is not a port`},
		{"10.1.2.3:-20000", `"-20000" is not a port`},
		{"10.1.2.3:1-2-3", `"1-2-3" is not a port`},
		{"10.1.2.3:abc", `"abc" is not a port`},
		{"2001:db8::7:20000", "not an IP address"},
		{"00:1b:54:aa:bb", "not an IP address"},
		{"00:1b:54:aa:bb:cc:dd", "not an IP address"},
		{"00:1b:54:aa:bb:zz", "not an IP address"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := ParseEndpoint(tt.in)
			if err == nil {
				t.Fatalf("ParseEndpoint(%q) = %+v, want an error", tt.in, e)
			}
			msg := err.Error()
			if !strings.Contains(msg, strconv.Quote(tt.in)) {
				t.Errorf("error %q does not name the input %q", msg, tt.in)
			}
			if !strings.Contains(msg, tt.mention) {
				t.Errorf("error %q does not mention %q", msg, tt.mention)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q is more than one line", msg)
			}
		})
	}
}

func TestEndpointZeroValue(t *testing.T) {
	var e Endpoint
	if e.Valid() {
		t.Fatal("the zero Endpoint is Valid")
	}
	s := &Session{ID: "s1", Agent: "1001", Endpoints: []Endpoint{e}}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "empty endpoint") {
		t.Fatalf("Validate with a zero endpoint: %v", err)
	}
}

func TestEndpointText(t *testing.T) {
	in := []string{"vlan85/10.1.2.3", "[2001:db8::7]:20000-20999", "00:1b:54:aa:bb:cc", "vlan300.85/10.1.2.4"}
	var eps []Endpoint
	for _, s := range in {
		e, err := ParseEndpoint(s)
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, e)
	}
	b, err := json.Marshal(eps)
	if err != nil {
		t.Fatal(err)
	}
	if want := `["vlan85/10.1.2.3","[2001:db8::7]:20000-20999","00:1b:54:aa:bb:cc","vlan300.85/10.1.2.4"]`; string(b) != want {
		t.Fatalf("JSON %s, want %s", b, want)
	}
	var back []Endpoint
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for i := range eps {
		if back[i] != eps[i] {
			t.Errorf("endpoint %d: %+v after JSON, want %+v", i, back[i], eps[i])
		}
	}
	var e Endpoint
	err = json.Unmarshal([]byte(`"10.1.2.3:99999"`), &e)
	if err == nil || !strings.Contains(err.Error(), `"99999"`) {
		t.Fatalf("unmarshal of a bad port: %v", err)
	}
}

func TestSessionValidate(t *testing.T) {
	ep := Endpoint{IP: netip.MustParseAddr("10.1.2.3")}
	tests := []struct {
		name    string
		s       Session
		mention string // "" means valid
	}{
		{"valid", Session{ID: "s1", Agent: "1001", Endpoints: []Endpoint{ep}}, ""},
		{"no id", Session{Agent: "1001", Endpoints: []Endpoint{ep}}, "no id"},
		{"no agent", Session{ID: "s1", Endpoints: []Endpoint{ep}}, "s1 has no agent"},
		{"no endpoint: follows its agent from SIP", Session{ID: "s1", Agent: "1001"}, ""},
		{"bad extension", Session{ID: "s1", Agent: "1001", Extensions: []string{"5001/x"}}, `extension "5001/x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			switch {
			case tt.mention == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.mention != "" && (err == nil || !strings.Contains(err.Error(), tt.mention)):
				t.Fatalf("Validate: %v, want an error mentioning %q", err, tt.mention)
			}
		})
	}
}

// FuzzParseEndpoint checks that ParseEndpoint never panics, that every
// error names the input, and that every endpoint it accepts survives a
// String round trip.
func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{
		"10.1.2.3", "2001:db8::7", "10.1.2.3:20000-20999", "[2001:db8::7]:5004",
		"00:1b:54:aa:bb:cc", "vlan85/10.1.2.3", "VLAN4094/00:1b:54:aa:bb:cc",
		"vlan85", "10.1.2.3:0", "fe80::1%eth0", "",
		"vlan300.85/10.1.2.3", "VLAN300.85/00:1b:54:aa:bb:cc", "vlan0300.085/[2001:db8::7]:5004",
		"vlan.85/10.1.2.3", "vlan300./10.1.2.3", "vlan300.85.7/10.1.2.3", "vlan300.85",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseEndpoint(s)
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("error %q does not name the input %q", err, s)
			}
			return
		}
		if !e.Valid() {
			t.Fatalf("ParseEndpoint(%q) accepted an endpoint that is not Valid: %+v", s, e)
		}
		if e.HasMAC && e.IP.IsValid() {
			t.Fatalf("ParseEndpoint(%q) set both MAC and IP: %+v", s, e)
		}
		if e.VLAN > 4094 || e.OuterVLAN > 4094 || (e.OuterVLAN != 0 && e.VLAN == 0) ||
			e.PortHi < e.PortLo || (e.PortLo == 0) != (e.PortHi == 0) {
			t.Fatalf("ParseEndpoint(%q) = %+v is out of range", s, e)
		}
		if e.IP.Is4In6() || e.IP.Zone() != "" {
			t.Fatalf("ParseEndpoint(%q) kept a mapped or zoned address %v", s, e.IP)
		}
		back, err := ParseEndpoint(e.String())
		if err != nil {
			t.Fatalf("ParseEndpoint(%q) = %+v, whose String %q does not parse: %v", s, e, e.String(), err)
		}
		if back != e {
			t.Fatalf("round trip of %q: %+v became %q then %+v", s, e, e.String(), back)
		}
	})
}
