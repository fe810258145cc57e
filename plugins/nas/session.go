package nas

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/backup-runner/runner/plugins/sdk"
)

// tmpPrefix starts the name of a file Put is still writing. List never
// shows such files and object names may not use the prefix, so a crash
// mid-Put leaves only a file that is visibly not an object (the
// repository's prune may remove it).
const tmpPrefix = ".runner-tmp-"

// dirPerm keeps the directories Put creates private to the runner's user,
// as backups hold everything the sources could read. (Put's files are
// 0600: os.CreateTemp's mode.)
const dirPerm = 0o700

// session is a prepared nas target: object verbs on files under root.
// Object names are slash-separated paths relative to root.
type session struct {
	label    string
	root     string
	readOnly bool
	mount    *mountRef // the mount this session uses; nil without mount
	released atomic.Bool
	// files counts the files the verbs have open (a Put being written or
	// cleaned up, a Get not yet closed): Release waits for them, since an
	// unmount with an open file fails ("target is busy"). Over RPC the host
	// may have a verb's error before the plugin has closed its file.
	files atomic.Int64
}

func (s *session) LocalRoot() string { return s.root }

// errReadOnly refuses writes in a session prepared for reading, so that a
// plan or a dry run cannot change the repository by mistake.
var errReadOnly = errors.New("the target was prepared read-only")

// path checks an object name and returns its file path.
func (s *session) path(name string) (string, error) {
	if s.released.Load() {
		return "", errors.New("session already released")
	}
	if err := checkName(name, false); err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(name)), nil
}

// checkName accepts slash-separated relative names without empty, "." or
// ".." segments, so that no name can leave the repository directory.
// A prefix (for List) may be empty and may end in a slash.
func checkName(name string, prefix bool) error {
	if prefix {
		if name == "" {
			return nil
		}
		name = strings.TrimSuffix(name, "/")
	}
	switch {
	case name == "":
		return errors.New("empty object name")
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("object name %q is absolute", name)
	case strings.ContainsRune(name, 0):
		return fmt.Errorf("object name %q contains a NUL byte", name)
	}
	for _, seg := range strings.Split(name, "/") {
		switch {
		case seg == "" || seg == "." || seg == "..":
			return fmt.Errorf("object name %q has an empty, . or .. segment", name)
		case strings.HasPrefix(seg, tmpPrefix):
			return fmt.Errorf("object name %q uses the reserved prefix %s", name, tmpPrefix)
		}
	}
	return nil
}

func (s *session) fail(verb, name string, err error) error {
	return fmt.Errorf("%s: %s %s: %w", s.label, verb, name, err)
}

// notFound turns a missing file into sdk.ErrNotFound, keeping the text.
func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w (%v)", sdk.ErrNotFound, err)
	}
	return err
}

// Put writes the object to a temporary file in its directory, syncs it
// and renames it into place: readers see the old object or the new one,
// and after a crash, the new one or none.
func (s *session) Put(ctx context.Context, name string, r io.Reader, size int64) (err error) {
	if s.readOnly {
		return s.fail("put", name, errReadOnly)
	}
	p, err := s.path(name)
	if err != nil {
		return s.fail("put", name, err)
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return s.fail("put", name, err)
	}
	s.files.Add(1)
	defer s.files.Add(-1)
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return s.fail("put", name, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close() // may already be closed; the error is moot
			_ = os.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err != nil {
		return s.fail("put", name, err)
	}
	if size >= 0 && n != size {
		return s.fail("put", name, fmt.Errorf("got %d bytes, expected %d", n, size))
	}
	if err := f.Sync(); err != nil {
		return s.fail("put", name, err)
	}
	if err := f.Close(); err != nil {
		return s.fail("put", name, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return s.fail("put", name, err)
	}
	if err := syncDir(dir); err != nil {
		return s.fail("put", name, err)
	}
	return nil
}

// Get opens the object and returns length bytes from offset (length 0:
// to the end). A range past the end is an error: it means the caller's
// idea of the object is wrong.
func (s *session) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	p, err := s.path(name)
	if err != nil {
		return nil, s.fail("get", name, err)
	}
	if offset < 0 || length < 0 {
		return nil, s.fail("get", name, fmt.Errorf("negative range (offset %d, length %d)", offset, length))
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, s.fail("get", name, notFound(err))
	}
	s.files.Add(1)
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%w (not a regular file)", sdk.ErrNotFound)
	}
	if err == nil && (offset > fi.Size() || (length > 0 && offset+length > fi.Size())) {
		err = fmt.Errorf("range %d+%d is beyond the end of the object (%d bytes)", offset, length, fi.Size())
	}
	if err != nil {
		_ = f.Close()
		s.files.Add(-1)
		return nil, s.fail("get", name, err)
	}
	n := length
	if n == 0 {
		n = fi.Size() - offset
	}
	return &readCloser{Reader: ctxReader{ctx, io.NewSectionReader(f, offset, n)}, f: f, done: func() { s.files.Add(-1) }}, nil
}

type readCloser struct {
	io.Reader
	f    *os.File
	done func()
	once sync.Once
}

func (r *readCloser) Close() error {
	err := r.f.Close()
	r.once.Do(r.done)
	return err
}

// List walks the directory the prefix points into and reports every
// object whose name starts with prefix, in lexical order. Directories
// that cannot hold such names are not entered.
func (s *session) List(ctx context.Context, prefix string, fn func(sdk.ObjectInfo) error) error {
	if s.released.Load() {
		return errors.New("session already released")
	}
	if err := checkName(prefix, true); err != nil {
		return s.fail("list", prefix, err)
	}
	start := s.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = filepath.Join(s.root, filepath.FromSlash(prefix[:i]))
	}
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			if p == start && errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipAll // nothing stored under this prefix yet
			}
			return err
		}
		if p == s.root {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if d.IsDir() {
			if p != start && !strings.HasPrefix(name+"/", prefix) && !strings.HasPrefix(prefix, name+"/") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), tmpPrefix) || !strings.HasPrefix(name, prefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted since the directory was read
		}
		if err != nil {
			return err
		}
		return fn(sdk.ObjectInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime()})
	})
	if err != nil {
		return fmt.Errorf("%s: list %q: %w", s.label, prefix, err)
	}
	return nil
}

// Delete removes the object. It removes files only, never directories.
func (s *session) Delete(ctx context.Context, name string) error {
	if s.readOnly {
		return s.fail("delete", name, errReadOnly)
	}
	p, err := s.path(name)
	if err != nil {
		return s.fail("delete", name, err)
	}
	if err := ctx.Err(); err != nil {
		return s.fail("delete", name, err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return s.fail("delete", name, notFound(err))
	}
	if !fi.Mode().IsRegular() {
		return s.fail("delete", name, fmt.Errorf("%w (not a regular file)", sdk.ErrNotFound))
	}
	if err := os.Remove(p); err != nil {
		return s.fail("delete", name, notFound(err))
	}
	if err := syncDir(filepath.Dir(p)); err != nil {
		return s.fail("delete", name, err)
	}
	return nil
}

// Stat describes the object.
func (s *session) Stat(ctx context.Context, name string) (sdk.ObjectInfo, error) {
	p, err := s.path(name)
	if err != nil {
		return sdk.ObjectInfo{}, s.fail("stat", name, err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return sdk.ObjectInfo{}, s.fail("stat", name, notFound(err))
	}
	if !fi.Mode().IsRegular() {
		return sdk.ObjectInfo{}, s.fail("stat", name, fmt.Errorf("%w (not a regular file)", sdk.ErrNotFound))
	}
	return sdk.ObjectInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Usage reports the file system's size and free space (for the
// unprivileged user, as the runner writes as one). The repository's own
// size is not measured: that needs a walk, and the repository knows it
// better from its index.
func (s *session) Usage(ctx context.Context) (sdk.Usage, error) {
	if s.released.Load() {
		return sdk.Usage{}, errors.New("session already released")
	}
	total, free, err := statfs(s.root)
	if err != nil {
		return sdk.Usage{}, fmt.Errorf("%s: usage of %s: %w", s.label, s.root, err)
	}
	return sdk.Usage{TotalBytes: total, FreeBytes: free, UsedBytes: -1}, nil
}

// Release ends the session and unmounts the mount point if Prepare
// mounted it and no other session of this process still uses it. It does
// so whether the run succeeded or not; a mount that was there before
// Prepare stays.
func (s *session) Release(ctx context.Context) error {
	if s.released.Swap(true) {
		return fmt.Errorf("%s: session released twice", s.label)
	}
	if s.mount == nil {
		return nil
	}
	// Files still open (see files) would make the unmount fail; a reader
	// the host never closes must not hold the mount for ever.
	for deadline := time.Now().Add(30 * time.Second); s.files.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.mount.release(ctx); err != nil {
		return fmt.Errorf("%s: %w", s.label, err)
	}
	return nil
}

// syncDir makes a rename or removal in dir durable. File systems that
// cannot sync a directory (some network file systems answer EINVAL) are
// accepted as they are: their server orders its own writes.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	cerr := d.Close()
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return cerr
}

// ctxReader stops a copy when its context is done.
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
