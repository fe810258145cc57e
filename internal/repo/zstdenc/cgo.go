//go:build cgo

package zstdenc

import (
	"fmt"

	"github.com/DataDog/zstd"
)

const implementation = "libzstd"

// cEncoder hands out a fixed set of C contexts: a context keeps its
// tables between calls (allocating them costs more than compressing a
// small blob), and a bounded set keeps memory bounded.
type cEncoder struct {
	level int
	ctxs  chan zstd.Ctx
}

func newEncoder(level, concurrency, _ int) (Encoder, error) {
	e := &cEncoder{level: level, ctxs: make(chan zstd.Ctx, concurrency)}
	for range concurrency {
		e.ctxs <- nil // created on first use
	}
	return e, nil
}

func (e *cEncoder) EncodeAll(src, dst []byte) ([]byte, error) {
	c := <-e.ctxs
	defer func() { e.ctxs <- c }()
	if c == nil {
		c = zstd.NewCtx()
	}
	bound := Bound(len(src))
	if cap(dst)-len(dst) < bound {
		grown := make([]byte, len(dst), len(dst)+bound)
		copy(grown, dst)
		dst = grown
	}
	// CompressLevel writes into its dst argument when it has room for
	// the bound, which the line above made sure of.
	out, err := c.CompressLevel(dst[len(dst):cap(dst)], src, e.level)
	if err != nil {
		return dst, fmt.Errorf("zstd level %d: %w", e.level, err)
	}
	return dst[:len(dst)+len(out)], nil
}

// Close waits for running compressions and drops the contexts; their
// finalizers free the C memory. A later EncodeAll makes new ones.
func (e *cEncoder) Close() error {
	for range cap(e.ctxs) {
		<-e.ctxs
	}
	for range cap(e.ctxs) {
		e.ctxs <- nil
	}
	return nil
}
