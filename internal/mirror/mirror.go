// Package mirror makes a live directory tree exactly like a staged one
// (where the host restored a snapshot's tree), safely: the slow part that
// can fail changes nothing live. Sources that restore files into place
// (files, wordpress) use it.
package mirror

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/backup-runner/runner/internal/pathmatch"
)

// A mirror makes a live directory tree (dst) exactly like a staged one
// (src, where the host restored a snapshot's tree): files that are not in
// src are deleted, files that differ are replaced, modes, owners and
// times are set as staged. Paths the exclude patterns match in dst are
// left alone (neither compared nor deleted): they were not captured, so
// the snapshot cannot say what they should be (caches, logs the
// operator excluded).
//
// Files are compared as rsync does by default: same type, size and
// modification time (and link target) is the same file; mode and owner
// differences are fixed without rewriting.
//
// It runs in two steps so that the slow part, which can fail (copying,
// disk full), changes nothing live:
//
//  1. prepare: copy every new or changed file and link into a private
//     directory on dst's file system (beside dst, or inside it when dst
//     is a mount point), with its final mode, owner and time;
//  2. commit: delete what must go (deepest first), create directories,
//     rename the prepared files into place (each rename is atomic), fix
//     metadata, and set directory modes and times last.
//
// A failure during prepare leaves dst untouched; abort removes the
// private directory.

// node is one entry of a scanned tree.
type node struct {
	fi   fs.FileInfo
	link string
}

func (n *node) kind() string {
	switch {
	case n.fi.IsDir():
		return "dir"
	case n.fi.Mode()&fs.ModeSymlink != 0:
		return "link"
	case n.fi.Mode().IsRegular():
		return "file"
	}
	return "other"
}

// scanTree lists root's entries by slash-separated relative path ("."
// for root); m (may be nil) excludes paths, skipping excluded
// directories whole. A missing root is an empty tree.
func scanTree(root string, m *pathmatch.Matcher) (map[string]*node, []string, error) {
	nodes := map[string]*node{}
	var order []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel != "." && m != nil && m.Match(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n := &node{fi: fi}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if n.link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		nodes[rel] = n
		order = append(order, rel)
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) && len(order) == 0 {
		return nodes, nil, nil
	}
	return nodes, order, err
}

// Mirror is a planned mirror of src onto dst.
type Mirror struct {
	src, dst string
	srcNodes map[string]*node
	srcOrder []string
	writes   []string // files and links to (re)write, in src order
	metaOnly []string // same content, other mode or owner
	mkdirs   []string
	deletes  []string // in dst, deepest first
	prepared map[string]string
	work     string // the private directory

	added, changed, deleted, dirsAdded, dirsDeleted, skipped int
}

// Plan compares src with dst (dst may not exist yet).
func Plan(src, dst string, m *pathmatch.Matcher) (*Mirror, error) {
	sn, so, err := scanTree(src, nil)
	if err != nil {
		return nil, fmt.Errorf("read the restored files in %s: %w", src, err)
	}
	if sn["."] == nil || !sn["."].fi.IsDir() {
		return nil, fmt.Errorf("the restored files in %s are not a directory", src)
	}
	dn, do, err := scanTree(dst, m)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dst, err)
	}
	mi := &Mirror{src: src, dst: dst, srcNodes: sn, srcOrder: so, prepared: map[string]string{}}
	for _, rel := range so {
		s := sn[rel]
		if s.kind() == "other" {
			mi.skipped++
			continue
		}
		d := dn[rel]
		if rel == "." {
			continue
		}
		if d != nil && d.kind() != s.kind() {
			mi.deletes = append(mi.deletes, rel)
			if d.kind() == "dir" {
				mi.dirsDeleted++
			}
			d = nil
			if s.kind() != "dir" {
				mi.changed++
				mi.writes = append(mi.writes, rel)
				continue
			}
		}
		switch {
		case d == nil && s.kind() == "dir":
			mi.mkdirs = append(mi.mkdirs, rel)
			mi.dirsAdded++
		case d == nil:
			mi.writes = append(mi.writes, rel)
			mi.added++
		case s.kind() == "dir":
		case s.kind() == "link" && s.link != d.link, s.kind() == "file" && (s.fi.Size() != d.fi.Size() || !s.fi.ModTime().Equal(d.fi.ModTime())):
			mi.writes = append(mi.writes, rel)
			mi.changed++
		default:
			su, sg := OwnerOf(s.fi)
			if (s.kind() == "file" && s.fi.Mode() != d.fi.Mode()) || !SameOwner(d.fi, su, sg) || (s.kind() == "link" && !s.fi.ModTime().Equal(d.fi.ModTime())) {
				mi.metaOnly = append(mi.metaOnly, rel)
			}
		}
	}
	for _, rel := range do {
		if rel == "." || sn[rel] != nil {
			continue
		}
		mi.deletes = append(mi.deletes, rel)
		if dn[rel].kind() == "dir" {
			mi.dirsDeleted++
		} else {
			mi.deleted++
		}
	}
	sort.SliceStable(mi.deletes, func(i, j int) bool {
		di, dj := strings.Count(mi.deletes[i], "/"), strings.Count(mi.deletes[j], "/")
		if di != dj {
			return di > dj
		}
		return mi.deletes[i] > mi.deletes[j]
	})
	return mi, nil
}

// Summary says what the mirror changes.
func (mi *Mirror) Summary() string {
	s := fmt.Sprintf("%s added, %d changed, %d deleted", plural(mi.added, "file", "files"), mi.changed, mi.deleted)
	if mi.dirsAdded+mi.dirsDeleted > 0 {
		s += fmt.Sprintf(", %d directories added, %d deleted", mi.dirsAdded, mi.dirsDeleted)
	}
	if len(mi.metaOnly) > 0 {
		s += fmt.Sprintf(", %d with other mode or owner", len(mi.metaOnly))
	}
	if mi.skipped > 0 {
		s += fmt.Sprintf(", %d special files skipped", mi.skipped)
	}
	return s
}

// Prepare copies the new and changed files into a private directory on
// dst's file system.
func (mi *Mirror) Prepare() error {
	if err := os.MkdirAll(mi.dst, 0o755); err != nil {
		return err
	}
	dfi, err := os.Stat(mi.dst)
	if err != nil {
		return err
	}
	parent := filepath.Dir(mi.dst)
	in := mi.dst
	if pfi, err := os.Stat(parent); err == nil {
		a, ok1 := deviceOf(dfi)
		b, ok2 := deviceOf(pfi)
		if ok1 && ok2 && a == b && parent != mi.dst {
			in = parent
		}
	}
	mi.work, err = os.MkdirTemp(in, ".runner-restore-"+filepath.Base(mi.dst)+"-")
	if err != nil {
		if in == mi.dst {
			return err
		}
		if mi.work, err = os.MkdirTemp(mi.dst, ".runner-restore-"); err != nil {
			return err
		}
	}
	if err := os.Chmod(mi.work, 0o700); err != nil {
		return err
	}
	for i, rel := range mi.writes {
		s := mi.srcNodes[rel]
		tmp := filepath.Join(mi.work, fmt.Sprint(i))
		from := filepath.Join(mi.src, filepath.FromSlash(rel))
		uid, gid := OwnerOf(s.fi)
		mt := s.fi.ModTime()
		switch s.kind() {
		case "link":
			if err := os.Symlink(s.link, tmp); err != nil {
				return err
			}
			if err := SetMeta(tmp, true, 0, uid, gid, &mt); err != nil {
				return err
			}
		case "file":
			if err := copyFile(from, tmp); err != nil {
				return err
			}
			if err := SetMeta(tmp, false, s.fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky), uid, gid, &mt); err != nil {
				return err
			}
		}
		mi.prepared[rel] = tmp
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// Abort removes the private directory (after a failed Prepare, or once
// Commit is done).
func (mi *Mirror) Abort() {
	if mi.work != "" {
		_ = os.RemoveAll(mi.work)
		mi.work = ""
	}
}

// Commit applies the prepared changes to dst. It returns the paths it
// had to leave (a deleted directory that still holds excluded files).
func (mi *Mirror) Commit() ([]string, error) {
	defer mi.Abort()
	var left []string
	dst := func(rel string) string { return filepath.Join(mi.dst, filepath.FromSlash(rel)) }
	for _, rel := range mi.deletes {
		p := dst(rel)
		err := os.Remove(p)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			left = append(left, p)
			continue
		}
		return left, err
	}
	for _, rel := range mi.mkdirs {
		if err := os.Mkdir(dst(rel), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return left, err
		}
	}
	for _, rel := range mi.writes {
		if err := os.Rename(mi.prepared[rel], dst(rel)); err != nil {
			return left, err
		}
	}
	for _, rel := range mi.metaOnly {
		s := mi.srcNodes[rel]
		uid, gid := OwnerOf(s.fi)
		mt := s.fi.ModTime()
		if err := SetMeta(dst(rel), s.kind() == "link", s.fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky), uid, gid, &mt); err != nil {
			return left, err
		}
	}
	mi.Abort() // before the directory times: removing it changes its parent
	// Directories last, deepest first, so that their times stay.
	for i := len(mi.srcOrder) - 1; i >= 0; i-- {
		rel := mi.srcOrder[i]
		s := mi.srcNodes[rel]
		if !s.fi.IsDir() {
			continue
		}
		uid, gid := OwnerOf(s.fi)
		mt := s.fi.ModTime()
		if err := SetMeta(dst(rel), false, s.fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky), uid, gid, &mt); err != nil {
			return left, err
		}
	}
	return left, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
