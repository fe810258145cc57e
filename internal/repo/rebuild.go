package repo

import (
	"context"
	"fmt"

	"github.com/backup-runner/runner/internal/repo/pack"
)

// RebuildStats describe what RebuildIndex did.
type RebuildStats struct {
	Packs, Blobs   int
	IndexesWritten int
	IndexesDeleted int
	// UnreadablePacks have a damaged header. Their entries are carried over
	// from the old index where it had them (the blobs may still be intact);
	// Check --read-data tells.
	UnreadablePacks []ID
}

// RebuildIndex replaces the index with one built from the headers of all
// packs: the repair for lost or damaged index objects. It needs an
// exclusive lock. The new index objects are written before the old ones
// are deleted, so an interruption leaves a usable (if redundant) index.
func (r *Repository) RebuildIndex(ctx context.Context) (*RebuildStats, error) {
	if err := r.exclusive(); err != nil {
		return nil, fmt.Errorf("rebuild index: %w", err)
	}
	if err := r.Flush(ctx); err != nil {
		return nil, fmt.Errorf("rebuild index: %w", err)
	}
	oldIDs, err := r.listIDs(ctx, indexPrefix)
	if err != nil {
		return nil, fmt.Errorf("rebuild index: %w", err)
	}
	packs, err := r.listIDs(ctx, dataPrefix)
	if err != nil {
		return nil, fmt.Errorf("rebuild index: %w", err)
	}
	st := &RebuildStats{}
	var all []indexPack
	var bad []ID
	for _, id := range sortedIDs(packs) {
		entries, err := r.readPackHeader(ctx, id, packs[id])
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			r.log.Warn("pack header unreadable while rebuilding the index", "pack", id.String(), "err", err)
			bad = append(bad, id)
			continue
		}
		all = append(all, indexPack{ID: id, Entries: entries})
		st.Blobs += len(entries)
	}
	if len(bad) > 0 {
		// Keep what the old index knew about damaged packs.
		old := map[ID][]pack.Entry{}
		for id := range oldIDs {
			ips, err := r.readIndexFile(ctx, id)
			if err != nil {
				continue
			}
			for _, p := range ips {
				old[p.ID] = append(old[p.ID], p.Entries...)
			}
		}
		for _, id := range bad {
			if entries := uniqueEntries(old[id]); len(entries) > 0 {
				all = append(all, indexPack{ID: id, Entries: entries})
				st.Blobs += len(entries)
			}
		}
	}
	st.Packs, st.UnreadablePacks = len(all), bad
	written, err := r.writeIndexObjects(ctx, all)
	st.IndexesWritten = len(written)
	if err != nil {
		return st, fmt.Errorf("rebuild index: %w", err)
	}
	keep := map[ID]bool{}
	for _, id := range written {
		keep[id] = true
	}
	for _, id := range sortedIDs(oldIDs) {
		if keep[id] {
			continue
		}
		if err := r.st.Delete(ctx, indexPrefix+id.String()); err != nil {
			return st, fmt.Errorf("rebuild index: delete index %s: %w", id, err)
		}
		st.IndexesDeleted++
	}
	r.mu.Lock()
	r.idx, r.pending = newMemIndex(), nil
	r.mu.Unlock()
	if err := r.loadIndex(ctx, false); err != nil {
		return st, fmt.Errorf("rebuild index: reload: %w", err)
	}
	return st, nil
}
