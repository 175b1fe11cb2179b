package tls

import (
	"log/slog"
	"os"
	"path/filepath"
)

// CheckSecurityDir looks for what should not be in the security directory
// dir of a server (smserver, smsupervisor) and for files others could
// replace:
//
//   - the CA key CtiosRoot.pem, or the CA password file CtiosRoot.password
//     that Quickstart writes beside it: whoever reads the server's disk
//     could then issue certificates of any role (ErrCAKeyOnServer; the fix
//     is to move it off the host, to where certificates are signed);
//   - the directory itself, CtiosRootCert.pem, CtiosServer.pem,
//     CtiosPeer.pem or CtiosClient.pem writable by group or others, who could then plant
//     their own CA or swap a certificate (ErrWritableByOthers; the fix is
//     chmod go-w). Modes are those of the files read, after symbolic
//     links. Missing files are not this check's concern: loading them
//     reports that.
//
// Without strict, each problem is logged as one warning on log (nil: the
// default logger) and CheckSecurityDir returns nil. With strict, it logs
// nothing and returns the first problem found (the directory, then the CA
// key, its password file and the certificate files, in that order) as one
// sentence naming the file and the fix.
//
// Only dir itself is looked at: Quickstart's own CA subdirectory (ca/),
// which no server reads, is not reported.
func CheckSecurityDir(dir string, strict bool, log *slog.Logger) error {
	problems := securityDirProblems(dir)
	if strict {
		if len(problems) > 0 {
			return problems[0]
		}
		return nil
	}
	if log == nil {
		log = slog.Default()
	}
	for _, p := range problems {
		log.Warn(p.Error(), "dir", dir)
	}
	return nil
}

// securityDirProblems returns every problem CheckSecurityDir reports, in
// its order.
func securityDirProblems(dir string) []error {
	var out []error
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() && fi.Mode().Perm()&0o022 != 0 {
		out = append(out, newErr(ErrWritableByOthers,
			"the security directory %s has mode %04o and is writable by group or others, who could replace its certificates; run chmod go-w %s",
			dir, fi.Mode().Perm(), dir))
	}
	if p := filepath.Join(dir, RootKeyFile); exists(p) {
		out = append(out, newErr(ErrCAKeyOnServer,
			"the CA key %s is in this server's security directory, where anyone who reads the disk can issue certificates; move %s off this host",
			p, RootKeyFile))
	}
	if p := filepath.Join(dir, QuickstartPasswordFile); exists(p) {
		out = append(out, newErr(ErrCAKeyOnServer,
			"the CA password file %s is in this server's security directory; move %s off this host (or delete it once the password is kept elsewhere)",
			p, QuickstartPasswordFile))
	}
	for _, name := range []string{RootCertFile, ServerFile, PeerFile, ClientFile} {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm()&0o022 == 0 {
			continue
		}
		out = append(out, newErr(ErrWritableByOthers,
			"%s has mode %04o and is writable by group or others, who could replace it; run chmod go-w %s",
			p, fi.Mode().Perm(), p))
	}
	return out
}

// exists reports whether path names anything, a dangling link included.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
