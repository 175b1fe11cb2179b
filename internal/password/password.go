// Package password judges how hard a new CA password is to guess, with
// the zxcvbn estimator (github.com/trustelem/zxcvbn). Only smctl imports
// it: the estimator's dictionaries cost about 80 ms and 11 MB when a
// program starts, which the servers need not pay.
package password

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
)

// MinScore is the least zxcvbn score (0 to 4) a new CA password must
// reach: 4, an estimated 10^10 guesses or more, rather than the usual 3
// (10^8). Whoever copies CtiosRoot.pem guesses offline, and at 210,000
// PBKDF2-HMAC-SHA256 iterations one current GPU still tries some tens of
// thousands of passwords a second, so 10^8 guesses fall in about an hour
// while 10^10 take days. Within 30 characters, three or four unrelated
// words or eleven random characters reach it.
const MinScore = 4

// Strength returns nil when pw is hard enough to guess, or one sentence
// saying how guessable it is and what to do, without repeating any of it.
// It is the strength check smctl gives tls.CreateCA and tls.Quickstart;
// the length rule (8 to 30 characters) is theirs.
func Strength(pw []byte) error {
	score, why := passwordStrength(pw)
	if score < MinScore {
		return fmt.Errorf("the CA password is too easy to guess (score %d of 4, at least %d needed: %s); use a longer passphrase of unrelated words",
			score, MinScore, why)
	}
	return nil
}

// passwordContext are words an attacker tries first against this product's
// CA key; the estimator counts them as known words.
var passwordContext = []string{"silentmon", "ctios", "ctiosroot", "monitor", "supervisor"}

// passwordStrength returns the zxcvbn score of pw (0 to 4) and what makes
// it guessable, in words.
func passwordStrength(pw []byte) (int, string) {
	if !utf8.Valid(pw) {
		return 0, "it is not valid UTF-8 text"
	}
	r := zxcvbn.PasswordStrength(string(pw), passwordContext)
	var parts []string
	add := func(p string) {
		if !slices.Contains(parts, p) {
			parts = append(parts, p)
		}
	}
	for _, m := range r.Sequence {
		switch m.Pattern {
		case "dictionary":
			switch {
			case m.DictionaryName == "user_inputs":
				add("the product's name")
			case m.DictionaryName == "passwords":
				add("a common password")
			case strings.HasSuffix(m.DictionaryName, "names"):
				add("a name")
			default:
				add("a common word")
			}
		case "spatial":
			add("a keyboard pattern")
		case "sequence":
			add("a sequence such as abc or 123")
		case "repeat":
			add("a repetition")
		case "date", "regex":
			add("a date or year")
		}
	}
	switch {
	case len(parts) == 0:
		return r.Score, "too short for a string of random characters"
	case len(r.Sequence) == 1:
		return r.Score, "it is " + parts[0]
	}
	return r.Score, "it is built on " + joinAnd(parts)
}

// joinAnd joins words as "a, b and c".
func joinAnd(words []string) string {
	if len(words) == 1 {
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}
