package tls

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// File names of a security directory, as in the original product so that
// its operators recognise them.
const (
	RootCertFile   = "CtiosRootCert.pem" // CA certificate (public)
	RootKeyFile    = "CtiosRoot.pem"     // CA private key, encrypted PKCS#8
	ServerFile     = "CtiosServer.pem"   // server certificate, then its key
	ClientFile     = "CtiosClient.pem"   // client certificate, then its key
	ServerKeyFile  = "CtiosServerKey.pem"
	ServerReqFile  = "CtiosServerReq.pem"
	ClientKeyFile  = "CtiosClientkey.pem"
	ClientReqFile  = "CtiosClientreq.pem"
	ServerCertFile = "CtiosServerCert.pem" // a signed server certificate before bundling
	ClientCertFile = "CtiosClientCert.pem" // a signed client certificate before bundling
	// QuickstartPasswordFile holds the random CA password that Quickstart
	// chose when none was given (mode 0600).
	QuickstartPasswordFile = "CtiosRoot.password"
)

// File modes: key material is readable by its owner only.
const (
	modeSecret = 0o600
	modePublic = 0o644
)

// writeFile is the one writer of security files: every key, certificate,
// request and password file of this package goes through it. It never
// writes through a symbolic link:
//
//   - without force it creates path with O_CREATE|O_EXCL|O_NOFOLLOW, so an
//     existing file is refused with ErrExists and a link (even one whose
//     target is missing) with ErrSymlink;
//   - with force it writes a temporary file in the same directory and
//     renames it over path, and only when path is missing or a regular
//     file: a link is refused with ErrSymlink and anything else (a
//     directory, a device) with ErrExists. The rename replaces the name,
//     never the file it pointed to, so a link or a hard link planted
//     after the check still leaves its target untouched, and readers see
//     the old file or the new one, never a partial one.
//
// Only the last component of path is checked: the directory is taken as
// the operator named it (it may itself be a link, as /etc/silentmon often
// is), and CheckSecurityDir warns when others can write to it. The mode
// is set explicitly, so the umask cannot widen or narrow it.
func writeFile(path string, data []byte, perm fs.FileMode, force bool) error {
	if err := checkTarget(path, force); err != nil {
		return err
	}
	if force {
		return replaceFile(path, data, perm)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, perm)
	if err != nil {
		if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ELOOP) {
			// Created by someone else since checkTarget: say what it is.
			if cerr := checkTarget(path, false); cerr != nil {
				return cerr
			}
		}
		return fmt.Errorf("cannot write %s: %v", path, errText(err))
	}
	if err := fillFile(f, data, perm); err != nil {
		os.Remove(path) // ours: created with O_EXCL above
		return fmt.Errorf("cannot write %s: %v", path, err)
	}
	return nil
}

// checkTarget reports why path may not be written: ErrSymlink when it is a
// symbolic link, ErrExists when it is not a regular file, or when it
// exists and force is not set. A missing path is fine.
func checkTarget(path string, force bool) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("cannot write %s: %v", path, errText(err))
	case fi.Mode()&fs.ModeSymlink != 0:
		return newErr(ErrSymlink, "%s is a symbolic link; refusing to write through it (remove the link, then try again)", path)
	case !fi.Mode().IsRegular():
		return newErr(ErrExists, "%s exists and is not a regular file; refusing to replace it", path)
	case !force:
		return newErr(ErrExists, "%s already exists; remove it or use --force to replace it", path)
	}
	return nil
}

// checkTargets runs checkTarget on every name of dir, so that a set of
// files (Quickstart's) can be refused before any of them is written.
func checkTargets(dir string, force bool, names ...string) error {
	for _, name := range names {
		if err := checkTarget(filepath.Join(dir, name), force); err != nil {
			return err
		}
	}
	return nil
}

// replaceFile writes data to a new temporary file beside path and renames
// it over path, after checking again that path is not a link or a
// directory.
func replaceFile(path string, data []byte, perm fs.FileMode) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	// CreateTemp opens with O_CREATE|O_EXCL under a random name.
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %v", path, errText(err))
	}
	tmp := f.Name()
	if err := fillFile(f, data, perm); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot write %s: %v", path, err)
	}
	if err := checkTarget(path, true); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot write %s: %v", path, linkErrText(err))
	}
	syncDir(dir)
	return nil
}

// fillFile sets the mode of f, writes data, syncs and closes it. The error
// names no path.
func fillFile(f *os.File, data []byte, perm fs.FileMode) error {
	err := f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errors.New(errText(err))
	}
	return nil
}

// syncDir makes a rename in dir durable; a failure only weakens that.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// linkErrText strips the paths from an *os.LinkError.
func linkErrText(err error) string {
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err.Error()
	}
	return errText(err)
}

// readFile reads path; a missing file wraps ErrFileMissing, with
// MissingFileHint's advice.
func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, newErr(ErrFileMissing, "%s", MissingFileHint(path))
		}
		return nil, fmt.Errorf("cannot read security file %s: %v", path, errText(err))
	}
	return b, nil
}

// errText strips the path from an *fs.PathError, whose path the caller
// already names.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// checkKeyMode reports ErrKeyPermissions when path is readable or writable
// by group or others.
func checkKeyMode(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return nil // reading it reports the real problem
	}
	if m := st.Mode().Perm(); m&0o077 != 0 {
		return newErr(ErrKeyPermissions, "key file %s has mode %04o and is readable by others; run chmod 600 %s",
			path, m, filepath.Clean(path))
	}
	return nil
}

// MissingFileHint says, in one sentence, that the security file at path
// does not exist and what makes it:
//
//   - when its directory is missing too, that the security directory does
//     not exist, with the smctl certs quickstart command that creates a
//     working set there, --security-dir to look elsewhere and --insecure
//     for a lab;
//   - for a file of a security directory (CtiosRootCert.pem,
//     CtiosServer.pem, CtiosPeer.pem, CtiosClient.pem), what the file is
//     and the smctl certs commands that make it;
//   - for the CA key CtiosRoot.pem, the smctl certs ca command;
//   - for any other file, only that it does not exist.
func MissingFileHint(path string) string {
	dir, name := filepath.Split(path)
	dir = filepath.Clean(dir)
	switch name {
	case RootCertFile, ServerFile, PeerFile, ClientFile:
	case RootKeyFile:
		return fmt.Sprintf("the CA key %s does not exist: give the CA directory that holds it, or create a CA with `smctl certs ca --dir %s`", path, dir)
	default:
		return fmt.Sprintf("file %s does not exist", path)
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Sprintf("security directory %s does not exist: create a working set with `smctl certs quickstart --dir %s`, or give --security-dir DIR (or --insecure, for a lab only)", dir, dir)
	}
	switch name {
	case RootCertFile:
		return fmt.Sprintf("security file %s (the CA certificate) does not exist: copy it from the host where certificates are signed, or create a working set with `smctl certs quickstart --dir %s`", path, dir)
	case ServerFile:
		return fmt.Sprintf("security file %s (this server's certificate and key) does not exist: make it with `smctl certs quickstart --dir %s --role capture` (or --role supervisor; add --ca-dir CADIR to sign with an existing CA), or with `smctl certs request`, `smctl certs sign` and `smctl certs bundle`", path, dir)
	case PeerFile:
		return fmt.Sprintf("security file %s (the peer certificate and key for the cluster) does not exist: make it with `smctl certs quickstart --dir %s --role capture --ca-dir CADIR`, or with `smctl certs request --role peer`, `smctl certs sign` and `smctl certs bundle`", path, dir)
	case ClientFile:
		return fmt.Sprintf("security file %s (the client certificate and key) does not exist: make it with `smctl certs quickstart --dir %s --role client` (add --ca-dir CADIR to sign with an existing CA), or with `smctl certs request`, `smctl certs sign` and `smctl certs bundle`", path, dir)
	}
	return fmt.Sprintf("security file %s does not exist", path)
}
