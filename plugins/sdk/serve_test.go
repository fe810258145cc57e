package sdk

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

func TestLoggerWritesWhatTheHostParses(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(newLogHandler(&buf, slog.LevelDebug))
	l.Warn("disk slow", "table", "x", slog.Group("g", "k", 1))
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("%q: %v", buf.String(), err)
	}
	if rec["@level"] != "warn" || rec["@message"] != "disk slow" || rec["table"] != "x" {
		t.Fatalf("got %v", rec)
	}
	if g, ok := rec["g"].(map[string]any); !ok || g["k"] != float64(1) {
		t.Fatalf("group: %v", rec["g"])
	}
	// go-plugin parses exactly this layout.
	if _, err := time.Parse("2006-01-02T15:04:05.000000Z07:00", rec["@timestamp"].(string)); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"time", "level", "msg"} {
		if _, ok := rec[k]; ok {
			t.Errorf("key %q left", k)
		}
	}
}

func TestLogLevelFromTheHost(t *testing.T) {
	for env, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError, "": slog.LevelInfo,
	} {
		t.Setenv("RUNNER_PLUGIN_LOG_LEVEL", env)
		if got := logLevel(); got != want {
			t.Errorf("%q: got %v", env, got)
		}
	}
}
