// Package logging builds runner's slog logger: tint's colored, human lines
// on a terminal, JSON lines elsewhere (cron, systemd, files), so that the
// same binary is pleasant interactively and parseable in production.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/lmittmann/tint"
	"golang.org/x/term"
)

// Options choose the logger's level and form.
type Options struct {
	Level   slog.Level
	Format  string // "text", "json" or "" (text on a terminal, JSON otherwise)
	NoColor bool
}

// ParseLevel accepts debug, info, warn and error.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (use debug, info, warn or error)", s)
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// New returns a logger writing to w.
func New(w io.Writer, o Options) (*slog.Logger, error) {
	switch o.Format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: o.Level})), nil
	case "text", "":
		if o.Format == "" && !IsTerminal(w) {
			return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: o.Level})), nil
		}
		return slog.New(tint.NewTextHandler(w, &tint.Options{
			Level:      o.Level,
			TimeFormat: time.TimeOnly,
			NoColor:    o.NoColor || !IsTerminal(w),
		})), nil
	}
	return nil, fmt.Errorf("unknown log format %q (use text or json)", o.Format)
}
