package files

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/backup-runner/runner/internal/pathmatch"
)

// walkStats is what a walk of one path found.
type walkStats struct {
	files, dirs, bytes int64
	excluded           int64    // entries skipped by a pattern (a directory counts once)
	otherFS            int64    // mount points not descended into
	caches             []string // cache directories skipped, relative to the root
	unreadable         int64
	firstUnreadable    string
	symlink            bool // the root itself is a symbolic link
}

func (s *walkStats) detail() string {
	d := fmt.Sprintf("%d %s, %d %s", s.files, plural(s.files, "file", "files"), s.dirs, plural(s.dirs, "directory", "directories"))
	if s.excluded > 0 {
		d += fmt.Sprintf(", %d excluded", s.excluded)
	}
	if n := len(s.caches); n > 0 {
		d += fmt.Sprintf(", %d cache %s skipped", n, plural(int64(n), "directory", "directories"))
	}
	if s.otherFS > 0 {
		d += fmt.Sprintf(", %d other %s not crossed", s.otherFS, plural(s.otherFS, "file system", "file systems"))
	}
	return d
}

func (s *walkStats) unreadableEntry(path string, err error) {
	s.unreadable++
	if s.firstUnreadable == "" {
		s.firstUnreadable = pathErrText(&fs.PathError{Op: "read", Path: path, Err: unwrapPathErr(err)})
	}
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// walk goes through root as the host's archiver will: skipping excluded
// entries (not descending into excluded directories), other file systems
// with oneFS, and tagged cache directories with excludeCaches. It only
// reads: metadata, directory listings, and the first bytes of
// CACHEDIR.TAG files. checkReadable also asks, per regular file, whether
// it could be opened for reading, so the plan can warn before the backup
// trips over it.
//
// An error is returned only for the root itself or a done ctx; problems
// below the root are counted in unreadable.
func walk(ctx context.Context, root string, m *pathmatch.Matcher, oneFS, excludeCaches, checkReadable bool) (*walkStats, error) {
	st := &walkStats{}
	rootInfo, err := os.Lstat(root)
	if err != nil {
		return nil, err
	}
	if !rootInfo.IsDir() {
		// A single file (or symlink) is an item of its own.
		st.files = 1
		st.symlink = rootInfo.Mode()&fs.ModeSymlink != 0
		if rootInfo.Mode().IsRegular() {
			st.bytes = rootInfo.Size()
			if checkReadable && !readable(root) {
				st.unreadableEntry(root, fs.ErrPermission)
			}
		}
		return st, nil
	}
	rootDev, haveDev := device(rootInfo)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			if p == root && d == nil {
				return err
			}
			st.unreadableEntry(p, err)
			if d != nil && d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if p == root {
			// The root is never skipped, not even for a CACHEDIR.TAG: the
			// operator named it explicitly.
			st.dirs++
			return nil
		}
		rel, rerr := filepath.Rel(root, p)
		if rerr != nil {
			return rerr // cannot happen: WalkDir stays under root
		}
		rel = filepath.ToSlash(rel)
		isDir := d.IsDir()
		if m.Match(rel, isDir) {
			st.excluded++
			if isDir {
				return filepath.SkipDir
			}
			return nil
		}
		info, ierr := d.Info()
		if ierr != nil { // vanished since the listing, or not stat-able
			st.unreadableEntry(p, ierr)
			if isDir {
				return filepath.SkipDir
			}
			return nil
		}
		if isDir {
			if oneFS && haveDev {
				if dev, ok := device(info); ok && dev != rootDev {
					// The mount point itself is kept (empty), as other
					// backup tools do, so a restore recreates it.
					st.otherFS++
					st.dirs++
					return filepath.SkipDir
				}
			}
			if excludeCaches && hasCacheTag(p) {
				st.caches = append(st.caches, rel)
				return filepath.SkipDir
			}
			st.dirs++
			return nil
		}
		st.files++
		if info.Mode().IsRegular() {
			st.bytes += info.Size()
			if checkReadable && !readable(p) {
				st.unreadableEntry(p, fs.ErrPermission)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// cacheTagSignature starts every valid CACHEDIR.TAG
// (https://bford.info/cachedir/).
var cacheTagSignature = []byte("Signature: 8a477f597d28d172789f06886806bc55")

// hasCacheTag reports whether dir holds a valid CACHEDIR.TAG file.
func hasCacheTag(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "CACHEDIR.TAG"))
	if err != nil {
		return false
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	buf := make([]byte, len(cacheTagSignature))
	if _, err := io.ReadFull(f, buf); err != nil {
		return false
	}
	return bytes.Equal(buf, cacheTagSignature)
}
