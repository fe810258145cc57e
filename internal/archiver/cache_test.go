//go:build linux

package archiver

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/backup-runner/runner/internal/repo"
)

func cacheFixture(t *testing.T) (root string, files []string) {
	t.Helper()
	root = filepath.Join(t.TempDir(), "data")
	for i := range 40 {
		p := filepath.Join(root, "d"+strconv.Itoa(i%5), "f"+strconv.Itoa(i))
		writeFile(t, p, textBytes(uint64(i), 1000+i*500), 0o644)
		files = append(files, p)
	}
	big := filepath.Join(root, "big")
	writeFile(t, big, randBytes(7, 1<<20), 0o644) // many chunks
	must(t, unix.Setxattr(big, "user.x", []byte("v"), 0))
	files = append(files, big)
	slices.Sort(files)
	return root, files
}

func TestCache(t *testing.T) {
	r := newTestRepo(t, false)
	root, files := cacheFixture(t)
	spec := TreeSpec{Root: root}
	var opens1 openLog
	it1, a1 := backup(t, r, Options{}, spec, opens1.hook)
	if got := opens1.list(); !slices.Equal(got, files) {
		t.Fatalf("first backup read %d files, want %d", len(got), len(files))
	}
	cachePath := filepath.Join(t.TempDir(), "cache", "job.cache")
	must(t, a1.NewCache().Save(cachePath))
	c, err := LoadCache(cachePath, r.Config().ID)
	must(t, err)
	if c.Len() != len(files) {
		t.Fatalf("cache has %d entries, want %d", c.Len(), len(files))
	}

	// Nothing changed: nothing is read, and the tree is the same.
	var opens2 openLog
	it2, a2 := backup(t, r, Options{Cache: c}, spec, opens2.hook)
	if got := opens2.list(); len(got) != 0 {
		t.Errorf("unchanged backup read %v", got)
	}
	if it2.Tree != it1.Tree || it2.Size != it1.Size {
		t.Errorf("unchanged backup gave tree %s size %d, first gave %s %d", it2.Tree.Short(), it2.Size, it1.Tree.Short(), it1.Size)
	}
	if st := a2.Stats(); st.FilesCached != uint64(len(files)) || st.FilesRead != 0 || st.Files != uint64(len(files)) || st.AddedBytes != 0 {
		t.Errorf("stats %+v", st)
	}
	c2 := a2.NewCache()
	if c2.Len() != len(files) {
		t.Errorf("second cache has %d entries", c2.Len())
	}

	// One file changes (same size, new content and mtime): only it is read.
	changed := files[3]
	data, err := os.ReadFile(changed)
	must(t, err)
	data[0] ^= 0xff
	must(t, os.WriteFile(changed, data, 0o644))
	var opens3 openLog
	it3, _ := backup(t, r, Options{Cache: c2}, spec, opens3.hook)
	if got := opens3.list(); !slices.Equal(got, []string{changed}) {
		t.Errorf("after changing %s, read %v", changed, got)
	}
	if it3.Tree == it1.Tree {
		t.Error("tree did not change")
	}

	// Full reads everything again.
	var opens4 openLog
	it4, _ := backup(t, r, Options{Cache: c2, Full: true}, spec, opens4.hook)
	if got := opens4.list(); !slices.Equal(got, files) {
		t.Errorf("full backup read %d files, want %d", len(got), len(files))
	}
	if it4.Tree != it3.Tree {
		t.Error("full backup gave another tree")
	}

	// Restoring the cached snapshot gives the files, with the xattr that
	// came from the cache.
	dst := t.TempDir()
	_, err = Restore(context.Background(), r.Repository, it2, dst, RestoreOptions{})
	must(t, err)
	got, err := os.ReadFile(filepath.Join(dst, "data/big"))
	must(t, err)
	want := randBytes(7, 1<<20)
	if string(got) != string(want) {
		t.Error("big file differs")
	}
	var v [8]byte
	if n, err := unix.Getxattr(filepath.Join(dst, "data/big"), "user.x", v[:]); err != nil || string(v[:n]) != "v" {
		t.Errorf("xattr from cache: %q, %v", v[:n], err)
	}
}

// A cache entry whose chunks are not in the repository is not used.
func TestCacheMissingBlobs(t *testing.T) {
	r := newTestRepo(t, false)
	root := filepath.Join(t.TempDir(), "x")
	p := filepath.Join(root, "f")
	writeFile(t, p, []byte("content"), 0o644)
	var st unix.Stat_t
	must(t, unix.Lstat(p, &st))
	c := newCache(r.Config().ID)
	c.add(p, &st, []repo.ID{{1, 2, 3}}, nil)
	var opens openLog
	_, a := backup(t, r, Options{Cache: c}, TreeSpec{Root: root}, opens.hook)
	if len(opens.list()) != 1 || a.Stats().FilesCached != 0 {
		t.Errorf("cache entry with unknown chunks was used: %+v", a.Stats())
	}
}

// A file modified just before it is read is not cached: a write in the
// same timestamp tick would go unnoticed.
func TestCacheRacyFiles(t *testing.T) {
	r := newTestRepo(t, false)
	root := filepath.Join(t.TempDir(), "x")
	writeFile(t, filepath.Join(root, "new"), []byte("just written"), 0o644)
	_, a := backup(t, r, Options{}, TreeSpec{Root: root}, func(a *Archiver) { a.racyWindow = time.Hour })
	if n := a.NewCache().Len(); n != 0 {
		t.Errorf("racy file cached (%d entries)", n)
	}
}

func TestCacheFile(t *testing.T) {
	dir := t.TempDir()
	id := "0123456789abcdef0123456789abcdef"
	p := filepath.Join(dir, "c")

	c, err := LoadCache(p, id)
	if err != nil || c.Len() != 0 {
		t.Fatalf("missing file: %v, %d entries", err, c.Len())
	}

	c = newCache(id)
	for i := range 100 {
		st := unix.Stat_t{Size: int64(i), Ino: uint64(i + 1), Dev: 7}
		st.Mtim = unix.NsecToTimespec(-int64(i)*1e9 + 5)
		var xa []repo.Xattr
		if i%10 == 0 {
			xa = []repo.Xattr{{Name: "user.a", Value: []byte{byte(i)}}, {Name: "user.b"}}
		}
		c.add("/f/"+strconv.Itoa(i), &st, []repo.ID{{byte(i)}, {byte(i), 1}}[:i%3], xa)
	}
	must(t, c.Save(p))
	d, err := LoadCache(p, id)
	must(t, err)
	if d.Len() != 100 {
		t.Fatalf("%d entries", d.Len())
	}
	for i := range 100 {
		st := unix.Stat_t{Size: int64(i), Ino: uint64(i + 1), Dev: 7}
		st.Mtim = unix.NsecToTimespec(-int64(i)*1e9 + 5)
		ids, xa, _, ok := d.lookup("/f/"+strconv.Itoa(i), &st)
		if !ok || len(ids) != i%3 || (i%10 == 0) != (len(xa) == 2) {
			t.Fatalf("entry %d: %v %v %v", i, ok, ids, xa)
		}
		if len(ids) > 0 && ids[0][0] != byte(i) {
			t.Fatalf("entry %d: ids %v", i, ids)
		}
		st.Ino++
		if _, _, _, ok := d.lookup("/f/"+strconv.Itoa(i), &st); ok {
			t.Fatalf("entry %d matched another inode", i)
		}
	}

	// Another repository's cache is ignored silently.
	if c, err := LoadCache(p, "other"); err != nil || c.Len() != 0 {
		t.Errorf("other repository: %v, %d entries", err, c.Len())
	}
	// Read before the repository is known (ReadCache), it is kept only
	// for its own repository.
	unowned, err := ReadCache(p)
	if err != nil || unowned.Len() != d.Len() {
		t.Fatalf("ReadCache: %v, %d entries, want %d", err, unowned.Len(), d.Len())
	}
	if c := unowned.For(id); c.Len() != d.Len() {
		t.Errorf("ReadCache then For(own id): %d entries, want %d", c.Len(), d.Len())
	}
	if c := unowned.For("other"); c.Len() != 0 {
		t.Errorf("ReadCache then For(other id): %d entries", c.Len())
	}
	if c, err := ReadCache(filepath.Join(dir, "missing")); err != nil || c.For(id).Len() != 0 {
		t.Errorf("ReadCache of a missing file: %v", err)
	}

	// Damage anywhere is an error, with an empty cache.
	good, err := os.ReadFile(p)
	must(t, err)
	// (A flip inside the repository id reads as "another repository".)
	for _, off := range []int{0, 9, 50, len(good) / 2, len(good) - 1} {
		bad := slices.Clone(good)
		bad[off] ^= 0x40
		must(t, os.WriteFile(p, bad, 0o600))
		if c, err := LoadCache(p, id); err == nil || c == nil || c.Len() != 0 {
			t.Errorf("flipped byte at %d: err %v", off, err)
		}
	}
	must(t, os.WriteFile(p, good[:len(good)-40], 0o600))
	if _, err := LoadCache(p, id); err == nil {
		t.Error("truncated file: no error")
	}
	must(t, os.WriteFile(p, append(slices.Clone(good), 0), 0o600))
	if _, err := LoadCache(p, id); err == nil {
		t.Error("trailing byte: no error")
	}
	// No temporary files are left behind.
	ents, err := os.ReadDir(dir)
	must(t, err)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries", len(ents))
	}
}

// A run that finds most files unchanged keeps their entries by reference;
// the cache it saves is byte for byte the one a run that read every file
// would save, and it finds every current file, not the deleted one.
func TestReusedCacheEntriesSaveLikeFreshOnes(t *testing.T) {
	r := newTestRepo(t, false)
	root, files := cacheFixture(t)
	spec := TreeSpec{Root: root}
	_, a1 := backup(t, r, Options{}, spec)
	dir := t.TempDir()
	must(t, a1.NewCache().Save(filepath.Join(dir, "1")))
	old, err := LoadCache(filepath.Join(dir, "1"), r.Config().ID)
	must(t, err)

	// One file changes, one goes, one comes.
	writeFile(t, files[5], textBytes(99, 3000), 0o644)
	must(t, os.Remove(files[6]))
	added := filepath.Join(root, "d0", "new")
	writeFile(t, added, textBytes(100, 2000), 0o644)

	_, a2 := backup(t, r, Options{Cache: old}, spec)
	if st := a2.Stats(); st.FilesCached != uint64(len(files)-2) {
		t.Fatalf("cached %d files, want %d", st.FilesCached, len(files)-2)
	}
	must(t, a2.NewCache().Save(filepath.Join(dir, "2")))
	_, a3 := backup(t, r, Options{Full: true}, spec)
	must(t, a3.NewCache().Save(filepath.Join(dir, "3")))
	b2, err := os.ReadFile(filepath.Join(dir, "2"))
	must(t, err)
	b3, err := os.ReadFile(filepath.Join(dir, "3"))
	must(t, err)
	if !bytes.Equal(b2, b3) {
		t.Fatalf("the cache saved with reused entries (%d bytes) differs from a fresh one (%d bytes)", len(b2), len(b3))
	}
	c, err := LoadCache(filepath.Join(dir, "2"), r.Config().ID)
	must(t, err)
	if c.Len() != len(files) {
		t.Fatalf("saved cache has %d entries, want %d", c.Len(), len(files))
	}
	for _, p := range append(slices.Clone(files), added) {
		var st unix.Stat_t
		err := unix.Lstat(p, &st)
		_, _, _, ok := c.lookup(p, &st)
		if (err == nil) != ok {
			t.Errorf("%s: in the cache %v, on disk %v", p, ok, err == nil)
		}
	}
	// The cache can also be used in this process without saving it.
	if n := a2.NewCache().Len(); n != len(files) {
		t.Errorf("in-process cache has %d entries", n)
	}
}
