package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backup-runner/runner/internal/repo/chunker"
	"github.com/backup-runner/runner/internal/repo/crypt"
	"github.com/backup-runner/runner/internal/repo/local"
	"github.com/backup-runner/runner/internal/repo/pack"
)

var testPass = []byte("correct horse battery staple")

func testInitOptions(encrypted bool) InitOptions {
	o := InitOptions{ChunkMin: 1 << 10, ChunkAvg: 4 << 10, ChunkMax: 16 << 10, PackSize: 64 << 10,
		KDF: &crypt.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}}
	if encrypted {
		o.Passphrase = testPass
	} else {
		o.Unencrypted = true
	}
	return o
}

func newStore(t testing.TB) *local.Store {
	t.Helper()
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func initRepo(t testing.TB, st Storage, encrypted bool) {
	t.Helper()
	if err := Init(context.Background(), st, testInitOptions(encrypted)); err != nil {
		t.Fatal(err)
	}
}

func openRepo(t testing.TB, st Storage, encrypted bool, mode LockMode) *Repository {
	t.Helper()
	o := OpenOptions{Lock: mode, TempDir: t.TempDir()}
	if encrypted {
		o.Passphrase = testPass
	}
	r, err := Open(context.Background(), st, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

func forBoth(t *testing.T, f func(t *testing.T, encrypted bool)) {
	for _, enc := range []bool{false, true} {
		t.Run(fmt.Sprintf("encrypted=%v", enc), func(t *testing.T) { f(t, enc) })
	}
}

func randBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// compressible returns text-like data that zstd shrinks.
func compressible(seed int64, n int) []byte {
	rng := rand.New(rand.NewSource(seed))
	words := []string{"backup ", "runner ", "repository ", "chunk ", "pack ", "index ", "snapshot\n"}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[rng.Intn(len(words))])
	}
	return b.Bytes()[:n]
}

// countingStorage counts bytes uploaded to data/ (pack data).
type countingStorage struct {
	Storage
	packBytes atomic.Int64
	puts      atomic.Int64
}

func (c *countingStorage) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if strings.HasPrefix(name, dataPrefix) {
		c.packBytes.Add(size)
	}
	c.puts.Add(1)
	return c.Storage.Put(ctx, name, r, size)
}

func TestInitTwiceAndOpenErrors(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	if _, err := Open(ctx, st, OpenOptions{}); !errors.Is(err, ErrNoRepository) {
		t.Fatalf("open before init: %v", err)
	}
	if err := Init(ctx, st, InitOptions{}); err == nil {
		t.Fatal("init without passphrase and without Unencrypted accepted")
	}
	initRepo(t, st, true)
	if err := Init(ctx, st, testInitOptions(true)); !errors.Is(err, ErrRepositoryExists) {
		t.Fatalf("second init: %v", err)
	}
	if _, err := Open(ctx, st, OpenOptions{Passphrase: []byte("wrong")}); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := Open(ctx, st, OpenOptions{}); err == nil || !strings.Contains(err.Error(), "no passphrase") {
		t.Fatalf("missing passphrase: %v", err)
	}
	r := openRepo(t, st, true, LockNone)
	if c := r.Config(); !c.Encrypted || c.Params.Hash != hashKeyed || c.Params.Chunker.Seed == strings.Repeat("0", 64) {
		t.Fatalf("config of an encrypted repository: %+v", c)
	}
	if _, _, err := r.SaveBlob(ctx, DataBlob, []byte("x")); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("save without lock: %v", err)
	}
}

func TestRoundTripAndDedup(t *testing.T) {
	forBoth(t, func(t *testing.T, enc bool) {
		ctx := context.Background()
		st := &countingStorage{Storage: newStore(t)}
		initRepo(t, st, enc)
		r := openRepo(t, st, enc, LockShared)

		blobs := [][]byte{randBytes(1, 5000), compressible(2, 9000), {}, []byte("tiny")}
		for i := 0; i < 40; i++ {
			blobs = append(blobs, randBytes(int64(100+i), 3000+i*100))
		}
		ids := make([]ID, len(blobs))
		for i, b := range blobs {
			id, stored, err := r.SaveBlob(ctx, DataBlob, b)
			if err != nil || !stored {
				t.Fatalf("save %d: stored=%v err=%v", i, stored, err)
			}
			ids[i] = id
		}
		// Saving again deduplicates, whether the blob is in an uploaded
		// pack or still in the one being written.
		for i, b := range blobs {
			if id, stored, err := r.SaveBlob(ctx, DataBlob, b); err != nil || stored || id != ids[i] {
				t.Fatalf("resave %d: id=%v stored=%v err=%v", i, id, stored, err)
			}
		}
		// The same bytes as a tree blob are a different blob.
		if _, stored, err := r.SaveBlob(ctx, TreeBlob, blobs[0]); err != nil || !stored {
			t.Fatalf("tree with data bytes: stored=%v err=%v", stored, err)
		}
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		uploaded := st.packBytes.Load()

		r2 := openRepo(t, st, enc, LockShared)
		for i, b := range blobs {
			got, err := r2.LoadBlob(ctx, DataBlob, ids[i], nil)
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("load %d: %d bytes, err=%v", i, len(got), err)
			}
			if _, stored, err := r2.SaveBlob(ctx, DataBlob, b); err != nil || stored {
				t.Fatalf("resave after reopen %d: stored=%v err=%v", i, stored, err)
			}
		}
		if err := r2.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if st.packBytes.Load() != uploaded {
			t.Fatalf("deduplicated saves uploaded %d more pack bytes", st.packBytes.Load()-uploaded)
		}
		if _, err := r2.LoadBlob(ctx, DataBlob, ID{1}, nil); !errors.Is(err, ErrBlobNotFound) {
			t.Fatalf("missing blob: %v", err)
		}
		// Unencrypted ids are plain BLAKE3 (anyone can verify them); keyed
		// ones must differ.
		plain := ID(hashBytes(blobs[0]))
		if (ids[0] == plain) == enc {
			t.Fatalf("encrypted=%v but blob id keyed=%v", enc, ids[0] != plain)
		}
	})
}

func TestCompressionChoice(t *testing.T) {
	forBoth(t, func(t *testing.T, enc bool) {
		ctx := context.Background()
		st := newStore(t)
		initRepo(t, st, enc)
		r := openRepo(t, st, enc, LockShared)
		random := randBytes(7, 8000)
		text := compressible(8, 8000)
		idR, _, _ := r.SaveBlob(ctx, DataBlob, random)
		idT, _, _ := r.SaveBlob(ctx, DataBlob, text)
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		overhead := uint32(0)
		if enc {
			overhead = crypt.Overhead
		}
		_, locR, _ := r.idx.lookup(BlobHandle{DataBlob, idR})
		_, locT, _ := r.idx.lookup(BlobHandle{DataBlob, idT})
		if locR.comp != pack.CompressionNone || locR.length != uint32(len(random))+overhead {
			t.Fatalf("incompressible blob: compression %d, stored %d", locR.comp, locR.length)
		}
		if locT.comp != pack.CompressionZstd || locT.length >= uint32(len(text))/2 {
			t.Fatalf("text blob: compression %d, stored %d of %d", locT.comp, locT.length, len(text))
		}
		for id, want := range map[ID][]byte{idR: random, idT: text} {
			if got, err := r.LoadBlob(ctx, DataBlob, id, nil); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("load: %v", err)
			}
		}
	})
}

func TestNoCompression(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	o := testInitOptions(false)
	o.CompressionLevel = -1
	if err := Init(ctx, st, o); err != nil {
		t.Fatal(err)
	}
	r := openRepo(t, st, false, LockShared)
	text := compressible(9, 5000)
	id, _, _ := r.SaveBlob(ctx, DataBlob, text)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, loc, _ := r.idx.lookup(BlobHandle{DataBlob, id}); loc.comp != pack.CompressionNone {
		t.Fatal("compressed although compression is off")
	}
}

func TestConcurrentSaveBlob(t *testing.T) {
	forBoth(t, func(t *testing.T, enc bool) {
		ctx := context.Background()
		st := &countingStorage{Storage: newStore(t)}
		initRepo(t, st, enc)
		r := openRepo(t, st, enc, LockShared)
		// 8 workers save overlapping sets: every blob must end up stored
		// exactly once.
		const n = 200
		data := make([][]byte, n)
		for i := range data {
			data[i] = randBytes(int64(i), 2000+i)
		}
		var storedCount atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < n; i++ {
					_, stored, err := r.SaveBlob(ctx, DataBlob, data[(i+w*25)%n])
					if err != nil {
						t.Error(err)
						return
					}
					if stored {
						storedCount.Add(1)
					}
				}
			}(w)
		}
		wg.Wait()
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if storedCount.Load() != n {
			t.Fatalf("%d blobs stored, want %d", storedCount.Load(), n)
		}
		r2 := openRepo(t, st, enc, LockNone)
		total := len(r2.idx.sorted) + len(r2.idx.recent)
		if total != n {
			t.Fatalf("index has %d blobs, want %d", total, n)
		}
		for i := range data {
			if got, err := r2.LoadBlob(ctx, DataBlob, r2.blobID(data[i]), nil); err != nil || !bytes.Equal(got, data[i]) {
				t.Fatalf("load %d: %v", i, err)
			}
		}
	})
}

// TestInterruptedBackupIsReused: packs uploaded but no index and no
// snapshot (a crash) are found by the next Open, and saving the same data
// again uploads nothing.
func TestInterruptedBackupIsReused(t *testing.T) {
	forBoth(t, func(t *testing.T, enc bool) {
		ctx := context.Background()
		st := &countingStorage{Storage: newStore(t)}
		initRepo(t, st, enc)
		r, err := Open(ctx, st, OpenOptions{Passphrase: passFor(enc), Lock: LockShared, CheckpointPacks: 1000, TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		var blobs [][]byte
		for i := 0; i < 60; i++ {
			blobs = append(blobs, randBytes(int64(i), 4000))
			if _, _, err := r.SaveBlob(ctx, DataBlob, blobs[i]); err != nil {
				t.Fatal(err)
			}
		}
		// "Crash": no Flush, so no index and the last pack never uploaded.
		_ = r.Close(ctx)
		uploaded := st.packBytes.Load()
		if uploaded == 0 {
			t.Fatal("test needs some packs uploaded before the crash")
		}
		if n, _ := countObjects(ctx, st, indexPrefix); n != 0 {
			t.Fatalf("%d index objects exist; the test wants none", n)
		}

		r2 := openRepo(t, st, enc, LockShared)
		reused := 0
		for _, b := range blobs {
			_, stored, err := r2.SaveBlob(ctx, DataBlob, b)
			if err != nil {
				t.Fatal(err)
			}
			if !stored {
				reused++
			}
		}
		if reused == 0 {
			t.Fatal("nothing reused from the interrupted run")
		}
		before := st.packBytes.Load()
		if err := r2.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		// Only the blobs of the never-uploaded last pack were stored again.
		if added := st.packBytes.Load() - uploaded; added > 64<<10+8<<10 {
			t.Fatalf("second run uploaded %d pack bytes; expected at most one pack", added)
		}
		_ = before
		// The recovered packs are now in an index: a third open needs no
		// recovery and finds everything.
		r3 := openRepo(t, st, enc, LockNone)
		for _, b := range blobs {
			if !r3.HasBlob(DataBlob, r3.blobID(b)) {
				t.Fatal("blob missing from the index after recovery and flush")
			}
		}
		if n, err := r3.Recover(ctx); err != nil || n != 0 {
			t.Fatalf("Recover after flush found %d packs, err %v", n, err)
		}
	})
}

func passFor(enc bool) []byte {
	if enc {
		return testPass
	}
	return nil
}

func countObjects(ctx context.Context, st Storage, prefix string) (int, error) {
	n := 0
	err := st.List(ctx, prefix, func(ObjectInfo) error { n++; return nil })
	return n, err
}

func TestTreesAndSnapshots(t *testing.T) {
	forBoth(t, func(t *testing.T, enc bool) {
		ctx := context.Background()
		st := newStore(t)
		initRepo(t, st, enc)
		r := openRepo(t, st, enc, LockShared)
		c1, _, _ := r.SaveBlob(ctx, DataBlob, []byte("file one"))
		emptyDir, err := r.SaveTree(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		nodes := []Node{
			{Name: "zeta", Type: NodeSymlink, Mode: 0o777, LinkTarget: "alpha"},
			{Name: "alpha", Type: NodeFile, Mode: 0o644, UID: 1000, GID: 1000, User: "u", Group: "g", ModTime: 1700000000123456789, ChangeTime: -5, Size: 8, Content: []ID{c1},
				Xattrs: []Xattr{{Name: "user.b", Value: []byte{0}}, {Name: "user.a", Value: []byte("v")}}, Device: 2049, Inode: 77, Links: 2},
			{Name: "empty", Type: NodeDir, Mode: 0o755, Subtree: emptyDir},
			{Name: "bad\xffutf8", Type: NodeFIFO, Mode: 0o600},
		}
		root, err := r.SaveTree(ctx, nodes)
		if err != nil {
			t.Fatal(err)
		}
		// Order of the input does not matter: identical directories dedupe.
		rev := append([]Node{}, nodes[3], nodes[2], nodes[1], nodes[0])
		if root2, err := r.SaveTree(ctx, rev); err != nil || root2 != root {
			t.Fatalf("same directory in another order: %v %v", root2, err)
		}
		sn := &Snapshot{Job: "site", Host: "h1", Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Role: "primary",
			Items:  []Item{{Name: "files", Kind: ItemTree, Tree: root}, {Name: "db", Kind: ItemStream, Content: []ID{c1, c1}, Size: 16}},
			Source: map[string]string{"binlog": "mysql-bin.000003:154"}, Tags: []string{"nightly"}, Partial: true,
			Summary: Summary{Files: 1, Errors: 1}}
		id, err := r.SaveSnapshot(ctx, sn)
		if err != nil {
			t.Fatal(err)
		}
		bad := &Snapshot{Job: "x", Time: time.Now(), Items: []Item{{Name: "f", Kind: ItemTree, Tree: ID{9}}}}
		if _, err := r.SaveSnapshot(ctx, bad); !errors.Is(err, ErrBlobNotFound) {
			t.Fatalf("snapshot with a dangling root: %v", err)
		}

		r2 := openRepo(t, st, enc, LockShared)
		list, err := r2.ListSnapshots(ctx)
		if err != nil || len(list) != 1 || list[0].ID != id {
			t.Fatalf("ListSnapshots = %v, %v", list, err)
		}
		got := list[0]
		if got.Job != "site" || !got.Time.Equal(sn.Time) || got.Items[0].Tree != root || got.Source["binlog"] == "" || !got.Partial || got.Items[1].Size != 16 {
			t.Fatalf("snapshot round trip: %+v", got)
		}
		if found, err := r2.FindSnapshot(ctx, id.String()[:8]); err != nil || found != id {
			t.Fatalf("FindSnapshot: %v %v", found, err)
		}
		loaded, err := r2.LoadTree(ctx, root)
		if err != nil {
			t.Fatal(err)
		}
		if len(loaded) != 4 || loaded[0].Name != "alpha" || loaded[0].Xattrs[0].Name != "user.a" || loaded[0].ModTime != nodes[1].ModTime || loaded[1].Name != "bad\xffutf8" {
			t.Fatalf("tree round trip: %+v", loaded)
		}
		if err := r2.DeleteSnapshot(ctx, id); err != nil {
			t.Fatal(err)
		}
		if list, _ := r2.ListSnapshots(ctx); len(list) != 0 {
			t.Fatal("snapshot still listed after delete")
		}
	})
}

func TestInvalidTrees(t *testing.T) {
	for name, nodes := range map[string][]Node{
		"slash in name":   {{Name: "a/b", Type: NodeFile}},
		"dot dot":         {{Name: "..", Type: NodeFile}},
		"dir no subtree":  {{Name: "d", Type: NodeDir}},
		"file subtree":    {{Name: "f", Type: NodeFile, Subtree: ID{1}}},
		"symlink no dest": {{Name: "l", Type: NodeSymlink}},
		"duplicate":       {{Name: "f", Type: NodeFile}, {Name: "f", Type: NodeFile}},
		"mode":            {{Name: "f", Type: NodeFile, Mode: 0o170000}},
		"dup xattr":       {{Name: "f", Type: NodeFile, Xattrs: []Xattr{{Name: "a"}, {Name: "a"}}}},
	} {
		if _, err := EncodeTree(nodes); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodeTree(f *testing.F) {
	seed, _ := EncodeTree([]Node{
		{Name: "a", Type: NodeFile, Mode: 0o644, Content: []ID{{1}, {2}}, Xattrs: []Xattr{{Name: "user.x", Value: []byte("y")}}},
		{Name: "d", Type: NodeDir, Subtree: ID{3}},
		{Name: "l", Type: NodeSymlink, LinkTarget: "/etc", ModTime: -1},
	})
	f.Add(seed)
	f.Add([]byte(treeMagic + "\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		nodes, err := DecodeTree(b)
		if err != nil {
			return
		}
		again, err := EncodeTree(nodes)
		if err != nil {
			t.Fatalf("decoded tree does not re-encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatal("encoding is not canonical: decode/encode changed the bytes")
		}
	})
}

func FuzzDecodeIndex(f *testing.F) {
	f.Add(encodeIndex([]indexPack{{ID: ID{1}, Entries: []pack.Entry{{Type: 1, Length: 10, RawLength: 10, ID: [32]byte{2}}}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		packs, err := decodeIndex(b)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeIndex(packs), b) {
			t.Fatal("index does not re-encode to the same bytes")
		}
	})
}

var _ = chunker.DefaultMin

// LoadBlob decodes into the caller's buffer and hands it back whole
// (compressed or not, sealed or not), so that a restore worker reusing it
// does not allocate for every larger chunk.
func TestLoadBlobKeepsTheBuffer(t *testing.T) {
	forBoth(t, func(t *testing.T, enc bool) {
		ctx := context.Background()
		st := newStore(t)
		initRepo(t, st, enc)
		r := openRepo(t, st, enc, LockShared)
		blobs := [][]byte{compressible(3, 9000), randBytes(4, 5000)}
		ids := make([]ID, len(blobs))
		for i, b := range blobs {
			id, _, err := r.SaveBlob(ctx, DataBlob, b)
			if err != nil {
				t.Fatal(err)
			}
			ids[i] = id
		}
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 0, 64<<10)
		for i, b := range blobs {
			got, err := r.LoadBlob(ctx, DataBlob, ids[i], buf)
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("blob %d: %d bytes, err=%v", i, len(got), err)
			}
			if cap(got) != cap(buf) || &got[0] != &buf[:1][0] {
				t.Fatalf("blob %d: came back in a buffer of %d bytes, not the caller's %d", i, cap(got), cap(buf))
			}
		}
	})
}
