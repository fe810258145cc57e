package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/backup-runner/runner/internal/repo/pack"
)

// DefaultRepackBelow is the default live fraction under which a pack is
// repacked: a pack that is more than half garbage costs more to keep (space)
// than to rewrite (one read and a half-size write).
const DefaultRepackBelow = 0.5

// PruneOptions configure Prune.
type PruneOptions struct {
	// RepackBelow: packs whose live bytes are less than this fraction of
	// their size are rewritten (0 means DefaultRepackBelow). Packs with no
	// live blob are always deleted.
	RepackBelow float64
	// DryRun computes and returns the plan without changing anything.
	DryRun bool
	// Progress, if set, is told what prune is doing: PruneMarking once
	// (done and total 0) before it walks the snapshots, then
	// PruneRepacking after each pack copied and PruneDeleting after each
	// pack deleted, with how many of how many.
	Progress func(phase PrunePhase, done, total int)
}

// PrunePhase names a step of Prune for its progress callback.
type PrunePhase string

const (
	PruneMarking   PrunePhase = "marking"
	PruneRepacking PrunePhase = "repacking"
	PruneDeleting  PrunePhase = "deleting"
)

// PruneStats describe what Prune did (or, with DryRun, would do).
type PruneStats struct {
	Snapshots      int
	ReachableBlobs int
	PacksKept      int
	PacksRepacked  int
	PacksDeleted   int // no live blob at all
	BlobsRepacked  int
	BytesRepacked  int64 // stored bytes copied into new packs
	BytesDeleted   int64 // size of the packs removed (repacked and deleted)
	IndexesWritten int
	IndexesDeleted int
}

// Prune removes data no snapshot references. The snapshots that exist when
// it starts are the ones kept (forget others first with DeleteSnapshot).
// It needs an exclusive lock.
//
// Order, chosen so that a crash at any point leaves every kept snapshot
// fully loadable (every step before the deletions only adds objects; the
// deletions remove only what no remaining index or snapshot needs):
//
//  1. flush, then read every index object and list the packs;
//  2. mark every blob reachable from a snapshot (a tree that cannot be read
//     aborts: deciding on an incomplete graph would delete live data);
//  3. copy the live blobs of mostly-dead packs into new packs, and write
//     the index for them;
//  4. write a new index for the packs that stay;
//  5. delete the index objects read in 1 (all live blobs are now covered by
//     the indexes of 3 and 4);
//  6. delete the repacked and dead packs (no index mentions them any more).
//
// After a crash in 5 or 6, the remaining packs without index are garbage
// and the next prune removes them.
func (r *Repository) Prune(ctx context.Context, o PruneOptions) (*PruneStats, error) {
	if err := r.exclusive(); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	threshold := o.RepackBelow
	if threshold == 0 {
		threshold = DefaultRepackBelow
	}
	if threshold < 0 || threshold > 1 {
		return nil, fmt.Errorf("prune: repack threshold %v out of range 0..1", threshold)
	}
	if !o.DryRun {
		// Packs recovered at Open (or saved in this session) get an index
		// first, so that step 1 sees them like every other pack.
		if err := r.Flush(ctx); err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
	}
	st := &PruneStats{}
	progress := func(phase PrunePhase, done, total int) {
		if o.Progress != nil {
			o.Progress(phase, done, total)
		}
	}

	// 1. Index objects and packs.
	indexIDs, err := r.listIDs(ctx, indexPrefix)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	byPack := map[ID][]pack.Entry{}
	for id := range indexIDs {
		packs, err := r.readIndexFile(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("prune: cannot decide safely: %w", err)
		}
		for _, p := range packs {
			byPack[p.ID] = append(byPack[p.ID], p.Entries...)
		}
	}
	for id, entries := range byPack {
		byPack[id] = uniqueEntries(entries)
	}
	sizes, err := r.listIDs(ctx, dataPrefix)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}

	// 2. Mark.
	progress(PruneMarking, 0, 0)
	reachable, nsnap, err := r.reachable(ctx)
	if err != nil {
		return nil, fmt.Errorf("prune: cannot decide safely: %w", err)
	}
	st.Snapshots, st.ReachableBlobs = nsnap, len(reachable)
	have := map[BlobHandle]bool{}
	for id, entries := range byPack {
		if _, exists := sizes[id]; !exists {
			continue
		}
		for _, e := range entries {
			have[handleOf(e)] = true
		}
	}
	for h := range reachable {
		if !have[h] {
			return nil, fmt.Errorf("prune: %s is referenced but in no existing pack; run check: %w", h, ErrBlobNotFound)
		}
	}

	// Plan: keep, repack or delete each pack.
	var keep, repack, drop []ID
	for _, id := range sortedIDs(byPack) {
		size, exists := sizes[id]
		if !exists {
			continue // indexed but gone (an earlier prune's crash): just drop from the index
		}
		var live int64
		for _, e := range byPack[id] {
			if _, ok := reachable[handleOf(e)]; ok {
				live += int64(e.Length)
			}
		}
		switch {
		case live == 0:
			drop = append(drop, id)
		case float64(live) < threshold*float64(size):
			repack = append(repack, id)
		default:
			keep = append(keep, id)
		}
	}
	// Packs no index mentions are left after a crash in step 5 or 6 (or have
	// an unreadable header: Flush above indexed every readable one).
	for _, id := range sortedIDs(sizes) {
		if _, ok := byPack[id]; !ok {
			drop = append(drop, id)
		}
	}
	inKept := map[BlobHandle]bool{}
	for _, id := range keep {
		for _, e := range byPack[id] {
			inKept[handleOf(e)] = true
		}
	}
	st.PacksKept, st.PacksRepacked, st.PacksDeleted = len(keep), len(repack), len(drop)
	for _, id := range append(slices.Clone(repack), drop...) {
		st.BytesDeleted += sizes[id]
	}
	copied := map[BlobHandle]bool{}
	for _, id := range repack {
		for _, e := range byPack[id] {
			h := handleOf(e)
			if _, live := reachable[h]; live && !inKept[h] && !copied[h] {
				copied[h] = true
				st.BlobsRepacked++
				st.BytesRepacked += int64(e.Length)
			}
		}
	}
	if o.DryRun || (len(repack) == 0 && len(drop) == 0) {
		return st, nil
	}

	// 3. Repack.
	done := map[BlobHandle]bool{}
	for i, id := range repack {
		if err := r.repackPack(ctx, id, sizes[id], byPack[id], reachable, inKept, done); err != nil {
			return st, fmt.Errorf("prune: %w", err)
		}
		progress(PruneRepacking, i+1, len(repack))
	}
	if err := r.Flush(ctx); err != nil {
		return st, fmt.Errorf("prune: %w", err)
	}

	// 4. Index of the kept packs.
	kept := make([]indexPack, 0, len(keep))
	for _, id := range keep {
		kept = append(kept, indexPack{ID: id, Entries: byPack[id]})
	}
	written, err := r.writeIndexObjects(ctx, kept)
	st.IndexesWritten += len(written)
	if err != nil {
		return st, fmt.Errorf("prune: %w", err)
	}
	keepIndex := map[ID]bool{}
	for _, id := range written {
		keepIndex[id] = true
	}

	// 5. Old index objects.
	for _, id := range sortedIDs(indexIDs) {
		if keepIndex[id] {
			continue // identical content written again in step 4
		}
		if err := r.st.Delete(ctx, indexPrefix+id.String()); err != nil && !errors.Is(err, ErrNotFound) {
			return st, fmt.Errorf("prune: delete index %s: %w", id, err)
		}
		st.IndexesDeleted++
	}

	// 6. Obsolete packs.
	obsolete := append(repack, drop...)
	for i, id := range obsolete {
		if err := r.st.Delete(ctx, packName(id)); err != nil && !errors.Is(err, ErrNotFound) {
			return st, fmt.Errorf("prune: delete pack %s: %w", id, err)
		}
		progress(PruneDeleting, i+1, len(obsolete))
	}

	// The in-memory index still points into deleted packs: rebuild it.
	r.mu.Lock()
	r.idx = newMemIndex()
	r.mu.Unlock()
	if err := r.loadIndex(ctx, false); err != nil {
		return st, fmt.Errorf("prune: reload index: %w", err)
	}
	r.log.Info("prune finished", "kept", st.PacksKept, "repacked", st.PacksRepacked, "deleted", st.PacksDeleted, "bytes_freed", st.BytesDeleted-st.BytesRepacked)
	return st, nil
}

func uniqueEntries(entries []pack.Entry) []pack.Entry {
	slices.SortFunc(entries, func(a, b pack.Entry) int {
		if a.Offset != b.Offset {
			return int(int64(a.Offset) - int64(b.Offset))
		}
		return cmpID(a.ID, b.ID)
	})
	return slices.Compact(entries)
}

// repackPack copies the live blobs of one pack into new packs, verifying
// each: prune never copies damaged data (it aborts instead, before deleting
// anything).
func (r *Repository) repackPack(ctx context.Context, id ID, size int64, entries []pack.Entry, reachable map[BlobHandle]struct{}, inKept, done map[BlobHandle]bool) error {
	data, err := readRange(ctx, r.st, packName(id), 0, size)
	if err != nil {
		return fmt.Errorf("repack %s: %w", id, err)
	}
	for _, e := range entries {
		h := handleOf(e)
		if _, live := reachable[h]; !live || inKept[h] || done[h] {
			continue
		}
		end := e.Offset + uint64(e.Length)
		if end > uint64(len(data)) {
			return fmt.Errorf("repack %s: %s extends beyond the pack: %w", id, h, ErrCorrupt)
		}
		plain, err := r.decodeBlob(h, slices.Clone(data[e.Offset:end]), e.Compression, e.RawLength, nil)
		if err != nil {
			return fmt.Errorf("repack %s: %s: %w", id, h, err)
		}
		if err := r.storeBlob(ctx, h, plain); err != nil {
			return fmt.Errorf("repack %s: %w", id, err)
		}
		done[h] = true
	}
	return nil
}

// storeBlob writes a blob into the current pack without the deduplication
// check (prune copies blobs the index already has).
func (r *Repository) storeBlob(ctx context.Context, h BlobHandle, data []byte) error {
	stored, comp, release, err := r.encodeBlob(data)
	defer release()
	if err != nil {
		return err
	}
	return r.addToPack(ctx, h, stored, comp, len(data))
}

// reachable walks every snapshot and returns every blob they reference.
func (r *Repository) reachable(ctx context.Context) (map[BlobHandle]struct{}, int, error) {
	ids, err := r.listIDs(ctx, snapshotPrefix)
	if err != nil {
		return nil, 0, err
	}
	seen := map[BlobHandle]struct{}{}
	var walk func(id ID) error
	walk = func(id ID) error {
		h := BlobHandle{TreeBlob, id}
		if _, ok := seen[h]; ok {
			return nil
		}
		nodes, err := r.LoadTree(ctx, id)
		if err != nil {
			return err
		}
		seen[h] = struct{}{}
		for _, n := range nodes {
			for _, c := range n.Content {
				seen[BlobHandle{DataBlob, c}] = struct{}{}
			}
			if n.Type == NodeDir {
				if err := walk(n.Subtree); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, id := range sortedIDs(ids) {
		sn, err := r.LoadSnapshot(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		for _, it := range sn.Items {
			for _, c := range it.Content {
				seen[BlobHandle{DataBlob, c}] = struct{}{}
			}
			if it.Kind == ItemTree {
				if err := walk(it.Tree); err != nil {
					return nil, 0, fmt.Errorf("snapshot %s item %q: %w", id.Short(), it.Name, err)
				}
			}
		}
	}
	return seen, len(ids), nil
}
