package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/backup-runner/runner/internal/repo/local"
)

var errInjected = errors.New("injected fault")

// faultStorage fails the n-th mutating call (Put or Delete) once armed,
// either before performing it (a crash just before) or after (a crash just
// after, with the caller never hearing of success). Every later mutating
// call fails too, as if the process had died.
type faultStorage struct {
	Storage
	mu     sync.Mutex
	armed  bool
	failAt int
	after  bool
	count  int
	hit    bool
}

func (f *faultStorage) mutate(do func() error) error {
	f.mu.Lock()
	fail, nth := false, false
	if f.armed {
		f.count++
		fail = f.count >= f.failAt
		nth = f.count == f.failAt
		if fail {
			f.hit = true
		}
	}
	f.mu.Unlock()
	if !fail {
		return do()
	}
	if f.after && nth {
		_ = do()
	}
	return errInjected
}

func (f *faultStorage) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	return f.mutate(func() error { return f.Storage.Put(ctx, name, r, size) })
}

func (f *faultStorage) Delete(ctx context.Context, name string) error {
	return f.mutate(func() error { return f.Storage.Delete(ctx, name) })
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func dirSize(t *testing.T, dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// pruneFixture builds a repository with three snapshots and forgets two:
// one shares most data with the kept one (partly dead packs), one shares
// nothing (fully dead packs).
func pruneFixture(t *testing.T, enc bool) (dir string, kept ID, want fixture) {
	ctx := context.Background()
	dir = t.TempDir()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	initRepo(t, st, enc)
	r := openRepo(t, st, enc, LockShared)
	fx1 := makeFixture(10, 16)
	fx2 := fixture{}
	for k, v := range fx1 {
		fx2[k] = v
	}
	for i := 0; i < 16; i++ { // change most files
		if i%4 != 0 {
			fx2[fmt.Sprintf("dir/f%d", i)] = randBytes(int64(5000+i), 6000)
		}
	}
	fx3 := makeFixture(11, 12)
	s1, err := saveSnapshot(ctx, r, "job", fx1)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := saveSnapshot(ctx, r, "job", fx2)
	if err != nil {
		t.Fatal(err)
	}
	s3, err := saveSnapshot(ctx, r, "other", fx3)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []ID{s1, s3} {
		if err := r.DeleteSnapshot(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return dir, s2, fx2
}

func TestPrune(t *testing.T) {
	forBoth(t, func(t *testing.T, enc bool) {
		ctx := context.Background()
		dir, kept, want := pruneFixture(t, enc)
		st, _ := local.New(dir)
		before := dirSize(t, filepath.Join(dir, "data"))
		r := openRepo(t, st, enc, LockExclusive)
		dry, err := r.Prune(ctx, PruneOptions{DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if dry.PacksDeleted == 0 || dry.PacksRepacked == 0 || dirSize(t, filepath.Join(dir, "data")) != before {
			t.Fatalf("dry run: %+v (the fixture should need deletes and repacks; nothing may change)", dry)
		}
		type call struct {
			phase       PrunePhase
			done, total int
		}
		var calls []call
		stats, err := r.Prune(ctx, PruneOptions{Progress: func(p PrunePhase, done, total int) { calls = append(calls, call{p, done, total}) }})
		if err != nil {
			t.Fatal(err)
		}
		// Progress: marking once, then each repacked pack, then each
		// deleted one, counting up to the totals the stats report.
		var wantCalls []call
		wantCalls = append(wantCalls, call{PruneMarking, 0, 0})
		for i := 1; i <= stats.PacksRepacked; i++ {
			wantCalls = append(wantCalls, call{PruneRepacking, i, stats.PacksRepacked})
		}
		for i, n := 1, stats.PacksRepacked+stats.PacksDeleted; i <= n; i++ {
			wantCalls = append(wantCalls, call{PruneDeleting, i, n})
		}
		if !slices.Equal(calls, wantCalls) {
			t.Fatalf("progress calls %v, want %v", calls, wantCalls)
		}
		after := dirSize(t, filepath.Join(dir, "data"))
		if after >= before || stats.PacksDeleted != dry.PacksDeleted || stats.BlobsRepacked != dry.BlobsRepacked {
			t.Fatalf("prune: %+v, data %d -> %d bytes", stats, before, after)
		}
		// The same Repository keeps working after prune (its index was rebuilt).
		verifySnapshot(t, ctx, r, kept, want)
		// Nothing left to do.
		if again, err := r.Prune(ctx, PruneOptions{DryRun: true}); err != nil || again.PacksDeleted+again.PacksRepacked != 0 {
			t.Fatalf("second prune would still do %+v (%v)", again, err)
		}
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
		r2 := openRepo(t, st, enc, LockShared)
		mustCheck(t, ctx, r2, true)
		verifySnapshot(t, ctx, r2, kept, want)
		// A shared lock is not enough.
		if _, err := r2.Prune(ctx, PruneOptions{}); !errors.Is(err, ErrNeedExclusive) {
			t.Fatalf("prune under a shared lock: %v", err)
		}
	})
}

// TestPruneCrashSafety kills prune (by failing every storage mutation from
// the n-th on) at every point, before and after each mutation, and checks
// that the kept snapshot is intact and that a later prune finishes the job.
func TestPruneCrashSafety(t *testing.T) {
	ctx := context.Background()
	for _, enc := range []bool{false, true} {
		template, kept, want := pruneFixture(t, enc)
		for _, after := range []bool{false, true} {
			completed, points := false, 0
			for n := 1; n < 200 && !completed; n++ {
				points = n
				name := fmt.Sprintf("encrypted=%v/after=%v/fail=%d", enc, after, n)
				dir := t.TempDir()
				copyDir(t, template, dir)
				base, _ := local.New(dir)
				fst := &faultStorage{Storage: base, failAt: n, after: after}
				r := openRepo(t, fst, enc, LockExclusive)
				fst.mu.Lock()
				fst.armed = true
				fst.mu.Unlock()
				_, err := r.Prune(ctx, PruneOptions{})
				fst.mu.Lock()
				fst.armed = false
				hit := fst.hit
				fst.mu.Unlock()
				if !hit {
					if err != nil {
						t.Fatalf("%s: prune failed without a fault: %v", name, err)
					}
					completed = true
				} else if !errors.Is(err, errInjected) {
					t.Fatalf("%s: prune error %v does not come from the fault", name, err)
				}
				_ = r.Close(ctx)

				// After the "crash": everything kept is still there.
				r2 := openRepo(t, base, enc, LockExclusive)
				if rep, err := r2.Check(ctx, CheckOptions{ReadData: true}); err != nil || !rep.OK() {
					t.Fatalf("%s: check after crash: %v %v", name, err, rep.Problems)
				}
				verifySnapshot(t, ctx, r2, kept, want)
				// And a new prune completes and leaves a clean repository.
				if _, err := r2.Prune(ctx, PruneOptions{}); err != nil {
					t.Fatalf("%s: prune after crash: %v", name, err)
				}
				rep, err := r2.Check(ctx, CheckOptions{ReadData: true})
				if err != nil || !rep.OK() || len(rep.UnindexedPacks) != 0 {
					t.Fatalf("%s: check after second prune: %v %+v", name, err, rep)
				}
				verifySnapshot(t, ctx, r2, kept, want)
				_ = r2.Close(ctx)
			}
			if !completed {
				t.Fatalf("encrypted=%v after=%v: prune never completed", enc, after)
			}
			t.Logf("encrypted=%v after=%v: prune interrupted at each of %d storage mutations", enc, after, points-1)
		}
	}
}

// TestBackupCrashSafety interrupts a backup at every storage write (before
// and after it), then checks that the repository is consistent and that the
// next backup of the same data uploads only what the first had not.
func TestBackupCrashSafety(t *testing.T) {
	ctx := context.Background()
	fx := makeFixture(20, 24)
	for _, enc := range []bool{false, true} {
		template := t.TempDir()
		st0, _ := local.New(template)
		initRepo(t, st0, enc)
		// A reference run measures a complete backup's pack bytes.
		ref := &countingStorage{Storage: newStore(t)}
		initRepo(t, ref, enc)
		rr := openRepo(t, ref, enc, LockShared)
		if _, err := saveSnapshot(ctx, rr, "job", fx); err != nil {
			t.Fatal(err)
		}
		full := ref.packBytes.Load()
		for _, after := range []bool{false, true} {
			completed := false
			for n := 1; n < 500 && !completed; n++ {
				name := fmt.Sprintf("encrypted=%v/after=%v/fail=%d", enc, after, n)
				dir := t.TempDir()
				copyDir(t, template, dir)
				base, _ := local.New(dir)
				fst := &faultStorage{Storage: base, failAt: n, after: after}
				r := openRepo(t, fst, enc, LockShared)
				fst.mu.Lock()
				fst.armed = true
				fst.mu.Unlock()
				_, err := saveSnapshot(ctx, r, "job", fx)
				fst.mu.Lock()
				fst.armed = false
				hit := fst.hit
				fst.mu.Unlock()
				_ = r.Close(ctx)
				if !hit {
					if err != nil {
						t.Fatalf("%s: backup failed without a fault: %v", name, err)
					}
					completed = true
					continue
				}
				if !errors.Is(err, errInjected) {
					t.Fatalf("%s: error %v does not come from the fault", name, err)
				}
				counted := &countingStorage{Storage: base}
				before := dirSize(t, filepath.Join(dir, "data"))
				r2 := openRepo(t, counted, enc, LockShared)
				if rep, err := r2.Check(ctx, CheckOptions{ReadData: true}); err != nil || !rep.OK() {
					t.Fatalf("%s: check after crash: %v %v", name, err, rep.Problems)
				}
				id, err := saveSnapshot(ctx, r2, "job", fx)
				if err != nil {
					t.Fatalf("%s: second backup: %v", name, err)
				}
				// What was uploaded before the crash is not uploaded again
				// (at most one pack of each type may be repeated: a pack
				// that reached storage but was reported as failed).
				if up := counted.packBytes.Load(); up > full-before+2*(64<<10+4<<10) {
					t.Fatalf("%s: second backup uploaded %d bytes; %d were already there of %d", name, up, before, full)
				}
				verifySnapshot(t, ctx, r2, id, fx)
				rep, err := r2.Check(ctx, CheckOptions{ReadData: true})
				if err != nil || !rep.OK() || len(rep.UnindexedPacks) != 0 {
					t.Fatalf("%s: check after second backup: %v %+v", name, err, rep)
				}
				_ = r2.Close(ctx)
			}
			if !completed {
				t.Fatalf("encrypted=%v after=%v: backup never completed", enc, after)
			}
		}
	}
}
