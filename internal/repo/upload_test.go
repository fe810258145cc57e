package repo

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// gatedStorage holds every pack upload until the test opens the gate (or
// fails it with failWith), and tells the test when one has started.
type gatedStorage struct {
	Storage
	started  chan string
	gate     chan struct{}
	failWith error
}

func (g *gatedStorage) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if strings.HasPrefix(name, dataPrefix) {
		g.started <- name
		select {
		case <-g.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
		if g.failWith != nil {
			return g.failWith
		}
	}
	return g.Storage.Put(ctx, name, r, size)
}

// fillPack saves random blobs until a pack upload has started and returns
// them. It fails the test if a SaveBlob call waits for that upload.
func fillPack(t *testing.T, r *Repository, g *gatedStorage, seed int64) [][]byte {
	t.Helper()
	var blobs [][]byte
	for i := int64(0); ; i++ {
		b := randBytes(seed+i, 4000)
		done := make(chan error, 1)
		go func() {
			_, _, err := r.SaveBlob(context.Background(), DataBlob, b)
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("save blob: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("SaveBlob waited for the upload of the pack it filled")
		}
		blobs = append(blobs, b)
		r.mu.Lock()
		uploading := r.uploads > 0
		r.mu.Unlock()
		if uploading {
			select {
			case <-g.started:
				return blobs
			case <-time.After(30 * time.Second):
				t.Fatal("the full pack's upload did not start")
			}
		}
	}
}

// newGatedRepo opens an unencrypted repository on a gatedStorage whose
// gate opens at the end of the test at the latest, so that Close never
// waits on it.
func newGatedRepo(t *testing.T, failWith error) (*Repository, *gatedStorage, func()) {
	g := &gatedStorage{Storage: newStore(t), started: make(chan string, 4), gate: make(chan struct{}), failWith: failWith}
	initRepo(t, g, false)
	r := openRepo(t, g, false, LockShared)
	var once sync.Once
	open := func() { once.Do(func() { close(g.gate) }) }
	t.Cleanup(open) // runs before openRepo's Close
	return r, g, open
}

// TestFullPackUploadsInBackground: the SaveBlob call that fills a pack
// returns while the pack is still uploading, and Flush waits for that
// upload and indexes the pack.
func TestFullPackUploadsInBackground(t *testing.T) {
	ctx := context.Background()
	r, g, openGate := newGatedRepo(t, nil)
	blobs := fillPack(t, r, g, 1)
	last := randBytes(99, 4000) // starts a second pack, which Flush uploads
	if _, _, err := r.SaveBlob(ctx, DataBlob, last); err != nil {
		t.Fatal(err)
	}
	blobs = append(blobs, last)
	flushed := make(chan error, 1)
	go func() { flushed <- r.Flush(ctx) }()
	// Flush uploads the partial pack too: that upload starts and waits at
	// the gate like the first one.
	select {
	case <-g.started:
	case <-time.After(30 * time.Second):
		t.Fatal("Flush did not upload the partial pack")
	}
	select {
	case err := <-flushed:
		t.Fatalf("Flush returned (%v) while pack uploads were held", err)
	case <-time.After(50 * time.Millisecond):
	}
	openGate()
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if n, err := countObjects(ctx, g, dataPrefix); err != nil || n != 2 {
		t.Fatalf("%d packs stored (%v), want 2", n, err)
	}
	r2 := openRepo(t, g, false, LockNone)
	for i, b := range blobs {
		if !r2.HasBlob(DataBlob, r2.blobID(b)) {
			t.Fatalf("blob %d is not in the index Flush wrote", i)
		}
	}
}

// TestBackgroundUploadFailureIsReported: a pack upload that fails after
// the SaveBlob call that filled the pack has returned fails the next
// Flush, so no snapshot can be saved over the lost blobs.
func TestBackgroundUploadFailureIsReported(t *testing.T) {
	ctx := context.Background()
	injected := errors.New("target went away")
	r, g, openGate := newGatedRepo(t, injected)
	blobs := fillPack(t, r, g, 100)
	openGate()
	err := r.Flush(ctx)
	if !errors.Is(err, injected) {
		t.Fatalf("Flush after a failed background upload: %v, want %v", err, injected)
	}
	if _, _, err := r.SaveBlob(ctx, DataBlob, blobs[0]); !errors.Is(err, injected) {
		t.Fatalf("SaveBlob after a failed background upload: %v, want %v", err, injected)
	}
}

// TestCloseCancelsUploadsWhenItsContextEnds: Close waits for uploads, but
// a cancelled context stops them instead of waiting on a stuck target.
func TestCloseCancelsUploadsWhenItsContextEnds(t *testing.T) {
	g := &gatedStorage{Storage: newStore(t), started: make(chan string, 4), gate: make(chan struct{})}
	initRepo(t, g, false)
	r, err := Open(context.Background(), g, OpenOptions{Lock: LockShared, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	fillPack(t, r, g, 200)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	closed := make(chan error, 1)
	go func() { closed <- r.Close(ctx) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close with a cancelled context waited for a stuck upload")
	}
	if n, err := countObjects(context.Background(), g, dataPrefix); err != nil || n != 0 {
		t.Fatalf("%d packs stored (%v) by a cancelled upload, want 0", n, err)
	}
}
