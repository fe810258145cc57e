package host

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"sort"
	"strings"
	"sync"

	hclog "github.com/hashicorp/go-hclog"
)

// slogLevelTrace is hclog's Trace level in slog terms.
const slogLevelTrace = slog.LevelDebug - 4

// hcLogger is an hclog.Logger over a *slog.Logger, so go-plugin's own
// messages (process started, exited, ...) appear in runner's log.
//
// go-plugin also parses each line the plugin writes to stderr through a
// child logger it names after the executable; its parser panics (in a
// goroutine, taking the runner down) on a JSON line whose @message or
// @level is not a string. That child is therefore switched off (GetLevel
// returns Off, which makes go-plugin skip parsing) and the raw lines are
// parsed by stderrLog instead, which tolerates anything.
type hcLogger struct {
	log        *slog.Logger
	name       string
	args       []any
	stderrName string // the name go-plugin gives its stderr-parsing child
	off        bool
}

var _ hclog.Logger = (*hcLogger)(nil)

func newHCLogger(l *slog.Logger, stderrName string) *hcLogger {
	return &hcLogger{log: l, stderrName: stderrName}
}

func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slogLevelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (h *hcLogger) Log(level hclog.Level, msg string, args ...interface{}) {
	if h.off || level == hclog.Off {
		return
	}
	lvl := slogLevel(level)
	// go-plugin's informational messages are lifecycle chatter (started,
	// connected, exited normally) that would repeat for every job.
	if lvl == slog.LevelInfo {
		lvl = slog.LevelDebug
	}
	ctx := context.Background()
	if !h.log.Enabled(ctx, lvl) {
		return
	}
	h.log.Log(ctx, lvl, msg, renameKey(args, "plugin", "plugin_path")...)
}

// renameKey renames a key in an hclog key/value list: go-plugin logs the
// plugin's path under "plugin", which would collide with the plugin name
// every line already carries (JSON log lines must not repeat a key).
func renameKey(args []any, from, to string) []any {
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok && k == from {
			out := append([]any(nil), args...)
			out[i] = to
			return out
		}
	}
	return args
}

func (h *hcLogger) Trace(msg string, args ...interface{}) { h.Log(hclog.Trace, msg, args...) }
func (h *hcLogger) Debug(msg string, args ...interface{}) { h.Log(hclog.Debug, msg, args...) }
func (h *hcLogger) Info(msg string, args ...interface{})  { h.Log(hclog.Info, msg, args...) }
func (h *hcLogger) Warn(msg string, args ...interface{})  { h.Log(hclog.Warn, msg, args...) }
func (h *hcLogger) Error(msg string, args ...interface{}) { h.Log(hclog.Error, msg, args...) }

func (h *hcLogger) enabled(l slog.Level) bool {
	return !h.off && h.log.Enabled(context.Background(), l)
}

func (h *hcLogger) IsTrace() bool { return h.enabled(slogLevelTrace) }
func (h *hcLogger) IsDebug() bool { return h.enabled(slog.LevelDebug) }
func (h *hcLogger) IsInfo() bool  { return h.enabled(slog.LevelInfo) }
func (h *hcLogger) IsWarn() bool  { return h.enabled(slog.LevelWarn) }
func (h *hcLogger) IsError() bool { return h.enabled(slog.LevelError) }

func (h *hcLogger) ImpliedArgs() []interface{} { return h.args }

func (h *hcLogger) With(args ...interface{}) hclog.Logger {
	c := *h
	c.log = h.log.With(args...)
	c.args = append(append([]any(nil), h.args...), args...)
	return &c
}

func (h *hcLogger) Name() string { return h.name }

func (h *hcLogger) Named(name string) hclog.Logger {
	c := *h
	if h.name != "" {
		c.name = h.name + "." + name
	} else {
		c.name = name
	}
	if name == h.stderrName {
		c.off = true
	}
	return &c
}

func (h *hcLogger) ResetNamed(name string) hclog.Logger {
	c := *h
	c.name = name
	c.off = name == h.stderrName
	return &c
}

// SetLevel does nothing: the slog handler decides what is logged.
func (h *hcLogger) SetLevel(hclog.Level) {}

func (h *hcLogger) GetLevel() hclog.Level {
	switch {
	case h.off:
		return hclog.Off
	case h.IsTrace():
		return hclog.Trace
	case h.IsDebug():
		return hclog.Debug
	case h.IsInfo():
		return hclog.Info
	case h.IsWarn():
		return hclog.Warn
	}
	return hclog.Error
}

func (h *hcLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

func (h *hcLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := slog.LevelInfo
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = slogLevel(opts.ForceLevel)
	}
	return slog.NewLogLogger(h.log.Handler(), level).Writer()
}

// stderrLog receives a plugin process's standard error, line by line, and
// logs each line: JSON lines written by sdk.Logger (or hclog) at their own
// level with their fields, other lines as they are. It remembers the first
// line of a Go panic, which explains a crash better than an exit status.
type stderrLog struct {
	log *slog.Logger

	mu      sync.Mutex
	partial []byte   // an incomplete line
	inPanic bool     // the lines after a panic line are its stack trace
	panic   string   // the first panic or fatal error line
	tail    []string // the last few messages, to explain a failed start
}

// tailLines is how many of the last messages stderrLog keeps.
const tailLines = 5

// maxLine bounds a line kept in memory; a longer one is logged in pieces.
const maxLine = 64 << 10

func newStderrLog(l *slog.Logger) *stderrLog { return &stderrLog{log: l} }

func (s *stderrLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := strings.IndexByte(string(p), '\n')
		if i < 0 {
			s.partial = append(s.partial, p...)
			if len(s.partial) >= maxLine {
				s.line(string(s.partial))
				s.partial = s.partial[:0]
			}
			break
		}
		s.partial = append(s.partial, p[:i]...)
		s.line(string(s.partial))
		s.partial = s.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

// panicLine returns the first line of a panic the plugin printed, or "".
func (s *stderrLog) panicLine() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.panic
}

// lastLines returns the last few messages the plugin wrote.
func (s *stderrLog) lastLines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tail...)
}

func (s *stderrLog) remember(msg string) {
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	if len(s.tail) == tailLines {
		s.tail = append(s.tail[:0], s.tail[1:]...)
	}
	s.tail = append(s.tail, msg)
}

// line logs one line; s.mu is held.
func (s *stderrLog) line(line string) {
	line = strings.TrimRight(line, "\r")
	if strings.TrimSpace(line) == "" {
		return
	}
	ctx := context.Background()
	if strings.HasPrefix(line, "{") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err == nil {
			if msg, ok := rec["@message"]; ok {
				s.inPanic = false
				level := jsonLevel(rec["@level"])
				if level >= slog.LevelWarn {
					s.remember(fmt.Sprint(msg))
				}
				if !s.log.Enabled(ctx, level) {
					return
				}
				keys := make([]string, 0, len(rec))
				for k := range rec {
					switch k {
					case "@message", "@level", "@timestamp":
						continue
					}
					keys = append(keys, k)
				}
				sort.Strings(keys)
				args := make([]any, 0, 2*len(keys))
				for _, k := range keys {
					args = append(args, strings.TrimPrefix(k, "@"), rec[k])
				}
				s.log.Log(ctx, level, fmt.Sprint(msg), args...)
				return
			}
		}
	}
	level := slog.LevelInfo
	switch {
	case strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: "):
		if s.panic == "" {
			s.panic = line
		}
		s.inPanic = true
		level = slog.LevelError
	case s.inPanic:
		level = slog.LevelError
	case strings.HasPrefix(line, "[TRACE]"):
		level = slogLevelTrace
	case strings.HasPrefix(line, "[DEBUG]"):
		level = slog.LevelDebug
	case strings.HasPrefix(line, "[WARN]"):
		level = slog.LevelWarn
	case strings.HasPrefix(line, "[ERROR]"):
		level = slog.LevelError
	}
	if !s.inPanic || s.panic == line {
		s.remember(line)
	}
	s.log.Log(ctx, level, line)
}

func jsonLevel(v any) slog.Level {
	s, _ := v.(string)
	switch strings.ToLower(s) {
	case "trace":
		return slogLevelTrace
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// levelEnv is the value of rpc.LogLevelEnv matching what l logs.
func levelEnv(l *slog.Logger) string {
	ctx := context.Background()
	switch {
	case l.Enabled(ctx, slog.LevelDebug):
		return "debug"
	case l.Enabled(ctx, slog.LevelInfo):
		return "info"
	case l.Enabled(ctx, slog.LevelWarn):
		return "warn"
	}
	return "error"
}
