//go:build !cgo

package zstdenc

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
)

const implementation = "go"

type goEncoder struct{ enc *zstd.Encoder }

func newEncoder(level, concurrency, window int) (Encoder, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderConcurrency(concurrency),
		zstd.WithWindowSize(window),
		// Blob ids already check the plaintext; a zstd checksum would
		// cost time and 4 bytes per blob for nothing.
		zstd.WithEncoderCRC(false))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	return goEncoder{enc}, nil
}

func (e goEncoder) EncodeAll(src, dst []byte) ([]byte, error) {
	return e.enc.EncodeAll(src, dst), nil
}

func (e goEncoder) Close() error { return e.enc.Close() }
