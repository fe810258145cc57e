package repo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/backup-runner/runner/internal/repo/storage"
)

// Lock defaults.
const (
	DefaultStaleAfter   = 30 * time.Minute
	DefaultRefreshEvery = 5 * time.Minute
)

// LockInfo is the JSON stored (sealed when encrypted) as locks/<random id>.
type LockInfo struct {
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Username  string    `json:"username,omitempty"`
	Time      time.Time `json:"time"`
	Exclusive bool      `json:"exclusive"`
}

func (l LockInfo) String() string {
	kind := "shared"
	if l.Exclusive {
		kind = "exclusive"
	}
	return fmt.Sprintf("%s lock by pid %d on %s (user %q) at %s", kind, l.PID, l.Host, l.Username, l.Time.Format(time.RFC3339))
}

// heldLock is this process's lock and its refresher goroutine, which the
// Repository owns: started by acquireLock, stopped by releaseLock.
type heldLock struct {
	info       LockInfo
	staleAfter time.Duration

	mu          sync.Mutex
	name        string
	lastRefresh time.Time

	cancel context.CancelFunc
	done   chan struct{}
}

func randomName() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// stale decides whether a lock can be taken over: its process is gone (same
// host only: pids mean nothing across hosts) or it has not been refreshed
// for staleAfter (any host; clocks are assumed roughly in sync).
func (r *Repository) stale(l LockInfo, host string, staleAfter time.Duration) (bool, string) {
	if age := r.now().Sub(l.Time); age > staleAfter {
		return true, fmt.Sprintf("not refreshed for %s", age.Round(time.Second))
	}
	if l.Host == host && l.PID != os.Getpid() && !processAlive(l.PID) {
		return true, fmt.Sprintf("process %d is gone", l.PID)
	}
	return false, ""
}

type lockEntry struct {
	name string
	info LockInfo
	err  error
}

func (r *Repository) readLocks(ctx context.Context) ([]lockEntry, error) {
	var names []ObjectInfo
	if err := r.st.List(ctx, locksPrefix, func(oi ObjectInfo) error { names = append(names, oi); return nil }); err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	var out []lockEntry
	for _, oi := range names {
		b, err := r.loadObject(ctx, oi.Name, aadLock, maxLockSize)
		if storage.IsNotFound(err) {
			continue // released meanwhile
		}
		e := lockEntry{name: oi.Name, err: err}
		if err == nil {
			e.err = json.Unmarshal(b, &e.info)
		}
		if e.err != nil {
			// Judge an unreadable lock by its object's age alone.
			e.info = LockInfo{Time: oi.ModTime, Exclusive: true}
		}
		out = append(out, e)
	}
	return out, nil
}

// conflicts removes stale locks and returns the first live lock that
// conflicts with the wanted mode, ignoring our own lock object.
func (r *Repository) conflicts(ctx context.Context, exclusive bool, own string, staleAfter time.Duration) (*lockEntry, error) {
	host, _ := os.Hostname()
	locks, err := r.readLocks(ctx)
	if err != nil {
		return nil, err
	}
	for i := range locks {
		l := &locks[i]
		if l.name == own {
			continue
		}
		if ok, why := r.stale(l.info, host, staleAfter); ok {
			if err := r.st.Delete(ctx, l.name); err != nil && !storage.IsNotFound(err) {
				return nil, fmt.Errorf("remove stale lock %s: %w", l.name, err)
			}
			r.log.Warn("removed stale repository lock", "lock", l.name, "holder", l.info.String(), "reason", why)
			continue
		}
		if exclusive || l.info.Exclusive {
			return l, nil
		}
	}
	return nil, nil
}

func lockedError(l *lockEntry) error {
	if l.err != nil {
		return fmt.Errorf("%w: unreadable lock %s (%v); remove it if nothing uses the repository", ErrLocked, l.name, l.err)
	}
	return fmt.Errorf("%w: %s (%s)", ErrLocked, l.info, l.name)
}

// acquireLock takes a lock: check, write ours, check again (two processes
// racing both see each other's lock and both back off, rather than both
// proceeding).
func (r *Repository) acquireLock(ctx context.Context, exclusive bool, staleAfter, refresh time.Duration) (*heldLock, error) {
	if staleAfter <= 0 {
		staleAfter = DefaultStaleAfter
	}
	if refresh <= 0 {
		refresh = DefaultRefreshEvery
	}
	if refresh >= staleAfter {
		return nil, fmt.Errorf("lock refresh interval %s must be shorter than the stale time %s", refresh, staleAfter)
	}
	if c, err := r.conflicts(ctx, exclusive, "", staleAfter); err != nil {
		return nil, err
	} else if c != nil {
		return nil, lockedError(c)
	}
	host, _ := os.Hostname()
	hl := &heldLock{info: LockInfo{Host: host, PID: os.Getpid(), Username: currentUser(), Exclusive: exclusive}, staleAfter: staleAfter}
	if err := r.writeLock(ctx, hl); err != nil {
		return nil, err
	}
	if c, err := r.conflicts(ctx, exclusive, hl.name, staleAfter); err != nil || c != nil {
		_ = r.st.Delete(ctx, hl.name)
		if err != nil {
			return nil, err
		}
		return nil, lockedError(c)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	hl.cancel, hl.done = cancel, make(chan struct{})
	go r.refreshLoop(rctx, hl, refresh)
	return hl, nil
}

// writeLock stores a fresh lock object for hl and, if it had one, deletes
// the old one afterwards (so that at every moment at least one exists).
func (r *Repository) writeLock(ctx context.Context, hl *heldLock) error {
	now := r.now()
	info := hl.info
	info.Time = now
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	sealed, err := r.seal(b, aadLock)
	if err != nil {
		return err
	}
	rnd, err := randomName()
	if err != nil {
		return fmt.Errorf("lock name: %w", err)
	}
	name := locksPrefix + rnd
	if err := putBytes(ctx, r.st, name, sealed); err != nil {
		return fmt.Errorf("write lock: %w", err)
	}
	hl.mu.Lock()
	old := hl.name
	hl.name, hl.lastRefresh = name, now
	hl.mu.Unlock()
	if old != "" {
		// Not cancellable: a refresh that Close cancels between writing
		// the new object and deleting the old one would leave the old one
		// behind, for other runs to wait on until it goes stale.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := r.st.Delete(dctx, old); err != nil && !storage.IsNotFound(err) {
			r.log.Warn("could not remove the previous lock object", "lock", old, "err", err)
		}
	}
	return nil
}

func (r *Repository) refreshLoop(ctx context.Context, hl *heldLock, every time.Duration) {
	defer close(hl.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.writeLock(ctx, hl); err != nil && ctx.Err() == nil {
				r.log.Error("refreshing the repository lock failed", "err", err)
			}
		}
	}
}

// RefreshLock refreshes the lock now (the background refresher does it
// every RefreshEvery; long operations may call this too).
func (r *Repository) RefreshLock(ctx context.Context) error {
	if r.lock == nil {
		return ErrNotLocked
	}
	return r.writeLock(ctx, r.lock)
}

func (r *Repository) releaseLock(ctx context.Context) error {
	hl := r.lock
	hl.cancel()
	<-hl.done
	hl.mu.Lock()
	name := hl.name
	hl.mu.Unlock()
	// Remove the lock even if ctx was cancelled (Close after SIGINT):
	// otherwise it blocks other runs until it goes stale.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := r.st.Delete(dctx, name); err != nil && !storage.IsNotFound(err) {
		return fmt.Errorf("release lock %s: %w", name, err)
	}
	return nil
}

// writable checks that a write may proceed: we hold a lock and it has been
// refreshed recently enough that nobody may consider it stale.
func (r *Repository) writable() error {
	hl := r.lock
	if hl == nil {
		return ErrNotLocked
	}
	hl.mu.Lock()
	last := hl.lastRefresh
	hl.mu.Unlock()
	if age := r.now().Sub(last); age > hl.staleAfter {
		return fmt.Errorf("%w: our lock was last refreshed %s ago and may have been taken over", ErrLocked, age.Round(time.Second))
	}
	return nil
}

func (r *Repository) exclusive() error {
	if err := r.writable(); err != nil {
		return err
	}
	if !r.lock.info.Exclusive {
		return ErrNeedExclusive
	}
	return nil
}

// Locks lists the repository's lock objects (for status output).
func (r *Repository) Locks(ctx context.Context) ([]LockInfo, error) {
	entries, err := r.readLocks(ctx)
	if err != nil {
		return nil, err
	}
	var out []LockInfo
	for _, e := range entries {
		if e.err == nil {
			out = append(out, e.info)
		}
	}
	return out, nil
}
