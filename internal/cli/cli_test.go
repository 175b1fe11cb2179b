package cli

import (
	"errors"
	"testing"
)

func TestSentence(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"no capture source: give --interface IF", "No capture source: give --interface IF."},
		{"smctl certs ca needs --dir DIR", "smctl certs ca needs --dir DIR."},
		{"smserver: interface eth9 is down.", "smserver: interface eth9 is down."},
		{"--listen has value \"x\"", "--listen has value \"x\"."},
		{"smctlx is not a program", "Smctlx is not a program."},
		{"is it?", "Is it?"},
		{"  ", "Unknown error."},
	} {
		if got := Sentence(errors.New(tc.in)); got != tc.want {
			t.Errorf("Sentence(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
