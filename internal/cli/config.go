package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix is the prefix of every environment variable that sets a
// configuration key: key "heartbeat.interval_ms" is SILENTMON_HEARTBEAT_INTERVAL_MS.
const EnvPrefix = "SILENTMON"

// Config is a program's configuration: one viper instance, never global.
// Precedence: flag > environment > file > default.
//
// The keys a program knows are those bound to a flag (Bind) and those given
// a default (V.SetDefault) before Load: a key in the file, or a SILENTMON_
// variable, that names none of them is a usage error naming the nearest
// known key, so that a misspelt setting is never silently ignored.
//
// One file can serve every program: its top-level keys named in Sections
// ("smserver:", "smsupervisor:", ...) hold one program's keys each. A
// program reads the file's other top-level keys and its own section, whose
// keys win, and skips the other programs' sections.
//
// A Config is not safe for concurrent use.
type Config struct {
	V *viper.Viper
	// Program names the section of the file this program reads
	// ("smserver"); LoadAndRun sets it from the root command's name when
	// it is empty. A name that is not in Sections reads no section.
	Program string

	known []string // the keys known before the first Load
}

// Sections are the top-level keys of a configuration file that hold one
// program's keys.
var Sections = []string{"smserver", "smsupervisor", "smctl", "smnic"}

// NewConfig returns a Config with the SILENTMON_ environment bound.
func NewConfig() *Config {
	v := viper.New()
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(envReplacer)
	v.AutomaticEnv()
	return &Config{V: v}
}

// Bind binds a configuration key to a flag of fs. The flag's default is the
// key's default.
func (c *Config) Bind(key string, fs *pflag.FlagSet, flag string) {
	f := fs.Lookup(flag)
	if f == nil {
		panic("cli: no flag " + flag) // programming error, caught by tests
	}
	if err := c.V.BindPFlag(key, f); err != nil {
		panic(err)
	}
}

// Keys returns the configuration keys the program knows, sorted: those
// bound to a flag and those with a default, as they were before the first
// Load.
func (c *Config) Keys() []string {
	if c.known != nil {
		return slices.Clone(c.known)
	}
	keys := c.V.AllKeys()
	slices.Sort(keys)
	return keys
}

// EnvName returns the environment variable that sets key:
// "heartbeat.interval_ms" is SILENTMON_HEARTBEAT_INTERVAL_MS.
func EnvName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(envReplacer.Replace(key))
}

var envReplacer = strings.NewReplacer(".", "_", "-", "_")

// Load checks the environment and reads the YAML file at path, if path is
// not empty. Each of these is a usage error: a SILENTMON_ variable that
// names no known key (naming the variable and the nearest known key's
// variable), a missing or unreadable file or bad YAML (naming the file),
// and a key in the file the program does not know, nested keys included
// (naming the key, the file and the nearest known key), at top level or in
// the program's own section ("smserver.interfce").
//
// Load may be called again to read the file anew (a reload): the values of
// the new file replace those of the previous one whole, a key removed from
// the file falling back to its flag, variable or default. On error the
// values read before may be partly replaced: read the configuration again
// before using it.
func (c *Config) Load(path string) error {
	if c.known == nil {
		c.known = c.Keys()
	}
	known := c.known
	if err := checkEnv(os.Environ(), known); err != nil {
		return err
	}
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Usagef("configuration file %q does not exist", path)
		}
		return Usagef("configuration file %q cannot be read: %v", path, err)
	}
	// The file alone, to see its own keys.
	file := viper.New()
	file.SetConfigFile(path)
	file.SetConfigType("yaml")
	if err := file.ReadInConfig(); err != nil {
		return Usagef("configuration file %q is not valid YAML: %v", path, firstLine(err.Error()))
	}
	own := ""
	if slices.Contains(Sections, c.Program) {
		own = c.Program
	}
	for _, sec := range Sections {
		if raw := file.Get(sec); raw != nil {
			if _, ok := raw.(map[string]any); !ok {
				return Usagef("configuration file %q gives %s a value, but %s is the section of %s's keys", path, sec, sec, sec)
			}
		}
	}
	if err := checkFileKeys(path, file, known, own); err != nil {
		return err
	}
	merged := sectionValues(file, own)
	text, err := yaml.Marshal(merged)
	if err != nil {
		return Usagef("configuration file %q cannot be read: %v", path, err)
	}
	c.V.SetConfigType("yaml")
	if err := c.V.ReadConfig(bytes.NewReader(text)); err != nil {
		return Usagef("configuration file %q is not valid YAML: %v", path, firstLine(err.Error()))
	}
	return nil
}

// section returns the section a flattened key of a file belongs to, and
// the key within it; "" and the key itself for a top-level key.
func section(key string) (string, string) {
	first, rest, ok := strings.Cut(key, ".")
	if ok && slices.Contains(Sections, first) {
		return first, rest
	}
	if !ok && slices.Contains(Sections, key) {
		return key, ""
	}
	return "", key
}

// sectionValues returns the values of file that program own reads, as
// nested maps: the top-level keys, then those of section own over them.
func sectionValues(file *viper.Viper, own string) map[string]any {
	out := map[string]any{}
	keys := file.AllKeys()
	slices.Sort(keys)
	set := func(key string, v any) {
		m := out
		parts := strings.Split(key, ".")
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = v
	}
	for _, pass := range []string{"", own} {
		for _, k := range keys {
			sec, rest := section(k)
			if sec != pass || rest == "" {
				continue
			}
			if v := file.Get(k); v != nil {
				set(rest, v)
			}
		}
		if own == "" {
			break
		}
	}
	return out
}

// checkEnv returns a usage error for the first (by name) SILENTMON_
// variable of environ that sets none of the known keys.
func checkEnv(environ, known []string) error {
	names := make(map[string]bool, len(known))
	vars := make([]string, 0, len(known))
	for _, k := range known {
		names[EnvName(k)] = true
		vars = append(vars, EnvName(k))
	}
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix+"_") && !names[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	if unknown[0] == EnvPrefix+"_CA_PASSWORD" {
		return Usagef("environment variable %s is smctl's CA password, which no server reads; unset it here: the CA password does not belong on a server", unknown[0])
	}
	if len(vars) == 0 {
		return Usagef("environment variable %s names no configuration key", unknown[0])
	}
	return Usagef("environment variable %s names no configuration key; did you mean %s?", unknown[0], nearest(unknown[0], vars))
}

// checkFileKeys returns a usage error for the first (sorted) key of file,
// flattened to dotted form, that the program does not know, at top level
// or in section own (named with the section: "smserver.interfce"); the
// other programs' sections are skipped. A group left empty (every key under
// "tls:" commented out) is accepted.
func checkFileKeys(path string, file *viper.Viper, known []string, own string) error {
	isKnown := make(map[string]bool, len(known))
	for _, k := range known {
		isKnown[k] = true
	}
	group := func(k string) []string {
		var under []string
		for _, kk := range known {
			if strings.HasPrefix(kk, k+".") {
				under = append(under, kk)
			}
		}
		return under
	}
	keys := file.AllKeys()
	slices.Sort(keys)
	for _, full := range keys {
		sec, k := section(full)
		if k == "" || (sec != "" && sec != own) {
			continue // an empty section, or another program's
		}
		prefix := ""
		if sec != "" {
			prefix = sec + "."
		}
		if isKnown[k] {
			continue
		}
		if under := group(k); len(under) > 0 {
			if file.Get(full) == nil {
				continue // an empty group
			}
			for i := range under {
				under[i] = prefix + under[i]
			}
			return Usagef("configuration file %q gives %s a value, but %s is a group of keys (%s)", path, full, full, strings.Join(under, ", "))
		}
		if len(known) == 0 {
			return Usagef("configuration file %q has unknown key %s", path, full)
		}
		return Usagef("configuration file %q has unknown key %s; did you mean %s%s?", path, full, prefix, nearest(k, known))
	}
	return nil
}

// nearest returns the candidate closest to s by edit distance, the first
// in order among equals.
func nearest(s string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		if d := editDistance(s, c); bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes
// (keys and variable names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Int returns key as an int, or a usage error naming key and value. Text
// (environment, flags) may be decimal or 0x-prefixed hex ("0xB8").
func (c *Config) Int(key string) (int, error) {
	raw := c.V.Get(key)
	switch x := raw.(type) {
	case nil:
		return 0, nil
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32:
		return c.V.GetInt(key), nil
	case float64:
		if x == float64(int(x)) {
			return int(x), nil
		}
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(x), 0, 0); err == nil {
			return int(n), nil
		}
	}
	return 0, Usagef("configuration key %s has value %q, which is not an integer", key, fmt.Sprint(raw))
}

// LoadAndRun returns a cobra RunE that reads the configuration file named
// by the "config" key, validates the configuration into a C and runs the
// program with it.
func LoadAndRun[C any](cfg *Config, validate func(*Config) (C, error), run func(context.Context, C, io.Writer, io.Writer) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		if cfg.Program == "" {
			cfg.Program = cmd.Root().Name()
		}
		if err := cfg.Load(cfg.String("config")); err != nil {
			return err
		}
		conf, err := validate(cfg)
		if err != nil {
			return err
		}
		return run(cmd.Context(), conf, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
}

// IntRange returns key as an int within [lo, hi].
func (c *Config) IntRange(key string, lo, hi int) (int, error) {
	n, err := c.Int(key)
	if err != nil {
		return 0, err
	}
	if n < lo || n > hi {
		return 0, Usagef("configuration key %s has value %d, outside %d to %d", key, n, lo, hi)
	}
	return n, nil
}

// Bool returns key as a bool, or a usage error naming key and value.
func (c *Config) Bool(key string) (bool, error) {
	raw := c.V.Get(key)
	switch x := raw.(type) {
	case bool:
		return x, nil
	case nil:
		return false, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "1", "t", "true", "yes", "on":
			return true, nil
		case "0", "f", "false", "no", "off", "":
			return false, nil
		}
	}
	return false, Usagef("configuration key %s has value %q, which is not true or false", key, fmt.Sprint(raw))
}

// String returns key as a string.
func (c *Config) String(key string) string { return c.V.GetString(key) }

// Strings returns key as a list of strings; a comma-separated environment
// value is split.
func (c *Config) Strings(key string) []string {
	raw := c.V.Get(key)
	if s, ok := raw.(string); ok {
		if s == "" {
			return nil
		}
		parts := strings.Split(s, ",")
		out := parts[:0]
		for _, p := range parts {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	return c.V.GetStringSlice(key)
}

// Addr returns key as HOST:PORT, or a usage error naming key and value.
func (c *Config) Addr(key string) (string, error) {
	s := c.V.GetString(key)
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", Usagef("configuration key %s has value %q, which is not HOST:PORT", key, s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return "", Usagef("configuration key %s has value %q: port %q is not between 0 and 65535", key, s, port)
	}
	return s, nil
}

// Float returns key as a float64, or a usage error naming key and value.
func (c *Config) Float(key string) (float64, error) {
	raw := c.V.Get(key)
	switch x := raw.(type) {
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
			return f, nil
		}
	}
	return 0, Usagef("configuration key %s has value %q, which is not a number", key, fmt.Sprint(raw))
}

// Duration returns key as a positive duration ("15m", "500ms"), or a usage
// error naming key and value.
func (c *Config) Duration(key string) (time.Duration, error) {
	raw := c.V.Get(key)
	if d, ok := raw.(time.Duration); ok && d > 0 {
		return d, nil
	}
	s := fmt.Sprint(raw)
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d <= 0 {
		return 0, Usagef("configuration key %s has value %q, which is not a positive duration such as 15m", key, s)
	}
	return d, nil
}

// Millis returns key, an integer number of milliseconds within [lo, hi],
// as a duration.
func (c *Config) Millis(key string, lo, hi int) (time.Duration, error) {
	n, err := c.IntRange(key, lo, hi)
	return time.Duration(n) * time.Millisecond, err
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

func replacePort(addr string, port int) string {
	host, _, _ := net.SplitHostPort(addr)
	return net.JoinHostPort(host, strconv.Itoa(port))
}
