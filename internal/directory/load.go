package directory

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Format is a directory file's format.
type Format int

// Formats. FormatAuto picks by the file name, then by the content.
const (
	FormatAuto Format = iota
	FormatYAML
	FormatCSV
)

func (f Format) String() string {
	switch f {
	case FormatYAML:
		return "YAML"
	case FormatCSV:
		return "CSV"
	}
	return "auto"
}

// FormatOf returns the format a file name implies: FormatYAML for .yaml and
// .yml, FormatCSV for .csv (in any case), FormatAuto otherwise.
func FormatOf(path string) Format {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return FormatYAML
	case ".csv":
		return FormatCSV
	}
	return FormatAuto
}

// sniff picks a format from the content: YAML when the first line that is
// neither blank nor a comment starts with "agents:", "---", "%YAML" or "{",
// CSV otherwise.
func sniff(data []byte) Format {
	sc := bufio.NewScanner(bytes.NewReader(bytes.TrimPrefix(data, []byte("\uFEFF"))))
	sc.Buffer(nil, 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "agents"); ok && strings.HasPrefix(strings.TrimSpace(rest), ":") {
			return FormatYAML
		}
		for _, p := range []string{"---", "%YAML", "{"} {
			if strings.HasPrefix(line, p) {
				return FormatYAML
			}
		}
		return FormatCSV
	}
	return FormatCSV
}

// Load reads and validates the directory file at path with the default
// Options. See Options.Load.
func Load(path string) (*Directory, error) { return Options{}.Load(path) }

// Parse validates a directory held in memory with the default Options.
// See Options.Parse.
func Parse(data []byte, name string, f Format) (*Directory, error) {
	return Options{}.Parse(data, name, f)
}

// Load reads and validates the directory file at path, in the format its
// name implies (see FormatOf) or, failing that, its content. Any problem
// refuses the whole file with an error naming the file, the line and the
// value, wrapping ErrInvalid or ErrTooLarge (or the file system's error
// when the file cannot be read).
func (o Options) Load(path string) (*Directory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the agent directory: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, fmt.Errorf("cannot read the agent directory: %w", err)
	} else if !st.Mode().IsRegular() {
		return nil, newErr(ErrInvalid, "agent directory %s is not a regular file", path)
	}
	max := o.maxBytes()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the agent directory: %w", err)
	}
	if int64(len(data)) > max {
		return nil, newErr(ErrTooLarge, "agent directory %s is larger than %d bytes", path, max)
	}
	return o.Parse(data, path, FormatOf(path))
}

// Parse validates a directory held in memory; name (usually the file's
// path) starts every error message. FormatAuto picks the format from
// the content.
func (o Options) Parse(data []byte, name string, f Format) (*Directory, error) {
	if max := o.maxBytes(); int64(len(data)) > max {
		return nil, newErr(ErrTooLarge, "agent directory %s is larger than %d bytes", name, max)
	}
	if f == FormatAuto {
		f = sniff(data)
	}
	src := source{name: name}
	var raws []rawAgent
	var err error
	if f == FormatYAML {
		raws, err = parseYAML(data, src, o.maxAgents())
	} else {
		raws, err = parseCSV(data, src, o.maxAgents())
	}
	if err != nil {
		return nil, err
	}
	return build(src, raws)
}
