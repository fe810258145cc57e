//go:build linux

package archiver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/backup-runner/runner/internal/repo"
)

// makeFixture builds a tree with every kind of entry and metadata the
// archiver handles. It reports whether user xattrs are supported here.
func makeFixture(t *testing.T, root string) bool {
	t.Helper()
	j := func(p string) string { return filepath.Join(root, p) }
	must(t, os.MkdirAll(root, 0o755))
	writeFile(t, j("empty-file"), nil, 0o644)
	writeFile(t, j("text.txt"), textBytes(1, 10_000), 0o644)
	writeFile(t, j("random.bin"), randBytes(2, 300_000), 0o644)
	big := append(randBytes(3, 10<<20), textBytes(4, 10<<20)...)
	writeFile(t, j("big.bin"), big, 0o644)
	writeFile(t, j("a/b/c/deep.txt"), textBytes(5, 777), 0o640)
	writeFile(t, j("a/readonly.txt"), textBytes(6, 100), 0o444)
	must(t, os.Mkdir(j("empty-dir"), 0o755))
	must(t, os.Mkdir(j("a/empty-inner"), 0o700))
	must(t, os.Mkdir(j("sgid"), 0o755))
	must(t, os.Chmod(j("sgid"), 0o2775))
	writeFile(t, j("sgid/file"), []byte("in a setgid dir\n"), 0o664)
	must(t, os.Mkdir(j("sticky"), 0o755))
	must(t, os.Chmod(j("sticky"), 0o1777))
	writeFile(t, j("secret"), []byte("password\n"), 0o600)
	writeFile(t, j("setuid-prog"), []byte("#!/bin/sh\n"), 0o755)
	must(t, os.Chmod(j("setuid-prog"), 0o4755))
	must(t, os.Symlink("a/b", j("link-rel")))
	must(t, os.Symlink("/etc/hostname", j("link-abs")))
	must(t, os.Symlink("../nope/nothing", j("a/link-dangling")))
	writeFile(t, j("h1"), textBytes(7, 5000), 0o644)
	must(t, os.Link(j("h1"), j("a/h2")))
	writeFile(t, j("t1"), randBytes(8, 70_000), 0o640)
	must(t, os.Link(j("t1"), j("t2")))
	must(t, os.Link(j("t1"), j("a/b/t3")))
	must(t, unix.Mkfifo(j("fifo"), 0o640))
	must(t, unix.Mknod(j("sock"), unix.S_IFSOCK|0o755, 0))
	if isRoot() {
		must(t, unix.Mknod(j("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		writeFile(t, j("owned"), []byte("someone else's\n"), 0o640)
		must(t, os.Chown(j("owned"), 1234, 5678))
		must(t, os.Chown(j("a/b"), 1234, 5678))
		must(t, os.Lchown(j("link-rel"), 4321, 8765))
	}
	xattrs := true
	if err := unix.Setxattr(j("text.txt"), "user.comment", []byte("hello"), 0); err != nil {
		if !errors.Is(err, unix.ENOTSUP) {
			t.Fatal(err)
		}
		t.Logf("user xattrs not supported here (%v): not testing them", err)
		xattrs = false
	} else {
		must(t, unix.Setxattr(j("a"), "user.dir", []byte("yes"), 0))
		must(t, unix.Setxattr(j("big.bin"), "user.a", []byte{0, 1, 2}, 0))
		must(t, unix.Setxattr(j("big.bin"), "user.b", []byte("second"), 0))
	}
	setTimesDeepestFirst(t, root)
	return xattrs
}

func TestRoundTrip(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		name := "plain"
		if encrypted {
			name = "encrypted"
		}
		t.Run(name, func(t *testing.T) {
			r := newTestRepo(t, encrypted)
			root := filepath.Join(t.TempDir(), "www")
			xattrs := makeFixture(t, root)
			it, a := backup(t, r, Options{}, TreeSpec{Root: root})
			st := a.Stats()
			if st.Errors != 0 || len(st.Unreadable) != 0 {
				t.Fatalf("errors during backup: %v", st.Unreadable)
			}
			wantFiles := uint64(14)
			if isRoot() {
				wantFiles++
			}
			if st.Files != wantFiles || st.Dirs != 8 || st.FilesRead != wantFiles {
				t.Errorf("stats %+v, want %d files read and 8 dirs", st, wantFiles)
			}
			if it.Kind != repo.ItemTree || it.Name != "files" || it.Size != st.Bytes {
				t.Errorf("item %+v, stats bytes %d", it, st.Bytes)
			}
			// The item's tree holds the root as its one node.
			top, err := r.LoadTree(context.Background(), it.Tree)
			must(t, err)
			if len(top) != 1 || top[0].Name != "www" || top[0].Type != repo.NodeDir {
				t.Fatalf("top tree %+v", top)
			}
			_ = xattrs // compareTrees checks user xattrs wherever they are

			dst := t.TempDir()
			rst, err := Restore(context.Background(), r.Repository, it, dst, RestoreOptions{Owners: isRoot()})
			must(t, err)
			compareTrees(t, root, filepath.Join(dst, "www"))
			if rst.Files != wantFiles-3 || rst.Links != 3 || rst.Dirs != 8 || rst.Bytes != st.Bytes-5000-2*70_000 {
				t.Errorf("restore stats %+v", rst)
			}

			// Restoring again over the result replaces entries in place and
			// gives the same tree.
			_, err = Restore(context.Background(), r.Repository, it, dst, RestoreOptions{Owners: isRoot(), Workers: 1})
			must(t, err)
			compareTrees(t, root, filepath.Join(dst, "www"))
		})
	}
}

func TestRootIsFile(t *testing.T) {
	r := newTestRepo(t, false)
	dir := t.TempDir()
	p := filepath.Join(dir, "dump.sql")
	writeFile(t, p, textBytes(9, 200_000), 0o640)
	setTimesDeepestFirst(t, p)
	it, _ := backup(t, r, Options{}, TreeSpec{Root: p})
	dst := t.TempDir()
	_, err := Restore(context.Background(), r.Repository, it, dst, RestoreOptions{})
	must(t, err)
	w, g := scanTree(t, p)["."], scanTree(t, filepath.Join(dst, "dump.sql"))["."]
	w.uid, w.gid, g.uid, g.gid = 0, 0, 0, 0
	if w != g {
		t.Fatalf("want %+v, got %+v", w, g)
	}
}

func TestRootSymlinkIsFollowed(t *testing.T) {
	r := newTestRepo(t, false)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "real/f"), []byte("x"), 0o644)
	must(t, os.Symlink("real", filepath.Join(dir, "current")))
	it, _ := backup(t, r, Options{}, TreeSpec{Root: filepath.Join(dir, "current")})
	dst := t.TempDir()
	_, err := Restore(context.Background(), r.Repository, it, dst, RestoreOptions{})
	must(t, err)
	if b, err := os.ReadFile(filepath.Join(dst, "current/f")); err != nil || string(b) != "x" {
		t.Fatalf("got %q, %v", b, err)
	}
}

func TestBadSpec(t *testing.T) {
	r := newTestRepo(t, false)
	a := New(r.Repository, Options{})
	ctx := context.Background()
	for _, spec := range []TreeSpec{
		{Root: "relative"},
		{Root: filepath.Join(t.TempDir(), "missing")},
		{Root: t.TempDir(), Paths: []string{"../etc"}},
		{Root: t.TempDir(), Excludes: []string{"/"}},
	} {
		if _, err := a.Tree(ctx, "x", spec); err == nil {
			t.Errorf("%+v: no error", spec)
		}
	}
}

func TestExcludesAndOneFileSystem(t *testing.T) {
	r := newTestRepo(t, false)
	root := filepath.Join(t.TempDir(), "site")
	for _, p := range []string{"keep.txt", "skip.log", "cache/x", "a/node_modules/m/x.js", "a/keep2.txt", "a/sub.log/inner"} {
		writeFile(t, filepath.Join(root, p), []byte(p), 0o644)
	}
	mounted := false
	mnt := filepath.Join(root, "mnt")
	must(t, os.Mkdir(mnt, 0o755))
	if isRoot() {
		if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=4m"); err != nil {
			t.Logf("cannot mount tmpfs (%v): not testing one_file_system", err)
		} else {
			mounted = true
			t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
			writeFile(t, filepath.Join(mnt, "other-fs.txt"), []byte("x"), 0o644)
		}
	}

	spec := TreeSpec{Root: root, Excludes: []string{"*.log", "cache/", "node_modules", "!a/sub.log"}, OneFileSystem: true}
	it, a := backup(t, r, Options{}, spec)
	st := a.Stats()
	if st.Excluded != 3 {
		t.Errorf("excluded %d, want 3 (skip.log, cache, node_modules)", st.Excluded)
	}
	dst := t.TempDir()
	_, err := Restore(context.Background(), r.Repository, it, dst, RestoreOptions{})
	must(t, err)
	got := listFiles(t, filepath.Join(dst, "site"))
	want := []string{"a", "a/keep2.txt", "a/sub.log", "a/sub.log/inner", "keep.txt"}
	if !mounted {
		want = append(want, "mnt")
	} else if st.SkippedMounts != 1 {
		t.Errorf("skipped mounts %d, want 1", st.SkippedMounts)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("restored %v, want %v", got, want)
	}

	if mounted {
		// Without OneFileSystem the mount is captured.
		spec.OneFileSystem = false
		it, _ := backup(t, r, Options{}, spec)
		dst := t.TempDir()
		_, err := Restore(context.Background(), r.Repository, it, dst, RestoreOptions{})
		must(t, err)
		if _, err := os.Stat(filepath.Join(dst, "site/mnt/other-fs.txt")); err != nil {
			t.Error(err)
		}
	}
}

func listFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	for rel := range scanTree(t, root) {
		if rel != "." {
			out = append(out, rel)
		}
	}
	slices.Sort(out)
	return out
}

func TestPaths(t *testing.T) {
	r := newTestRepo(t, false)
	root := filepath.Join(t.TempDir(), "srv")
	for _, p := range []string{"a/b/x", "a/b/y", "a/c/z", "keep.txt", "other.txt", "d/e"} {
		writeFile(t, filepath.Join(root, p), []byte(p), 0o644)
	}
	it, a := backup(t, r, Options{}, TreeSpec{Root: root, Paths: []string{"a/b", "/keep.txt", "missing", "d/e/f"}})
	st := a.Stats()
	slices.Sort(st.Unreadable)
	if st.Errors != 2 || len(st.Unreadable) != 2 || !strings.Contains(st.Unreadable[0], "srv/d/e: paths below it were chosen, but it is a file") ||
		!strings.Contains(st.Unreadable[1], "srv/missing: no such file") {
		t.Errorf("errors %d %q, want the two missing paths", st.Errors, st.Unreadable)
	}
	dst := t.TempDir()
	_, err := Restore(context.Background(), r.Repository, it, dst, RestoreOptions{})
	must(t, err)
	got := listFiles(t, filepath.Join(dst, "srv"))
	want := []string{"a", "a/b", "a/b/x", "a/b/y", "d", "keep.txt"}
	if !slices.Equal(got, want) {
		t.Errorf("restored %v, want %v", got, want)
	}
}

func TestUnreadableFiles(t *testing.T) {
	r := newTestRepo(t, false)
	root := filepath.Join(t.TempDir(), "r")
	for _, p := range []string{"good1", "bad", "sub/good2", "sub/swapped"} {
		writeFile(t, filepath.Join(root, p), []byte(p), 0o644)
	}
	it, a := backup(t, r, Options{}, TreeSpec{Root: root}, func(a *Archiver) {
		a.openHook = func(p string) error {
			switch filepath.Base(p) {
			case "bad":
				return errInjected
			case "swapped":
				// A FIFO replaces the file between the walker's stat and
				// the open: the open must not block, and the entry counts
				// as unreadable.
				must(t, os.Remove(p))
				must(t, unix.Mkfifo(p, 0o644))
			}
			return nil
		}
	})
	st := a.Stats()
	if st.Errors != 2 || len(st.Unreadable) != 2 {
		t.Fatalf("errors %d, unreadable %v", st.Errors, st.Unreadable)
	}
	slices.Sort(st.Unreadable)
	if !strings.Contains(st.Unreadable[0], "/r/bad: open: injected") || !strings.Contains(st.Unreadable[1], "sub/swapped: no longer a regular file") {
		t.Errorf("unreadable %q", st.Unreadable)
	}
	dst := t.TempDir()
	_, err := Restore(context.Background(), r.Repository, it, dst, RestoreOptions{})
	must(t, err)
	if got := listFiles(t, filepath.Join(dst, "r")); !slices.Equal(got, []string{"good1", "sub", "sub/good2"}) {
		t.Errorf("restored %v", got)
	}
}

// TestCancelBackup cancels a backup in the middle: Tree returns the
// cancellation and every goroutine it started is gone.
func TestCancelBackup(t *testing.T) {
	r := newTestRepo(t, false)
	root := filepath.Join(t.TempDir(), "r")
	for i := range 200 {
		writeFile(t, filepath.Join(root, "d"+string(rune('a'+i%7)), "f"+strconv.Itoa(i)), randBytes(uint64(i), 40_000), 0o644)
	}
	writeFile(t, filepath.Join(root, "big"), randBytes(99, 4<<20), 0o644)
	base := runtime.NumGoroutine()
	for _, after := range []int{1, 50, 150} {
		ctx, cancel := context.WithCancel(context.Background())
		a := New(r.Repository, Options{Workers: 3})
		var opened int
		var mu = make(chan struct{}, 1)
		a.openHook = func(string) error {
			mu <- struct{}{}
			opened++
			if opened == after {
				cancel()
			}
			<-mu
			return nil
		}
		_, err := a.Tree(ctx, "x", TreeSpec{Root: root})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("after %d opens: err %v, want context.Canceled", after, err)
		}
		settleGoroutines(t, base)
		// Files the prefetcher opened but no worker read are closed too.
		if open := openFilesUnder(t, root); len(open) != 0 {
			t.Fatalf("after %d opens: still open: %v", after, open)
		}
	}
}

// openFilesUnder lists this process's open descriptors on paths in dir.
func openFilesUnder(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	must(t, err)
	var open []string
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(target, dir+"/") {
			open = append(open, target)
		}
	}
	return open
}

// A file that grows while it is read is stored as read, counted, and kept
// out of the cache.
func TestFileChangedWhileRead(t *testing.T) {
	r := newTestRepo(t, false)
	root := filepath.Join(t.TempDir(), "r")
	p := filepath.Join(root, "log")
	writeFile(t, p, textBytes(1, 100_000), 0o644)
	writeFile(t, filepath.Join(root, "quiet"), []byte("x"), 0o644)
	it, a := backup(t, r, Options{}, TreeSpec{Root: root}, func(a *Archiver) {
		a.openedHook = func(path string) {
			if path == p {
				f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
				must(t, err)
				_, err = f.Write([]byte("appended\n"))
				must(t, err)
				must(t, f.Close())
			}
		}
	})
	st := a.Stats()
	if st.Changed != 1 || st.Errors != 0 || len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "changed size") {
		t.Errorf("stats %+v", st)
	}
	if n := a.NewCache().Len(); n != 1 {
		t.Errorf("cache has %d entries, want only the quiet file", n)
	}
	dst := t.TempDir()
	_, err := Restore(context.Background(), r.Repository, it, dst, RestoreOptions{})
	must(t, err)
	want, err := os.ReadFile(p)
	must(t, err)
	got, err := os.ReadFile(filepath.Join(dst, "r/log"))
	must(t, err)
	if string(got) != string(want) {
		t.Errorf("restored %d bytes, file has %d", len(got), len(want))
	}
}

// Entries deleted between the listing and the read are warnings, not
// errors: the snapshot is consistent with a moment later.
func TestVanishedEntries(t *testing.T) {
	r := newTestRepo(t, false)
	root := filepath.Join(t.TempDir(), "r")
	writeFile(t, filepath.Join(root, "stays"), []byte("x"), 0o644)
	writeFile(t, filepath.Join(root, "tmp-file"), []byte("x"), 0o644)
	_, a := backup(t, r, Options{Workers: 1}, TreeSpec{Root: root}, func(a *Archiver) {
		a.openHook = func(p string) error {
			if filepath.Base(p) == "tmp-file" {
				must(t, os.Remove(p))
			}
			return nil
		}
	})
	st := a.Stats()
	if st.Errors != 0 || st.Files != 1 || len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "tmp-file: vanished") {
		t.Errorf("stats %+v", st)
	}
}
