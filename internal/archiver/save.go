//go:build linux

package archiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/backup-runner/runner/internal/repo"
	"github.com/backup-runner/runner/internal/repo/chunker"
)

// tracker collects the chunk ids of one file or stream, in order, while
// some of its chunks are saved by the chunk pool. pending counts chunks
// in the pool plus one held by the reader until it has read everything;
// whoever brings it to zero calls done, so a reader never waits for its
// file's chunks and moves on to the next file.
type tracker struct {
	a       *Archiver
	mu      sync.Mutex
	ids     []repo.ID
	pending atomic.Int64
	done    func()
}

func newTracker(a *Archiver, done func()) *tracker {
	tr := &tracker{a: a, done: done}
	tr.pending.Store(1)
	return tr
}

func (tr *tracker) slot() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.ids = append(tr.ids, repo.ID{})
	return len(tr.ids) - 1
}

func (tr *tracker) set(i int, id repo.ID, added bool, n int) {
	if added {
		tr.a.added.Add(uint64(n))
	}
	tr.mu.Lock()
	tr.ids[i] = id
	tr.mu.Unlock()
}

func (tr *tracker) release() {
	if tr.pending.Add(-1) == 0 {
		tr.done()
	}
}

// chunkPool gives a single large file (or stream) more than one core.
// Saving a chunk (hash, compress, encrypt, pack) costs several times more
// than cutting it, so a reader that saved every chunk itself would leave
// the other core idle while one big file is read. Instead the reader copies
// a chunk into one of a few hand-off buffers and queues it for the savers;
// when no buffer is free it saves the chunk itself, so it is never idle
// either. The buffers bound the memory: at most n chunks wait or are being
// saved by the pool.
//
// The hand-off is only for a core without a reader: while as many files
// or streams as cores are being read (Archiver.readers), each reader saves
// its own chunks. Those cores are busy anyway, and each handed-off chunk
// is one more copy in memory: on the site benchmark, handing off always
// cost 10 MiB of peak RSS and no time.
type chunkPool struct {
	ctx  context.Context
	a    *Archiver
	fail func(error)
	free chan []byte
	jobs chan chunkJob
	wg   sync.WaitGroup
}

type chunkJob struct {
	tr   *tracker
	idx  int
	data []byte
	what string // file or stream, for error messages
}

// newChunkPool starts the savers (a.workers of them) unless bufs is 0.
// The pool belongs to the caller, which must call close after the last
// save.
func newChunkPool(ctx context.Context, a *Archiver, fail func(error), bufs int) *chunkPool {
	p := &chunkPool{ctx: ctx, a: a, fail: fail}
	if bufs <= 0 {
		return p // nil channels: every save is inline
	}
	p.free = make(chan []byte, bufs)
	p.jobs = make(chan chunkJob, bufs)
	for range bufs {
		p.free <- nil // allocated on first use
	}
	for range a.workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.saver()
		}()
	}
	return p
}

// close stops the savers once the queued chunks are saved (or the context
// has ended) and waits for them.
func (p *chunkPool) close() {
	if p.jobs != nil {
		close(p.jobs)
	}
	p.wg.Wait()
}

func (p *chunkPool) saver() {
	for {
		select {
		case <-p.ctx.Done():
			return
		case j, ok := <-p.jobs:
			if !ok {
				return
			}
			n := len(j.data)
			id, added, err := p.a.r.SaveBlob(p.ctx, repo.DataBlob, j.data)
			if err != nil {
				p.fail(fmt.Errorf("save chunk of %s: %w", j.what, err))
				return
			}
			if !added {
				p.a.verifyReused(p.ctx, id, j.what)
			}
			p.free <- j.data // never blocks: it has room for every buffer
			j.tr.set(j.idx, id, added, n)
			j.tr.release()
		}
	}
}

// save stores chunk as the next chunk of tr: through the pool if a buffer
// is free, else right here. chunk is not kept after save returns.
func (p *chunkPool) save(tr *tracker, chunk []byte, what string) error {
	idx := tr.slot()
	var free chan []byte // nil: no hand-off
	if p.free != nil && int(p.a.readers.Load()) < p.a.workers {
		free = p.free
	}
	select {
	case buf := <-free:
		if cap(buf) < len(chunk) {
			// Sized to the chunk (at least 64 KiB), not to the largest
			// possible one: with small files the buffers stay small.
			buf = make([]byte, 0, max(64<<10, len(chunk)))
		}
		buf = append(buf[:0], chunk...)
		tr.pending.Add(1)
		// Never blocks: a queued job holds a buffer, and jobs has room
		// for every buffer.
		p.jobs <- chunkJob{tr: tr, idx: idx, data: buf, what: what}
		return nil
	default:
	}
	id, added, err := p.a.r.SaveBlob(p.ctx, repo.DataBlob, chunk)
	if err != nil {
		return fmt.Errorf("save chunk of %s: %w", what, err)
	}
	if !added {
		p.a.verifyReused(p.ctx, id, what)
	}
	tr.set(idx, id, added, len(chunk))
	return nil
}

// openForRead opens a regular file for reading, without following a
// symlink and without blocking on a FIFO (either may have replaced the
// file since the walker's stat), and stats the open file: the node is made
// from this stat, which describes exactly what is read.
func (a *Archiver) openForRead(path string) (int, unix.Stat_t, error) {
	var st unix.Stat_t
	if a.openHook != nil {
		if err := a.openHook(path); err != nil {
			return -1, st, fmt.Errorf("open: %w", err)
		}
	}
	fd, err := openNoAtime(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK)
	if err != nil {
		return -1, st, fmt.Errorf("open: %w", err)
	}
	if err := unix.Fstat(fd, &st); err != nil {
		_ = unix.Close(fd)
		return -1, st, fmt.Errorf("stat: %w", err)
	}
	if !isReg(&st) {
		_ = unix.Close(fd)
		return -1, st, errors.New("no longer a regular file")
	}
	return fd, st, nil
}

// saveFile reads, chunks and saves one file. Problems with the file itself
// are counted (the file is left out); the error returned is fatal (the
// repository failed or the run was cancelled).
func (t *treeRun) saveFile(c *chunker.Chunker, j *fileJob) error {
	a := t.a
	// The prefetcher opened the file; the budget it holds is returned as
	// soon as the file is read.
	defer t.doneReading(j)
	fd, st, err := j.fd, j.st, j.openErr
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			// Deleted since it was listed (temporary files do that): the
			// snapshot is as if it had been taken a moment later, not
			// incomplete.
			a.warn("vanished during the backup", j.abs, nil)
		} else {
			a.unreadableEntry(j.abs, err)
		}
		j.parent.release()
		return nil
	}
	if a.openedHook != nil {
		a.openedHook(j.abs)
	}
	a.filesRead.Add(1)
	node := a.nodeFromStat(j.name, &st)
	if xa, err := fdXattrs(fd); err != nil {
		a.warn("cannot read extended attributes", j.abs, err)
	} else {
		node.Xattrs = xa
	}
	cacheable := a.notRacy(&st, time.Now())

	var size uint64
	var readErr error
	var tr *tracker
	// done runs after the last chunk is saved, in whichever goroutine
	// saved it; everything it reads was written before the reader's
	// release, which the atomic counter orders before it.
	tr = newTracker(a, func() {
		if readErr != nil {
			a.unreadableEntry(j.abs, fmt.Errorf("read: %w", readErr))
			j.parent.release()
			return
		}
		if size != uint64(st.Size) {
			a.changed.Add(1)
			a.warn(fmt.Sprintf("changed size while being read (%d bytes at open, %d read); stored as read", st.Size, size), j.abs, nil)
			cacheable = false
		}
		node.Size = size
		node.Content = tr.ids
		j.parent.children[j.index] = node
		a.files.Add(1)
		a.bytes.Add(size)
		t.size.Add(size)
		if cacheable {
			a.cache.add(j.abs, &st, node.Content, node.Xattrs)
		}
		j.parent.release()
	})
	c.Reset(fdReader(fd))
	for {
		if err := t.ctx.Err(); err != nil {
			return context.Cause(t.ctx)
		}
		chunk, err := c.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		size += uint64(len(chunk))
		if err := t.pool.save(tr, chunk, j.abs); err != nil {
			return err
		}
	}
	tr.release()
	return nil
}

// notRacy reports whether a file stat'ed at now may go into the cache
// (see Archiver.racyWindow).
func (a *Archiver) notRacy(st *unix.Stat_t, now time.Time) bool {
	limit := now.Add(-a.racyWindow).UnixNano()
	return st.Mtim.Nano() < limit && st.Ctim.Nano() < limit
}

// fromCache fills slot i of parent from the previous run's cache if the
// file is unchanged (same size, mtime, ctime, inode and device) and all
// its chunks are still in the repository (a prune may have removed them,
// or the cache may be from a run whose snapshot was never saved). The
// xattrs come from the cache too: changing one changes ctime.
func (t *treeRun) fromCache(parent *dirState, i int, abs, name string, st *unix.Stat_t) bool {
	a := t.a
	if a.old == nil {
		return false
	}
	ids, xa, oldIndex, ok := a.old.lookup(abs, st)
	if !ok {
		return false
	}
	for _, id := range ids {
		if !a.r.HasBlob(repo.DataBlob, id) {
			return false
		}
	}
	node := a.nodeFromStat(name, st)
	node.Content, node.Xattrs = ids, xa
	parent.children[i] = node
	size := uint64(st.Size)
	a.files.Add(1)
	a.filesCached.Add(1)
	a.bytes.Add(size)
	t.size.Add(size)
	a.cache.reuse(a.old, oldIndex)
	return true
}

// verifyReused reads back, in a full run, a chunk the repository already
// holds: a full run does not only re-read every file instead of trusting
// the change cache, it also checks the stored copies it reuses. A damaged
// copy makes the file an unreadable entry (the snapshot is partial, and
// says which chunk), since a restore of it from this snapshot would fail.
// A chunk written earlier in this run may still be in a pack being
// written; it was just stored from the data in hand and is not checked.
func (a *Archiver) verifyReused(ctx context.Context, id repo.ID, what string) {
	if !a.full {
		return
	}
	_, err := a.r.LoadBlob(ctx, repo.DataBlob, id, nil)
	if err == nil || errors.Is(err, repo.ErrBlobNotFound) || ctx.Err() != nil {
		return
	}
	a.unreadableEntry(what, fmt.Errorf("the repository's copy of chunk %s is damaged, so this snapshot cannot restore the file; run runner check --read-data: %w", id.Short(), err))
}
