package tls

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const victimText = "precious: not a certificate"

// plantLink replaces path with a symbolic link to a new file outside the
// directory holding victimText (or to a missing file with dangling) and
// returns the link's target.
func plantLink(t *testing.T, path string, dangling bool) string {
	t.Helper()
	target := filepath.Join(t.TempDir(), "victim")
	if !dangling {
		if err := os.WriteFile(target, []byte(victimText), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	return target
}

// checkUntouched fails unless path is still a link to target and target
// holds victimText (or still does not exist, for dangling).
func checkUntouched(t *testing.T, path, target string, dangling bool) {
	t.Helper()
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("%s is no longer the planted link (%v)", path, err)
	}
	b, err := os.ReadFile(target)
	switch {
	case dangling && err == nil:
		t.Errorf("the missing target of the link was created with %d bytes", len(b))
	case !dangling && string(b) != victimText:
		t.Errorf("the target of the link now holds %q (err %v)", b, err)
	}
}

// noTemporaries fails if a temporary file of writeFile is left in dir.
func noTemporaries(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// TestWriteFileRefusesSymlink: with or without force, a link (to a file
// or to nothing) is refused with ErrSymlink and a sentence naming it, and
// nothing is written through it. The old writer opened with O_TRUNC and
// followed the link when forcing.
func TestWriteFileRefusesSymlink(t *testing.T) {
	for _, tc := range []struct {
		name            string
		force, dangling bool
	}{
		{"force", true, false},
		{"force, dangling link", true, true},
		{"no force", false, false},
		{"no force, dangling link", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, ServerFile)
			target := plantLink(t, path, tc.dangling)
			err := writeFile(path, []byte("new key"), modeSecret, tc.force)
			if !errors.Is(err, ErrSymlink) {
				t.Fatalf("writeFile over a link: %v, want ErrSymlink", err)
			}
			if want := path + " is a symbolic link; refusing to write through it"; !strings.Contains(err.Error(), want) {
				t.Errorf("message %q does not say %q", err, want)
			}
			checkUntouched(t, path, target, tc.dangling)
			noTemporaries(t, dir)
		})
	}
}

// TestWriteFileForceReplaces: with force, an existing regular file is
// replaced by a new file with the requested mode; a hard link to the old
// file keeps the old content (the old writer truncated the shared inode
// and wrote through it).
func TestWriteFileForceReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ClientFile)
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "hardlink")
	if err := os.Link(path, other); err != nil {
		t.Skipf("cannot make a hard link here: %v", err)
	}
	if err := writeFile(path, []byte("new"), modeSecret, true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("%s holds %q, want new", path, b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != modeSecret {
		t.Errorf("mode %04o, want 0600", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(other); string(b) != "old" {
		t.Errorf("the hard link now holds %q; the write went through it", b)
	}
	noTemporaries(t, dir)
}

// TestWriteFileRefusals: an existing file without force, and a directory
// with or without force, are refused with ErrExists and left as they
// were; a new file gets exactly the requested mode.
func TestWriteFileRefusals(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, RootCertFile)
	if err := writeFile(path, []byte("first"), modePublic, false); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != modePublic {
		t.Errorf("mode %04o, want 0644", fi.Mode().Perm())
	}
	if err := writeFile(path, []byte("second"), modePublic, false); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "--force") {
		t.Errorf("second write without force: %v, want ErrExists mentioning --force", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "first" {
		t.Errorf("%s holds %q after a refused write", path, b)
	}
	sub := filepath.Join(dir, ServerFile)
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, force := range []bool{false, true} {
		if err := writeFile(sub, []byte("x"), modeSecret, force); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("write over a directory (force %v): %v, want ErrExists, not a regular file", force, err)
		}
	}
	if fi, err := os.Stat(sub); err != nil || !fi.IsDir() {
		t.Errorf("the directory was replaced: %v", err)
	}
	noTemporaries(t, dir)
}

// TestQuickstartForceRefusesSymlink: quickstart --force over a link
// planted in place of any file it writes is refused with ErrSymlink and
// the link's target is untouched. The old writer followed the link and
// wrote a certificate and key into its target.
func TestQuickstartForceRefusesSymlink(t *testing.T) {
	ca := QuickstartCADir
	for _, name := range []string{
		filepath.Join(ca, QuickstartPasswordFile), filepath.Join(ca, RootKeyFile), filepath.Join(ca, RootCertFile),
		RootCertFile, ServerFile, PeerFile, ClientFile,
	} {
		for _, dangling := range []bool{false, true} {
			t.Run(name+map[bool]string{true: " dangling"}[dangling], func(t *testing.T) {
				dir := t.TempDir()
				if err := Quickstart(dir, QuickstartOptions{}); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, name)
				target := plantLink(t, path, dangling)
				err := Quickstart(dir, QuickstartOptions{Force: true})
				if !errors.Is(err, ErrSymlink) {
					t.Fatalf("Quickstart --force over a link at %s: %v, want ErrSymlink", name, err)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("message %q does not name %s", err, path)
				}
				checkUntouched(t, path, target, dangling)
			})
		}
	}
}

// TestCreateCARefusals: CreateCA checks both of its files before writing
// either (the old code wrote the key, then refused the certificate), and
// refuses a link in place of either even with Force.
func TestCreateCARefusals(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, RootCertFile), []byte("an older CA"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateCA(dir, CAOptions{Password: testPW}); !errors.Is(err, ErrExists) {
		t.Fatalf("CreateCA over an existing certificate: %v, want ErrExists", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, RootKeyFile)); err == nil {
		t.Errorf("CreateCA wrote %s before refusing %s", RootKeyFile, RootCertFile)
	}
	for _, name := range []string{RootKeyFile, RootCertFile} {
		dir := t.TempDir()
		path := filepath.Join(dir, name)
		target := plantLink(t, path, false)
		if _, err := CreateCA(dir, CAOptions{Password: testPW, Force: true}); !errors.Is(err, ErrSymlink) {
			t.Errorf("CreateCA --force over a link at %s: %v, want ErrSymlink", name, err)
		}
		checkUntouched(t, path, target, false)
	}
}

// TestCheckPasswordRules: the length rule comes first, then the strength
// function given, whose refusal wraps ErrPasswordWeak; a password of an
// existing CA is checked for length only.
func TestCheckPasswordRules(t *testing.T) {
	weak := func([]byte) error { return errors.New("too easy") }
	if err := CheckPassword([]byte("1234567"), weak); !errors.Is(err, ErrPasswordLength) {
		t.Errorf("7 characters: %v, want ErrPasswordLength", err)
	}
	if err := CheckPassword([]byte(strings.Repeat("horse ", 5)+"x"), nil); !errors.Is(err, ErrPasswordLength) {
		t.Errorf("31 characters: %v, want ErrPasswordLength", err)
	}
	if err := CheckPassword([]byte("12345678"), weak); !errors.Is(err, ErrPasswordWeak) || err.Error() != "too easy" {
		t.Errorf("weak: %v, want ErrPasswordWeak with the strength check's sentence", err)
	}
	for _, pw := range []string{"12345678", "123456789012345678901234567890", "pässwörd"} {
		if err := CheckPassword([]byte(pw), nil); err != nil {
			t.Errorf("CheckPassword(%q, nil) = %v", pw, err)
		}
	}
}

// TestWeakPasswordWritesNothing: CreateCA and Quickstart refuse a weak
// password before writing any file.
func TestWeakPasswordWritesNothing(t *testing.T) {
	dir := t.TempDir()
	weak := func([]byte) error { return errors.New("too easy") }
	if _, err := CreateCA(dir, CAOptions{Password: []byte("password"), Strength: weak}); !errors.Is(err, ErrPasswordWeak) {
		t.Errorf("CreateCA with password: %v, want ErrPasswordWeak", err)
	}
	if err := Quickstart(dir, QuickstartOptions{Password: []byte("12345678"), Strength: weak}); !errors.Is(err, ErrPasswordWeak) {
		t.Errorf("Quickstart with 12345678: %v, want ErrPasswordWeak", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("%d files written after a refused password", len(ents))
	}
}
