// Package local stores repository objects as files under a directory: the
// NAS fast path and the storage of the repository tests.
//
// Put writes a temporary file in the destination directory, fsyncs it,
// renames it into place and fsyncs the directory, so that after a crash an
// object is either absent or complete, and a completed Put survives power
// loss. Temporary files start with ".tmp-" and are ignored by List; a crash
// can leave some behind, which RemoveTemp cleans up.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/backup-runner/runner/internal/repo/storage"
)

const tempPrefix = ".tmp-"

// Store is a directory-backed storage.Storage.
type Store struct {
	root string
}

var _ storage.Storage = (*Store)(nil)

// New returns a store rooted at dir, creating dir if needed.
func New(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create repository directory: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("repository directory: %w", err)
	}
	return &Store{root: abs}, nil
}

// Root is the directory the store writes to.
func (s *Store) Root() string { return s.root }

func (s *Store) path(name string) (string, error) {
	if err := storage.ValidName(name); err != nil {
		return "", err
	}
	if strings.HasPrefix(path.Base(name), tempPrefix) {
		return "", fmt.Errorf("invalid object name %q: reserved prefix", name)
	}
	return filepath.Join(s.root, filepath.FromSlash(name)), nil
}

func notFound(op, name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s %s: %w", op, name, storage.ErrNotFound)
	}
	return fmt.Errorf("%s %s: %w", op, name, err)
}

// ctxReader stops a copy when the context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Put implements storage.Storage.
func (s *Store) Put(ctx context.Context, name string, r io.Reader, size int64) (err error) {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	f, err := os.CreateTemp(dir, tempPrefix)
	if err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("put %s: got %d bytes, announced %d", name, n, size)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("put %s: fsync: %w", name, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	if err = os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	return syncDir(dir)
}

var _ storage.FileStore = (*Store)(nil)

// CreateTemp implements storage.FileStore: a temporary file in the root,
// hidden from List and removed by RemoveTemp if it is left behind.
func (s *Store) CreateTemp() (*os.File, error) {
	return os.CreateTemp(s.root, tempPrefix+"pack-")
}

// PutFile implements storage.FileStore: fsync, rename into place, fsync
// the directory.
func (s *Store) PutFile(ctx context.Context, name string, f *os.File, size int64) (err error) {
	defer func() {
		_ = f.Close()
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	p, err := s.path(name)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	if size >= 0 && fi.Size() != size {
		return fmt.Errorf("put %s: file has %d bytes, announced %d", name, fi.Size(), size)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("put %s: fsync: %w", name, err)
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	return syncDir(dir)
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync directory: %w", err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

type sectionReadCloser struct {
	io.Reader
	f *os.File
}

func (s sectionReadCloser) Close() error { return s.f.Close() }

// Get implements storage.Storage.
func (s *Store) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := s.path(name)
	if err != nil {
		return nil, err
	}
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("get %s: negative range %d+%d", name, offset, length)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, notFound("get", name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("get %s: %w", name, err)
	}
	if length == 0 {
		length = fi.Size() - offset
	}
	if offset > fi.Size() || length < 0 || offset+length > fi.Size() {
		_ = f.Close()
		return nil, fmt.Errorf("get %s: range %d+%d beyond size %d", name, offset, length, fi.Size())
	}
	return sectionReadCloser{io.NewSectionReader(f, offset, length), f}, nil
}

// List implements storage.Storage. Objects are reported in lexical order.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	// Walk the deepest directory that contains every name with this prefix.
	dir := ""
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		dir = prefix[:i]
	}
	start := s.root
	if dir != "" {
		if err := storage.ValidName(dir); err != nil {
			return fmt.Errorf("list %q: %w", prefix, err)
		}
		start = filepath.Join(s.root, filepath.FromSlash(dir))
	}
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // a directory removed while listing, or none yet
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if !strings.HasPrefix(name, prefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted while listing
		}
		if err != nil {
			return err
		}
		return fn(storage.ObjectInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime()})
	})
	if err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	return nil
}

// Delete implements storage.Storage.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := s.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return notFound("delete", name, err)
	}
	return syncDir(filepath.Dir(p))
}

// Stat implements storage.Storage.
func (s *Store) Stat(ctx context.Context, name string) (storage.ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return storage.ObjectInfo{}, err
	}
	p, err := s.path(name)
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return storage.ObjectInfo{}, notFound("stat", name, err)
	}
	if fi.IsDir() {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s: is a directory: %w", name, storage.ErrNotFound)
	}
	return storage.ObjectInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// RemoveTemp deletes temporary files older than age, left by Puts that
// were interrupted by a crash. It returns how many it removed.
func (s *Store) RemoveTemp(age time.Duration) (int, error) {
	n := 0
	cutoff := time.Now().Add(-age)
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.ModTime().Before(cutoff) {
			if os.Remove(p) == nil {
				n++
			}
		}
		return nil
	})
	return n, err
}
