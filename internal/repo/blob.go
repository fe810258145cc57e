package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/backup-runner/runner/internal/repo/crypt"
	"github.com/backup-runner/runner/internal/repo/pack"
	"github.com/backup-runner/runner/internal/repo/storage"
	"github.com/backup-runner/runner/internal/repo/zstdenc"
)

// packer collects blobs of one type into the pack being written. Data and
// tree blobs go to separate packs so that the (small, frequently read)
// trees are not scattered among gigabytes of file data.
type packer struct {
	typ BlobType
	mu  sync.Mutex
	w   *pack.Writer
}

// SaveBlob stores data as a blob of type t unless the repository already
// has it (in an index, in an uploaded pack, or in a pack being written) and
// returns its id and whether it was stored now. It is safe for concurrent
// callers; when a call fills a pack, it hands the pack to a background
// upload (at most backgroundUploads at once, waiting for a free one) and
// returns. An upload's failure is returned by a later SaveBlob or Flush.
//
// A blob is only durable after Flush (or SaveSnapshot, which flushes).
func (r *Repository) SaveBlob(ctx context.Context, t BlobType, data []byte) (ID, bool, error) {
	if !t.valid() {
		return ID{}, false, fmt.Errorf("save blob: invalid type %d", t)
	}
	if err := r.writable(); err != nil {
		return ID{}, false, fmt.Errorf("save blob: %w", err)
	}
	if len(data) > pack.MaxBlobSize-crypt.Overhead {
		return ID{}, false, fmt.Errorf("save blob: %d bytes is above the limit of %d", len(data), pack.MaxBlobSize-crypt.Overhead)
	}
	id := r.blobID(data)
	h := BlobHandle{t, id}
	r.mu.Lock()
	if r.err != nil {
		err := r.err
		r.mu.Unlock()
		return id, false, err
	}
	_, known := r.idx.get(h)
	_, busy := r.inflight[h]
	if known || busy {
		r.mu.Unlock()
		return id, false, nil
	}
	r.inflight[h] = struct{}{}
	r.mu.Unlock()

	stored, comp, release, err := r.encodeBlob(data)
	if err == nil {
		err = r.addToPack(ctx, h, stored, comp, len(data))
	}
	release()
	if err != nil {
		r.mu.Lock()
		delete(r.inflight, h)
		r.mu.Unlock()
		return id, false, fmt.Errorf("save %s blob %s: %w", t, id.Short(), err)
	}
	return id, true, nil
}

// storedBuf is a reusable buffer for blobs as stored (compressed and
// sealed): written ones live only until addToPack has written them to the
// pack file, loaded ones until they are decoded. Allocating one per blob
// made the garbage collector a large share of a backup's CPU and memory,
// and a third of a restore's allocations.
type storedBuf struct{ b []byte }

var storedBufs = sync.Pool{New: func() any { return new(storedBuf) }}

func getStoredBuf(n int) *storedBuf {
	sb := storedBufs.Get().(*storedBuf)
	if cap(sb.b) < n {
		sb.b = make([]byte, 0, n)
	}
	return sb
}

func putStoredBuf(sb *storedBuf) {
	if cap(sb.b) <= 2*pack.MaxBlobSize {
		storedBufs.Put(sb)
	}
}

// encodeBlob compresses (if that makes it smaller) and seals a blob. The
// result is valid until release is called, which the caller must do once
// the bytes are written.
func (r *Repository) encodeBlob(data []byte) (stored []byte, comp uint8, release func(), err error) {
	var bufs [2]*storedBuf
	release = func() {
		for _, sb := range bufs {
			if sb != nil {
				putStoredBuf(sb)
			}
		}
	}
	payload := data
	comp = pack.CompressionNone
	if r.enc != nil && len(data) > 0 && !r.incompressible(data) {
		bufs[0] = getStoredBuf(zstdenc.Bound(len(data)))
		c, err := r.enc.EncodeAll(data, bufs[0].b[:0])
		bufs[0].b = c[:0]
		if err != nil {
			release()
			return nil, 0, nil, fmt.Errorf("compress blob: %w", err)
		}
		if len(c) < len(data) {
			payload, comp = c, pack.CompressionZstd
		}
	}
	if r.key == nil {
		return payload, comp, release, nil
	}
	bufs[1] = getStoredBuf(len(payload) + crypt.Overhead)
	sealed, err := r.key.Seal(bufs[1].b[:0], payload, nil)
	bufs[1].b = sealed[:0]
	return sealed, comp, release, err
}

// Probing: a big blob is compressed whole only if samples of it shrink.
// Random-looking data (media, archives, encrypted files) is common in
// backups, and compressing it fully only to throw the result away costs
// as much as compressing text.
const (
	probeMinBlob  = 256 << 10 // smaller blobs are just compressed
	probeSample   = 16 << 10  // bytes per sample
	probeSamples  = 3         // at the start, the middle and the end
	probeMaxRatio = 0.97      // samples that keep more than this are "incompressible"
	// probeMaxGrowth bounds how much a zstd frame of a sample exceeds the
	// sample: a frame header and one raw block header per 128 KiB.
	probeMaxGrowth = 64
)

// incompressible reports whether samples of data fail to compress, so
// that the blob is stored raw without compressing all of it. It stops as
// soon as the samples left could not change the answer: text answers
// after its first sample.
func (r *Repository) incompressible(data []byte) bool {
	if len(data) < probeMinBlob {
		return false
	}
	const total = probeSamples * probeSample
	out := 0
	buf := make([]byte, 0, probeSample+probeSample/8)
	for i := 0; i < probeSamples; i++ {
		off := (len(data) - probeSample) * i / (probeSamples - 1)
		var err error
		if buf, err = r.enc.EncodeAll(data[off:off+probeSample], buf[:0]); err != nil {
			return false // the full compression reports it
		}
		out += len(buf)
		// A sample never grows by more than probeMaxGrowth (a frame of
		// raw blocks).
		if left := probeSamples - 1 - i; float64(out+left*(probeSample+probeMaxGrowth)) <= probeMaxRatio*total {
			return false
		}
	}
	return float64(out) > probeMaxRatio*total
}

func (r *Repository) addToPack(ctx context.Context, h BlobHandle, stored []byte, comp uint8, rawLen int) error {
	p := &r.packers[h.Type]
	p.mu.Lock()
	if p.w == nil {
		w, err := r.newPackWriter()
		if err != nil {
			p.mu.Unlock()
			return err
		}
		p.w = w
	}
	err := p.w.Add(pack.Entry{Type: uint8(h.Type), Compression: comp, RawLength: uint32(rawLen), ID: h.ID}, stored)
	var full *pack.Writer
	if err != nil {
		// The temporary file is in an unknown state: drop the pack, and make
		// the failure sticky because blobs reported as deduplicated against
		// it will never be stored.
		full, p.w = p.w, nil
		p.mu.Unlock()
		r.abandon(full, err)
		return err
	}
	if p.w.Size() >= r.params.PackSize || p.w.Count() >= pack.MaxEntries {
		full, p.w = p.w, nil
	}
	p.mu.Unlock()
	if full != nil {
		return r.uploadInBackground(ctx, full)
	}
	return nil
}

// backgroundUploads bounds the full packs being uploaded at once. The
// saver that fills a pack hands it to a goroutine and goes on saving:
// uploading in the saver's own time left its core idle for the pack's
// fsync (about 27 ms for 16 MiB on the benchmark machine, once per pack)
// or its transfer to a remote target. When both slots are taken, the
// saver waits, so a slow target still slows the savers down.
const backgroundUploads = 2

// uploadInBackground uploads a full pack on a goroutine of the
// repository's. It is counted in r.uploads before this returns, so Flush
// and Close wait for it; a failure is sticky (abandon), so the next
// SaveBlob or Flush reports it.
func (r *Repository) uploadInBackground(ctx context.Context, w *pack.Writer) error {
	select {
	case r.uploadSlots <- struct{}{}:
	case <-ctx.Done():
		err := context.Cause(ctx)
		r.abandon(w, err)
		return err
	}
	r.beginUpload()
	go func() {
		defer func() { <-r.uploadSlots }()
		_ = r.finishUpload(r.bg, w)
	}()
	return nil
}

// upload uploads a pack in the caller's time (Flush's partial packs).
func (r *Repository) upload(ctx context.Context, w *pack.Writer) error {
	r.beginUpload()
	return r.finishUpload(ctx, w)
}

// newPackWriter starts a pack: in the store itself when it is a local file
// system (no second copy at upload), in the temporary directory otherwise.
func (r *Repository) newPackWriter() (*pack.Writer, error) {
	if fs, ok := r.st.(storage.FileStore); ok {
		f, err := fs.CreateTemp()
		if err != nil {
			return nil, fmt.Errorf("pack temp file: %w", err)
		}
		return pack.NewWriterFile(f), nil
	}
	return pack.NewWriter(r.tempDir)
}

// abandon drops a pack that could not be completed.
func (r *Repository) abandon(w *pack.Writer, cause error) {
	_ = w.Remove()
	r.mu.Lock()
	for _, e := range w.Entries() {
		delete(r.inflight, BlobHandle{BlobType(e.Type), ID(e.ID)})
	}
	if r.err == nil {
		r.err = fmt.Errorf("pack lost: %w", cause)
	}
	r.mu.Unlock()
}

func (r *Repository) beginUpload() {
	r.mu.Lock()
	r.uploads++
	r.mu.Unlock()
}

// finishUpload finishes a pack, stores it and moves its blobs from
// in-flight to the index (and to the pending list for the next index
// object). It ends the upload beginUpload counted.
func (r *Repository) finishUpload(ctx context.Context, w *pack.Writer) error {
	defer func() {
		r.mu.Lock()
		r.uploads--
		if r.uploads == 0 {
			r.idle.Broadcast()
		}
		r.mu.Unlock()
	}()
	id, size, err := w.Finish(func(b []byte) ([]byte, error) { return r.seal(b, aadPackHeader) })
	if fs, ok := r.st.(storage.FileStore); ok && err == nil {
		// The pack was written on the store's file system: move it.
		err = fs.PutFile(ctx, packName(id), w.File(), size)
	} else if err == nil {
		var rd io.Reader
		if rd, err = w.Open(); err == nil {
			err = r.st.Put(ctx, packName(id), rd, size)
		}
	}
	if err != nil {
		err = fmt.Errorf("upload pack %s: %w", ID(id).Short(), err)
		r.abandon(w, err)
		return err
	}
	_ = w.Remove()
	p := indexPack{ID: id, Entries: w.Entries()}
	r.mu.Lock()
	addErr := r.idx.addPack(p)
	for _, e := range p.Entries {
		delete(r.inflight, BlobHandle{BlobType(e.Type), ID(e.ID)})
	}
	r.pending = append(r.pending, p)
	checkpoint := len(r.pending) >= r.checkpointPacks
	r.mu.Unlock()
	if addErr != nil {
		return addErr
	}
	if checkpoint {
		// A checkpoint bounds what an interrupted backup loses to the
		// header reads of Recover; failing it is not fatal (Flush retries).
		if err := r.writePending(ctx); err != nil {
			r.log.Warn("checkpoint index write failed; will retry at flush", "err", err)
		}
	}
	return nil
}

// Flush uploads the packs being written, waits for uploads started by
// other goroutines, and writes an index object for every pack not yet in
// one. After Flush returns nil, every blob saved before the call is durable
// and indexed. Callers should not save blobs concurrently with Flush if
// they need those blobs covered.
func (r *Repository) Flush(ctx context.Context) error {
	if err := r.writable(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	var errs []error
	for i := range r.packers {
		p := &r.packers[i]
		p.mu.Lock()
		w := p.w
		p.w = nil
		p.mu.Unlock()
		if w != nil {
			if err := r.upload(ctx, w); err != nil {
				errs = append(errs, err)
			}
		}
	}
	r.mu.Lock()
	for r.uploads > 0 {
		r.idle.Wait()
	}
	if r.err != nil {
		errs = append(errs, r.err)
	}
	r.mu.Unlock()
	if len(errs) > 0 {
		return fmt.Errorf("flush: %w", errors.Join(errs...))
	}
	if err := r.writePending(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

// HasBlob reports whether the repository has the blob (indexed or in an
// uploaded pack). Blobs still in a pack being written are not reported.
func (r *Repository) HasBlob(t BlobType, id ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.idx.get(BlobHandle{t, id})
	return ok
}

// BlobSize returns a blob's plaintext size.
func (r *Repository) BlobSize(t BlobType, id ID) (uint32, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	loc, ok := r.idx.get(BlobHandle{t, id})
	return loc.rawLength, ok
}

// LoadBlob reads, decrypts, decompresses and verifies a blob. buf is
// reused for the result if it is large enough. A blob saved in this session
// but still in a pack being written is not loadable until Flush
// (ErrBlobNotFound). A blob that does not hash
// to its id is an error wrapping ErrCorrupt and naming pack and blob; wrong
// bytes are never returned.
func (r *Repository) LoadBlob(ctx context.Context, t BlobType, id ID, buf []byte) ([]byte, error) {
	h := BlobHandle{t, id}
	r.mu.Lock()
	packID, loc, ok := r.idx.lookup(h)
	r.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("load %s blob %s: %w", t, id, ErrBlobNotFound)
	}
	// The stored bytes are needed only until they are decoded into buf.
	sb := getStoredBuf(int(loc.length))
	defer putStoredBuf(sb)
	stored, err := readRangeInto(ctx, r.st, packName(packID), int64(loc.offset), int64(loc.length), sb.b)
	if err != nil {
		return nil, fmt.Errorf("load %s blob %s from pack %s: %w", t, id, packID, err)
	}
	out, err := r.decodeBlob(h, stored, loc.comp, loc.rawLength, buf)
	if err != nil {
		return nil, fmt.Errorf("%s blob %s in pack %s: %w", t, id, packID, err)
	}
	return out, nil
}

// decodeBlob turns stored bytes back into the plaintext and checks it
// against the id. Every failure wraps ErrCorrupt.
func (r *Repository) decodeBlob(h BlobHandle, stored []byte, comp uint8, rawLen uint32, buf []byte) ([]byte, error) {
	payload := stored
	if r.key != nil {
		var err error
		// Decrypt in place: GCM allows the ciphertext's own storage as dst.
		if payload, err = r.key.Open(stored[crypt.NonceSize:crypt.NonceSize], stored, nil); err != nil {
			return nil, fmt.Errorf("%w: decrypt: %w", ErrCorrupt, err)
		}
	}
	if cap(buf) < int(rawLen) {
		buf = make([]byte, 0, rawLen)
	}
	out := buf[:0]
	switch comp {
	case pack.CompressionNone:
		if len(payload) != int(rawLen) {
			return nil, fmt.Errorf("%w: %d bytes stored, %d expected", ErrCorrupt, len(payload), rawLen)
		}
		out = append(out, payload...)
	case pack.CompressionZstd:
		// The encoder omits the content size for tiny frames; when present
		// it must match.
		var zh zstd.Header
		if err := zh.Decode(payload); err != nil || (zh.HasFCS && zh.FrameContentSize != uint64(rawLen)) {
			return nil, fmt.Errorf("%w: bad zstd frame header for %d bytes", ErrCorrupt, rawLen)
		}
		var err error
		// The capacity limit (WithDecodeAllCapLimit) keeps a damaged frame
		// from growing out beyond rawLen.
		if out, err = r.dec.DecodeAll(payload, buf[:0:rawLen]); err != nil {
			return nil, fmt.Errorf("%w: decompress: %w", ErrCorrupt, err)
		}
		if len(out) != int(rawLen) {
			return nil, fmt.Errorf("%w: decompressed to %d bytes, %d expected", ErrCorrupt, len(out), rawLen)
		}
		// The capacity was cut to rawLen for the decoder only: hand the
		// buffer back whole, so that a caller reusing it for the next,
		// larger blob does not allocate again.
		if rawLen > 0 && &out[0] == &buf[:1][0] {
			out = buf[:rawLen]
		}
	default:
		return nil, fmt.Errorf("%w: unknown compression %d", ErrCorrupt, comp)
	}
	if got := r.blobID(out); got != h.ID {
		return nil, fmt.Errorf("%w: content hashes to %s", ErrCorrupt, got)
	}
	return out, nil
}
