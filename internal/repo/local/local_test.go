package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/backup-runner/runner/internal/repo/storage"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func put(t *testing.T, s *Store, name, data string) {
	t.Helper()
	if err := s.Put(context.Background(), name, strings.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, s *Store, name string, off, n int64) (string, error) {
	t.Helper()
	rc, err := s.Get(context.Background(), name, off, n)
	if err != nil {
		return "", err
	}
	defer func() { _ = rc.Close() }()
	b, err := io.ReadAll(rc)
	return string(b), err
}

func TestObjectVerbs(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	put(t, s, "data/ab/abcdef", "0123456789")
	put(t, s, "data/cd/cdef", "x")
	put(t, s, "index/one", "i")
	put(t, s, "config", "c")

	for _, tc := range []struct {
		off, n int64
		want   string
		ok     bool
	}{
		{0, 0, "0123456789", true},
		{3, 4, "3456", true},
		{7, 0, "789", true},
		{10, 0, "", true},
		{8, 5, "", false},
		{11, 0, "", false},
	} {
		got, err := get(t, s, "data/ab/abcdef", tc.off, tc.n)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Get(%d, %d) = %q, %v; want %q ok=%v", tc.off, tc.n, got, err, tc.want, tc.ok)
		}
	}

	list := func(prefix string) []string {
		var names []string
		if err := s.List(ctx, prefix, func(oi storage.ObjectInfo) error { names = append(names, oi.Name); return nil }); err != nil {
			t.Fatal(err)
		}
		sort.Strings(names)
		return names
	}
	for prefix, want := range map[string]string{
		"":           "config data/ab/abcdef data/cd/cdef index/one",
		"data/":      "data/ab/abcdef data/cd/cdef",
		"data/a":     "data/ab/abcdef",
		"data/ab/a":  "data/ab/abcdef",
		"snapshots/": "",
		"conf":       "config",
	} {
		if got := strings.Join(list(prefix), " "); got != want {
			t.Errorf("List(%q) = %q, want %q", prefix, got, want)
		}
	}

	oi, err := s.Stat(ctx, "data/ab/abcdef")
	if err != nil || oi.Size != 10 {
		t.Fatalf("Stat = %+v, %v", oi, err)
	}
	if err := s.Delete(ctx, "data/ab/abcdef"); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"stat":   func() error { _, err := s.Stat(ctx, "data/ab/abcdef"); return err }(),
		"get":    func() error { _, err := s.Get(ctx, "data/ab/abcdef", 0, 0); return err }(),
		"delete": s.Delete(ctx, "data/ab/abcdef"),
		"dir":    func() error { _, err := s.Stat(ctx, "data"); return err }(),
	} {
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s of a missing object: %v, want ErrNotFound", name, err)
		}
	}
}

func TestInvalidNames(t *testing.T) {
	s := newStore(t)
	for _, name := range []string{"", "/abs", "../up", "a/../b", "a//b", "a/", `a\b`, "data/.tmp-x"} {
		if err := s.Put(context.Background(), name, strings.NewReader("x"), 1); err == nil {
			t.Errorf("Put(%q) accepted", name)
		}
	}
}

func TestInterruptedPutLeavesNothing(t *testing.T) {
	s := newStore(t)
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("partial"), iotest.ErrReader(boom))
	if err := s.Put(context.Background(), "data/x", r, 100); !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
	if _, err := s.Stat(context.Background(), "data/x"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("object visible after failed put: %v", err)
	}
	// Wrong announced size is refused too.
	if err := s.Put(context.Background(), "data/y", strings.NewReader("abc"), 5); err == nil {
		t.Fatal("size mismatch accepted")
	}
	entries, _ := os.ReadDir(filepath.Join(s.Root(), "data"))
	if len(entries) != 0 {
		t.Fatalf("temporary files left: %v", entries)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Put(ctx, "data/z", strings.NewReader("abc"), 3); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled put: %v", err)
	}
}

func TestConcurrentPutsOfOneName(t *testing.T) {
	s := newStore(t)
	var wg sync.WaitGroup
	payload := bytes.Repeat([]byte("p"), 1<<16)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Put(context.Background(), "data/same", bytes.NewReader(payload), int64(len(payload))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := get(t, s, "data/same", 0, 0)
	if err != nil || got != string(payload) {
		t.Fatalf("concurrent puts left %d bytes, %v", len(got), err)
	}
}
