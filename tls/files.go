package tls

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// writeFile writes data to path with mode perm. Unless force is set an
// existing file is refused with ErrExists. The mode is set explicitly, so the
// umask cannot widen or narrow it.
func writeFile(path string, data []byte, perm fs.FileMode, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if !force {
		flags |= os.O_EXCL
	}
	f, err := os.OpenFile(path, flags, perm)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return newErr(ErrExists, "%s already exists; remove it or use --force to replace it", path)
		}
		return fmt.Errorf("cannot write %s: %v", path, errText(err))
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("cannot set the mode of %s: %v", path, errText(err))
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %v", path, errText(err))
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %v", path, errText(err))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write %s: %v", path, errText(err))
	}
	return nil
}

// readFile reads path; a missing file wraps ErrFileMissing.
func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, newErr(ErrFileMissing, "security file %s does not exist", path)
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
