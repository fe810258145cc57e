package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func lockNames(t *testing.T, st Storage) []string {
	t.Helper()
	var names []string
	if err := st.List(context.Background(), locksPrefix, func(oi ObjectInfo) error { names = append(names, oi.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	return names
}

func TestLockModes(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	initRepo(t, st, false)
	for _, tc := range []struct {
		first, second LockMode
		ok            bool
	}{
		{LockShared, LockShared, true},
		{LockShared, LockExclusive, false},
		{LockExclusive, LockShared, false},
		{LockExclusive, LockExclusive, false},
		{LockExclusive, LockNone, true},
	} {
		a, err := Open(ctx, st, OpenOptions{Lock: tc.first})
		if err != nil {
			t.Fatal(err)
		}
		b, err := Open(ctx, st, OpenOptions{Lock: tc.second})
		if (err == nil) != tc.ok {
			t.Errorf("%s then %s: err=%v, want ok=%v", tc.first, tc.second, err, tc.ok)
		}
		if err != nil && (!errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid")) {
			t.Errorf("lock conflict error does not say who holds it: %v", err)
		}
		if b != nil {
			_ = b.Close(ctx)
		}
		_ = a.Close(ctx)
		if n := lockNames(t, st); len(n) != 0 {
			t.Fatalf("locks left after close: %v", n)
		}
	}
}

func writeLockObject(t *testing.T, st Storage, name string, l LockInfo) {
	t.Helper()
	b, _ := json.Marshal(l)
	if err := putBytes(context.Background(), st, locksPrefix+name, b); err != nil {
		t.Fatal(err)
	}
}

func TestStaleLocks(t *testing.T) {
	ctx := context.Background()
	host, _ := os.Hostname()
	for _, tc := range []struct {
		name  string
		lock  LockInfo
		stale bool
	}{
		{"other host, old", LockInfo{Host: "elsewhere", PID: 1, Time: time.Now().Add(-2 * time.Hour), Exclusive: true}, true},
		{"other host, fresh", LockInfo{Host: "elsewhere", PID: 1, Time: time.Now(), Exclusive: true}, false},
		{"this host, dead process", LockInfo{Host: host, PID: 1 << 30, Time: time.Now(), Exclusive: true}, true},
		{"this host, live process", LockInfo{Host: host, PID: os.Getppid(), Time: time.Now(), Exclusive: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			initRepo(t, st, false)
			writeLockObject(t, st, strings.Repeat("a", 64), tc.lock)
			var logs syncBuffer
			r, err := Open(ctx, st, OpenOptions{Lock: LockShared, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if tc.stale {
				if err != nil {
					t.Fatalf("stale lock not taken over: %v", err)
				}
				defer func() { _ = r.Close(ctx) }()
				if !strings.Contains(logs.String(), "removed stale repository lock") {
					t.Fatalf("no log line for the stale lock: %q", logs.String())
				}
				if n := lockNames(t, st); len(n) != 1 {
					t.Fatalf("locks after takeover: %v", n)
				}
			} else if !errors.Is(err, ErrLocked) {
				t.Fatalf("live lock ignored: %v", err)
			}
		})
	}
}

func TestLockRefresh(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	initRepo(t, st, false)
	r, err := Open(ctx, st, OpenOptions{Lock: LockShared, RefreshEvery: 10 * time.Millisecond, StaleAfter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	first := lockNames(t, st)
	deadline := time.Now().Add(5 * time.Second)
	for {
		names := lockNames(t, st)
		if len(names) == 1 && names[0] != first[0] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock not refreshed: %v -> %v", first, names)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := lockNames(t, st); len(n) != 0 {
		t.Fatalf("locks left: %v", n)
	}
}

// TestLockLost: if our lock has not been refreshed for the stale time (a
// stuck process, a long network outage), writes stop rather than risk
// racing a prune that took the lock over.
func TestLockLost(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	initRepo(t, st, false)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	if _, err := Open(ctx, st, OpenOptions{Lock: LockShared, Now: clock, StaleAfter: time.Minute, RefreshEvery: time.Hour}); err == nil {
		t.Fatal("refresh interval longer than the stale time accepted")
	}
	r, err := Open(ctx, st, OpenOptions{Lock: LockShared, Now: clock, StaleAfter: time.Minute, RefreshEvery: 50 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close(ctx) }()
	if _, _, err := r.SaveBlob(ctx, DataBlob, []byte("x")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if _, _, err := r.SaveBlob(ctx, DataBlob, []byte("y")); !errors.Is(err, ErrLocked) {
		t.Fatalf("write with a lapsed lock: %v", err)
	}
	if err := r.RefreshLock(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.SaveBlob(ctx, DataBlob, []byte("y")); err != nil {
		t.Fatalf("write after refresh: %v", err)
	}
}
