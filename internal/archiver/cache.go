//go:build linux

package archiver

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"

	"github.com/backup-runner/runner/internal/buckets"
	"github.com/backup-runner/runner/internal/repo"
)

// Change cache file format (little-endian, varints as in
// docs/REPOSITORY.md):
//
//	"RUNRCACH" | version u32le (= 1) | uvarint len + repository id | uvarint entry count |
//	entries, sorted by key, keys unique |
//	BLAKE3-256 of all the preceding bytes
//
//	entry: key (16 bytes) | uvarint size | varint mtime ns | varint ctime ns |
//	       uvarint inode | uvarint device | uvarint n | n x 32-byte data blob ids |
//	       uvarint xattr count | per xattr: uvarint len + name, uvarint len + value
//
// The key is the first 16 bytes of BLAKE3(absolute path): fixed-size keys
// keep the in-memory cache at about 80 bytes per file plus 32 per chunk,
// whatever the path lengths, and a false match would also need equal
// size, times, inode and device.
const (
	cacheMagic   = "RUNRCACH"
	cacheVersion = 1
)

// cacheEntry is one file. Content ids live in the Cache's arena (one
// allocation for all files instead of a slice each).
type cacheEntry struct {
	key          [16]byte
	size         uint64
	mtime, ctime int64
	ino, dev     uint64
	off, n       uint32 // content: ids[off : off+n]
	xa           uint32 // 0: no xattrs; else xattrs[xa-1]
}

// Cache is a change cache: for each file of a previous run, what its stat
// looked like and which chunks it had, so that an unchanged file costs one
// stat instead of a read. A Cache belongs to one repository.
type Cache struct {
	repoID string

	mu     sync.Mutex
	ents   []cacheEntry
	ids    []repo.ID
	xattrs [][]repo.Xattr
	sorted bool // ents sorted by key, keys unique (lookups allowed)
	// starts[k] is the first entry whose key's top bucketBits bits are k
	// or more; built by freeze. Keys are uniformly random, so a lookup
	// searches a handful of entries instead of all of them (most of its
	// cost was cache misses).
	starts     []uint32
	bucketBits uint

	// base and reused hold, by reference, the entries of the previous
	// run's cache for files found unchanged: in a run where little
	// changed, copying them would double the caches' memory for nothing.
	// They are merged in by Save (streaming) or by freezeLocked (when the
	// cache is looked up in this process).
	base   *Cache
	reused []uint32 // indexes into base.ents
}

func newCache(repoID string) *Cache { return &Cache{repoID: repoID, sorted: true} }

// Len returns the number of files in the cache.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.freezeLocked()
	return len(c.ents)
}

func cacheKey(path string) (k [16]byte) {
	// Hashed from a copy on the stack: converting the path allocated, for
	// every file of every run.
	var buf [512]byte
	b := buf[:0]
	if len(path) <= len(buf) {
		b = append(b, path...)
	} else {
		b = []byte(path)
	}
	h := blake3.Sum256(b)
	copy(k[:], h[:])
	return k
}

// add records a file. Safe for concurrent use.
func (c *Cache) add(path string, st *unix.Stat_t, ids []repo.ID, xa []repo.Xattr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if uint64(len(c.ids))+uint64(len(ids)) > math.MaxUint32 || uint64(len(c.xattrs)) >= math.MaxUint32-1 {
		return // absurdly large: the file is simply read next time
	}
	e := cacheEntry{
		key: cacheKey(path), size: uint64(st.Size),
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(),
		ino: uint64(st.Ino), dev: uint64(st.Dev),
		off: uint32(len(c.ids)), n: uint32(len(ids)),
	}
	c.ids = append(c.ids, ids...)
	if len(xa) > 0 {
		c.xattrs = append(c.xattrs, xa)
		e.xa = uint32(len(c.xattrs))
	}
	c.ents = append(c.ents, e)
	c.sorted, c.starts = false, nil
}

// reuse records a file whose previous entry, base.ents[i], still holds
// (same stat, chunks still stored): by reference, not by copy. base must
// be frozen and not change; all reused entries come from one base.
func (c *Cache) reuse(base *Cache, i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.base != nil && c.base != base {
		e := base.ents[i]
		var xa []repo.Xattr
		if e.xa > 0 {
			xa = base.xattrs[e.xa-1]
		}
		c.addEntryLocked(e, base.ids[e.off:e.off+e.n], xa)
		return
	}
	c.base = base
	c.reused = append(c.reused, uint32(i))
	c.sorted, c.starts = false, nil
}

// addEntryLocked appends a copy of e with its ids and xattrs.
func (c *Cache) addEntryLocked(e cacheEntry, ids []repo.ID, xa []repo.Xattr) {
	if uint64(len(c.ids))+uint64(len(ids)) > math.MaxUint32 || uint64(len(c.xattrs)) >= math.MaxUint32-1 {
		return
	}
	e.off, e.n, e.xa = uint32(len(c.ids)), uint32(len(ids)), 0
	c.ids = append(c.ids, ids...)
	if len(xa) > 0 {
		c.xattrs = append(c.xattrs, xa)
		e.xa = uint32(len(c.xattrs))
	}
	c.ents = append(c.ents, e)
	c.sorted, c.starts = false, nil
}

// materializeLocked copies the reused entries in, so that the cache stands
// alone (for lookups).
func (c *Cache) materializeLocked() {
	for _, i := range c.reused {
		e := c.base.ents[i]
		var xa []repo.Xattr
		if e.xa > 0 {
			xa = c.base.xattrs[e.xa-1]
		}
		c.addEntryLocked(e, c.base.ids[e.off:e.off+e.n], xa)
	}
	c.reused, c.base = nil, nil
}

func (c *Cache) freeze() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.freezeLocked()
}

// freezeLocked sorts the entries by key; of entries with the same key (a
// file captured twice in one run) the last one added wins.
func (c *Cache) freezeLocked() {
	if len(c.reused) > 0 {
		c.materializeLocked()
	}
	if c.sorted {
		c.buildBuckets()
		return
	}
	slices.SortStableFunc(c.ents, func(a, b cacheEntry) int { return bytes.Compare(a.key[:], b.key[:]) })
	out := c.ents[:0]
	for i, e := range c.ents {
		if i+1 < len(c.ents) && c.ents[i+1].key == e.key {
			continue
		}
		out = append(out, e)
	}
	c.ents = out
	c.sorted = true
	c.buildBuckets()
}

// buildBuckets builds starts for the sorted entries: about four entries
// per bucket.
func (c *Cache) buildBuckets() {
	c.bucketBits = buckets.Bits(len(c.ents), 20)
	c.starts = buckets.Starts(len(c.ents), 1<<c.bucketBits, func(i int) int { return int(c.bucketOf(&c.ents[i].key)) })
}

func (c *Cache) bucketOf(k *[16]byte) uint32 {
	return binary.BigEndian.Uint32(k[:4]) >> (32 - c.bucketBits)
}

// lookup returns the content and xattrs of path if its cached stat matches
// st, and the entry's index (for reuse). The cache must be frozen; lookups
// then need no lock.
func (c *Cache) lookup(path string, st *unix.Stat_t) ([]repo.ID, []repo.Xattr, int, bool) {
	k := cacheKey(path)
	lo, hi := 0, len(c.ents)
	if c.starts != nil {
		b := c.bucketOf(&k)
		lo, hi = int(c.starts[b]), int(c.starts[b+1])
	}
	i, ok := slices.BinarySearchFunc(c.ents[lo:hi], k, func(e cacheEntry, k [16]byte) int { return bytes.Compare(e.key[:], k[:]) })
	if !ok {
		return nil, nil, 0, false
	}
	i += lo
	e := &c.ents[i]
	if e.size != uint64(st.Size) || e.mtime != st.Mtim.Nano() || e.ctime != st.Ctim.Nano() || e.ino != uint64(st.Ino) || e.dev != uint64(st.Dev) {
		return nil, nil, 0, false
	}
	var xa []repo.Xattr
	if e.xa > 0 {
		xa = c.xattrs[e.xa-1]
	}
	// The full slice expression stops an append from writing into the
	// next file's ids.
	return c.ids[e.off : e.off+e.n : e.off+e.n], xa, i, true
}

// LoadCache reads a cache file. A missing file, or one written for another
// repository, gives an empty cache and no error (every file is read). A
// damaged file gives an empty cache and an error the caller should log:
// the backup still works, it only reads everything. repoID "" accepts the
// cache of any repository (ReadCache).
func LoadCache(path, repoID string) (*Cache, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newCache(repoID), nil
	}
	if err != nil {
		return newCache(repoID), fmt.Errorf("change cache %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return newCache(repoID), fmt.Errorf("change cache %s: %w", path, err)
	}
	c, err := readCache(bufio.NewReaderSize(f, 256<<10), fi.Size(), repoID)
	if err != nil {
		return newCache(repoID), fmt.Errorf("change cache %s: %w", path, err)
	}
	return c, nil
}

// ReadCache reads a cache file whatever repository it was written for, so
// that it can be read before the repository is open (and its id known):
// Cache.For then keeps it only if it is that repository's. Like LoadCache,
// it gives an empty cache for a missing file, and with an error for a
// damaged one.
func ReadCache(path string) (*Cache, error) { return LoadCache(path, "") }

// For returns c if it is the cache of repository repoID, else an empty
// cache for it.
func (c *Cache) For(repoID string) *Cache {
	if c.repoID != repoID || repoID == "" {
		return newCache(repoID)
	}
	return c
}

var errCacheCorrupt = errors.New("damaged cache file")

// errOtherRepo ends a read early: the cache is valid but not ours.
var errOtherRepo = errors.New("cache of another repository")

func readCache(br *bufio.Reader, size int64, repoID string) (*Cache, error) {
	hr := &hashReader{r: br, h: blake3.New()}
	c, err := decodeCache(hr, size, repoID)
	if errors.Is(err, errOtherRepo) {
		return newCache(repoID), nil
	}
	if err != nil {
		return nil, err
	}
	sum := hr.sum()
	var trailer [32]byte
	if _, err := io.ReadFull(br, trailer[:]); err != nil {
		return nil, fmt.Errorf("%w: no checksum: %w", errCacheCorrupt, err)
	}
	if !bytes.Equal(sum, trailer[:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", errCacheCorrupt)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: trailing bytes", errCacheCorrupt)
	}
	return c, nil
}

func decodeCache(hr *hashReader, size int64, repoID string) (*Cache, error) {
	var magic [8]byte
	if err := hr.full(magic[:]); err != nil || string(magic[:]) != cacheMagic {
		return nil, fmt.Errorf("%w: bad magic", errCacheCorrupt)
	}
	var v [4]byte
	if err := hr.full(v[:]); err != nil {
		return nil, fmt.Errorf("%w: %w", errCacheCorrupt, err)
	}
	if ver := binary.LittleEndian.Uint32(v[:]); ver != cacheVersion {
		return nil, fmt.Errorf("unsupported cache version %d", ver)
	}
	id, err := hr.bytes(256)
	if err != nil {
		return nil, err
	}
	if repoID == "" {
		repoID = string(id)
	} else if string(id) != repoID {
		return nil, errOtherRepo
	}
	count, err := hr.uvarint()
	if err != nil {
		return nil, err
	}
	// An entry takes at least 24 bytes: do not let a damaged count
	// allocate more than the file could hold.
	if count > uint64(size)/24 {
		return nil, fmt.Errorf("%w: %d entries cannot fit in %d bytes", errCacheCorrupt, count, size)
	}
	c := newCache(repoID)
	c.ents = make([]cacheEntry, 0, count)
	for range count {
		var e cacheEntry
		if err := hr.full(e.key[:]); err != nil {
			return nil, fmt.Errorf("%w: %w", errCacheCorrupt, err)
		}
		var f [6]uint64 // size, mtime, ctime, inode, device, id count
		for i := range f {
			if f[i], err = hr.uvarint(); err != nil {
				return nil, err
			}
		}
		e.size, e.ino, e.dev = f[0], f[3], f[4]
		e.mtime, e.ctime = unzigzag(f[1]), unzigzag(f[2])
		n := f[5]
		if n > uint64(size)/32 || uint64(len(c.ids))+n > math.MaxUint32 {
			return nil, fmt.Errorf("%w: %d chunk ids", errCacheCorrupt, n)
		}
		e.off, e.n = uint32(len(c.ids)), uint32(n)
		for range n {
			var id repo.ID
			if err := hr.full(id[:]); err != nil {
				return nil, fmt.Errorf("%w: %w", errCacheCorrupt, err)
			}
			c.ids = append(c.ids, id)
		}
		nx, err := hr.uvarint()
		if err != nil {
			return nil, err
		}
		if nx > uint64(size)/2 {
			return nil, fmt.Errorf("%w: %d xattrs", errCacheCorrupt, nx)
		}
		if nx > 0 {
			xa := make([]repo.Xattr, 0, nx)
			for range nx {
				name, err := hr.bytes(64 << 10)
				if err != nil {
					return nil, err
				}
				val, err := hr.bytes(64 << 20)
				if err != nil {
					return nil, err
				}
				xa = append(xa, repo.Xattr{Name: string(name), Value: val})
			}
			c.xattrs = append(c.xattrs, xa)
			e.xa = uint32(len(c.xattrs))
		}
		if k := len(c.ents); k > 0 && bytes.Compare(c.ents[k-1].key[:], e.key[:]) >= 0 {
			return nil, fmt.Errorf("%w: entries out of order", errCacheCorrupt)
		}
		c.ents = append(c.ents, e)
	}
	return c, nil
}

func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// hashReader reads through a bufio.Reader and hashes what it consumes.
// Bytes are hashed in batches: a hash call per varint byte would cost more
// than the parsing.
type hashReader struct {
	r       *bufio.Reader
	h       *blake3.Hasher
	pending []byte
}

func (h *hashReader) flush() {
	_, _ = h.h.Write(h.pending)
	h.pending = h.pending[:0]
}

func (h *hashReader) sum() []byte {
	h.flush()
	return h.h.Sum(nil)
}

func (h *hashReader) ReadByte() (byte, error) {
	b, err := h.r.ReadByte()
	if err != nil {
		return 0, err
	}
	h.pending = append(h.pending, b)
	if len(h.pending) >= 4096 {
		h.flush()
	}
	return b, nil
}

func (h *hashReader) full(p []byte) error {
	h.flush()
	if _, err := io.ReadFull(h.r, p); err != nil {
		return err
	}
	_, _ = h.h.Write(p)
	return nil
}

func (h *hashReader) uvarint() (uint64, error) {
	v, err := binary.ReadUvarint(h)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errCacheCorrupt, err)
	}
	return v, nil
}

func (h *hashReader) bytes(limit uint64) ([]byte, error) {
	n, err := h.uvarint()
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("%w: field of %d bytes", errCacheCorrupt, n)
	}
	b := make([]byte, n)
	if err := h.full(b); err != nil {
		return nil, fmt.Errorf("%w: %w", errCacheCorrupt, err)
	}
	return b, nil
}

// Save writes the cache to path atomically: a temporary file in the same
// directory, fsync, rename, fsync of the directory. A crash leaves the old
// cache or the new one, never a mix (and a torn file would fail its
// checksum anyway).
func (c *Cache) Save(path string) (err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sortOwnLocked()
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save change cache: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save change cache: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	h := blake3.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 256<<10)
	c.encode(w)
	if err = w.Flush(); err != nil {
		return fmt.Errorf("save change cache: %w", err)
	}
	if _, err = f.Write(h.Sum(nil)); err != nil {
		return fmt.Errorf("save change cache: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("save change cache: fsync: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("save change cache: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("save change cache: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("save change cache: fsync directory: %w", err)
	}
	defer func() { _ = d.Close() }()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("save change cache: fsync directory: %w", err)
	}
	return nil
}

// sortOwnLocked sorts the cache's own entries by key and the reused ones
// by index (which is key order: the base is sorted), keeping, of entries
// with one key, the last added; a reused entry whose key the cache also
// has as its own is dropped (the own one is newer).
func (c *Cache) sortOwnLocked() {
	if len(c.reused) == 0 {
		c.freezeLocked()
		return
	}
	reused, base := c.reused, c.base
	c.reused, c.base = nil, nil
	c.freezeLocked()
	c.reused, c.base = reused, base
	slices.Sort(c.reused)
	c.reused = slices.Compact(c.reused)
	out := c.reused[:0]
	for _, i := range c.reused {
		k := c.base.ents[i].key
		if _, own := slices.BinarySearchFunc(c.ents, k, func(e cacheEntry, k [16]byte) int { return bytes.Compare(e.key[:], k[:]) }); !own {
			out = append(out, i)
		}
	}
	c.reused = out
}

// encode writes everything but the checksum: the own entries and the
// reused ones merged in key order. Write errors surface at the
// bufio.Writer's Flush.
func (c *Cache) encode(w *bufio.Writer) {
	var b []byte
	b = append(b, cacheMagic...)
	b = binary.LittleEndian.AppendUint32(b, cacheVersion)
	b = binary.AppendUvarint(b, uint64(len(c.repoID)))
	b = append(b, c.repoID...)
	b = binary.AppendUvarint(b, uint64(len(c.ents)+len(c.reused)))
	_, _ = w.Write(b)
	write := func(from *Cache, e *cacheEntry) {
		b = append(b[:0], e.key[:]...)
		b = binary.AppendUvarint(b, e.size)
		b = binary.AppendVarint(b, e.mtime)
		b = binary.AppendVarint(b, e.ctime)
		b = binary.AppendUvarint(b, e.ino)
		b = binary.AppendUvarint(b, e.dev)
		b = binary.AppendUvarint(b, uint64(e.n))
		for _, id := range from.ids[e.off : e.off+e.n] {
			b = append(b, id[:]...)
		}
		var xa []repo.Xattr
		if e.xa > 0 {
			xa = from.xattrs[e.xa-1]
		}
		b = binary.AppendUvarint(b, uint64(len(xa)))
		for _, x := range xa {
			b = binary.AppendUvarint(b, uint64(len(x.Name)))
			b = append(b, x.Name...)
			b = binary.AppendUvarint(b, uint64(len(x.Value)))
			b = append(b, x.Value...)
		}
		_, _ = w.Write(b)
	}
	i, k := 0, 0
	for i < len(c.ents) || k < len(c.reused) {
		if k == len(c.reused) || (i < len(c.ents) && bytes.Compare(c.ents[i].key[:], c.base.ents[c.reused[k]].key[:]) < 0) {
			write(c, &c.ents[i])
			i++
			continue
		}
		write(c.base, &c.base.ents[c.reused[k]])
		k++
	}
}
