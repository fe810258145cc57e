// Package storage defines the object verbs the repository needs from a
// target, and the not-found error it recognises. It is a separate package
// (re-exported by package repo) so that implementations such as
// storage/local do not depend on the repository code.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
)

// ErrNotFound is returned (wrapped) by Storage methods for an object that
// does not exist. Adapters over other object stores map their own not-found
// error to it (for plugin targets: sdk.ErrNotFound, see docs/REPOSITORY.md).
var ErrNotFound = errors.New("object not found")

// IsNotFound reports whether err means "no such object". fs.ErrNotExist is
// accepted too so that thin wrappers over the os package need no mapping.
func IsNotFound(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, fs.ErrNotExist)
}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// Storage is what a repository needs from a target. Object names are
// slash-separated relative paths such as "data/ab/<id>".
//
// Implementations must be safe for concurrent use.
type Storage interface {
	// Put stores size bytes from r under name, atomically: readers see the
	// old object (or none) or the complete new one, never a partial one.
	// An existing object is replaced. size is the exact length of r.
	Put(ctx context.Context, name string, r io.Reader, size int64) error
	// Get reads length bytes from offset (length 0: to the end). A range
	// beyond the end of the object is an error.
	Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error)
	// List calls fn for every object whose name starts with prefix. An
	// error from fn stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// Delete removes an object; ErrNotFound if it does not exist.
	Delete(ctx context.Context, name string) error
	// Stat describes an object; ErrNotFound if it does not exist.
	Stat(ctx context.Context, name string) (ObjectInfo, error)
}

// FileStore is implemented by stores on a local file system. The
// repository then writes a pack straight into a temporary file of the
// store and moves it into place with a rename, instead of writing it once
// to a temporary file elsewhere and copying it.
type FileStore interface {
	// CreateTemp creates a temporary file on the store's file system that
	// List does not report.
	CreateTemp() (*os.File, error)
	// PutFile makes f (from CreateTemp, size bytes) the object name,
	// durably and atomically. f is closed, whatever the outcome.
	PutFile(ctx context.Context, name string, f *os.File, size int64) error
}

// ValidName checks that name is a clean relative slash path: no empty,
// "." or ".." segments, no leading or trailing slash, no backslash or NUL.
// Implementations that map names to files use it to stay inside their root.
func ValidName(name string) error {
	if name == "" || strings.ContainsAny(name, "\\\x00") {
		return fmt.Errorf("invalid object name %q", name)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("invalid object name %q", name)
		}
	}
	return nil
}

// ReadAll reads a whole object, refusing objects larger than limit so that
// a damaged or hostile store cannot make the caller allocate without bound.
func ReadAll(ctx context.Context, st Storage, name string, limit int64) ([]byte, error) {
	rc, err := st.Get(ctx, name, 0, 0)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("object %s is larger than %d bytes", name, limit)
	}
	return b, nil
}
