// Package zstdenc compresses blobs into single zstd frames.
//
// Two encoders write the same format, which any zstd decoder reads:
// the reference C library (libzstd, built from the source DataDog/zstd
// vendors) wherever cgo is available, and klauspost/compress's pure Go
// encoder in a build without cgo. On the benchmark machine the C encoder
// compressed SQL text 1.8 times as fast as the Go one at level 1, to a
// slightly smaller size (docs/REPOSITORY.md, "Compression"), and
// compression is most of a backup's CPU time. Decoding stays with
// klauspost/compress in both builds: its decoder has assembly and is
// not what limits a restore.
package zstdenc

import "fmt"

// Encoder compresses whole blobs. It is safe for concurrent use; at most
// the concurrency given to New compressions run at once, each with its
// own compression context, so memory stays bounded.
type Encoder interface {
	// EncodeAll appends src compressed as one zstd frame, without a
	// checksum, to dst.
	EncodeAll(src, dst []byte) ([]byte, error)
	// Close frees the compression contexts.
	Close() error
}

// New returns an encoder for a zstd level (1..22; the pure Go encoder
// maps it onto its four speeds). window bounds the pure Go encoder's
// window, which it otherwise keeps at 8 MiB of history per context; the
// C library sizes its window to the input, so a blob's frame never needs
// more than the blob's own size to decode.
func New(level, concurrency, window int) (Encoder, error) {
	if level < 1 || level > 22 {
		return nil, fmt.Errorf("zstd level %d: must be 1 to 22", level)
	}
	if concurrency < 1 {
		concurrency = 1
	}
	return newEncoder(level, concurrency, window)
}

// Bound is the largest frame EncodeAll may append for n bytes: a dst with
// that much spare capacity is never reallocated.
func Bound(n int) int {
	// As ZSTD_COMPRESSBOUND in zstd.h: raw blocks plus headers, with a
	// margin for inputs under 128 KiB.
	b := n + n>>8
	if n < 128<<10 {
		b += (128<<10 - n) >> 11
	}
	return b
}

// Implementation says which encoder this build uses ("libzstd" or "go"),
// for logs and benchmarks.
func Implementation() string { return implementation }
