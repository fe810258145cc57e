//go:build linux

package archiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/backup-runner/runner/internal/repo"
	"github.com/backup-runner/runner/internal/repo/chunker"
)

// StreamWriter captures a byte stream (a database dump, an archive) as a
// stream item. Write feeds it; Close finishes it and returns the item;
// Abort discards it. Writes go through a pipe to a goroutine that chunks
// and saves, so Write returns as soon as the data is handed over and a
// slow repository slows the producer down instead of buffering.
type StreamWriter struct {
	name string
	pw   *io.PipeWriter
	done chan struct{}
	item repo.Item
	err  error
}

// Stream starts a stream item. The caller must end it with Close or Abort;
// if ctx ends first, the stream fails and Write returns the context's
// error.
func (a *Archiver) Stream(ctx context.Context, name string) *StreamWriter {
	pr, pw := io.Pipe()
	w := &StreamWriter{name: name, pw: pw, done: make(chan struct{})}
	go w.run(ctx, a, pr)
	return w
}

// Write implements io.Writer.
func (w *StreamWriter) Write(p []byte) (int, error) {
	n, err := w.pw.Write(p)
	if err != nil {
		return n, fmt.Errorf("stream %q: %w", w.name, err)
	}
	return n, nil
}

// Close ends the stream, waits until every chunk is saved and returns the
// item (Content lists the chunks in order). After an Abort or a failure it
// returns that error.
func (w *StreamWriter) Close() (repo.Item, error) {
	_ = w.pw.Close()
	<-w.done
	return w.item, w.err
}

// Abort stops the stream and discards it (chunks already saved stay in the
// repository, unreferenced, until a prune). Close then returns err.
func (w *StreamWriter) Abort(err error) {
	if err == nil {
		err = errors.New("aborted")
	}
	_ = w.pw.CloseWithError(err)
	<-w.done
}

// run is the stream's goroutine; it owns the chunk pool it starts and
// returns only after the pool's savers have stopped.
func (w *StreamWriter) run(ctx context.Context, a *Archiver, pr *io.PipeReader) {
	defer close(w.done)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// A writer blocked in Write must learn that the stream is over.
	stop := context.AfterFunc(ctx, func() { _ = pr.CloseWithError(context.Cause(ctx)) })
	defer stop()

	what := fmt.Sprintf("stream %q", w.name)
	a.readers.Add(1)
	defer a.readers.Add(-1)
	pool := newChunkPool(ctx, a, cancel, a.chunkBufs)
	finished := make(chan struct{})
	tr := newTracker(a, func() { close(finished) })
	c := chunker.New(a.r.ChunkerTable(), pr)
	var size uint64
	var err error
	for {
		chunk, e := c.Next()
		if errors.Is(e, io.EOF) {
			break
		}
		if e != nil {
			err = e
			break
		}
		size += uint64(len(chunk))
		if err = pool.save(tr, chunk, what); err != nil {
			break
		}
	}
	tr.release()
	if err != nil && ctx.Err() != nil {
		// The pipe was closed because the context ended (reads then say
		// only "closed pipe"): report why.
		err = context.Cause(ctx)
	}
	if err == nil {
		select {
		case <-finished:
		case <-ctx.Done():
			err = context.Cause(ctx)
		}
	}
	if err != nil {
		cancel(err)
	}
	pool.close()
	if err != nil {
		_ = pr.CloseWithError(err)
		w.err = fmt.Errorf("%s: %w", what, err)
		return
	}
	a.bytes.Add(size)
	w.item = repo.Item{Name: w.name, Kind: repo.ItemStream, Content: tr.ids, Size: size}
}

// RestoreStream writes a stream item to w and returns the number of bytes
// written. Chunks are loaded (read, decrypted, decompressed, verified) by
// a few goroutines ahead of the writer, in order; a chunk that fails
// verification stops the restore before its bytes are written.
func RestoreStream(ctx context.Context, r *repo.Repository, item repo.Item, w io.Writer) (int64, error) {
	if item.Kind != repo.ItemStream {
		return 0, fmt.Errorf("restore stream %q: item is a %s, not a stream", item.Name, item.Kind)
	}
	workers := min(runtime.GOMAXPROCS(0), max(len(item.Content), 1))
	ahead := 2 * workers
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	type result struct {
		buf []byte
		err error
	}
	type job struct {
		i   int
		res chan result
	}
	order := make(chan chan result, ahead)
	jobs := make(chan job, ahead)
	free := make(chan []byte, ahead+workers)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // producer: queues loads in stream order, ahead at most
		defer wg.Done()
		defer close(order)
		defer close(jobs)
		for i := range item.Content {
			res := make(chan result, 1)
			select {
			case order <- res:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- job{i, res}:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range workers {
		wg.Add(1)
		go func() { // loaders
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case j, ok := <-jobs:
					if !ok {
						return
					}
					var buf []byte
					select {
					case buf = <-free:
					default:
					}
					b, err := r.LoadBlob(ctx, repo.DataBlob, item.Content[j.i], buf)
					if err != nil {
						err = fmt.Errorf("chunk %d of %d: %w", j.i+1, len(item.Content), err)
					}
					j.res <- result{b, err} // buffered: never blocks
				}
			}
		}()
	}
	var n int64
	err := func() error {
		for res := range order {
			var rs result
			select {
			case rs = <-res:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			if rs.err != nil {
				return rs.err
			}
			m, err := w.Write(rs.buf)
			n += int64(m)
			if err != nil {
				return fmt.Errorf("write: %w", err)
			}
			select {
			case free <- rs.buf:
			default:
			}
		}
		return ctx.Err()
	}()
	cancel(err)
	wg.Wait()
	if err == nil && uint64(n) != item.Size {
		err = fmt.Errorf("restored %d bytes, the item says %d", n, item.Size)
	}
	if err != nil {
		return n, fmt.Errorf("restore stream %q: %w", item.Name, err)
	}
	return n, nil
}
