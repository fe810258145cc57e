package wordpress

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"github.com/backup-runner/runner/internal/mirror"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The certificates and server_config items are tar archives (PAX format)
// of the configured paths: every entry under its absolute path without
// the leading slash, with mode, owner and times. Symbolic links are
// stored as links and followed: what a link points to is stored too,
// under its own real path, with its parent directory (so a Let's Encrypt
// live/ directory comes with the archive/ files its links point to, and a
// restore recreates the layout certbot expects). Dangling links are
// stored and reported.

// maxArchive bounds what an apply holds in memory of one archive item.
const maxArchive = 256 << 20

// entry is one file system entry to archive.
type entry struct {
	path string // absolute
	info fs.FileInfo
	link string // symlink target as written
}

// collector gathers entries without duplicates.
type collector struct {
	seen     map[string]bool
	entries  []entry
	warnings []string
}

// collect walks the configured paths. A configured path that does not
// exist is an error naming it.
func collect(paths []string) ([]entry, error) {
	es, _, err := collectWarn(paths)
	return es, err
}

func collectWarn(paths []string) ([]entry, []string, error) {
	c := &collector{seen: map[string]bool{}}
	for _, p := range paths {
		if _, err := os.Lstat(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, nil, fmt.Errorf("%s does not exist", p)
			}
			return nil, nil, err
		}
		if err := c.add(p, true); err != nil {
			return nil, nil, err
		}
	}
	return c.entries, c.warnings, nil
}

// add adds p; recurse descends into a directory.
func (c *collector) add(p string, recurse bool) error {
	if c.seen[p] {
		return nil
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	c.seen[p] = true
	switch {
	case fi.IsDir():
		c.entries = append(c.entries, entry{path: p, info: fi})
		if !recurse {
			return nil
		}
		des, err := os.ReadDir(p)
		if err != nil {
			return err
		}
		for _, de := range des {
			if err := c.add(filepath.Join(p, de.Name()), true); err != nil {
				return err
			}
		}
	case fi.Mode().IsRegular():
		c.entries = append(c.entries, entry{path: p, info: fi})
	case fi.Mode()&fs.ModeSymlink != 0:
		link, err := os.Readlink(p)
		if err != nil {
			return err
		}
		c.entries = append(c.entries, entry{path: p, info: fi, link: link})
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			c.warnings = append(c.warnings, fmt.Sprintf("%s is a symbolic link to %s, which does not exist: only the link is stored", p, link))
			return nil
		}
		if dir := filepath.Dir(real); dir != "/" && !c.seen[dir] {
			if err := c.add(dir, false); err != nil {
				return err
			}
		}
		return c.add(real, true)
	default:
		c.warnings = append(c.warnings, fmt.Sprintf("%s is not a file, directory or symbolic link: not stored", p))
	}
	return nil
}

// writeTar writes the entries as a tar archive to w.
func writeTar(w io.Writer, entries []entry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		hdr, err := tar.FileInfoHeader(e.info, e.link)
		if err != nil {
			return fmt.Errorf("%s: %w", e.path, err)
		}
		hdr.Name = strings.TrimPrefix(e.path, "/")
		if e.info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", e.path, err)
		}
		if !e.info.Mode().IsRegular() {
			continue
		}
		f, err := os.Open(e.path)
		if err != nil {
			return err
		}
		_, err = io.CopyN(tw, f, hdr.Size)
		_ = f.Close() // read-only
		if err != nil {
			return fmt.Errorf("%s changed while it was read: %w", e.path, err)
		}
	}
	return tw.Close()
}

// archEntry is one entry of an archive read back.
type archEntry struct {
	hdr  *tar.Header
	name string // cleaned relative path
	data []byte
}

// readTar reads a whole archive item into memory, checking every name.
func readTar(r io.Reader) ([]archEntry, error) {
	tr := tar.NewReader(r)
	var out []archEntry
	var total int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "/"))
		if name == "." || name == ".." || strings.HasPrefix(name, "../") {
			return nil, fmt.Errorf("archive entry %q has an invalid path", hdr.Name)
		}
		e := archEntry{hdr: hdr, name: name}
		switch hdr.Typeflag {
		case tar.TypeReg:
			total += hdr.Size
			if total > maxArchive {
				return nil, fmt.Errorf("archive larger than %d MiB", maxArchive>>20)
			}
			var b bytes.Buffer
			if _, err := io.CopyN(&b, tr, hdr.Size); err != nil {
				return nil, fmt.Errorf("archive entry %s: %w", hdr.Name, err)
			}
			e.data = b.Bytes()
		case tar.TypeDir, tar.TypeSymlink:
		default:
			return nil, fmt.Errorf("archive entry %s has unsupported type %q", hdr.Name, hdr.Typeflag)
		}
		out = append(out, e)
	}
}

// archiveStats counts what applying an archive changes.
type archiveStats struct {
	written, unchanged int
}

// applyTar writes the entries under base ("/" to put them back where
// they were). It writes every entry of the archive and deletes nothing:
// other files in those directories (e.g. newer certificates) stay.
// Files and links are replaced atomically (temporary name, rename). With
// dryRun it only counts.
func applyTar(entries []archEntry, base string, dryRun bool) (archiveStats, error) {
	var st archiveStats
	type dirTime struct {
		path string
		hdr  *tar.Header
	}
	var dirs []dirTime
	for _, e := range entries {
		target := filepath.Join(base, filepath.FromSlash(e.name))
		cur, lerr := os.Lstat(target)
		exists := lerr == nil
		h := e.hdr
		mode := fs.FileMode(h.Mode).Perm() | fs.FileMode(h.Mode)&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
		switch h.Typeflag {
		case tar.TypeDir:
			if exists && !cur.IsDir() {
				return st, fmt.Errorf("%s: the snapshot has a directory here, the disk has a %s: move it away first", target, kindOf(cur))
			}
			same := exists && cur.Mode().Perm() == fs.FileMode(h.Mode).Perm() && mirror.SameOwner(cur, h.Uid, h.Gid)
			if same {
				st.unchanged++
			} else {
				st.written++
			}
			if dryRun {
				continue
			}
			if !exists {
				if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
					return st, err
				}
				if err := os.Mkdir(target, 0o700); err != nil {
					return st, err
				}
			}
			if err := mirror.SetMeta(target, false, mode, h.Uid, h.Gid, nil); err != nil {
				return st, err
			}
			dirs = append(dirs, dirTime{target, h})
		case tar.TypeReg:
			if exists && cur.IsDir() {
				return st, fmt.Errorf("%s: the snapshot has a file here, the disk has a directory: move it away first", target)
			}
			if exists && cur.Mode().IsRegular() && cur.Mode().Perm() == fs.FileMode(h.Mode).Perm() && mirror.SameOwner(cur, h.Uid, h.Gid) && cur.Size() == h.Size {
				if b, err := os.ReadFile(target); err == nil && bytes.Equal(b, e.data) {
					st.unchanged++
					if !dryRun {
						_ = os.Chtimes(target, h.ModTime, h.ModTime)
					}
					continue
				}
			}
			st.written++
			if dryRun {
				continue
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return st, err
			}
			if err := writeFileAtomic(target, e.data, mode, h.Uid, h.Gid, h.ModTime); err != nil {
				return st, err
			}
		case tar.TypeSymlink:
			if exists && cur.IsDir() {
				return st, fmt.Errorf("%s: the snapshot has a symbolic link here, the disk has a directory: move it away first", target)
			}
			if exists && cur.Mode()&fs.ModeSymlink != 0 {
				if l, err := os.Readlink(target); err == nil && l == h.Linkname {
					st.unchanged++
					continue
				}
			}
			st.written++
			if dryRun {
				continue
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return st, err
			}
			tmp := tempName(target)
			if err := os.Symlink(h.Linkname, tmp); err != nil {
				return st, err
			}
			mt := h.ModTime
			if err := mirror.SetMeta(tmp, true, 0, h.Uid, h.Gid, &mt); err != nil {
				_ = os.Remove(tmp)
				return st, err
			}
			if err := os.Rename(tmp, target); err != nil {
				_ = os.Remove(tmp)
				return st, err
			}
		}
	}
	// Directory times last, deepest first: writing inside changed them.
	sort.SliceStable(dirs, func(i, j int) bool { return len(dirs[i].path) > len(dirs[j].path) })
	for _, d := range dirs {
		_ = os.Chtimes(d.path, d.hdr.ModTime, d.hdr.ModTime)
	}
	return st, nil
}

// tempName is a temporary name beside target.
func tempName(target string) string {
	return filepath.Join(filepath.Dir(target), fmt.Sprintf(".%s.runner-%d", filepath.Base(target), time.Now().UnixNano()))
}

// writeFileAtomic writes data to a temporary file beside target, sets
// its mode, owner and time, and renames it over target.
func writeFileAtomic(target string, data []byte, mode fs.FileMode, uid, gid int, mtime time.Time) error {
	tmp := tempName(target)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = mirror.SetMeta(tmp, false, mode, uid, gid, &mtime)
	}
	if err == nil {
		err = os.Rename(tmp, target)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

func kindOf(fi fs.FileInfo) string {
	switch {
	case fi.IsDir():
		return "directory"
	case fi.Mode()&fs.ModeSymlink != 0:
		return "symbolic link"
	case fi.Mode().IsRegular():
		return "file"
	}
	return "special file"
}
