//go:build linux

package archiver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/backup-runner/runner/internal/repo"
)

// RestoreOptions configure Restore.
type RestoreOptions struct {
	// Include restores only these paths, relative to the item root (the
	// single top node; a leading "/" is accepted), with the directories on
	// the way to them. Empty restores everything. A path that is not in
	// the snapshot makes Restore fail after restoring the others.
	Include []string
	// Workers is the number of file writers (0 means GOMAXPROCS).
	Workers int
	// Owners restores numeric owners and groups (chown). Only root can
	// give files away, so callers set it to os.Geteuid() == 0 unless told
	// otherwise; a failed chown is then an error.
	Owners bool
	// Sparse leaves holes where a file's chunks are all zero bytes
	// instead of writing them, as cp --sparse=always does: a disk image or
	// a database file with large unwritten regions then takes the space
	// it took before. Off by default, because files that must be fully
	// allocated (swap files, preallocated images) would come back with
	// holes.
	Sparse bool
	Log    *slog.Logger
	// Progress, if set, counts the files and bytes written as they are,
	// for a progress display.
	Progress *Progress
}

// Progress counts what restores have written so far. One value may serve
// several restores at once; the zero value is ready to use.
type Progress struct{ files, bytes atomic.Uint64 }

// Files is the number of files restored so far.
func (p *Progress) Files() uint64 { return p.files.Load() }

// Bytes is the number of bytes written so far.
func (p *Progress) Bytes() uint64 { return p.bytes.Load() }

// AddBytes counts n more bytes (a stream restored by the caller).
func (p *Progress) AddBytes(n int) { p.bytes.Add(uint64(n)) }

// RestoreStats describe a restore.
type RestoreStats struct {
	Files, Dirs, Bytes uint64
	// Holes is the part of Bytes left unwritten as holes (Sparse).
	Holes   uint64
	Links   uint64 // hard links made to files restored earlier in the run
	Special uint64 // symlinks, FIFOs, sockets and device nodes
	// Warnings counts what could not be restored but does not fail a
	// restore: extended attributes the destination refuses, device nodes
	// when not root. Each is logged.
	Warnings uint64
}

// segmentChunks is how many chunks of a file one write job covers: large
// files are split into jobs so that several workers write (at known
// offsets) into one file in parallel.
const segmentChunks = 8

type rfile struct {
	path string
	node *repo.Node
	offs []int64 // offset of each chunk
	segs atomic.Int32
	once sync.Once
	fd   int
	err  error
}

type rseg struct {
	f        *rfile
	from, to int
}

// dirMeta is what finish needs of a directory: only the fields meta uses,
// not the whole node (a tree of 50,000 directories would otherwise hold
// megabytes of owners' names and subtree ids to the end), and its name
// and parent rather than its path (which would hold every directory's
// full path to the end).
type dirMeta struct {
	parent   int32  // index in restorer.dirs; -1 for the restore's top directory
	name     string // the top's full path when parent is -1
	mode     uint32
	uid, gid uint32
	mtime    int64
	xattrs   []repo.Xattr
}

type hardlink struct{ path, target string }

type restorer struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	r      *repo.Repository
	o      RestoreOptions
	log    *slog.Logger
	root   bool
	jobs   chan rseg

	// Walker only.
	dirs  []dirMeta
	links []hardlink
	first map[[2]uint64]string // (device, inode) -> first path restored

	files, dirCount, bytes, linkCount, specials, warnings atomic.Uint64
	holes                                                 atomic.Uint64

	mu   sync.Mutex
	open map[*rfile]struct{} // created, not yet complete: removed on failure
}

// Restore recreates a tree item under dst: the item's single top node
// becomes dst/<its name>. dst is created if missing; other entries in it
// are left alone (an entry in the way of a restored one is replaced, a
// directory is reused). Every chunk is verified against its id before its
// bytes are written, so a damaged repository makes Restore fail, naming
// the file, instead of writing wrong data; the file being written is then
// removed.
func Restore(ctx context.Context, r *repo.Repository, item repo.Item, dst string, o RestoreOptions) (RestoreStats, error) {
	st, err := restore(ctx, r, item, dst, o)
	if err != nil {
		return st, fmt.Errorf("restore %q: %w", item.Name, err)
	}
	return st, nil
}

func restore(ctx context.Context, r *repo.Repository, item repo.Item, dst string, o RestoreOptions) (RestoreStats, error) {
	if item.Kind != repo.ItemTree {
		return RestoreStats{}, fmt.Errorf("item is a %s, not a tree", item.Kind)
	}
	sel, err := newSelection(o.Include)
	if err != nil {
		return RestoreStats{}, fmt.Errorf("include: %w", err)
	}
	top, err := r.LoadTree(ctx, item.Tree)
	if err != nil {
		return RestoreStats{}, fmt.Errorf("root tree: %w", err)
	}
	if len(top) != 1 {
		return RestoreStats{}, fmt.Errorf("root tree has %d nodes, want 1", len(top))
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return RestoreStats{}, err
	}
	rs := &restorer{r: r, o: o, log: o.Log, root: os.Geteuid() == 0,
		jobs: make(chan rseg, fileQueue), first: make(map[[2]uint64]string), open: make(map[*rfile]struct{})}
	if rs.log == nil {
		rs.log = slog.New(slog.DiscardHandler)
	}
	rs.ctx, rs.cancel = context.WithCancelCause(ctx)
	defer rs.cancel(nil)
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs.worker()
		}()
	}
	walkErr := rs.node(&top[0], dst, -1, sel)
	close(rs.jobs)
	wg.Wait()
	if walkErr != nil {
		rs.cancel(walkErr)
	}
	err = rs.err()
	if err == nil {
		err = rs.finish()
	}
	if err != nil {
		rs.cleanup()
		return rs.stats(), err
	}
	if sel != selectAll {
		if missing := sel.unused("", nil); len(missing) > 0 {
			return rs.stats(), fmt.Errorf("include paths not in the snapshot: %s", strings.Join(missing, ", "))
		}
	}
	return rs.stats(), nil
}

func (rs *restorer) stats() RestoreStats {
	return RestoreStats{Files: rs.files.Load(), Dirs: rs.dirCount.Load(), Bytes: rs.bytes.Load(), Holes: rs.holes.Load(),
		Links: rs.linkCount.Load(), Special: rs.specials.Load(), Warnings: rs.warnings.Load()}
}

func (rs *restorer) err() error {
	if rs.ctx.Err() == nil {
		return nil
	}
	return context.Cause(rs.ctx)
}

func (rs *restorer) warn(msg, path string, err error) {
	rs.warnings.Add(1)
	rs.log.Warn(msg, "path", path, "err", err)
}

// node restores n into the directory parent, which is rs.dirs[parentDir]
// (-1: the restore's destination). Directories are created now (writable,
// so that their contents can be written) and get their own metadata at
// the end; files are queued for the workers; everything else is created
// right away.
func (rs *restorer) node(n *repo.Node, parent string, parentDir int32, sel *selection) error {
	if err := rs.ctx.Err(); err != nil {
		return context.Cause(rs.ctx)
	}
	p := filepath.Join(parent, n.Name)
	if n.Type != repo.NodeDir && !sel.all {
		return nil // an include path below a non-directory: reported as missing
	}
	switch n.Type {
	case repo.NodeDir:
		if err := mkdirFresh(p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		name := n.Name
		if parentDir < 0 {
			name = p
		}
		rs.dirs = append(rs.dirs, dirMeta{parent: parentDir, name: name, mode: n.Mode, uid: n.UID, gid: n.GID, mtime: n.ModTime, xattrs: n.Xattrs})
		self := int32(len(rs.dirs) - 1)
		rs.dirCount.Add(1)
		children, err := rs.r.LoadTree(rs.ctx, n.Subtree)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for i := range children {
			c := &children[i]
			csel := sel.child(c.Name)
			if csel == nil {
				continue
			}
			if !sel.all {
				csel.used = true
			}
			if err := rs.node(c, p, self, csel); err != nil {
				return err
			}
		}
		return nil
	}
	if n.Links > 1 {
		key := [2]uint64{n.Device, n.Inode}
		if target, ok := rs.first[key]; ok {
			rs.links = append(rs.links, hardlink{p, target})
			return nil
		}
		rs.first[key] = p
	}
	if n.Type == repo.NodeFile {
		return rs.queueFile(n, p)
	}
	return rs.special(n, p)
}

func (rs *restorer) queueFile(n *repo.Node, p string) error {
	f := &rfile{path: p, node: n, fd: -1, offs: make([]int64, len(n.Content))}
	var off int64
	for i, id := range n.Content {
		size, ok := rs.r.BlobSize(repo.DataBlob, id)
		if !ok {
			return fmt.Errorf("%s: chunk %s: %w", p, id, repo.ErrBlobNotFound)
		}
		f.offs[i] = off
		off += int64(size)
	}
	if uint64(off) != n.Size {
		return fmt.Errorf("%s: its chunks hold %d bytes, the tree says %d: %w", p, off, n.Size, repo.ErrCorrupt)
	}
	nseg := max(1, (len(n.Content)+segmentChunks-1)/segmentChunks)
	f.segs.Store(int32(nseg))
	for s := range nseg {
		seg := rseg{f: f, from: s * segmentChunks, to: min((s+1)*segmentChunks, len(n.Content))}
		select {
		case rs.jobs <- seg:
		case <-rs.ctx.Done():
			return context.Cause(rs.ctx)
		}
	}
	return nil
}

func (rs *restorer) worker() {
	var buf []byte
	for {
		select {
		case <-rs.ctx.Done():
			return
		case seg, ok := <-rs.jobs:
			if !ok {
				return
			}
			if err := rs.write(seg, &buf); err != nil {
				rs.cancel(fmt.Errorf("%s: %w", seg.f.path, err))
				return
			}
		}
	}
}

// write writes one segment of a file; the worker that writes the last
// segment completes the file.
func (rs *restorer) write(seg rseg, buf *[]byte) error {
	f := seg.f
	f.once.Do(func() {
		f.fd, f.err = createFile(f.path)
		if f.err == nil {
			rs.mu.Lock()
			rs.open[f] = struct{}{}
			rs.mu.Unlock()
		}
	})
	if f.err != nil {
		return f.err
	}
	for i := seg.from; i < seg.to; i++ {
		if err := rs.ctx.Err(); err != nil {
			return context.Cause(rs.ctx)
		}
		b, err := rs.r.LoadBlob(rs.ctx, repo.DataBlob, f.node.Content[i], *buf)
		if err != nil {
			return err
		}
		*buf = b
		// A data chunk rarely starts with a zero byte, so the test costs
		// nothing for most of them.
		if rs.o.Sparse && len(bytes.TrimLeft(b, "\x00")) == 0 {
			// The file was created empty: unwritten ranges read as zeros,
			// and completeFile sets the size in case the hole is at the end.
			rs.holes.Add(uint64(len(b)))
		} else if err := pwriteAll(f.fd, b, f.offs[i]); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		rs.bytes.Add(uint64(len(b)))
		if rs.o.Progress != nil {
			rs.o.Progress.AddBytes(len(b))
		}
	}
	if f.segs.Add(-1) > 0 {
		return nil
	}
	return rs.completeFile(f)
}

func pwriteAll(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := retryEINTR(func() (int, error) { return unix.Pwrite(fd, b, off) })
		if err != nil {
			return err
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// completeFile sets a written file's metadata. Owner before mode (chown
// clears setuid and setgid bits); times last, after everything that could
// change them.
func (rs *restorer) completeFile(f *rfile) error {
	n := f.node
	if rs.o.Sparse {
		// A trailing hole leaves the file short of its size.
		if err := unix.Ftruncate(f.fd, int64(n.Size)); err != nil {
			return fmt.Errorf("set size: %w", err)
		}
	}
	if rs.o.Owners {
		if err := unix.Fchown(f.fd, int(n.UID), int(n.GID)); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if err := unix.Fchmod(f.fd, n.Mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	for _, x := range n.Xattrs {
		if err := unix.Fsetxattr(f.fd, x.Name, x.Value, 0); err != nil {
			rs.warn("cannot set extended attribute "+x.Name, f.path, err)
		}
	}
	rs.mu.Lock()
	delete(rs.open, f)
	rs.mu.Unlock()
	err := unix.Close(f.fd)
	f.fd = -1
	if err != nil {
		_ = os.Remove(f.path)
		return fmt.Errorf("close: %w", err)
	}
	if err := setTimes(f.path, n); err != nil {
		_ = os.Remove(f.path)
		return err
	}
	rs.files.Add(1)
	if rs.o.Progress != nil {
		rs.o.Progress.files.Add(1)
	}
	return nil
}

func setTimes(p string, n *repo.Node) error {
	// No access time is stored; using the modification time is what tar
	// and cp -p effectively give too.
	ts := []unix.Timespec{unix.NsecToTimespec(n.ModTime), unix.NsecToTimespec(n.ModTime)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// createFile creates p for writing. O_EXCL|O_NOFOLLOW: never write through
// a symlink (or into another hard link) that was in the destination
// before; such an entry is unlinked first.
func createFile(p string) (int, error) {
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	for try := 0; ; try++ {
		fd, err := retryEINTR(func() (int, error) { return unix.Open(p, flags, 0o600) })
		if err == nil {
			return fd, nil
		}
		if !errors.Is(err, unix.EEXIST) || try > 0 {
			return -1, fmt.Errorf("create: %w", err)
		}
		if err := removeInTheWay(p); err != nil {
			return -1, err
		}
	}
}

// removeInTheWay unlinks an existing non-directory at p.
func removeInTheWay(p string) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return fmt.Errorf("lstat existing entry: %w", err)
	}
	if isDir(&st) {
		return fmt.Errorf("a directory is in the way")
	}
	if err := unix.Unlink(p); err != nil {
		return fmt.Errorf("remove existing entry: %w", err)
	}
	return nil
}

// mkdirFresh creates directory p, mode 0700 until its own mode is applied
// at the end. An existing directory is reused; an existing symlink or file
// is replaced: following a symlink there could write outside dst.
func mkdirFresh(p string) error {
	err := unix.Mkdir(p, 0o700)
	if err == nil || !errors.Is(err, unix.EEXIST) {
		if err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
		return nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return fmt.Errorf("lstat existing entry: %w", err)
	}
	if isDir(&st) {
		// Make sure we can write into it; its mode is set at the end.
		if err := unix.Chmod(p, 0o700); err != nil {
			return fmt.Errorf("chmod existing directory: %w", err)
		}
		return nil
	}
	if err := unix.Unlink(p); err != nil {
		return fmt.Errorf("remove existing entry: %w", err)
	}
	if err := unix.Mkdir(p, 0o700); err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	return nil
}

// special creates a symlink, FIFO, socket or device node with its
// metadata.
func (rs *restorer) special(n *repo.Node, p string) error {
	mk := func() error {
		switch n.Type {
		case repo.NodeSymlink:
			return unix.Symlink(n.LinkTarget, p)
		case repo.NodeFIFO:
			return unix.Mknod(p, unix.S_IFIFO|0o600, 0)
		case repo.NodeSocket:
			return unix.Mknod(p, unix.S_IFSOCK|0o600, 0)
		case repo.NodeDevice:
			return unix.Mknod(p, unix.S_IFBLK|0o600, int(n.Rdev))
		case repo.NodeCharDevice:
			return unix.Mknod(p, unix.S_IFCHR|0o600, int(n.Rdev))
		}
		return fmt.Errorf("unknown node type %s", n.Type)
	}
	if (n.Type == repo.NodeDevice || n.Type == repo.NodeCharDevice) && !rs.root {
		rs.warn("device node not restored: only root can create one", p, nil)
		return nil
	}
	err := mk()
	if errors.Is(err, unix.EEXIST) {
		if err = removeInTheWay(p); err == nil {
			err = mk()
		}
	}
	if err != nil {
		return fmt.Errorf("%s: create %s: %w", p, n.Type, err)
	}
	if err := rs.meta(n, p); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	rs.specials.Add(1)
	return nil
}

// meta applies owner, mode, xattrs and times by path without following a
// symlink at p (a symlink's own mode cannot be set and means nothing).
func (rs *restorer) meta(n *repo.Node, p string) error {
	if rs.o.Owners {
		if err := unix.Lchown(p, int(n.UID), int(n.GID)); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if n.Type != repo.NodeSymlink {
		if err := unix.Chmod(p, n.Mode); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	for _, x := range n.Xattrs {
		if err := unix.Lsetxattr(p, x.Name, x.Value, 0); err != nil {
			rs.warn("cannot set extended attribute "+x.Name, p, err)
		}
	}
	return setTimes(p, n)
}

// finish runs after every file is written: hard links, then directory
// metadata, deepest first (the walker recorded directories in pre-order,
// so the reverse has every directory after its descendants) so that
// creating entries does not change a directory's restored mtime and a
// read-only directory is not closed before its contents are done.
func (rs *restorer) finish() error {
	for _, l := range rs.links {
		err := unix.Link(l.target, l.path)
		if errors.Is(err, unix.EEXIST) {
			if err = removeInTheWay(l.path); err == nil {
				err = unix.Link(l.target, l.path)
			}
		}
		if err != nil {
			return fmt.Errorf("%s: hard link to %s: %w", l.path, l.target, err)
		}
		rs.linkCount.Add(1)
	}
	var chain []string
	for i := len(rs.dirs) - 1; i >= 0; i-- {
		if err := rs.ctx.Err(); err != nil {
			return context.Cause(rs.ctx)
		}
		d := &rs.dirs[i]
		chain = chain[:0]
		for j := int32(i); j >= 0; j = rs.dirs[j].parent {
			chain = append(chain, rs.dirs[j].name)
		}
		slices.Reverse(chain)
		p := filepath.Join(chain...)
		n := repo.Node{Type: repo.NodeDir, Mode: d.mode, UID: d.uid, GID: d.gid, ModTime: d.mtime, Xattrs: d.xattrs}
		if err := rs.meta(&n, p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

// cleanup removes files that were created but not completed, so that a
// failed restore does not leave a file that looks restored.
func (rs *restorer) cleanup() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for f := range rs.open {
		if f.fd >= 0 {
			_ = unix.Close(f.fd)
			f.fd = -1
		}
		if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			rs.log.Warn("cannot remove partly restored file", "path", f.path, "err", err)
		}
		delete(rs.open, f)
	}
}
