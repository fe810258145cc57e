//go:build linux

package archiver

import (
	"container/heap"
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
	"golang.org/x/sys/unix"

	"github.com/backup-runner/runner/internal/pathmatch"
	"github.com/backup-runner/runner/internal/repo"
)

// Listing ahead: with a cold page cache, a walk is a long series of small
// synchronous reads (a directory block for getdents, an inode block for
// each fstatat), and the walker would wait for each in turn with the disk
// and the other core idle. Listers read the directories the walker will
// come to next, in parallel, so that by the time the walker reaches a
// directory its entries are usually already listed and stat'ed.
//
// Whoever lists a directory (a lister or the walker) queues the
// subdirectories the walk will enter, and listers take the queued
// directory that comes first in the walk's order: they run ahead of the
// walker down the tree, not only across one directory's subdirectories,
// and never far off to the side. A lister holds
// one of listAhead tokens from taking a directory until the walker has
// used its listing, which bounds the listings held ahead of the walker; a
// listing stats at most listStatMax entries (the walker stats the rest
// itself), which bounds each one. When the walker reaches a directory that
// no lister has taken, it lists it itself rather than wait.
const (
	listers     = 4
	listAhead   = 64
	listStatMax = 2048
)

// Listing states: queued until a lister or the walker takes it.
const (
	listQueued int32 = iota
	listTaken
)

// listing is one directory's entries, read by a lister ahead of the walker
// or by the walker itself.
type listing struct {
	abs    string
	rel    string
	isRoot bool
	sel    *selection
	refDev uint64 // the device of the walk below it (one_file_system)

	state atomic.Int32
	done  chan struct{} // closed when a lister has filled the listing
	token bool          // a lister's token, returned once the walker is done

	// Filled by list.
	err      error // opening or listing the directory failed
	xattrs   []repo.Xattr
	xattrErr error
	names    []string
	stats    []unix.Stat_t // of names[:len(stats)]; the walker stats the rest
	statErrs []error
	errWhat  string // which step err is from: stepOpen or stepList
	// children[i] is entry i's listing if it is a directory the walk
	// enters (see walks); nil otherwise, and past the stats.
	children []*listing
}

// The steps of list that can fail, as errors name them.
const (
	stepOpen = "open directory"
	stepList = "list directory"
)

func newListing(abs, rel string, isRoot bool, sel *selection, refDev uint64) *listing {
	return &listing{abs: abs, rel: rel, isRoot: isRoot, sel: sel, refDev: refDev, done: make(chan struct{})}
}

// list reads the directory: open, xattrs, names (sorted, or the selected
// ones), and the stats of up to listStatMax entries; it queues the
// subdirectories the walk will enter for the listers.
func (la *lookahead) list(l *listing, buf []byte) {
	flags := unix.O_RDONLY | unix.O_DIRECTORY
	if !l.isRoot {
		// A directory swapped for a symlink since the stat must not lead
		// the walk out of the tree.
		flags |= unix.O_NOFOLLOW
	}
	fd, err := openNoAtime(l.abs, flags)
	if err != nil {
		l.err, l.errWhat = err, stepOpen
		return
	}
	defer func() { _ = unix.Close(fd) }()
	l.xattrs, l.xattrErr = fdXattrs(fd)
	if l.sel.all {
		if l.names, err = readNames(fd, buf); err != nil {
			l.err, l.errWhat = err, stepList
			return
		}
	} else {
		l.names = l.sel.names()
	}
	n := min(len(l.names), listStatMax)
	l.stats = make([]unix.Stat_t, n)
	l.statErrs = make([]error, n)
	var subs []*listing
	for i := range n {
		st := &l.stats[i]
		l.statErrs[i] = unix.Fstatat(fd, l.names[i], st, unix.AT_SYMLINK_NOFOLLOW)
		if l.statErrs[i] != nil || !isDir(st) {
			continue
		}
		name := l.names[i]
		csel := l.sel.child(name)
		crel := joinRel(l.rel, name)
		if dev, why := la.walks(crel, st, l.refDev, !l.sel.all); why == enter {
			if l.children == nil {
				l.children = make([]*listing, n)
			}
			l.children[i] = newListing(join(l.abs, name), crel, false, csel, dev)
			subs = append(subs, l.children[i])
		}
	}
	la.queue.push(subs)
}

// walkDecision says whether the walk enters a subdirectory, or why not.
type walkDecision int

const (
	enter walkDecision = iota
	skipExcluded
	skipOtherFS
)

// walks decides whether the walk enters a subdirectory, and with which
// reference device: not if an exclude pattern matches it, nor (with
// one_file_system) if it is on another file system than refDev. A
// directory named in TreeSpec.Paths, or on the way to one (explicit), is
// always entered and starts a new reference device.
func (la *lookahead) walks(rel string, st *unix.Stat_t, refDev uint64, explicit bool) (uint64, walkDecision) {
	if !la.match.Empty() && la.match.Match(rel, true) {
		return 0, skipExcluded
	}
	if explicit {
		return uint64(st.Dev), enter
	}
	if la.oneFS && uint64(st.Dev) != refDev {
		return 0, skipOtherFS
	}
	return refDev, enter
}

// stat returns entry i's lstat, taken by the lister or now.
func (l *listing) stat(i int, st *unix.Stat_t) error {
	if i < len(l.stats) {
		*st = l.stats[i]
		return l.statErrs[i]
	}
	return unix.Lstat(join(l.abs, l.names[i]), st)
}

// readNames lists a directory with getdents into buf, sorted bytewise so
// that the walk (and so the order of work) is deterministic.
func readNames(fd int, buf []byte) ([]string, error) {
	var names []string
	for {
		n, err := retryEINTR(func() (int, error) { return unix.Getdents(fd, buf) })
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	slices.Sort(names)
	return names, nil
}

// listQueue holds the directories to list ahead, ordered as the walker
// will come to them, so that listers always work on the directories the
// walker needs soonest.
type listQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  listHeap
	closed bool
}

func newListQueue() *listQueue {
	q := &listQueue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *listQueue) push(ls []*listing) {
	if len(ls) == 0 {
		return
	}
	q.mu.Lock()
	for _, l := range ls {
		heap.Push(&q.items, l)
	}
	q.mu.Unlock()
	q.cond.Broadcast()
}

// pop returns the first listing in walk order still queued, waiting for
// one; nil once the queue is closed.
func (q *listQueue) pop() *listing {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		for q.items.Len() > 0 {
			l := heap.Pop(&q.items).(*listing)
			if l.state.Load() == listQueued {
				return l
			}
		}
		if q.closed {
			return nil
		}
		q.cond.Wait()
	}
}

func (q *listQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.items = nil
	q.mu.Unlock()
	q.cond.Broadcast()
}

// listHeap is a container/heap of listings by walkOrder of their paths.
type listHeap []*listing

func (h listHeap) Len() int           { return len(h) }
func (h listHeap) Less(i, j int) bool { return walkOrder(h[i].rel, h[j].rel) < 0 }
func (h listHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *listHeap) Push(x any)        { *h = append(*h, x.(*listing)) }
func (h *listHeap) Pop() any {
	old := *h
	l := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return l
}

// walkOrder compares two relative directory paths in the order the walker
// enters directories: depth first, each directory's subdirectories by
// name, bytewise. That is a bytewise comparison in which the separator
// sorts before every byte a name can hold ("a/b" before "a-c").
func walkOrder(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			return -1
		}
		if cb == '/' {
			return 1
		}
		if ca < cb {
			return -1
		}
		return 1
	}
	return len(a) - len(b)
}

// lookahead is the walker's pool of listers.
type lookahead struct {
	match        *pathmatch.Matcher
	oneFS        bool
	queue        *listQueue
	tokens       *semaphore.Weighted
	wg           sync.WaitGroup
	stopOnCancel func() bool
}

// startLookahead starts the listers; stop ends them. They also stop when
// ctx ends.
func startLookahead(ctx context.Context, match *pathmatch.Matcher, oneFS bool) *lookahead {
	la := &lookahead{match: match, oneFS: oneFS, queue: newListQueue(), tokens: semaphore.NewWeighted(listAhead)}
	la.stopOnCancel = context.AfterFunc(ctx, la.queue.close)
	la.wg.Add(listers)
	for range listers {
		go func() {
			defer la.wg.Done()
			la.lister(ctx)
		}()
	}
	return la
}

func (la *lookahead) lister(ctx context.Context) {
	buf := make([]byte, 64<<10)
	for {
		if err := la.tokens.Acquire(ctx, 1); err != nil {
			return
		}
		l := la.queue.pop()
		if l == nil || !l.state.CompareAndSwap(listQueued, listTaken) {
			la.tokens.Release(1)
			if l == nil {
				return
			}
			continue
		}
		l.token = true
		la.list(l, buf)
		close(l.done)
	}
}

// stop ends the listers and waits for them.
func (la *lookahead) stop() {
	la.queue.close()
	la.wg.Wait()
	la.stopOnCancel()
}

// await returns l listed: by a lister (waiting for it to finish) or, if
// none has taken it, by the caller now. It returns false if ctx ended
// first.
func (la *lookahead) await(ctx context.Context, l *listing, buf []byte) bool {
	if l.state.CompareAndSwap(listQueued, listTaken) {
		la.list(l, buf)
		return true
	}
	select {
	case <-l.done:
		return true
	case <-ctx.Done():
		return false
	}
}

// release returns a lister's token once the walker is done with l.
func (la *lookahead) release(l *listing) {
	if l.token {
		l.token = false
		la.tokens.Release(1)
	}
	l.names, l.stats, l.statErrs, l.children = nil, nil, nil, nil
}
