package repo

import (
	"context"
	"fmt"
)

// SnapshotUsage answers how much stored space sets of snapshots hold
// together: the union of the blobs (data and trees) they reference, each
// counted once at its stored (compressed, encrypted) size. Quotas need
// this rather than per-snapshot sizes, which do not add up when data is
// shared.
//
// It records, for every blob, the set of snapshots that reach it as a
// bitset, so a query costs one pass over the blobs and memory is a few
// words per blob.
type SnapshotUsage struct {
	n     int
	words int
	sizes []int64
	bits  []uint64 // len(sizes)*words
}

// SnapshotUsage computes the usage of sns (by position in the slice). Each
// distinct tree is loaded once.
func (r *Repository) SnapshotUsage(ctx context.Context, sns []*Snapshot) (*SnapshotUsage, error) {
	n := len(sns)
	words := (n + 63) / 64
	if words == 0 {
		words = 1
	}
	type treeInfo struct {
		children []ID
		blobs    []ID
		reach    []uint64
	}
	trees := map[ID]*treeInfo{}
	blobIndex := map[BlobHandle]int{}
	u := &SnapshotUsage{n: n, words: words}
	blob := func(h BlobHandle) int {
		if i, ok := blobIndex[h]; ok {
			return i
		}
		i := len(u.sizes)
		blobIndex[h] = i
		u.sizes = append(u.sizes, r.storedSize(h))
		u.bits = append(u.bits, make([]uint64, words)...)
		return i
	}
	var post []ID // trees in DFS postorder: children before parents
	var load func(id ID) (*treeInfo, error)
	load = func(id ID) (*treeInfo, error) {
		if ti, ok := trees[id]; ok {
			return ti, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		nodes, err := r.LoadTree(ctx, id)
		if err != nil {
			return nil, err
		}
		ti := &treeInfo{reach: make([]uint64, words)}
		trees[id] = ti
		for _, nd := range nodes {
			ti.blobs = append(ti.blobs, nd.Content...)
			if nd.Type == NodeDir {
				ti.children = append(ti.children, nd.Subtree)
			}
		}
		for _, c := range ti.children {
			if _, err := load(c); err != nil {
				return nil, err
			}
		}
		post = append(post, id)
		return ti, nil
	}
	for i, sn := range sns {
		w, b := i/64, uint64(1)<<(i%64)
		for _, it := range sn.Items {
			for _, c := range it.Content {
				u.bits[blob(BlobHandle{DataBlob, c})*words+w] |= b
			}
			if it.Kind == ItemTree {
				ti, err := load(it.Tree)
				if err != nil {
					return nil, fmt.Errorf("snapshot %s item %q: %w", sn.ID.Short(), it.Name, err)
				}
				ti.reach[w] |= b
			}
		}
	}
	// Propagate reachability down the tree DAG in reverse postorder, a
	// topological order: every parent before each of its children, also
	// for a subtree that several parents share.
	for i := len(post) - 1; i >= 0; i-- {
		ti := trees[post[i]]
		for _, c := range ti.children {
			ci := trees[c]
			for w := range words {
				ci.reach[w] |= ti.reach[w]
			}
		}
	}
	for _, id := range post {
		ti := trees[id]
		tb := blob(BlobHandle{TreeBlob, id}) * words
		for w := range words {
			u.bits[tb+w] |= ti.reach[w]
		}
		for _, c := range ti.blobs {
			bi := blob(BlobHandle{DataBlob, c}) * words
			for w := range words {
				u.bits[bi+w] |= ti.reach[w]
			}
		}
	}
	return u, nil
}

// storedSize is a blob's size in its pack; 0 if it is not indexed.
func (r *Repository) storedSize(h BlobHandle) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	loc, ok := r.idx.get(h)
	if !ok {
		return 0
	}
	return int64(loc.length)
}

// Size is the stored space the snapshots at the given positions hold
// together.
func (u *SnapshotUsage) Size(positions []int) int64 {
	mask := make([]uint64, u.words)
	for _, p := range positions {
		if p >= 0 && p < u.n {
			mask[p/64] |= 1 << (p % 64)
		}
	}
	var total int64
	for i, sz := range u.sizes {
		row := u.bits[i*u.words : (i+1)*u.words]
		for w, m := range mask {
			if row[w]&m != 0 {
				total += sz
				break
			}
		}
	}
	return total
}

// Exclusive is the stored space the snapshot at position p holds that
// none of the snapshots at others hold: what forgetting it alone, while
// they stay, frees.
func (u *SnapshotUsage) Exclusive(p int, others []int) int64 {
	mask := make([]uint64, u.words)
	for _, o := range others {
		if o >= 0 && o < u.n && o != p {
			mask[o/64] |= 1 << (o % 64)
		}
	}
	var total int64
	pw, pb := p/64, uint64(1)<<(p%64)
	for i, sz := range u.sizes {
		row := u.bits[i*u.words : (i+1)*u.words]
		if row[pw]&pb == 0 {
			continue
		}
		shared := false
		for w, m := range mask {
			if row[w]&m != 0 {
				shared = true
				break
			}
		}
		if !shared {
			total += sz
		}
	}
	return total
}

// Blobs is how many distinct blobs the snapshots reference.
func (u *SnapshotUsage) Blobs() int { return len(u.sizes) }
