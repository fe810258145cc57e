// Package repo is runner's content-addressed, deduplicated, optionally
// encrypted repository: chunks and trees stored as blobs in pack files,
// index files that map blobs to packs, snapshot documents, locks, check and
// prune. The on-disk format is described byte for byte in
// docs/REPOSITORY.md.
//
// A repository lives on a Storage (the object verbs of a target). Typical
// use by a backup:
//
//	r, err := repo.Open(ctx, st, repo.OpenOptions{Passphrase: pw, Lock: repo.LockShared})
//	defer r.Close(ctx)
//	id, _, err := r.SaveBlob(ctx, repo.DataBlob, chunk) // from many goroutines
//	tree, err := r.SaveTree(ctx, nodes)
//	snapID, err := r.SaveSnapshot(ctx, &repo.Snapshot{...}) // flushes first
package repo

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/backup-runner/runner/internal/repo/pack"
	"github.com/backup-runner/runner/internal/repo/storage"
)

// Storage is the object store a repository lives on (see package storage).
type Storage = storage.Storage

// ObjectInfo describes a stored object.
type ObjectInfo = storage.ObjectInfo

// ErrNotFound is the not-found error Storage implementations wrap.
var ErrNotFound = storage.ErrNotFound

// Errors callers may test for with errors.Is.
var (
	ErrRepositoryExists = errors.New("a repository already exists here")
	ErrNoRepository     = errors.New("no repository here (no config object)")
	ErrBlobNotFound     = errors.New("blob not in index")
	ErrCorrupt          = errors.New("repository data is corrupt")
	ErrLocked           = errors.New("repository is locked")
	ErrNotLocked        = errors.New("repository was opened without a lock; writes need one")
	ErrNeedExclusive    = errors.New("operation needs an exclusive lock")
)

// Object name prefixes.
const (
	configName     = "config"
	keysPrefix     = "keys/"
	dataPrefix     = "data/"
	indexPrefix    = "index/"
	snapshotPrefix = "snapshots/"
	locksPrefix    = "locks/"
)

// ID identifies blobs, packs, index files, snapshots and keys: a 32-byte
// BLAKE3 hash (keyed for blob ids in encrypted repositories).
type ID [32]byte

// String returns the lowercase hex form used in object names.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits, for messages.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsZero reports whether id is all zero (no id).
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText encodes id as hex (used by JSON).
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes a hex id.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseID decodes a 64-digit hex id.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, fmt.Errorf("invalid id %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("invalid id %q: %w", s, err)
	}
	return id, nil
}

// BlobType tells data chunks from trees. The same bytes saved as both types
// are two blobs.
type BlobType uint8

// Blob types, with the values used on disk.
const (
	DataBlob BlobType = BlobType(pack.TypeData)
	TreeBlob BlobType = BlobType(pack.TypeTree)
)

func (t BlobType) String() string {
	switch t {
	case DataBlob:
		return "data"
	case TreeBlob:
		return "tree"
	}
	return fmt.Sprintf("blobtype(%d)", uint8(t))
}

func (t BlobType) valid() bool { return t == DataBlob || t == TreeBlob }

// BlobHandle names a blob: its type and id.
type BlobHandle struct {
	Type BlobType
	ID   ID
}

func (h BlobHandle) String() string { return h.Type.String() + " " + h.ID.String() }

func packName(id ID) string {
	s := id.String()
	return dataPrefix + s[:2] + "/" + s
}

// parseObjectID extracts the id from "prefix<hex>" or "data/xx/<hex>".
func parseObjectID(name, prefix string) (ID, bool) {
	if len(name) < len(prefix) || name[:len(prefix)] != prefix {
		return ID{}, false
	}
	rest := name[len(prefix):]
	if prefix == dataPrefix {
		if len(rest) != 2+1+64 || rest[2] != '/' || rest[:2] != rest[3:5] {
			return ID{}, false
		}
		rest = rest[3:]
	}
	id, err := ParseID(rest)
	return id, err == nil
}
