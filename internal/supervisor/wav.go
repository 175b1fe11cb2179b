package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/silentmon/silentmon/filter"
)

// maxIDLen bounds the agent ids used in file names, as session ids are
// (filter.ValidID).
const maxIDLen = filter.MaxIDLen

// idByte reports whether c may stand in an id (filter.ValidID).
func idByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// unknownAgent stands for an agent the capture server did not name.
const unknownAgent = "unknown"

// pathAgent makes an agent id safe for a file name: bytes outside the id
// set become '_', it is cut to 64 bytes, and "", "." or ".." become
// "unknown".
func pathAgent(agent string) string {
	if len(agent) > maxIDLen {
		agent = agent[:maxIDLen]
	}
	b := []byte(agent)
	for i, c := range b {
		if !idByte(c) {
			b[i] = '_'
		}
	}
	if s := string(b); filter.ValidID(s) {
		return s
	}
	return unknownAgent
}

// namer turns a wav:PATH spec into one file name per session.
type namer struct {
	dir, file string // file may hold {session} and {agent}
	template  bool
	plainUsed bool // guarded by the Supervisor's mu
}

func newNamer(path string) (*namer, error) {
	dir, file := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if file == "" {
		return nil, fmt.Errorf("output %q names a directory, not a file: %w", "wav:"+path, ErrBadOutput)
	}
	if strings.ContainsAny(dir, "{}") {
		return nil, fmt.Errorf("output %q: {session} and {agent} may only be used in the file name, not in the directory: %w", "wav:"+path, ErrBadOutput)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("output %q: directory %s: %w", "wav:"+path, dir, errors.Join(ErrBadOutput, err))
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("output %q: %s is not a directory: %w", "wav:"+path, dir, ErrBadOutput)
	}
	return &namer{dir: dir, file: file,
		template: strings.Contains(file, "{session}") || strings.Contains(file, "{agent}")}, nil
}

// name returns the file name for a session before any collision suffix.
// id must be valid and agent made safe by pathAgent.
func (n *namer) name(id, agent string) string {
	if n.template {
		f := strings.ReplaceAll(n.file, "{session}", id)
		return filepath.Join(n.dir, strings.ReplaceAll(f, "{agent}", agent))
	}
	if !n.plainUsed {
		n.plainUsed = true
		return filepath.Join(n.dir, n.file)
	}
	return filepath.Join(n.dir, insertSuffix(n.file, "-"+id))
}

// insertSuffix puts suffix before the extension of name.
func insertSuffix(name, suffix string) string {
	ext := filepath.Ext(name)
	if ext == name { // ".wav": a name that is only an extension
		ext = ""
	}
	return name[:len(name)-len(ext)] + suffix + ext
}

// maxCollisions bounds the numbered names tried for one session.
const maxCollisions = 1000

// createNew creates path, or the first of path-1, path-2, ... (before the
// extension) that does not exist, with O_CREATE|O_EXCL|O_NOFOLLOW and mode
// 0600, and returns the file and its name. An existing file is never
// opened, so a restart on the same wav:PATH keeps the earlier recording
// and takes the next free number. A symbolic link in place of a candidate
// name (even one to nothing) is refused with an error that says so, the
// session playing to no file: it is never written through, and it is not
// skipped silently either, since someone planted it.
func createNew(path string) (*os.File, string, error) {
	dir, file := filepath.Split(path)
	for i := 0; i < maxCollisions; i++ {
		p := path
		if i > 0 {
			p = filepath.Join(dir, insertSuffix(file, "-"+strconv.Itoa(i)))
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if err == nil {
			return f, p, nil
		}
		if fi, lerr := os.Lstat(p); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, "", fmt.Errorf("%s is a symbolic link; refusing to write through it: %w", p, fs.ErrExist)
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, "", err
		}
	}
	return nil, "", fmt.Errorf("%s and %d numbered variants exist", path, maxCollisions-1)
}
