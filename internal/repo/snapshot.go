package repo

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/backup-runner/runner/internal/repo/storage"
)

// ItemKind says what an item of a snapshot is.
type ItemKind string

// Item kinds.
const (
	ItemTree   ItemKind = "tree"   // a file tree: Tree is its root tree
	ItemStream ItemKind = "stream" // a byte stream (e.g. a dump): Content lists its chunks
)

// Item is one thing a snapshot captured.
type Item struct {
	Name    string   `json:"name"`
	Kind    ItemKind `json:"kind"`
	Tree    ID       `json:"tree,omitzero"`
	Content []ID     `json:"content,omitempty"`
	Size    uint64   `json:"size,omitempty"` // plaintext bytes (stream length, or file bytes of a tree)
}

// Summary holds statistics of the run that made a snapshot.
type Summary struct {
	Start       time.Time `json:"start,omitzero"`
	End         time.Time `json:"end,omitzero"`
	Files       uint64    `json:"files,omitempty"`
	Dirs        uint64    `json:"dirs,omitempty"`
	Bytes       uint64    `json:"bytes,omitempty"`        // plaintext bytes captured
	AddedBytes  uint64    `json:"added_bytes,omitempty"`  // plaintext bytes of new blobs
	StoredBytes uint64    `json:"stored_bytes,omitempty"` // bytes those blobs took in packs
	Errors      uint64    `json:"errors,omitempty"`       // items that could not be read
}

// Snapshot is the document stored as snapshots/<id>.
type Snapshot struct {
	Version int               `json:"version"`
	Job     string            `json:"job"`
	Host    string            `json:"host"`
	Time    time.Time         `json:"time"`
	Role    string            `json:"role,omitempty"`
	Items   []Item            `json:"items"`
	Source  map[string]string `json:"source,omitempty"` // source metadata (binlog position, head commit, ...)
	Tags    []string          `json:"tags,omitempty"`
	Parent  ID                `json:"parent,omitzero"`
	// Partial is set when something could not be captured (see
	// Summary.Errors): the snapshot is usable but not complete.
	Partial bool    `json:"partial,omitempty"`
	Summary Summary `json:"summary"`

	// ID is the snapshot's id; set by SaveSnapshot and the loaders, not stored.
	ID ID `json:"-"`
}

const snapshotVersion = 1

// SaveSnapshot flushes the repository (packs, then index) and then stores
// sn, so that a snapshot never exists without the data it references. Every
// tree and chunk the items name directly must be in the repository.
func (r *Repository) SaveSnapshot(ctx context.Context, sn *Snapshot) (ID, error) {
	if sn.Job == "" || sn.Time.IsZero() {
		return ID{}, fmt.Errorf("save snapshot: job and time are required")
	}
	if err := r.Flush(ctx); err != nil {
		return ID{}, fmt.Errorf("save snapshot: %w", err)
	}
	for _, it := range sn.Items {
		switch it.Kind {
		case ItemTree:
			if !r.HasBlob(TreeBlob, it.Tree) {
				return ID{}, fmt.Errorf("save snapshot: item %q: root tree %s: %w", it.Name, it.Tree, ErrBlobNotFound)
			}
		case ItemStream:
			for _, id := range it.Content {
				if !r.HasBlob(DataBlob, id) {
					return ID{}, fmt.Errorf("save snapshot: item %q: chunk %s: %w", it.Name, id, ErrBlobNotFound)
				}
			}
		default:
			return ID{}, fmt.Errorf("save snapshot: item %q: unknown kind %q", it.Name, it.Kind)
		}
	}
	doc := *sn
	doc.Version = snapshotVersion
	doc.Time = doc.Time.UTC()
	b, err := json.Marshal(&doc)
	if err != nil {
		return ID{}, fmt.Errorf("save snapshot: %w", err)
	}
	id, err := r.saveObject(ctx, snapshotPrefix, aadSnapshot, b)
	if err != nil {
		return ID{}, fmt.Errorf("save snapshot: %w", err)
	}
	sn.ID = id
	return id, nil
}

// LoadSnapshot loads one snapshot.
func (r *Repository) LoadSnapshot(ctx context.Context, id ID) (*Snapshot, error) {
	b, err := r.loadObject(ctx, snapshotPrefix+id.String(), aadSnapshot, maxSnapshotSize)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	sn := &Snapshot{}
	if err := json.Unmarshal(b, sn); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w: %w", id, ErrCorrupt, err)
	}
	if sn.Version != snapshotVersion {
		return nil, fmt.Errorf("snapshot %s: unsupported version %d", id, sn.Version)
	}
	sn.ID = id
	return sn, nil
}

// ListSnapshots loads every snapshot, oldest first.
func (r *Repository) ListSnapshots(ctx context.Context) ([]*Snapshot, error) {
	ids, err := r.listIDs(ctx, snapshotPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]*Snapshot, 0, len(ids))
	for id := range ids {
		sn, err := r.LoadSnapshot(ctx, id)
		if storage.IsNotFound(err) {
			continue // forgotten since we listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, sn)
	}
	slices.SortFunc(out, func(a, b *Snapshot) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID.String(), b.ID.String())
	})
	return out, nil
}

// FindSnapshot resolves a unique prefix (at least 4 hex digits) of a
// snapshot id, as operators type them.
func (r *Repository) FindSnapshot(ctx context.Context, prefix string) (ID, error) {
	if len(prefix) < 4 {
		return ID{}, fmt.Errorf("snapshot id prefix %q is too short", prefix)
	}
	var ids []ID
	err := r.st.List(ctx, snapshotPrefix+prefix, func(oi ObjectInfo) error {
		if id, ok := parseObjectID(oi.Name, snapshotPrefix); ok {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return ID{}, fmt.Errorf("find snapshot %q: %w", prefix, err)
	}
	if len(ids) != 1 {
		return ID{}, fmt.Errorf("snapshot id prefix %q matches %d snapshots", prefix, len(ids))
	}
	return ids[0], nil
}

// DeleteSnapshot forgets a snapshot. Its data stays until Prune.
func (r *Repository) DeleteSnapshot(ctx context.Context, id ID) error {
	if err := r.writable(); err != nil {
		return fmt.Errorf("delete snapshot: %w", err)
	}
	if err := r.st.Delete(ctx, snapshotPrefix+id.String()); err != nil {
		return fmt.Errorf("delete snapshot %s: %w", id, err)
	}
	return nil
}
