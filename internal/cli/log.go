package cli

import (
	"io"
	"log/slog"
	"strings"
)

// NewLogger returns a logger writing to w in format "text" or "json" at
// level "debug", "info", "warn" or "error". A bad value is a usage error
// naming the key and the value.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	lv, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	return newLogger(w, format, lv)
}

// NewLevelLogger is NewLogger whose level is lv, set to level now: a
// reload changes it with SetLevel (see ParseLevel).
func NewLevelLogger(w io.Writer, format, level string, lv *slog.LevelVar) (*slog.Logger, error) {
	l, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	lv.Set(l)
	return newLogger(w, format, lv)
}

// ParseLevel returns the slog level of log.level: "debug", "info" (or
// empty), "warn" (or "warning") or "error", in any case. A bad value is a
// usage error naming the key and the value.
func ParseLevel(level string) (slog.Level, error) {
	switch strings.ToLower(level) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, Usagef("configuration key log.level has value %q; use debug, info, warn or error", level)
}

func newLogger(w io.Writer, format string, lv slog.Leveler) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, Usagef("configuration key log.format has value %q; use text or json", format)
	}
}
