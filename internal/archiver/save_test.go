package archiver

import (
	"context"
	"testing"
)

// A reader hands a chunk to the pool only while some core has no reader
// of its own; with every core reading, it saves the chunk itself, so no
// extra copy is held.
func TestChunkPoolHandsOffOnlyToIdleCores(t *testing.T) {
	r := newTestRepo(t, false)
	a := New(r.Repository, Options{Workers: 2})
	// A cancelled pool: its savers stop at once, so queued chunks stay
	// queued where the test can count them.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := newChunkPool(ctx, a, func(error) {}, 2)
	p.wg.Wait()
	tr := newTracker(a, func() {})
	chunk := textBytes(1, 32<<10)

	a.readers.Store(2)
	_ = p.save(tr, chunk, "busy") // saved inline: fails, as the context is cancelled
	if n := len(p.jobs); n != 0 {
		t.Fatalf("with a reader on every core, %d chunks were handed off", n)
	}
	a.readers.Store(1)
	if err := p.save(tr, chunk, "alone"); err != nil {
		t.Fatal(err)
	}
	if n := len(p.jobs); n != 1 {
		t.Fatalf("with a core free, %d chunks were handed off, want 1", n)
	}
}
