//go:build linux

package archiver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/backup-runner/runner/internal/repo"
	"github.com/backup-runner/runner/internal/repo/crypt"
	"github.com/backup-runner/runner/internal/repo/local"
)

// testRepo is a real repository in a temporary directory, with small
// chunks so that modest files have many of them.
type testRepo struct {
	*repo.Repository
	dir string // the storage directory
}

func newTestRepo(t testing.TB, encrypted bool) *testRepo {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	initOpts := repo.InitOptions{Unencrypted: !encrypted, ChunkMin: 16 << 10, ChunkAvg: 64 << 10, ChunkMax: 256 << 10}
	oo := repo.OpenOptions{Lock: repo.LockShared, TempDir: t.TempDir()}
	if encrypted {
		initOpts.Passphrase = []byte("secret")
		initOpts.KDF = &crypt.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}
		oo.Passphrase = initOpts.Passphrase
	}
	if err := repo.Init(ctx, st, initOpts); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, st, oo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return &testRepo{Repository: r, dir: dir}
}

// backup captures root with a fresh Archiver and flushes, so that the
// result can be restored at once.
func backup(t testing.TB, r *testRepo, o Options, spec TreeSpec, tune ...func(*Archiver)) (repo.Item, *Archiver) {
	t.Helper()
	a := New(r.Repository, o)
	a.racyWindow = 0
	for _, f := range tune {
		f(a)
	}
	it, err := a.Tree(context.Background(), "files", spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return it, a
}

func randBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := rng.Uint64()
		for k := 0; k < 8; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// textBytes is compressible, varied text.
func textBytes(seed uint64, n int) []byte {
	words := strings.Fields("the quick brown fox jumps over a lazy dog backup runner chunk tree restore " +
		"snapshot pack index content defined hash zstd compress encrypt lorem ipsum dolor sit amet")
	rng := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[rng.IntN(len(words))])
		if rng.IntN(12) == 0 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.Bytes()[:n]
}

func writeFile(t testing.TB, p string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask
		t.Fatal(err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func isRoot() bool { return os.Geteuid() == 0 }

// setTimesDeepestFirst gives every entry under root a distinct mtime with
// nanoseconds, children before parents (setting a child's time does not
// change its parent's, but creating entries does).
func setTimesDeepestFirst(t testing.TB, root string) {
	t.Helper()
	var paths []string
	must(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	}))
	for i := len(paths) - 1; i >= 0; i-- {
		ns := int64(1_600_000_000_123_456_789) + int64(i)*1_000_000_007
		ts := []unix.Timespec{unix.NsecToTimespec(ns - 5), unix.NsecToTimespec(ns)}
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], ts, unix.AT_SYMLINK_NOFOLLOW))
	}
}

// entryInfo is what the comparison checks of one entry.
type entryInfo struct {
	typ        uint32
	mode       uint32
	uid, gid   uint32
	size       int64
	mtime      int64
	rdev       uint64
	target     string
	sum        [32]byte
	xattrs     string
	linkGroup  string // for hard-linked files: the first path of the group
	nlinkAbove bool
}

// scanTree describes every entry under root (relative paths; root itself
// is "."). Hard-link groups are described by their first path in walk
// order, so two trees with the same link structure compare equal.
func scanTree(t testing.TB, root string) map[string]entryInfo {
	t.Helper()
	out := map[string]entryInfo{}
	groups := map[[2]uint64]string{}
	must(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := entryInfo{typ: st.Mode & unix.S_IFMT, mode: st.Mode & 0o7777, uid: st.Uid, gid: st.Gid, mtime: st.Mtim.Nano()}
		switch e.typ {
		case unix.S_IFREG:
			e.size = st.Size
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.sum = sha256.Sum256(data)
		case unix.S_IFLNK:
			e.target, err = os.Readlink(p)
			if err != nil {
				return err
			}
			e.mode = 0 // meaningless, not restorable
		case unix.S_IFCHR, unix.S_IFBLK:
			e.rdev = uint64(st.Rdev)
		}
		if e.typ != unix.S_IFDIR && st.Nlink > 1 {
			key := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
			if _, ok := groups[key]; !ok {
				groups[key] = rel
			}
			e.linkGroup = groups[key]
			e.nlinkAbove = true
		}
		xa, err := pathXattrs(p)
		if err != nil {
			return err
		}
		var xs []string
		for _, x := range xa {
			if strings.HasPrefix(x.Name, "user.") {
				xs = append(xs, x.Name+"="+string(x.Value))
			}
		}
		e.xattrs = strings.Join(xs, ",")
		out[rel] = e
		return nil
	}))
	return out
}

// compareTrees fails the test if the trees differ in content or metadata.
// checkTimes: mtimes of everything, to the nanosecond.
func compareTrees(t testing.TB, want, got string) {
	t.Helper()
	w, g := scanTree(t, want), scanTree(t, got)
	var names []string
	for k := range w {
		names = append(names, k)
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			t.Errorf("%s: restored but not in the original", k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		we := w[k]
		ge, ok := g[k]
		if !ok {
			t.Errorf("%s: missing after restore", k)
			continue
		}
		if we != ge {
			t.Errorf("%s differs:\n want %+v\n  got %+v", k, we, ge)
		}
	}
}

// settleGoroutines waits until the goroutine count is back to at most n.
func settleGoroutines(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines: %d, want at most %d:\n%s", runtime.NumGoroutine(), n, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openLog records the files an Archiver opens for reading.
type openLog struct {
	mu    sync.Mutex
	paths []string
}

func (l *openLog) hook(a *Archiver) {
	a.openHook = func(p string) error {
		l.mu.Lock()
		l.paths = append(l.paths, p)
		l.mu.Unlock()
		return nil
	}
}

func (l *openLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.paths)
	slices.Sort(out)
	return out
}

var errInjected = errors.New("injected read error")

// readAllStream is a helper for stream tests.
func readAllStream(t testing.TB, r *testRepo, it repo.Item) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := RestoreStream(context.Background(), r.Repository, it, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("RestoreStream returned %d, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}
