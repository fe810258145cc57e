package repo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"strings"

	"github.com/backup-runner/runner/internal/repo/pack"
	"github.com/backup-runner/runner/internal/repo/storage"
)

// CheckOptions select what Check reads.
type CheckOptions struct {
	// ReadData reads every blob of every pack (or of a ReadDataSubset
	// fraction of packs), decrypts, decompresses and hashes it.
	ReadData bool
	// ReadDataSubset in (0, 1] reads only that fraction of the packs,
	// chosen at random, so that a daily check can cover a repository over
	// time. 0 means all.
	ReadDataSubset float64
	// Progress, if set, is called after each pack read by ReadData.
	Progress func(done, total int)
}

// Problem kinds.
const (
	ProblemIndex         = "index"          // an index object cannot be read
	ProblemMissingPack   = "missing-pack"   // an index names a pack that does not exist
	ProblemPackHeader    = "pack-header"    // a pack's header is unreadable or disagrees with the index
	ProblemPackHash      = "pack-hash"      // a pack's bytes do not hash to its name
	ProblemBlob          = "blob"           // a blob does not decrypt, decompress or hash to its id
	ProblemMissingBlob   = "missing-blob"   // a snapshot references a blob no index has
	ProblemTree          = "tree"           // a tree cannot be loaded or decoded
	ProblemSnapshot      = "snapshot"       // a snapshot document cannot be read
	ProblemUnindexedPack = "unindexed-pack" // a pack no index mentions and whose header is unreadable
)

// Problem is one thing Check found wrong.
type Problem struct {
	Kind string
	Pack ID         // zero if not about a pack
	Blob BlobHandle // zero if not about a blob
	// Snapshots and Paths name what the problem affects: the snapshots
	// that reference the blob and the files ("<snapshot>:<item>/<path>").
	Snapshots []ID
	Paths     []string
	Err       error
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Kind)
	if !p.Pack.IsZero() {
		fmt.Fprintf(&b, " pack %s", p.Pack)
	}
	if !p.Blob.ID.IsZero() {
		fmt.Fprintf(&b, " %s blob %s", p.Blob.Type, p.Blob.ID)
	}
	if p.Err != nil {
		fmt.Fprintf(&b, ": %v", p.Err)
	}
	if len(p.Snapshots) > 0 {
		s := make([]string, len(p.Snapshots))
		for i, id := range p.Snapshots {
			s[i] = id.Short()
		}
		fmt.Fprintf(&b, "; affects snapshots %s", strings.Join(s, ", "))
	}
	if len(p.Paths) > 0 {
		fmt.Fprintf(&b, "; files %s", strings.Join(p.Paths, ", "))
	}
	return b.String()
}

// CheckReport is the result of Check.
type CheckReport struct {
	Snapshots, Trees, DataBlobs int // reachable from snapshots
	Packs, IndexedBlobs         int // in the index
	PacksRead                   int // by ReadData
	// UnindexedPacks are packs no index mentions (an interrupted run): not
	// an error; Recover (on the next locked Open) or Prune deals with them.
	UnindexedPacks []ID
	Problems       []Problem
}

// OK reports whether Check found no problem.
func (c *CheckReport) OK() bool { return len(c.Problems) == 0 }

// Check verifies the repository's structure: every index object reads, every
// indexed pack exists and its header matches the index, every snapshot's
// trees load and every blob they name is indexed. With ReadData it also
// reads blobs and verifies them. Problems go into the report, naming packs,
// blobs, snapshots and files; the error is only for failures to run at all.
func (r *Repository) Check(ctx context.Context, o CheckOptions) (*CheckReport, error) {
	rep := &CheckReport{}
	c := &checker{r: r, rep: rep, damaged: map[BlobHandle]int{}}

	// Index objects, read afresh (the in-memory index keeps only one copy
	// of each blob; here every entry is checked).
	indexIDs, err := r.listIDs(ctx, indexPrefix)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	indexed := map[ID][]pack.Entry{}
	for id := range indexIDs {
		packs, err := r.readIndexFile(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			c.add(Problem{Kind: ProblemIndex, Err: err})
			continue
		}
		for _, p := range packs {
			indexed[p.ID] = append(indexed[p.ID], p.Entries...)
		}
	}
	packSizes, err := r.listIDs(ctx, dataPrefix)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	rep.Packs = len(indexed)
	headers := map[ID][]pack.Entry{}
	for _, id := range sortedIDs(indexed) {
		entries := indexed[id]
		rep.IndexedBlobs += len(entries)
		size, ok := packSizes[id]
		if !ok {
			for _, e := range entries {
				c.damage(Problem{Kind: ProblemMissingPack, Pack: id, Blob: handleOf(e), Err: errors.New("pack does not exist")})
			}
			continue
		}
		hdr, err := r.readPackHeader(ctx, id, size)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			c.add(Problem{Kind: ProblemPackHeader, Pack: id, Err: err})
			continue
		}
		headers[id] = hdr
		inHeader := make(map[pack.Entry]bool, len(hdr))
		for _, e := range hdr {
			inHeader[e] = true
		}
		for _, e := range entries {
			if !inHeader[e] {
				c.damage(Problem{Kind: ProblemPackHeader, Pack: id, Blob: handleOf(e), Err: fmt.Errorf("index entry (offset %d, length %d) not in the pack header", e.Offset, e.Length)})
			}
		}
	}
	for _, id := range sortedIDs(packSizes) {
		if _, ok := indexed[id]; ok {
			continue
		}
		rep.UnindexedPacks = append(rep.UnindexedPacks, id)
		if _, err := r.readPackHeader(ctx, id, packSizes[id]); err != nil {
			c.add(Problem{Kind: ProblemUnindexedPack, Pack: id, Err: err})
		}
	}

	if o.ReadData {
		if err := c.readData(ctx, o, indexed, headers, packSizes); err != nil {
			return nil, err
		}
	}

	// Snapshots and everything they reach.
	snapIDs, err := r.listIDs(ctx, snapshotPrefix)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	var snaps []*Snapshot
	for _, id := range sortedIDs(snapIDs) {
		sn, err := r.LoadSnapshot(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			c.add(Problem{Kind: ProblemSnapshot, Snapshots: []ID{id}, Err: err})
			continue
		}
		snaps = append(snaps, sn)
	}
	rep.Snapshots = len(snaps)
	seenTrees := map[ID]bool{}
	seenData := map[ID]bool{}
	for _, sn := range snaps {
		for _, it := range sn.Items {
			for _, id := range it.Content {
				c.checkData(id, seenData)
			}
			if it.Kind == ItemTree {
				if err := c.walkStructure(ctx, it.Tree, seenTrees, seenData); err != nil {
					return nil, err
				}
			}
		}
	}
	rep.Trees, rep.DataBlobs = len(seenTrees), len(seenData)

	if len(c.damaged) > 0 {
		if err := c.attribute(ctx, snaps); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// maxProblemPaths caps the files listed per problem: a chunk shared by
// thousands of snapshots would otherwise make the report unreadable.
const maxProblemPaths = 100

type checker struct {
	r   *Repository
	rep *CheckReport
	// damaged maps a blob to its problem's position in rep.Problems, so
	// that the snapshots and files it affects can be filled in at the end.
	damaged map[BlobHandle]int
}

func (c *checker) add(p Problem) { c.rep.Problems = append(c.rep.Problems, p) }

// damage records a problem with a blob (once per blob).
func (c *checker) damage(p Problem) {
	if _, ok := c.damaged[p.Blob]; ok {
		return
	}
	c.damaged[p.Blob] = len(c.rep.Problems)
	c.add(p)
}

func handleOf(e pack.Entry) BlobHandle { return BlobHandle{BlobType(e.Type), ID(e.ID)} }

func (c *checker) checkData(id ID, seen map[ID]bool) {
	if seen[id] {
		return
	}
	seen[id] = true
	if !c.r.HasBlob(DataBlob, id) {
		c.damage(Problem{Kind: ProblemMissingBlob, Blob: BlobHandle{DataBlob, id}, Err: ErrBlobNotFound})
	}
}

func (c *checker) walkStructure(ctx context.Context, id ID, seenTrees, seenData map[ID]bool) error {
	if seenTrees[id] {
		return nil
	}
	seenTrees[id] = true
	h := BlobHandle{TreeBlob, id}
	if _, bad := c.damaged[h]; bad {
		return nil
	}
	nodes, err := c.r.LoadTree(ctx, id)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		kind := ProblemTree
		if errors.Is(err, ErrBlobNotFound) {
			kind = ProblemMissingBlob
		}
		p := Problem{Kind: kind, Blob: h, Err: err}
		c.r.mu.Lock()
		packID, _, ok := c.r.idx.lookup(h)
		c.r.mu.Unlock()
		if ok {
			p.Pack = packID
		}
		c.damage(p)
		return nil
	}
	for _, n := range nodes {
		for _, cid := range n.Content {
			c.checkData(cid, seenData)
		}
		if n.Type == NodeDir {
			if err := c.walkStructure(ctx, n.Subtree, seenTrees, seenData); err != nil {
				return err
			}
		}
	}
	return nil
}

// readData reads packs and verifies every blob in them.
func (c *checker) readData(ctx context.Context, o CheckOptions, indexed, headers map[ID][]pack.Entry, sizes map[ID]int64) error {
	ids := sortedIDs(indexed)
	if f := o.ReadDataSubset; f > 0 && f < 1 {
		rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		n := int(float64(len(ids))*f + 0.999999)
		ids = ids[:n]
		slices.SortFunc(ids, cmpID)
	}
	for i, id := range ids {
		size, ok := sizes[id]
		if !ok {
			continue // reported as missing
		}
		data, err := readRange(ctx, c.r.st, packName(id), 0, size)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if storage.IsNotFound(err) {
				continue // deleted since the listing (unlocked check)
			}
			c.add(Problem{Kind: ProblemMissingPack, Pack: id, Err: err})
			continue
		}
		c.rep.PacksRead++
		if hashBytes(data) != id {
			c.add(Problem{Kind: ProblemPackHash, Pack: id, Err: errors.New("pack contents do not hash to its name")})
		}
		// Verify what the header lists and, if the header is damaged, what
		// the index says: that is how a reader would find the blobs.
		entries := headers[id]
		seen := map[pack.Entry]bool{}
		for _, e := range append(slices.Clone(entries), indexed[id]...) {
			if seen[e] {
				continue
			}
			seen[e] = true
			h := handleOf(e)
			end := e.Offset + uint64(e.Length)
			if end > uint64(len(data)) {
				c.damage(Problem{Kind: ProblemBlob, Pack: id, Blob: h, Err: fmt.Errorf("%w: blob extends beyond the pack", ErrCorrupt)})
				continue
			}
			stored := slices.Clone(data[e.Offset:end])
			if _, err := c.r.decodeBlob(h, stored, e.Compression, e.RawLength, nil); err != nil {
				c.damage(Problem{Kind: ProblemBlob, Pack: id, Blob: h, Err: err})
			}
		}
		if o.Progress != nil {
			o.Progress(i+1, len(ids))
		}
	}
	return nil
}

// attribute fills in, for each damaged blob, the snapshots and files that
// reference it. A tree's affected paths are computed once and reused by
// every snapshot that shares it.
func (c *checker) attribute(ctx context.Context, snaps []*Snapshot) error {
	type hit struct {
		blob BlobHandle
		path string
	}
	memo := map[ID][]hit{}
	var walk func(id ID) ([]hit, error)
	walk = func(id ID) ([]hit, error) {
		if h, ok := memo[id]; ok {
			return h, nil
		}
		memo[id] = nil // cycles are impossible with hashes, but be safe
		var hits []hit
		if _, bad := c.damaged[BlobHandle{TreeBlob, id}]; bad {
			hits = append(hits, hit{BlobHandle{TreeBlob, id}, ""})
			memo[id] = hits
			return hits, nil
		}
		nodes, err := c.r.LoadTree(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, nil // reported during the structure walk
		}
		for _, n := range nodes {
			for _, cid := range n.Content {
				h := BlobHandle{DataBlob, cid}
				if _, bad := c.damaged[h]; bad {
					hits = append(hits, hit{h, n.Name})
				}
			}
			if n.Type == NodeDir {
				sub, err := walk(n.Subtree)
				if err != nil {
					return nil, err
				}
				for _, s := range sub {
					hits = append(hits, hit{s.blob, path.Join(n.Name, s.path)})
				}
			}
		}
		memo[id] = hits
		return hits, nil
	}
	for _, sn := range snaps {
		for _, it := range sn.Items {
			var hits []hit
			for _, cid := range it.Content {
				if h := (BlobHandle{DataBlob, cid}); hasKey(c.damaged, h) {
					hits = append(hits, hit{h, ""})
				}
			}
			if it.Kind == ItemTree {
				sub, err := walk(it.Tree)
				if err != nil {
					return err
				}
				hits = append(hits, sub...)
			}
			for _, h := range hits {
				p := &c.rep.Problems[c.damaged[h.blob]]
				if !slices.Contains(p.Snapshots, sn.ID) {
					p.Snapshots = append(p.Snapshots, sn.ID)
				}
				if len(p.Paths) < maxProblemPaths {
					p.Paths = append(p.Paths, sn.ID.Short()+":"+path.Join(it.Name, h.path))
				}
			}
		}
	}
	return nil
}

func hasKey[K comparable, V any](m map[K]V, k K) bool { _, ok := m[k]; return ok }

func cmpID(a, b ID) int { return strings.Compare(string(a[:]), string(b[:])) }

func sortedIDs[V any](m map[ID]V) []ID {
	ids := make([]ID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, cmpID)
	return ids
}
