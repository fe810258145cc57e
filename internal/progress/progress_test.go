package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLineDrawsAndErases(t *testing.T) {
	var buf syncBuf
	n := 0
	var mu sync.Mutex
	l := Start(&buf, true, time.Millisecond, func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return "files: " + strings.Repeat("x", n%3)
	})
	time.Sleep(20 * time.Millisecond)
	l.Stop()
	l.Stop()
	out := buf.String()
	if !strings.Contains(out, "\rfiles: ") {
		t.Fatalf("nothing drawn: %q", out)
	}
	if !strings.HasSuffix(out, "\r") {
		t.Fatalf("line not erased at the end: %q", out)
	}
}

func TestDisabledLinePrintsNothing(t *testing.T) {
	var buf syncBuf
	l := Start(&buf, false, time.Millisecond, func() string { return "x" })
	time.Sleep(5 * time.Millisecond)
	l.Stop()
	if buf.String() != "" {
		t.Fatalf("printed %q on a non-terminal", buf.String())
	}
}

func TestRate(t *testing.T) {
	if got := Rate(10<<20, 2*time.Second); got != "5 MiB/s" {
		t.Errorf("Rate = %q", got)
	}
}
