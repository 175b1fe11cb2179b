package password

import (
	"errors"
	"strings"
	"testing"
)

// errWeak marks the cases Strength must refuse.
var errWeak = errors.New("weak")

// TestStrength: passwords zxcvbn scores below 4 are refused with ErrPasswordWeak
// and a message that gives the score and the advice without repeating the
// password; passphrases and Quickstart's random passwords pass. The old
// check accepted every password of 8 to 30 characters.
func TestStrength(t *testing.T) {
	for _, tc := range []struct {
		pw   string
		want error
		why  string
	}{
		{"12345678", errWeak, "score 0 of 4, at least 4 needed: it is a common password"},
		{"password", errWeak, "score 0 of 4, at least 4 needed: it is a common password"},
		{"qwertyui", errWeak, "score 0 of 4"},
		{"Password1!", errWeak, "a common password"},
		{"P@ssw0rd2024", errWeak, "a common password"},
		{"silentmon2024", errWeak, "the product's name"},
		{"xk7Qp2mW9z", errWeak, "score 3 of 4, at least 4 needed: too short for a string of random characters"},
		{"correct horse battery", nil, ""},
		{"plinth-gravel-otter", nil, ""},
		{"kettle orbit violin", nil, ""},
		{"Xk7Qp2mW9zR", nil, ""},
	} {
		t.Run(tc.pw, func(t *testing.T) {
			err := Strength([]byte(tc.pw))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Strength(%q) = %v, want nil", tc.pw, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Strength(%q) = nil, want a refusal", tc.pw)
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Errorf("message %q does not say %q", err, tc.why)
			}
			if tc.want == errWeak {
				if !strings.Contains(err.Error(), "use a longer passphrase of unrelated words") {
					t.Errorf("message %q gives no advice", err)
				}
				if tc.pw != "password" && strings.Contains(err.Error(), tc.pw) {
					t.Errorf("message %q repeats the password", err)
				}
			}
		})
	}
	// Random characters of quickstart's alphabet, 24 of them, pass.
	if err := Strength([]byte("q7HkR2mWx9TzPb4NcV8sLd3F")); err != nil {
		t.Fatalf("a random password refused: %v", err)
	}
}
