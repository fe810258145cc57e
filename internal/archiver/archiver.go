//go:build linux

package archiver

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/backup-runner/runner/internal/repo"
)

// TreeSpec says what Tree captures.
type TreeSpec struct {
	// Root is the absolute path of the item root. A symlink here is
	// followed (the root is what it names); symlinks below it are not.
	Root string
	// Paths, relative to Root, restrict the capture to these entries (and
	// the directories on the way to them); empty means all of Root. A path
	// that does not exist is counted as unreadable.
	Paths []string
	// Excludes are gitignore-like patterns (package pathmatch) matched
	// against paths relative to Root; an excluded directory is not entered.
	Excludes []string
	// OneFileSystem: directories on another device than their parent
	// selection (Root, or an explicitly listed path) are left out entirely
	// and counted in Stats.SkippedMounts.
	OneFileSystem bool
}

// Options configure an Archiver.
type Options struct {
	// Workers is the number of file readers, and of chunk savers (0 means
	// GOMAXPROCS).
	Workers int
	// Full ignores the change cache: every file is read again. The cache
	// built during the run (NewCache) is complete either way.
	Full bool
	// Cache is the previous run's change cache (LoadCache, or NewCache of
	// a finished Archiver on the same repository); nil means none. It is
	// only read.
	Cache *Cache
	Log   *slog.Logger
}

// Stats describe what an Archiver did, over all its Tree and Stream calls.
type Stats struct {
	Files      uint64 // regular files captured
	Dirs       uint64 // directories captured (including item roots)
	Bytes      uint64 // plaintext bytes of files and streams captured
	AddedBytes uint64 // plaintext bytes of blobs (data and trees) new to the repository
	// Errors counts entries that could not be captured; the snapshot is
	// then partial. Unreadable lists the first 20 as "path: error".
	Errors     uint64
	Unreadable []string

	FilesRead     uint64 // files opened and read
	FilesCached   uint64 // files taken from the change cache with one stat
	Excluded      uint64 // entries left out by exclude patterns
	SkippedMounts uint64 // directories left out by OneFileSystem
	// Changed counts files whose size changed while they were read: they
	// are stored as read (possibly inconsistent) and not cached. Warnings
	// holds the first 20 warning messages (changed files, skipped mounts,
	// xattrs that could not be read, entries that vanished) and
	// WarningCount counts them all. Warnings do not make a snapshot partial.
	Changed      uint64
	Warnings     []string
	WarningCount uint64
}

const maxListed = 20

// Archiver writes file trees and streams into a repository. One Archiver
// serves one backup run: its statistics and its new change cache cover
// every Tree and Stream call made on it. Its methods are safe for
// concurrent use.
type Archiver struct {
	r       *repo.Repository
	log     *slog.Logger
	workers int
	full    bool
	old     *Cache // previous run's cache, sorted; nil if none
	cache   *Cache // this run's
	names   names

	// racyWindow: a file whose mtime or ctime is this close to the time it
	// was read is not put into the new cache. Timestamps have a granularity
	// (a clock tick on Linux filesystems, more on some NFS servers): a
	// write in the same tick right after our read would leave size, mtime
	// and ctime unchanged, and a cache entry would hide it for ever.
	racyWindow time.Duration
	// chunkBufs is the number of hand-off buffers through which a file
	// worker passes chunks to the chunk savers (0: every chunk is saved by
	// the worker that read it). See chunkPool.
	chunkBufs int
	// openHook, if set, is called before a file is opened for reading; an
	// error it returns is treated as the open's error (tests inject
	// unreadable files with it: as root, permissions cannot).
	openHook func(path string) error
	// openedHook, if set, is called after a file is opened and stat'ed,
	// before it is read (tests change files under the reader with it).
	openedHook func(path string)

	files, dirs, bytes, added, errors     atomic.Uint64
	filesRead, filesCached, excluded      atomic.Uint64
	skippedMounts, changed, warningsCount atomic.Uint64

	// readers counts the file workers busy with a file and the streams
	// being cut: while there are as many as cores, every core already
	// has a reader, and the chunk pool's hand-off would only hold more
	// chunks in memory (see chunkPool).
	readers atomic.Int32

	mu         sync.Mutex
	unreadable []string
	warnings   []string
}

// New returns an Archiver writing into r.
func New(r *repo.Repository, o Options) *Archiver {
	a := &Archiver{
		r:          r,
		log:        o.Log,
		workers:    o.Workers,
		full:       o.Full,
		racyWindow: 2 * time.Second,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.workers <= 0 {
		a.workers = runtime.GOMAXPROCS(0)
	}
	a.chunkBufs = a.workers
	id := r.Config().ID
	a.cache = newCache(id)
	if o.Cache != nil && !o.Full {
		if o.Cache.repoID == id {
			o.Cache.freeze()
			a.old = o.Cache
		} else {
			a.log.Warn("change cache belongs to another repository; ignoring it", "cache_repo", o.Cache.repoID, "repo", id)
		}
	}
	return a
}

// Stats returns the statistics so far.
func (a *Archiver) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Stats{
		Files:         a.files.Load(),
		Dirs:          a.dirs.Load(),
		Bytes:         a.bytes.Load(),
		AddedBytes:    a.added.Load(),
		Errors:        a.errors.Load(),
		Unreadable:    append([]string(nil), a.unreadable...),
		FilesRead:     a.filesRead.Load(),
		FilesCached:   a.filesCached.Load(),
		Excluded:      a.excluded.Load(),
		SkippedMounts: a.skippedMounts.Load(),
		Changed:       a.changed.Load(),
		Warnings:      append([]string(nil), a.warnings...),
		WarningCount:  a.warningsCount.Load(),
	}
}

// NewCache returns the change cache built during this run: an entry for
// every file captured by Tree, whether read or taken from the old cache.
// Save it only after the snapshot that references its chunks is saved:
// a cache naming chunks that never reached an index would be ignored
// entry by entry (HasBlob), but there is no reason to write one.
func (a *Archiver) NewCache() *Cache { return a.cache }

// unreadableEntry records an entry that could not be captured.
func (a *Archiver) unreadableEntry(path string, err error) {
	a.errors.Add(1)
	a.log.Warn("cannot read; snapshot will be partial", "path", path, "err", err)
	a.mu.Lock()
	if len(a.unreadable) < maxListed {
		a.unreadable = append(a.unreadable, fmt.Sprintf("%s: %v", path, err))
	}
	a.mu.Unlock()
}

func (a *Archiver) warn(msg string, path string, err error) {
	a.warningsCount.Add(1)
	if err != nil {
		a.log.Warn(msg, "path", path, "err", err)
	} else {
		a.log.Warn(msg, "path", path)
	}
	a.mu.Lock()
	if len(a.warnings) < maxListed {
		s := path + ": " + msg
		if err != nil {
			s += ": " + err.Error()
		}
		a.warnings = append(a.warnings, s)
	}
	a.mu.Unlock()
}

// rootName is the name of the item's single top node.
func rootName(root string) string {
	name := filepath.Base(root)
	if name == "/" || name == "." || name == "" {
		return "root"
	}
	return name
}

// Tree captures spec.Root into the repository and returns the item. Errors
// on single entries are counted (Stats) and do not fail the call; the
// returned error means the repository could not be written, the context
// ended, or the spec is unusable (Root missing, bad pattern).
func (a *Archiver) Tree(ctx context.Context, name string, spec TreeSpec) (repo.Item, error) {
	t, err := a.newTreeRun(ctx, spec)
	if err != nil {
		return repo.Item{}, fmt.Errorf("tree %q: %w", name, err)
	}
	tree, size, err := t.run()
	if err != nil {
		return repo.Item{}, fmt.Errorf("tree %q: %w", name, err)
	}
	return repo.Item{Name: name, Kind: repo.ItemTree, Tree: tree, Size: size}, nil
}
