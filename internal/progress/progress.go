// Package progress draws a one-line progress display on a terminal while
// a long operation runs (backup, restore, check, prune). On anything but a
// terminal it prints nothing, so cron mails and logs stay clean.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/backup-runner/runner/policies"
)

// Line redraws one status line every interval until Stop.
type Line struct {
	w      io.Writer
	status func() string
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	width  int
}

// Start begins redrawing status() on w every interval. If enabled is false
// (not a terminal) it returns a Line whose Stop does nothing.
func Start(w io.Writer, enabled bool, interval time.Duration, status func() string) *Line {
	l := &Line{w: w, status: status, stop: make(chan struct{}), done: make(chan struct{})}
	if !enabled {
		close(l.done)
		return l
	}
	go l.run(interval)
	return l
}

func (l *Line) run(interval time.Duration) {
	defer close(l.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			l.clear()
			return
		case <-t.C:
			l.draw(l.status())
		}
	}
}

func (l *Line) draw(s string) {
	pad := ""
	if n := l.width - len(s); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	l.width = len(s)
	fmt.Fprintf(l.w, "\r%s%s", s, pad)
}

func (l *Line) clear() {
	if l.width > 0 {
		fmt.Fprintf(l.w, "\r%s\r", strings.Repeat(" ", l.width))
	}
}

// Stop ends the display and erases the line; safe to call more than once.
func (l *Line) Stop() {
	l.once.Do(func() {
		select {
		case <-l.done:
		default:
			close(l.stop)
		}
	})
	<-l.done
}

// Rate formats a byte count per elapsed time, e.g. "12.3 MiB/s".
func Rate(bytes int64, elapsed time.Duration) string {
	if elapsed <= 0 {
		return "-"
	}
	return policies.FormatSize(int64(float64(bytes)/elapsed.Seconds())) + "/s"
}
