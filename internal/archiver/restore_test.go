//go:build linux

package archiver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/backup-runner/runner/internal/repo"
	"github.com/backup-runner/runner/internal/repo/pack"
	"golang.org/x/sys/unix"
)

func TestIncludeRestore(t *testing.T) {
	r := newTestRepo(t, false)
	root := filepath.Join(t.TempDir(), "site")
	for _, p := range []string{"a/b/x", "a/b/y", "a/c/z", "top.txt", "other.txt", "d/e"} {
		writeFile(t, filepath.Join(root, p), []byte(p), 0o644)
	}
	setTimesDeepestFirst(t, root)
	it, _ := backup(t, r, Options{}, TreeSpec{Root: root})
	dst := t.TempDir()
	var prog Progress
	st, err := Restore(context.Background(), r.Repository, it, dst, RestoreOptions{Include: []string{"a/b", "/top.txt"}, Progress: &prog})
	must(t, err)
	// The progress counter saw exactly what was restored: 3 files, "a/b/x",
	// "a/b/y" and "top.txt" bytes.
	if prog.Files() != 3 || prog.Files() != st.Files || prog.Bytes() != 5+5+7 || prog.Bytes() != st.Bytes {
		t.Errorf("progress %d files, %d bytes; stats %+v", prog.Files(), prog.Bytes(), st)
	}
	got := listFiles(t, filepath.Join(dst, "site"))
	if want := []string{"a", "a/b", "a/b/x", "a/b/y", "top.txt"}; !slices.Equal(got, want) {
		t.Errorf("restored %v, want %v", got, want)
	}
	// The directories on the way carry their own metadata.
	w, g := scanTree(t, root), scanTree(t, filepath.Join(dst, "site"))
	for _, p := range []string{".", "a", "a/b", "a/b/x", "top.txt"} {
		if w[p] != g[p] {
			t.Errorf("%s: want %+v, got %+v", p, w[p], g[p])
		}
	}

	dst = t.TempDir()
	_, err = Restore(context.Background(), r.Repository, it, dst, RestoreOptions{Include: []string{"a/c", "nope", "top.txt/x"}})
	if err == nil || !strings.Contains(err.Error(), "nope") || !strings.Contains(err.Error(), "top.txt/x") {
		t.Fatalf("err %v, want one naming the missing includes", err)
	}
	if got := listFiles(t, filepath.Join(dst, "site")); !slices.Equal(got, []string{"a", "a/c", "a/c/z"}) {
		t.Errorf("restored %v", got)
	}
	if _, err := Restore(context.Background(), r.Repository, it, dst, RestoreOptions{Include: []string{"../x"}}); err == nil {
		t.Error("include leaving the root: no error")
	}
}

// TestRestoreCorruptPack: a flipped byte in a chunk of one file makes the
// restore fail naming that file, and the file is not left behind.
func TestRestoreCorruptPack(t *testing.T) {
	r := newTestRepo(t, false)
	root := filepath.Join(t.TempDir(), "r")
	writeFile(t, filepath.Join(root, "fine.txt"), []byte("fine"), 0o644)
	victim := randBytes(11, 2<<20)
	writeFile(t, filepath.Join(root, "sub/victim.bin"), victim, 0o644)
	it, _ := backup(t, r, Options{}, TreeSpec{Root: root})

	// Find the last chunk of the victim and flip a byte of it in its pack.
	ctx := context.Background()
	top, err := r.LoadTree(ctx, it.Tree)
	must(t, err)
	rootNodes, err := r.LoadTree(ctx, top[0].Subtree)
	must(t, err)
	i := slices.IndexFunc(rootNodes, func(n repo.Node) bool { return n.Name == "sub" })
	sub, err := r.LoadTree(ctx, rootNodes[i].Subtree)
	must(t, err)
	content := sub[0].Content
	if len(content) < 10 {
		t.Fatalf("victim has %d chunks; want many", len(content))
	}
	if !corruptBlob(t, r.dir, content[len(content)-1]) {
		t.Fatal("chunk not found in any pack")
	}

	for _, workers := range []int{1, 3} {
		dst := t.TempDir()
		_, err = Restore(ctx, r.Repository, it, dst, RestoreOptions{Workers: workers})
		if err == nil || !errors.Is(err, repo.ErrCorrupt) || !strings.Contains(err.Error(), filepath.Join(dst, "r/sub/victim.bin")) {
			t.Fatalf("err %v, want a corruption error naming the file", err)
		}
		if _, err := os.Lstat(filepath.Join(dst, "r/sub/victim.bin")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("partly restored file left behind (%v)", err)
		}
	}
}

// corruptBlob flips a byte in the middle of blob id in whichever pack of
// an unencrypted repository holds it.
func corruptBlob(t *testing.T, repoDir string, id repo.ID) bool {
	t.Helper()
	found := false
	must(t, filepath.WalkDir(filepath.Join(repoDir, "data"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		tr, err := pack.ParseTrailer(b[len(b)-16:], int64(len(b)))
		if err != nil {
			return err
		}
		hdrStart := int64(len(b)) - 16 - int64(tr.HeaderLength)
		entries, err := pack.ParseHeader(b[hdrStart:len(b)-16], uint64(hdrStart))
		if err != nil {
			return err
		}
		for _, e := range entries {
			if repo.ID(e.ID) == id {
				b[e.Offset+uint64(e.Length)/2] ^= 0x01
				found = true
				return os.WriteFile(p, b, 0o600)
			}
		}
		return nil
	}))
	return found
}

func TestCancelRestore(t *testing.T) {
	r := newTestRepo(t, false)
	root := filepath.Join(t.TempDir(), "r")
	for i := range 100 {
		writeFile(t, filepath.Join(root, "d", "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), randBytes(uint64(i), 30_000), 0o644)
	}
	writeFile(t, filepath.Join(root, "big"), randBytes(5, 3<<20), 0o644)
	it, _ := backup(t, r, Options{}, TreeSpec{Root: root})
	base := runtime.NumGoroutine()
	for _, delay := range []time.Duration{0, time.Millisecond, 20 * time.Millisecond} {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(delay, cancel)
		_, err := Restore(ctx, r.Repository, it, t.TempDir(), RestoreOptions{Workers: 3})
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("delay %v: %v", delay, err)
		}
		settleGoroutines(t, base)
	}
}

func TestStream(t *testing.T) {
	r := newTestRepo(t, true)
	a := New(r.Repository, Options{})
	data := append(randBytes(21, 25<<20), textBytes(22, 25<<20)...)
	w := a.Stream(context.Background(), "db")
	// Odd write sizes, as a dump produces them.
	for rest, i := data, 0; len(rest) > 0; i++ {
		n := min(len(rest), 1+(i*7919)%300_000)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	it, err := w.Close()
	must(t, err)
	if it.Kind != repo.ItemStream || it.Name != "db" || it.Size != uint64(len(data)) || len(it.Content) < 100 {
		t.Fatalf("item %+v (%d chunks)", it.Kind, len(it.Content))
	}
	must(t, r.Flush(context.Background()))
	if got := readAllStream(t, r, it); !bytes.Equal(got, data) {
		t.Fatal("stream differs")
	}
	if st := a.Stats(); st.Bytes != uint64(len(data)) || st.AddedBytes == 0 {
		t.Errorf("stats %+v", st)
	}

	// Empty stream.
	it, err = a.Stream(context.Background(), "empty").Close()
	must(t, err)
	if it.Size != 0 || len(it.Content) != 0 {
		t.Errorf("empty stream item %+v", it)
	}
	if got := readAllStream(t, r, it); len(got) != 0 {
		t.Error("empty stream restored bytes")
	}
}

func TestStreamAbortAndCancel(t *testing.T) {
	r := newTestRepo(t, false)
	a := New(r.Repository, Options{})
	base := runtime.NumGoroutine()

	w := a.Stream(context.Background(), "db")
	_, err := w.Write(randBytes(1, 1<<20))
	must(t, err)
	boom := errors.New("dump failed")
	w.Abort(boom)
	if _, err := w.Close(); !errors.Is(err, boom) {
		t.Errorf("Close after Abort: %v", err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Abort succeeded")
	}

	ctx, cancel := context.WithCancel(context.Background())
	w = a.Stream(ctx, "db2")
	_, err = w.Write(randBytes(2, 1<<20))
	must(t, err)
	cancel()
	// A writer blocked in Write (or writing later) gets the error.
	for i := 0; i < 100; i++ {
		if _, err = w.Write(make([]byte, 64<<10)); err != nil {
			break
		}
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Write after cancel: %v", err)
	}
	if _, err := w.Close(); !errors.Is(err, context.Canceled) {
		t.Errorf("Close after cancel: %v", err)
	}
	settleGoroutines(t, base)
}

func TestRestoreStreamErrors(t *testing.T) {
	r := newTestRepo(t, false)
	a := New(r.Repository, Options{})
	w := a.Stream(context.Background(), "db")
	_, err := io.Copy(w, bytes.NewReader(randBytes(3, 1<<20)))
	must(t, err)
	it, err := w.Close()
	must(t, err)
	must(t, r.Flush(context.Background()))
	base := runtime.NumGoroutine()

	if !corruptBlob(t, r.dir, it.Content[len(it.Content)/2]) {
		t.Fatal("chunk not found")
	}
	var buf bytes.Buffer
	n, err := RestoreStream(context.Background(), r.Repository, it, &buf)
	if !errors.Is(err, repo.ErrCorrupt) {
		t.Fatalf("err %v", err)
	}
	if n > int64(len(it.Content)/2)*(256<<10) {
		t.Errorf("%d bytes written past the damaged chunk", n)
	}
	// A failing writer stops it too.
	_, err = RestoreStream(context.Background(), r.Repository, it, failWriter{})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("err %v", err)
	}
	settleGoroutines(t, base)
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// A full run (full_every) checks the stored copies of the chunks it reuses:
// a damaged one makes the file an unreadable entry, naming the chunk. A
// normal run trusts the repository.
func TestFullRunVerifiesReusedChunks(t *testing.T) {
	r := newTestRepo(t, false)
	root := filepath.Join(t.TempDir(), "r")
	writeFile(t, filepath.Join(root, "fine.txt"), []byte("fine"), 0o644)
	victim := randBytes(12, 1<<20)
	writeFile(t, filepath.Join(root, "victim.bin"), victim, 0o644)
	it, _ := backup(t, r, Options{}, TreeSpec{Root: root})
	ctx := context.Background()
	top, err := r.LoadTree(ctx, it.Tree)
	must(t, err)
	nodes, err := r.LoadTree(ctx, top[0].Subtree)
	must(t, err)
	i := slices.IndexFunc(nodes, func(n repo.Node) bool { return n.Name == "victim.bin" })
	if !corruptBlob(t, r.dir, nodes[i].Content[0]) {
		t.Fatal("chunk not found in any pack")
	}
	_, a := backup(t, r, Options{}, TreeSpec{Root: root})
	if st := a.Stats(); st.Errors != 0 {
		t.Fatalf("a normal run found %d errors: %v", st.Errors, st.Unreadable)
	}
	_, a = backup(t, r, Options{Full: true}, TreeSpec{Root: root})
	st := a.Stats()
	if st.Errors != 1 || len(st.Unreadable) != 1 || !strings.Contains(st.Unreadable[0], "victim.bin") ||
		!strings.Contains(st.Unreadable[0], "copy of chunk "+nodes[i].Content[0].Short()+" is damaged") {
		t.Fatalf("full run: %d errors %q", st.Errors, st.Unreadable)
	}
}

// allocated is the space a file takes on disk.
func allocated(t *testing.T, p string) int64 {
	t.Helper()
	var st unix.Stat_t
	must(t, unix.Stat(p, &st))
	return st.Blocks * 512
}

func TestSparseRestore(t *testing.T) {
	r := newTestRepo(t, false)
	root := filepath.Join(t.TempDir(), "img")
	zeros := func(n int) []byte { return make([]byte, n) }
	// Zeros in the middle and at the end (the size must still come out
	// right), a file of zeros only, and ordinary files.
	var img []byte
	img = append(img, randBytes(1, 300<<10)...)
	img = append(img, zeros(4<<20)...)
	img = append(img, randBytes(2, 300<<10)...)
	img = append(img, zeros(2<<20)...)
	writeFile(t, filepath.Join(root, "disk.img"), img, 0o600)
	writeFile(t, filepath.Join(root, "zero"), zeros(1<<20), 0o644)
	writeFile(t, filepath.Join(root, "text"), textBytes(3, 200<<10), 0o644)
	writeFile(t, filepath.Join(root, "empty"), nil, 0o644)
	setTimesDeepestFirst(t, root)
	it, _ := backup(t, r, Options{}, TreeSpec{Root: root})

	dense := t.TempDir()
	st, err := Restore(context.Background(), r.Repository, it, dense, RestoreOptions{Owners: isRoot()})
	must(t, err)
	if st.Holes != 0 {
		t.Errorf("a restore without Sparse left %d bytes of holes", st.Holes)
	}
	compareTrees(t, root, filepath.Join(dense, "img"))
	if a := allocated(t, filepath.Join(dense, "img", "disk.img")); a < int64(len(img)) {
		t.Errorf("dense restore: disk.img takes %d bytes on disk, less than its %d (this file system makes holes of zeros itself?)", a, len(img))
	}

	sparse := t.TempDir()
	st, err = Restore(context.Background(), r.Repository, it, sparse, RestoreOptions{Owners: isRoot(), Sparse: true})
	must(t, err)
	compareTrees(t, root, filepath.Join(sparse, "img"))
	// Chunks are 16-256 KiB here, so all but the chunks where data and
	// zeros meet are holes.
	if st.Holes < 6<<20 || st.Holes > 7<<20 {
		t.Errorf("sparse restore left %d bytes of holes, want about 7 MiB", st.Holes)
	}
	if a := allocated(t, filepath.Join(sparse, "img", "disk.img")); a > 2<<20 {
		t.Errorf("sparse restore: disk.img takes %d bytes on disk, want about 600 KiB of data", a)
	}
	if a := allocated(t, filepath.Join(sparse, "img", "zero")); a != 0 {
		t.Errorf("sparse restore: a file of zeros takes %d bytes on disk", a)
	}
	if a, want := allocated(t, filepath.Join(sparse, "img", "text")), int64(200<<10); a < want {
		t.Errorf("sparse restore: text takes %d bytes on disk, want at least %d", a, want)
	}
}
