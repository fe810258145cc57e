package host

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	hclog "github.com/hashicorp/go-hclog"
)

func jsonLogger(buf *bytes.Buffer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: level}))
}

func records(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

func TestStderrLogParsesLinesWhateverTheirShape(t *testing.T) {
	var buf bytes.Buffer
	s := newStderrLog(jsonLogger(&buf, slog.LevelDebug))
	// Written in odd pieces, as a pipe delivers them.
	input := `{"@level":"warn","@message":"disk slow","@timestamp":"2024-01-02T03:04:05.000000Z","@module":"pg","table":"x"}` + "\n" +
		`{"@message":{"nested":true},"@level":42}` + "\n" +
		"[DEBUG] plain debug line\n" +
		"not json at all\n" +
		"panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n" +
		`{"@message":"after the panic"}` + "\n" +
		"no newline at the end"
	for len(input) > 0 {
		n := min(7, len(input))
		if _, err := s.Write([]byte(input[:n])); err != nil {
			t.Fatal(err)
		}
		input = input[n:]
	}
	got := records(t, &buf)
	want := []struct{ level, msg string }{
		{"WARN", "disk slow"},
		{"INFO", "map[nested:true]"},
		{"DEBUG", "[DEBUG] plain debug line"},
		{"INFO", "not json at all"},
		{"ERROR", "panic: boom"},
		{"ERROR", "goroutine 1 [running]:"},
		{"ERROR", "main.main()"},
		{"INFO", "after the panic"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d records: %v", len(got), got)
	}
	for i, w := range want {
		if got[i]["level"] != w.level || got[i]["msg"] != w.msg {
			t.Errorf("record %d: %v, want %v", i, got[i], w)
		}
	}
	if got[0]["module"] != "pg" || got[0]["table"] != "x" {
		t.Errorf("fields lost: %v", got[0])
	}
	if s.panicLine() != "panic: boom" {
		t.Errorf("panic line %q", s.panicLine())
	}
	// Remembered: warnings and errors, plain lines, the panic's first line.
	if tail := s.lastLines(); len(tail) != 4 || tail[0] != "disk slow" || tail[3] != "panic: boom" {
		t.Errorf("tail %q", tail)
	}
}

func TestStderrLogSplitsOverlongLines(t *testing.T) {
	var buf bytes.Buffer
	s := newStderrLog(jsonLogger(&buf, slog.LevelDebug))
	s.Write(bytes.Repeat([]byte("x"), maxLine+10))
	if got := records(t, &buf); len(got) != 1 || len(s.partial) != 0 {
		t.Fatalf("got %d records, %d bytes kept", len(got), len(s.partial))
	}
	s.Write([]byte("\n"))
	if got := records(t, &buf); len(got) != 1 {
		t.Fatalf("got %d records", len(got))
	}
}

func TestHCLoggerOverSlog(t *testing.T) {
	var buf bytes.Buffer
	l := newHCLogger(jsonLogger(&buf, slog.LevelDebug).With("plugin", "x"), "runner-plugin-x")
	if l.GetLevel() != hclog.Debug || l.IsTrace() || !l.IsDebug() {
		t.Fatalf("level %v", l.GetLevel())
	}
	l.Named("stdio").With("k", 1).Warn("careful", "n", 2)
	l.Info("plugin started") // go-plugin chatter: logged at debug
	l.Trace("hidden")
	got := records(t, &buf)
	if len(got) != 2 || got[0]["msg"] != "careful" || got[0]["level"] != "WARN" || got[0]["plugin"] != "x" ||
		got[0]["k"] != float64(1) || got[0]["n"] != float64(2) || got[1]["level"] != "DEBUG" {
		t.Fatalf("got %v", got)
	}
	// The child go-plugin uses to parse stderr is switched off.
	off := l.Named("runner-plugin-x")
	if off.GetLevel() != hclog.Off || off.IsError() {
		t.Fatal("stderr child is not off")
	}
	off.Error("dropped")
	if len(records(t, &buf)) != 2 {
		t.Fatal("the switched-off child logged")
	}
	w := l.StandardWriter(&hclog.StandardLoggerOptions{ForceLevel: hclog.Error})
	w.Write([]byte("from a std logger\n"))
	if got := records(t, &buf); got[2]["level"] != "ERROR" || got[2]["msg"] != "from a std logger" {
		t.Fatalf("got %v", got[2])
	}
}

func TestLevelEnv(t *testing.T) {
	for level, want := range map[slog.Level]string{
		slog.LevelDebug: "debug", slog.LevelInfo: "info", slog.LevelWarn: "warn", slog.LevelError: "error",
	} {
		if got := levelEnv(jsonLogger(&bytes.Buffer{}, level)); got != want {
			t.Errorf("%v: got %s", level, got)
		}
	}
}
