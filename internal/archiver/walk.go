//go:build linux

package archiver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
	"golang.org/x/sys/unix"

	"github.com/backup-runner/runner/internal/pathmatch"
	"github.com/backup-runner/runner/internal/repo"
	"github.com/backup-runner/runner/internal/repo/chunker"
)

// fileQueue is the capacity of the walker -> file worker channel. It lets
// the walker run a little ahead (so workers never wait for a stat) while
// keeping the number of listed-but-unread files, and their memory, small.
const fileQueue = 64

// dirQueue is the capacity of the walker -> tree saver channel.
const dirQueue = 64

// dirState is a directory being captured: its own node (metadata), one
// slot per listed child, and a count of children still being read.
//
// Slots are filled by whoever captures the child: the walker (symlinks,
// devices, cached files), a file worker or chunk saver (read files), the
// tree saver (subdirectories, always before the parent because the walker
// queues directories in post-order). A slot left with Type 0 is an entry
// that was excluded or could not be read, and is left out of the tree.
type dirState struct {
	parent   *dirState
	index    int    // slot in parent
	rel      string // path relative to the item root, for messages
	node     repo.Node
	children []repo.Node
	// pending counts files of this directory still being read, plus one
	// held by the walker until it has listed everything; done is closed
	// when it reaches zero.
	pending atomic.Int64
	done    chan struct{}
}

func newDirState(parent *dirState, index int, rel string, node repo.Node, n int) *dirState {
	d := &dirState{parent: parent, index: index, rel: rel, node: node, children: make([]repo.Node, n), done: make(chan struct{})}
	d.pending.Store(1)
	return d
}

func (d *dirState) release() {
	if d.pending.Add(-1) == 0 {
		close(d.done)
	}
}

// fileJob is a regular file for a file worker. The prefetcher opens it
// (fd, st and openErr) before a worker takes it.
type fileJob struct {
	parent *dirState
	index  int
	abs    string
	name   string
	size   int64 // from the walker's stat: what the prefetcher asks for

	fd      int
	st      unix.Stat_t
	openErr error
	cost    int64 // prefetch budget held until the file is read
}

// treeRun is one Tree call: its goroutines and their shared state.
type treeRun struct {
	a      *Archiver
	ctx    context.Context
	cancel context.CancelCauseFunc
	root   string
	sel    *selection
	match  *pathmatch.Matcher
	oneFS  bool

	opens chan *fileJob // walker -> prefetcher
	files chan *fileJob // prefetcher -> file workers
	dirs  chan *dirState
	// ahead bounds the bytes the prefetcher has asked the kernel to read
	// that no worker has read yet (prefetchBudget).
	ahead *semaphore.Weighted
	pool  *chunkPool

	size     atomic.Uint64 // bytes of the files of this item
	rootTree repo.ID       // set by the tree saver from the top state

	// la lists directories ahead of the walker; direntBuf is the
	// walker's getdents buffer for those it lists itself.
	la        *lookahead
	direntBuf []byte
}

func (a *Archiver) newTreeRun(ctx context.Context, spec TreeSpec) (*treeRun, error) {
	if !filepath.IsAbs(spec.Root) {
		return nil, fmt.Errorf("root %q is not an absolute path", spec.Root)
	}
	sel, err := newSelection(spec.Paths)
	if err != nil {
		return nil, err
	}
	m, err := pathmatch.New(spec.Excludes)
	if err != nil {
		return nil, fmt.Errorf("exclude patterns: %w", err)
	}
	t := &treeRun{
		a:     a,
		root:  filepath.Clean(spec.Root),
		sel:   sel,
		match: m,
		oneFS: spec.OneFileSystem,
		opens: make(chan *fileJob, fileQueue),
		files: make(chan *fileJob, fileQueue),
		dirs:  make(chan *dirState, dirQueue),
		ahead: semaphore.NewWeighted(prefetchBudget),
	}
	t.ctx, t.cancel = context.WithCancelCause(ctx)
	return t, nil
}

// fail records a fatal error and stops every goroutine of the run. The
// first cause wins.
func (t *treeRun) fail(err error) { t.cancel(err) }

// err returns the run's fatal error, if any.
func (t *treeRun) err() error {
	if t.ctx.Err() == nil {
		return nil
	}
	return context.Cause(t.ctx)
}

// run starts the walker, the file workers, the chunk savers and the tree
// saver, and waits for all of them. Every goroutine selects on t.ctx, so a
// fatal error anywhere (or the caller's cancellation) stops them all; run
// returns only when none is left.
func (t *treeRun) run() (repo.ID, uint64, error) {
	defer t.cancel(nil)
	a := t.a
	t.pool = newChunkPool(t.ctx, a, t.fail, a.chunkBufs)

	var workers sync.WaitGroup
	for range a.workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			t.fileWorker()
		}()
	}
	prefetchDone := make(chan struct{})
	go func() {
		defer close(prefetchDone)
		defer close(t.files) // the prefetcher owns the workers' queue
		t.prefetcher()
	}()
	saverDone := make(chan struct{})
	go func() {
		defer close(saverDone)
		t.treeSaver()
	}()
	t.la = startLookahead(t.ctx, t.match, t.oneFS)
	t.direntBuf = make([]byte, 64<<10)
	walkErr := t.walk()
	t.la.stop()
	// The walker owns its queues: closing them lets the prefetcher, the
	// workers and the tree saver finish what is queued and return.
	close(t.opens)
	close(t.dirs)
	<-prefetchDone
	workers.Wait()
	// After a failure, jobs may be left queued with their files open.
	for j := range t.files {
		j.closeFile()
	}
	t.pool.close() // no worker can hand over chunks any more
	<-saverDone
	if walkErr != nil {
		t.fail(walkErr)
	}
	if err := t.err(); err != nil {
		return repo.ID{}, 0, err
	}
	if t.rootTree.IsZero() {
		// Cannot happen unless a goroutine returned early without failing.
		return repo.ID{}, 0, errors.New("internal error: no root tree")
	}
	return t.rootTree, t.size.Load(), nil
}

// walk captures the root: a directory is walked, anything else becomes the
// single node of the item. The root is stat'ed following symlinks.
func (t *treeRun) walk() error {
	var st unix.Stat_t
	if err := unix.Stat(t.root, &st); err != nil {
		return fmt.Errorf("root %s: %w", t.root, err)
	}
	top := newDirState(nil, 0, "", repo.Node{}, 1)
	node := t.a.nodeFromStat(rootName(t.root), &st)
	if isDir(&st) {
		// For the root, walkDir fails instead of counting it unreadable:
		// an item without its root is not a partial backup but none.
		if err := t.walkDir(top, 0, node, newListing(t.root, "", true, t.sel, uint64(st.Dev))); err != nil {
			return err
		}
	} else if err := t.entry(top, 0, node.Name, &st, t.root, "", selectAll, false); err != nil {
		return err
	}
	top.release()
	return t.queueDir(top)
}

// queueDir hands a listed directory to the tree saver.
func (t *treeRun) queueDir(d *dirState) error {
	select {
	case t.dirs <- d:
		return nil
	case <-t.ctx.Done():
		return context.Cause(t.ctx)
	}
}

// walkDir captures a directory from its listing (listed ahead by a lister,
// or now): non-directories first, then the subdirectories, recursively, so
// that directories reach the tree saver in post-order. The walker holds no
// open directory: listings are read whole (see listing.go).
func (t *treeRun) walkDir(parent *dirState, index int, node repo.Node, l *listing) error {
	if !t.la.await(t.ctx, l, t.direntBuf) {
		return context.Cause(t.ctx)
	}
	abs, rel, sel := l.abs, l.rel, l.sel
	if l.err != nil {
		t.la.release(l)
		if l.isRoot {
			return fmt.Errorf("root %s: %w", abs, l.err)
		}
		if errors.Is(l.err, unix.ENOENT) && l.errWhat == stepOpen {
			t.a.warn("vanished during the backup", abs, nil)
		} else {
			t.a.unreadableEntry(abs, fmt.Errorf("%s: %w", l.errWhat, l.err))
		}
		return nil
	}
	if l.xattrErr != nil {
		t.a.warn("cannot read extended attributes", abs, l.xattrErr)
	} else {
		node.Xattrs = l.xattrs
	}
	names := l.names
	d := newDirState(parent, index, rel, node, len(names))
	// First pass: capture non-directories, choose the subdirectories to
	// walk (their listings were queued by list). Second pass: descend.
	type sub struct {
		node repo.Node
		l    *listing
		i    int
	}
	var subdirs []sub
	for i, name := range names {
		var cst unix.Stat_t
		cabs := join(abs, name)
		if err := l.stat(i, &cst); err != nil {
			switch {
			case !sel.all:
				// An explicitly chosen path is missing: that is the
				// operator's business to hear about.
				t.a.unreadableEntry(cabs, err)
			case errors.Is(err, unix.ENOENT):
				t.a.warn("vanished during the backup", cabs, nil)
			default:
				t.a.unreadableEntry(cabs, err)
			}
			continue
		}
		csel := sel.child(name)
		crel := joinRel(rel, name)
		if isDir(&cst) {
			var cl *listing
			if i < len(l.children) {
				cl = l.children[i]
			}
			if cl == nil {
				// Left out by list, or past the entries it stat'ed:
				// decide here (and say why it is left out).
				cdev, ok := t.admitDir(&cst, cabs, crel, l.refDev, !sel.all)
				if !ok {
					continue
				}
				cl = newListing(cabs, crel, false, csel, cdev)
			}
			subdirs = append(subdirs, sub{t.a.nodeFromStat(name, &cst), cl, i})
			continue
		}
		if err := t.entry(d, i, name, &cst, cabs, crel, csel, !sel.all); err != nil {
			t.la.release(l)
			return err
		}
	}
	t.la.release(l)
	for _, s := range subdirs {
		if err := t.walkDir(d, s.i, s.node, s.l); err != nil {
			return err
		}
	}
	d.release()
	return t.queueDir(d)
}

// admitDir is lookahead.walks for the walker: it also counts and reports
// a directory left out.
func (t *treeRun) admitDir(st *unix.Stat_t, abs, rel string, refDev uint64, explicit bool) (uint64, bool) {
	dev, why := t.la.walks(rel, st, refDev, explicit)
	switch why {
	case skipExcluded:
		t.a.excluded.Add(1)
	case skipOtherFS:
		t.a.skippedMounts.Add(1)
		t.a.warn("on another file system; not descending (one_file_system)", abs, nil)
	}
	return dev, why == enter
}

// entry captures one directory entry that is not a directory into slot i
// of parent. explicit says the entry was named in TreeSpec.Paths (or is on
// the way to one).
func (t *treeRun) entry(parent *dirState, i int, name string, st *unix.Stat_t, abs, rel string, sel *selection, explicit bool) error {
	a := t.a
	if rel != "" && !t.match.Empty() && t.match.Match(rel, false) {
		a.excluded.Add(1)
		return nil
	}
	if isReg(st) && sel.all {
		// The node is made by fromCache on a hit, else by the worker from
		// the stat of the open file.
		if t.fromCache(parent, i, abs, name, st) {
			return nil
		}
		parent.pending.Add(1)
		select {
		case t.opens <- &fileJob{parent: parent, index: i, abs: abs, name: name, size: st.Size, fd: -1}:
			return nil
		case <-t.ctx.Done():
			return context.Cause(t.ctx)
		}
	}
	node := a.nodeFromStat(name, st)
	if !sel.all {
		// TreeSpec.Paths named something below this entry, which is not a
		// directory: the chosen path does not exist.
		a.unreadableEntry(abs, fmt.Errorf("paths below it were chosen, but it is a %s", node.Type))
		return nil
	}
	if node.Type == repo.NodeSymlink {
		target, err := os.Readlink(abs)
		if err != nil {
			a.unreadableEntry(abs, fmt.Errorf("readlink: %w", err))
			return nil
		}
		node.LinkTarget = target
	}
	if xa, err := pathXattrs(abs); err != nil {
		a.warn("cannot read extended attributes", abs, err)
	} else {
		node.Xattrs = xa
	}
	parent.children[i] = node
	return nil
}

func join(abs, name string) string {
	if abs == "/" {
		return "/" + name
	}
	return abs + "/" + name
}

func joinRel(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}

// treeSaver finishes directories in the order the walker queued them
// (post-order): it waits until every file of the directory is read, saves
// the tree, and puts the directory's node into its parent's slot.
func (t *treeRun) treeSaver() {
	a := t.a
	for d := range t.dirs {
		select {
		case <-d.done:
		case <-t.ctx.Done():
			return
		}
		nodes := d.children[:0]
		for _, n := range d.children {
			if n.Type != 0 {
				nodes = append(nodes, n)
			}
		}
		b, err := repo.EncodeTree(nodes)
		if err != nil {
			t.fail(fmt.Errorf("directory %s: %w", d.node.Name, err))
			return
		}
		id, added, err := a.r.SaveBlob(t.ctx, repo.TreeBlob, b)
		if err != nil {
			t.fail(fmt.Errorf("save tree of %s: %w", pathForMsg(t.root, d.rel), err))
			return
		}
		if added {
			a.added.Add(uint64(len(b)))
		}
		d.children = nil
		if d.parent == nil {
			t.rootTree = id
			continue
		}
		d.node.Subtree = id
		d.parent.children[d.index] = d.node
		a.dirs.Add(1)
	}
}

func pathForMsg(root, rel string) string {
	if rel == "" {
		return root
	}
	return join(root, rel)
}

// Prefetching: the prefetcher opens the files the walker queues and asks
// the kernel to start reading them (POSIX_FADV_WILLNEED) before a worker
// takes them, so that reading from disk overlaps with the workers' hashing
// and compressing instead of each worker waiting for its file in turn. The
// data goes to the page cache, not into this process; prefetchBudget bounds
// how much has been asked for and not yet read, and prefetchWindow how much
// of one file (the kernel's own readahead takes over from there).
const (
	prefetchBudget = 64 << 20
	prefetchWindow = 8 << 20
)

// prefetcher opens the files the walker queues, starts their readahead and
// hands them to the workers, in order.
func (t *treeRun) prefetcher() {
	for {
		var j *fileJob
		var ok bool
		select {
		case <-t.ctx.Done():
			return
		case j, ok = <-t.opens:
			if !ok {
				return
			}
		}
		// Every file costs at least a page, so that a queue of empty
		// files is bounded too.
		cost := min(max(j.size, 4096), prefetchWindow)
		if err := t.ahead.Acquire(t.ctx, cost); err != nil {
			return
		}
		j.cost = cost
		j.fd, j.st, j.openErr = t.a.openForRead(j.abs)
		if j.openErr == nil && j.st.Size > 0 {
			// Only a hint: a failure costs nothing but speed.
			_ = unix.Fadvise(j.fd, 0, min(j.st.Size, prefetchWindow), unix.FADV_WILLNEED)
		}
		select {
		case t.files <- j:
		case <-t.ctx.Done():
			t.doneReading(j)
			return
		}
	}
}

// doneReading returns a file's prefetch budget and closes it.
func (t *treeRun) doneReading(j *fileJob) {
	if j.cost > 0 {
		t.ahead.Release(j.cost)
		j.cost = 0
	}
	j.closeFile()
}

func (j *fileJob) closeFile() {
	if j.fd >= 0 {
		_ = unix.Close(j.fd)
		j.fd = -1
	}
}

// fileWorker reads the files the prefetcher hands over. Each worker has
// its own chunker, so the chunker's buffer (the largest chunk and one
// read) is reused from file to file; it is made on the first file,
// because a run with an up-to-date cache reads none and zeroing it would
// be most of the work.
func (t *treeRun) fileWorker() {
	var c *chunker.Chunker
	for {
		select {
		case <-t.ctx.Done():
			return
		case j, ok := <-t.files:
			if !ok {
				return
			}
			if c == nil {
				c = chunker.New(t.a.r.ChunkerTable(), nil)
			}
			t.a.readers.Add(1)
			err := t.saveFile(c, j)
			t.a.readers.Add(-1)
			if err != nil {
				t.fail(err)
				return
			}
		}
	}
}
