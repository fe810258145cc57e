package repo

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"

	"github.com/backup-runner/runner/internal/buckets"
	"github.com/backup-runner/runner/internal/repo/pack"
	"github.com/backup-runner/runner/internal/repo/storage"
)

// Index object format (plaintext, sealed as a whole when encrypted):
//
//	"RIDX" | version uint32 LE (1) | pack count uint32 LE |
//	  per pack: pack id [32] | blob count uint32 LE | blob count * pack.EntrySize
//
// Entries use the pack header's entry layout, so an index entry and the
// pack header entry it mirrors are byte-for-byte equal.
const (
	indexMagic   = "RIDX"
	indexVersion = 1
	// maxIndexBlobs is where writers start a new index object, keeping each
	// one a few MiB.
	maxIndexBlobs = 50_000
)

// indexPack is one pack and the blobs it holds.
type indexPack struct {
	ID      ID
	Entries []pack.Entry
}

func encodeIndex(packs []indexPack) []byte {
	n := 12
	for _, p := range packs {
		n += 36 + len(p.Entries)*pack.EntrySize
	}
	b := make([]byte, 0, n)
	b = append(b, indexMagic...)
	b = binary.LittleEndian.AppendUint32(b, indexVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(packs)))
	for _, p := range packs {
		b = append(b, p.ID[:]...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p.Entries)))
		for _, e := range p.Entries {
			b = pack.AppendEntry(b, e)
		}
	}
	return b
}

// decodeIndex parses an index object's plaintext. It never allocates more
// than the input's size justifies.
func decodeIndex(b []byte) ([]indexPack, error) {
	if len(b) < 12 || string(b[:4]) != indexMagic {
		return nil, fmt.Errorf("index: bad magic: %w", pack.ErrFormat)
	}
	if v := binary.LittleEndian.Uint32(b[4:]); v != indexVersion {
		return nil, fmt.Errorf("index: unsupported version %d: %w", v, pack.ErrFormat)
	}
	count := binary.LittleEndian.Uint32(b[8:])
	rest := b[12:]
	if uint64(count)*36 > uint64(len(rest)) {
		return nil, fmt.Errorf("index: %d packs cannot fit in %d bytes: %w", count, len(rest), pack.ErrFormat)
	}
	packs := make([]indexPack, 0, count)
	for i := uint32(0); i < count; i++ {
		if len(rest) < 36 {
			return nil, fmt.Errorf("index: truncated at pack %d: %w", i, pack.ErrFormat)
		}
		var p indexPack
		copy(p.ID[:], rest[:32])
		n := binary.LittleEndian.Uint32(rest[32:])
		rest = rest[36:]
		if uint64(n)*pack.EntrySize > uint64(len(rest)) {
			return nil, fmt.Errorf("index: pack %s: %d entries cannot fit: %w", p.ID.Short(), n, pack.ErrFormat)
		}
		p.Entries = make([]pack.Entry, n)
		for j := range p.Entries {
			e, err := pack.DecodeEntry(rest)
			if err != nil {
				return nil, fmt.Errorf("index: pack %s entry %d: %w", p.ID.Short(), j, err)
			}
			p.Entries[j] = e
			rest = rest[pack.EntrySize:]
		}
		packs = append(packs, p)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("index: %d trailing bytes: %w", len(rest), pack.ErrFormat)
	}
	return packs, nil
}

// location is where the in-memory index finds a blob. Offsets fit 32 bits
// because packs are at most MaxPackSize (1 GiB) — except packs written by
// other tools, which are refused when the index is loaded.
type location struct {
	pack      uint32 // position in memIndex.packs
	offset    uint32
	length    uint32
	rawLength uint32
	comp      uint8
}

// memIndex maps blobs to one location each (the first seen: duplicates left
// by interrupted runs are equivalent copies; prune removes them).
//
// What the index objects hold, which is nearly everything, is kept as one
// sorted slice (looked up by binary search): half the memory of a map,
// which matters with hundreds of thousands of blobs. Blobs added after
// loading (packs this session uploads or recovers) go into a small map.
type memIndex struct {
	packs   []ID
	packPos map[ID]uint32
	sorted  []indexEntry // sorted by handle, unique
	// starts[k] is the first entry of sorted whose bucketKey is k or more
	// (nil: search all of sorted). Ids are uniformly random, so a bucket
	// holds a few entries and a lookup touches a few cache lines instead
	// of the ~18 of a binary search over 250,000 entries.
	starts     []uint32
	bucketBits uint
	recent     map[BlobHandle]location
	pending    []indexEntry // added while loading, sorted in by endLoad
	loading    bool
}

type indexEntry struct {
	h   BlobHandle
	loc location
}

func compareHandles(a, b BlobHandle) int {
	if a.Type != b.Type {
		return int(a.Type) - int(b.Type)
	}
	return bytes.Compare(a.ID[:], b.ID[:])
}

func newMemIndex() *memIndex {
	return &memIndex{packPos: make(map[ID]uint32), recent: make(map[BlobHandle]location)}
}

// beginLoad starts a bulk load: addPack collects entries unsorted until
// endLoad sorts them in. Lookups in between miss them.
func (m *memIndex) beginLoad() { m.loading = true }

// reserve makes room for n more entries in a bulk load.
func (m *memIndex) reserve(n int) {
	m.pending = slices.Grow(m.pending, n)
}

// endLoad sorts the loaded entries into the index, keeping for each blob
// one location: the one already in the index, else the loaded one of the
// lowest pack position and offset (duplicates are equivalent copies; this
// only makes the choice deterministic).
func (m *memIndex) endLoad() {
	m.loading = false
	if len(m.pending) == 0 {
		return
	}
	loaded := m.pending
	m.pending = nil
	// A total order, so that an unstable sort gives one result.
	order := func(a, b indexEntry) int {
		if c := compareHandles(a.h, b.h); c != 0 {
			return c
		}
		if a.loc.pack != b.loc.pack {
			return cmp.Compare(a.loc.pack, b.loc.pack)
		}
		return cmp.Compare(a.loc.offset, b.loc.offset)
	}
	if slices.ContainsFunc(loaded, func(e indexEntry) bool { return e.h.Type > maxBucketType }) {
		slices.SortFunc(loaded, order)
	} else {
		// Ids are uniformly random: sorting by bucket first is linear
		// and, on 250,000 entries, several times faster than sorting by
		// comparisons (BenchmarkIndexLoad).
		bits := buckets.Bits(len(loaded), 16)
		buckets.Sort(loaded, (maxBucketType+1)<<bits, func(e *indexEntry) int { return int(bucketKey(e.h, bits)) }, order)
	}
	loaded = slices.CompactFunc(loaded, func(a, b indexEntry) bool { return a.h == b.h })
	if len(m.sorted) == 0 {
		m.sorted = slices.Clip(loaded)
	} else {
		m.sorted = mergeEntries(m.sorted, loaded)
	}
	m.buildBuckets()
	for h := range m.recent {
		if _, dup := m.find(h); dup {
			delete(m.recent, h)
		}
	}
}

// maxBucketType is the largest blob type the bucket table covers; an
// index holding other types is searched without it.
const maxBucketType = 3

func (m *memIndex) bucketKey(h BlobHandle) uint32 { return bucketKey(h, m.bucketBits) }

// bucketKey is h's bucket among buckets of the leading bits (at most 16)
// of ids, per blob type.
func bucketKey(h BlobHandle, bits uint) uint32 {
	return uint32(h.Type)<<bits | uint32(binary.BigEndian.Uint16(h.ID[:2]))>>(16-bits)
}

// buildBuckets builds starts for the sorted entries: about four entries
// per bucket, at most 2^16 buckets per type.
func (m *memIndex) buildBuckets() {
	m.starts = nil
	n := len(m.sorted)
	if n == 0 || m.sorted[n-1].h.Type > maxBucketType {
		return
	}
	m.bucketBits = buckets.Bits(n, 16)
	m.starts = buckets.Starts(n, (maxBucketType+1)<<m.bucketBits, func(i int) int { return int(m.bucketKey(m.sorted[i].h)) })
}

// mergeEntries merges two sorted, unique lists, keeping old's entry for a
// blob in both.
func mergeEntries(old, loaded []indexEntry) []indexEntry {
	out := make([]indexEntry, 0, len(old)+len(loaded))
	i, j := 0, 0
	for i < len(old) && j < len(loaded) {
		switch c := compareHandles(old[i].h, loaded[j].h); {
		case c < 0:
			out = append(out, old[i])
			i++
		case c > 0:
			out = append(out, loaded[j])
			j++
		default:
			out = append(out, old[i])
			i++
			j++
		}
	}
	out = append(out, old[i:]...)
	return slices.Clip(append(out, loaded[j:]...))
}

// find looks a blob up in the sorted part.
func (m *memIndex) find(h BlobHandle) (location, bool) {
	part := m.sorted
	if m.starts != nil {
		if h.Type > maxBucketType {
			return location{}, false
		}
		k := m.bucketKey(h)
		part = m.sorted[m.starts[k]:m.starts[k+1]]
	}
	i, ok := slices.BinarySearchFunc(part, h, func(e indexEntry, h BlobHandle) int { return compareHandles(e.h, h) })
	if !ok {
		return location{}, false
	}
	return part[i].loc, true
}

// get returns a blob's location.
func (m *memIndex) get(h BlobHandle) (location, bool) {
	if loc, ok := m.find(h); ok {
		return loc, true
	}
	loc, ok := m.recent[h]
	return loc, ok
}

func (m *memIndex) addPack(p indexPack) error {
	pos, ok := m.packPos[p.ID]
	if !ok {
		pos = uint32(len(m.packs))
		m.packs = append(m.packs, p.ID)
		m.packPos[p.ID] = pos
	}
	for _, e := range p.Entries {
		if e.Offset+uint64(e.Length) > MaxPackSize+pack.MaxBlobSize {
			return fmt.Errorf("pack %s: blob at offset %d is beyond the largest pack size", p.ID, e.Offset)
		}
		h := BlobHandle{BlobType(e.Type), ID(e.ID)}
		loc := location{pack: pos, offset: uint32(e.Offset), length: e.Length, rawLength: e.RawLength, comp: e.Compression}
		if m.loading {
			m.pending = append(m.pending, indexEntry{h, loc})
			continue
		}
		if _, dup := m.get(h); dup {
			continue
		}
		m.recent[h] = loc
	}
	return nil
}

func (m *memIndex) lookup(h BlobHandle) (ID, location, bool) {
	loc, ok := m.get(h)
	if !ok {
		return ID{}, loc, false
	}
	return m.packs[loc.pack], loc, true
}

func (m *memIndex) hasPack(id ID) bool { _, ok := m.packPos[id]; return ok }

// listIDs lists object ids under prefix with their sizes.
func (r *Repository) listIDs(ctx context.Context, prefix string) (map[ID]int64, error) {
	out := make(map[ID]int64)
	err := r.st.List(ctx, prefix, func(oi ObjectInfo) error {
		if id, ok := parseObjectID(oi.Name, prefix); ok {
			out[id] = oi.Size
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	return out, nil
}

// readIndexFile loads and decodes one index object.
func (r *Repository) readIndexFile(ctx context.Context, id ID) ([]indexPack, error) {
	b, err := r.loadObject(ctx, indexPrefix+id.String(), aadIndex, maxIndexSize)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", id, err)
	}
	packs, err := decodeIndex(b)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w: %w", id, ErrCorrupt, err)
	}
	return packs, nil
}

// loadIndex reads every index object and, if recover is set, the headers
// of packs that no index mentions.
func (r *Repository) loadIndex(ctx context.Context, recover bool) error {
	ids, err := r.listIDs(ctx, indexPrefix)
	if err != nil {
		return err
	}
	r.idx.beginLoad()
	defer r.idx.endLoad()
	// Index objects are mostly pack entries: reserving for that many
	// saves growing the list by doubling, whose copies were the largest
	// transient allocation of opening a big repository.
	var total int64
	for _, size := range ids {
		total += size
	}
	r.idx.reserve(int(min(total/pack.EntrySize, 1<<26)))
	for id := range ids {
		packs, err := r.readIndexFile(ctx, id)
		if storage.IsNotFound(err) {
			continue // removed by a prune since we listed (only without a lock)
		}
		if err != nil {
			return err
		}
		for _, p := range packs {
			if err := r.idx.addPack(p); err != nil {
				return fmt.Errorf("index %s: %w", id, err)
			}
		}
	}
	r.idx.endLoad()
	if !recover {
		return nil
	}
	_, err = r.Recover(ctx)
	return err
}

// Recover finds packs that no index mentions (left by an interrupted
// backup or prune), reads their headers and adds their blobs to the
// in-memory index, so that new backups deduplicate against them. The next
// Flush writes them into an index object. It returns how many packs it
// recovered. Packs whose header cannot be read are logged and skipped
// (Check reports them; Prune deletes them).
func (r *Repository) Recover(ctx context.Context) (int, error) {
	packs, err := r.listIDs(ctx, dataPrefix)
	if err != nil {
		return 0, err
	}
	n, blobs := 0, 0
	for id, size := range packs {
		r.mu.Lock()
		known := r.idx.hasPack(id)
		r.mu.Unlock()
		if known {
			continue
		}
		entries, err := r.readPackHeader(ctx, id, size)
		if err != nil {
			r.log.Warn("pack without index has an unreadable header; skipping it", "pack", id.String(), "err", err)
			continue
		}
		p := indexPack{ID: id, Entries: entries}
		r.mu.Lock()
		err = r.idx.addPack(p)
		if err == nil {
			r.pending = append(r.pending, p)
		}
		r.mu.Unlock()
		if err != nil {
			return n, err
		}
		n++
		blobs += len(entries)
	}
	if n > 0 {
		r.log.Info("recovered packs that had no index (interrupted run)", "packs", n, "blobs", blobs)
	}
	return n, nil
}

// readPackHeader reads and decodes the header of a pack of the given size.
// One ranged read of the tail usually covers trailer and header.
func (r *Repository) readPackHeader(ctx context.Context, id ID, size int64) ([]pack.Entry, error) {
	if size < pack.TrailerSize {
		return nil, fmt.Errorf("pack %s: %d bytes is too short: %w", id, size, ErrCorrupt)
	}
	name := packName(id)
	tail := min(size, 64<<10)
	buf, err := readRange(ctx, r.st, name, size-tail, tail)
	if err != nil {
		return nil, err
	}
	tr, err := pack.ParseTrailer(buf[len(buf)-pack.TrailerSize:], size)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w: %w", id, ErrCorrupt, err)
	}
	hlen := int64(tr.HeaderLength)
	var hdr []byte
	if hlen+pack.TrailerSize <= tail {
		hdr = buf[tail-pack.TrailerSize-hlen : tail-pack.TrailerSize]
	} else if hdr, err = readRange(ctx, r.st, name, size-pack.TrailerSize-hlen, hlen); err != nil {
		return nil, err
	}
	plain, err := r.unseal(hdr, aadPackHeader)
	if err != nil {
		return nil, fmt.Errorf("pack %s header: %w", id, err)
	}
	entries, err := pack.ParseHeader(plain, uint64(size-pack.TrailerSize-hlen))
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w: %w", id, ErrCorrupt, err)
	}
	return entries, nil
}

func readRange(ctx context.Context, st Storage, name string, off, n int64) ([]byte, error) {
	return readRangeInto(ctx, st, name, off, n, nil)
}

// readRangeInto is readRange into buf when it has the room.
func readRangeInto(ctx context.Context, st Storage, name string, off, n int64, buf []byte) ([]byte, error) {
	rc, err := st.Get(ctx, name, off, n)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }()
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("read %s at %d+%d: %w", name, off, n, err)
	}
	return buf, nil
}

// writeIndexObjects stores packs as one or more index objects of at most
// maxIndexBlobs entries each and returns their ids.
func (r *Repository) writeIndexObjects(ctx context.Context, packs []indexPack) ([]ID, error) {
	var ids []ID
	for len(packs) > 0 {
		n, blobs := 0, 0
		for n < len(packs) && (n == 0 || blobs+len(packs[n].Entries) <= maxIndexBlobs) {
			blobs += len(packs[n].Entries)
			n++
		}
		id, err := r.saveObject(ctx, indexPrefix, aadIndex, encodeIndex(packs[:n]))
		if err != nil {
			return ids, fmt.Errorf("write index: %w", err)
		}
		ids = append(ids, id)
		packs = packs[n:]
	}
	return ids, nil
}

// writePending writes an index for the packs uploaded since the last one.
func (r *Repository) writePending(ctx context.Context) error {
	r.mu.Lock()
	batch := r.pending
	r.pending = nil
	r.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if _, err := r.writeIndexObjects(ctx, batch); err != nil {
		// Put the packs back so that a later Flush retries; a partial write
		// only duplicates entries, which is harmless.
		r.mu.Lock()
		r.pending = append(batch, r.pending...)
		r.mu.Unlock()
		return err
	}
	return nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
