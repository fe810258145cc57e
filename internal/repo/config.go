package repo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"runtime"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"

	"github.com/backup-runner/runner/internal/repo/chunker"
	"github.com/backup-runner/runner/internal/repo/crypt"
	"github.com/backup-runner/runner/internal/repo/pack"
	"github.com/backup-runner/runner/internal/repo/storage"
	"github.com/backup-runner/runner/internal/repo/zstdenc"
)

// FormatVersion is the repository format this package reads and writes.
const FormatVersion = 1

// Defaults for InitOptions.
const (
	DefaultPackSize         = 16 << 20
	DefaultCompressionLevel = 1
	// MinPackSize and MaxPackSize bound the configurable target. The upper
	// bound keeps offsets far from the 32-bit lengths in index entries and a
	// pack's temporary file small.
	MinPackSize = 4 << 10
	MaxPackSize = 1 << 30
)

// Values of Params fields.
const (
	hashPlain      = "blake3-256"
	hashKeyed      = "blake3-256-keyed"
	encryptionNone = "none"
	encryptionAES  = "aes-256-gcm"
	compZstd       = "zstd"
	compNone       = "none"
)

// AAD strings bind each sealed metadata object to its kind, so that one
// kind of object cannot be passed off as another.
const (
	aadConfig     = "runner config v1"
	aadIndex      = "runner index v1"
	aadSnapshot   = "runner snapshot v1"
	aadLock       = "runner lock v1"
	aadPackHeader = "runner pack header v1"
)

// Size limits for reading metadata objects.
const (
	maxConfigSize   = 1 << 20
	maxKeySize      = 1 << 20
	maxIndexSize    = 256 << 20
	maxSnapshotSize = 64 << 20
	maxLockSize     = 1 << 20
)

// Params are the repository's format parameters, fixed at init.
type Params struct {
	Hash             string        `json:"hash"`
	Chunker          ChunkerParams `json:"chunker"`
	Compression      string        `json:"compression"`
	CompressionLevel int           `json:"compression_level,omitempty"`
	PackSize         int64         `json:"pack_size"`
}

// ChunkerParams are the chunk size bounds and the gear table seed (hex).
type ChunkerParams struct {
	Min  int    `json:"min"`
	Avg  int    `json:"avg"`
	Max  int    `json:"max"`
	Seed string `json:"seed"`
}

// configFile is the JSON stored as the "config" object. In an encrypted
// repository Params are sealed (they hold the secret chunker seed), and the
// outer document only says that.
type configFile struct {
	Format     string  `json:"format"`
	Version    int     `json:"version"`
	ID         string  `json:"id"`
	Encryption string  `json:"encryption"`
	Params     *Params `json:"params,omitempty"`
	Sealed     []byte  `json:"sealed,omitempty"`
}

const formatName = "runner-repository"

// InitOptions configure a new repository. Zero values mean defaults.
type InitOptions struct {
	// Passphrase encrypts the repository. It is required unless Unencrypted
	// is set, so that an unencrypted repository is always a deliberate choice.
	Passphrase  []byte
	Unencrypted bool
	// Chunk size bounds in bytes (defaults 256 KiB, 1 MiB, 4 MiB).
	ChunkMin, ChunkAvg, ChunkMax int
	// CompressionLevel is a zstd level (1..22; a build without cgo maps
	// it onto the pure Go encoder's four speeds); 0 means
	// DefaultCompressionLevel, negative disables compression.
	CompressionLevel int
	// PackSize is the target pack size (default 16 MiB).
	PackSize int64
	// KDF overrides the Argon2id parameters (tests use cheap ones).
	KDF *crypt.KDFParams
	// Now is the creation time recorded in the key (default time.Now).
	Now func() time.Time
}

// Init creates a repository on st. It fails with ErrRepositoryExists if st
// already holds a config object or keys.
func Init(ctx context.Context, st Storage, o InitOptions) error {
	if _, err := st.Stat(ctx, configName); err == nil {
		return fmt.Errorf("init: %w", ErrRepositoryExists)
	} else if !storage.IsNotFound(err) {
		return fmt.Errorf("init: %w", err)
	}
	hasKeys := false
	err := st.List(ctx, keysPrefix, func(ObjectInfo) error { hasKeys = true; return errStop })
	if err != nil && !errors.Is(err, errStop) {
		return fmt.Errorf("init: %w", err)
	}
	if hasKeys {
		return fmt.Errorf("init: keys present: %w", ErrRepositoryExists)
	}
	if !o.Unencrypted && len(o.Passphrase) == 0 {
		return errors.New("init: a passphrase is required (or choose an unencrypted repository explicitly)")
	}
	if o.Unencrypted && len(o.Passphrase) > 0 {
		return errors.New("init: a passphrase was given for an unencrypted repository")
	}
	p := Params{
		Hash:     hashPlain,
		Chunker:  ChunkerParams{Min: orInt(o.ChunkMin, chunker.DefaultMin), Avg: orInt(o.ChunkAvg, chunker.DefaultAvg), Max: orInt(o.ChunkMax, chunker.DefaultMax)},
		PackSize: o.PackSize,
	}
	if p.PackSize == 0 {
		p.PackSize = DefaultPackSize
	}
	switch {
	case o.CompressionLevel < 0:
		p.Compression = compNone
	case o.CompressionLevel == 0:
		p.Compression, p.CompressionLevel = compZstd, DefaultCompressionLevel
	default:
		p.Compression, p.CompressionLevel = compZstd, o.CompressionLevel
	}
	var seed [32]byte
	cf := configFile{Format: formatName, Version: FormatVersion, Encryption: encryptionNone}
	var key *crypt.Key
	if !o.Unencrypted {
		p.Hash = hashKeyed
		cf.Encryption = encryptionAES
		if _, err := rand.Read(seed[:]); err != nil {
			return fmt.Errorf("init: chunker seed: %w", err)
		}
		if key, err = crypt.NewRandomKey(); err != nil {
			return fmt.Errorf("init: %w", err)
		}
	}
	p.Chunker.Seed = hex.EncodeToString(seed[:])
	if err := p.validate(); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	var rid [16]byte
	if _, err := rand.Read(rid[:]); err != nil {
		return fmt.Errorf("init: repository id: %w", err)
	}
	cf.ID = hex.EncodeToString(rid[:])
	if key != nil {
		kdf := crypt.DefaultKDF
		if o.KDF != nil {
			kdf = *o.KDF
		}
		now := time.Now
		if o.Now != nil {
			now = o.Now
		}
		host, _ := os.Hostname()
		kb, err := crypt.WrapKey(key, o.Passphrase, kdf, host, currentUser(), now())
		if err != nil {
			return fmt.Errorf("init: %w", err)
		}
		if err := putBytes(ctx, st, keysPrefix+hashBytes(kb).String(), kb); err != nil {
			return fmt.Errorf("init: %w", err)
		}
		pb, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("init: %w", err)
		}
		if cf.Sealed, err = key.Seal(nil, pb, []byte(aadConfig)); err != nil {
			return fmt.Errorf("init: %w", err)
		}
	} else {
		cf.Params = &p
	}
	cb, err := json.MarshalIndent(cf, "", "  ")
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	// The config goes last: its presence is what makes the repository exist.
	if err := putBytes(ctx, st, configName, append(cb, '\n')); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	return nil
}

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

func (p Params) validate() error {
	if p.Hash != hashPlain && p.Hash != hashKeyed {
		return fmt.Errorf("unknown hash %q", p.Hash)
	}
	if _, err := p.chunkerParams(); err != nil {
		return err
	}
	switch p.Compression {
	case compNone:
	case compZstd:
		if p.CompressionLevel < 1 || p.CompressionLevel > 22 {
			return fmt.Errorf("zstd level %d out of range 1..22", p.CompressionLevel)
		}
	default:
		return fmt.Errorf("unknown compression %q", p.Compression)
	}
	if p.PackSize < MinPackSize || p.PackSize > MaxPackSize {
		return fmt.Errorf("pack size %d out of range %d..%d", p.PackSize, MinPackSize, MaxPackSize)
	}
	return nil
}

func (p Params) chunkerParams() (chunker.Params, error) {
	cp := chunker.Params{Min: p.Chunker.Min, Avg: p.Chunker.Avg, Max: p.Chunker.Max}
	seed, err := hex.DecodeString(p.Chunker.Seed)
	if err != nil || len(seed) != len(cp.Seed) {
		return cp, fmt.Errorf("invalid chunker seed %q", p.Chunker.Seed)
	}
	copy(cp.Seed[:], seed)
	return cp, cp.Validate()
}

// LockMode says which repository lock Open takes.
type LockMode int

// Lock modes. Backups, restores and checks take a shared lock; prune takes
// an exclusive one. LockNone is for read-only inspection.
const (
	LockNone LockMode = iota
	LockShared
	LockExclusive
)

func (m LockMode) String() string {
	switch m {
	case LockShared:
		return "shared"
	case LockExclusive:
		return "exclusive"
	}
	return "none"
}

// OpenOptions configure Open. Zero values mean defaults.
type OpenOptions struct {
	Passphrase []byte
	// Lock is the lock to take. Only a locked open recovers packs left
	// without an index (Recover): reading them without a lock could race a
	// prune that is deleting them.
	Lock   LockMode
	Logger *slog.Logger
	// TempDir holds pack files while they are written (default os.TempDir).
	TempDir string
	// StaleAfter: a lock not refreshed for this long is stale (default 30m).
	// RefreshEvery: how often this process refreshes its lock (default 5m).
	StaleAfter, RefreshEvery time.Duration
	// CheckpointPacks: after this many packs an index is written even before
	// Flush, so an interrupted backup loses little (default 16, ~256 MiB).
	CheckpointPacks int
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// Repository is an open repository. Its methods are safe for concurrent use.
type Repository struct {
	st      Storage
	id      string
	params  Params
	key     *crypt.Key
	table   *chunker.Table
	enc     zstdenc.Encoder
	dec     *zstd.Decoder
	log     *slog.Logger
	tempDir string
	now     func() time.Time

	checkpointPacks int

	packers [3]packer // indexed by BlobType

	mu       sync.Mutex
	idle     *sync.Cond // signalled when uploads drops to zero
	idx      *memIndex
	inflight map[BlobHandle]struct{}
	pending  []indexPack // uploaded (or recovered) packs not yet in an index object
	uploads  int
	err      error // sticky: a failed pack upload spoils every later Flush

	// Full packs are uploaded in the background (blob.go): uploadSlots
	// bounds how many at once, and bg is their context, ended by Close.
	uploadSlots chan struct{}
	bg          context.Context
	stopBg      context.CancelFunc

	lock *heldLock
}

// Open opens the repository on st, takes the lock o.Lock asks for, and loads
// the index. Packs left without an index by an interrupted backup are read
// and added to the in-memory index, so that a backup reuses them; the next
// Flush records them in an index object. ctx must last as long as the
// repository is used: the background pack uploads run under it.
func Open(ctx context.Context, st Storage, o OpenOptions) (*Repository, error) {
	cb, err := storage.ReadAll(ctx, st, configName, maxConfigSize)
	if storage.IsNotFound(err) {
		return nil, fmt.Errorf("open repository: %w", ErrNoRepository)
	}
	if err != nil {
		return nil, fmt.Errorf("open repository: %w", err)
	}
	var cf configFile
	if err := json.Unmarshal(cb, &cf); err != nil {
		return nil, fmt.Errorf("open repository: config: %w", err)
	}
	if cf.Format != formatName || cf.Version != FormatVersion {
		return nil, fmt.Errorf("open repository: unsupported format %q version %d (this runner reads %q version %d)", cf.Format, cf.Version, formatName, FormatVersion)
	}
	r := &Repository{st: st, id: cf.ID, log: o.Logger, tempDir: o.TempDir, now: o.Now, checkpointPacks: o.CheckpointPacks}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.checkpointPacks <= 0 {
		r.checkpointPacks = 16
	}
	switch cf.Encryption {
	case encryptionNone:
		if cf.Params == nil {
			return nil, errors.New("open repository: config has no params")
		}
		r.params = *cf.Params
	case encryptionAES:
		if len(o.Passphrase) == 0 {
			return nil, errors.New("open repository: the repository is encrypted and no passphrase was given")
		}
		if r.key, err = openKey(ctx, st, o.Passphrase); err != nil {
			return nil, fmt.Errorf("open repository: %w", err)
		}
		pb, err := r.key.Open(nil, cf.Sealed, []byte(aadConfig))
		if err != nil {
			return nil, fmt.Errorf("open repository: config: %w", err)
		}
		if err := json.Unmarshal(pb, &r.params); err != nil {
			return nil, fmt.Errorf("open repository: config params: %w", err)
		}
	default:
		return nil, fmt.Errorf("open repository: unknown encryption %q", cf.Encryption)
	}
	if err := r.params.validate(); err != nil {
		return nil, fmt.Errorf("open repository: config: %w", err)
	}
	if (r.key != nil) != (r.params.Hash == hashKeyed) {
		return nil, fmt.Errorf("open repository: hash %q does not fit encryption %q", r.params.Hash, cf.Encryption)
	}
	cp, _ := r.params.chunkerParams()
	if r.table, err = chunker.NewTable(cp); err != nil {
		return nil, fmt.Errorf("open repository: %w", err)
	}
	if err := r.initCompression(); err != nil {
		return nil, fmt.Errorf("open repository: %w", err)
	}
	r.idle = sync.NewCond(&r.mu)
	r.inflight = make(map[BlobHandle]struct{})
	r.uploadSlots = make(chan struct{}, backgroundUploads)
	r.idx = newMemIndex()
	for i := range r.packers {
		r.packers[i].typ = BlobType(i)
	}
	if o.Lock != LockNone {
		if r.lock, err = r.acquireLock(ctx, o.Lock == LockExclusive, o.StaleAfter, o.RefreshEvery); err != nil {
			r.closeCodecs()
			return nil, fmt.Errorf("open repository: %w", err)
		}
	}
	// An upload outlives the SaveBlob call that filled its pack (and that
	// caller's own contexts), so it runs under Open's context: cancelling
	// that (SIGINT) or Close ends it.
	r.bg, r.stopBg = context.WithCancel(ctx)
	if err := r.loadIndex(ctx, o.Lock != LockNone); err != nil {
		_ = r.Close(ctx)
		return nil, fmt.Errorf("open repository: %w", err)
	}
	return r, nil
}

// encoderWindow is the zstd window blobs are compressed with.
const encoderWindow = 1 << 20

func (r *Repository) initCompression() error {
	var err error
	if r.params.Compression == compZstd {
		// Each encoder context keeps its tables (and, for the pure Go
		// encoder, twice its window as history: 8 MiB at the library's
		// default 4 MiB window). Blobs are chunks of about 1 MiB, where
		// matches further back than 1 MiB gain next to nothing.
		r.enc, err = zstdenc.New(r.params.CompressionLevel, runtime.GOMAXPROCS(0), encoderWindow)
		if err != nil {
			return err
		}
	}
	// The decoder is always there: a repository's level may be "none" now,
	// but older blobs written by other tools or settings may be compressed.
	// DecodeAll is limited to the capacity of the buffer we pass, which is
	// the raw length from the index, so a damaged blob cannot make it
	// allocate more than the blob is supposed to hold.
	r.dec, err = zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithDecoderMaxMemory(pack.MaxBlobSize),
		zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return fmt.Errorf("zstd decoder: %w", err)
	}
	return nil
}

func (r *Repository) closeCodecs() {
	if r.enc != nil {
		_ = r.enc.Close()
	}
	if r.dec != nil {
		r.dec.Close()
	}
}

// Close waits for the full packs still uploading, so that an interrupted
// backup keeps them for the next run, unless ctx ends first, which cancels
// them (a pack not uploaded whole is never seen: it is stored under its
// name only when complete). Then it releases the lock and stops the lock
// refresher. It does not flush: blobs saved since the last Flush are
// dropped (their packs, if already uploaded, are recovered by the next
// Open).
func (r *Repository) Close(ctx context.Context) error {
	stop := context.AfterFunc(ctx, r.stopBg)
	r.mu.Lock()
	for r.uploads > 0 {
		r.idle.Wait()
	}
	r.mu.Unlock()
	stop()
	r.stopBg()
	var err error
	if r.lock != nil {
		err = r.releaseLock(ctx)
	}
	for i := range r.packers {
		p := &r.packers[i]
		p.mu.Lock()
		if p.w != nil {
			_ = p.w.Remove()
			p.w = nil
		}
		p.mu.Unlock()
	}
	r.closeCodecs()
	return err
}

// Config describes an open repository.
type Config struct {
	ID        string
	Encrypted bool
	Params    Params
}

// Config returns the repository's id and parameters.
func (r *Repository) Config() Config {
	return Config{ID: r.id, Encrypted: r.key != nil, Params: r.params}
}

// ChunkerTable returns the repository's chunker table; chunk files with
// chunker.New(r.ChunkerTable(), reader).
func (r *Repository) ChunkerTable() *chunker.Table { return r.table }

// openKey tries every key object with the passphrase.
func openKey(ctx context.Context, st Storage, passphrase []byte) (*crypt.Key, error) {
	var names []string
	if err := st.List(ctx, keysPrefix, func(oi ObjectInfo) error {
		names = append(names, oi.Name)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	if len(names) == 0 {
		return nil, errors.New("encrypted repository has no key objects")
	}
	var errs []error
	for _, name := range names {
		kb, err := storage.ReadAll(ctx, st, name, maxKeySize)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		k, err := crypt.UnwrapKey(kb, passphrase)
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, crypt.ErrWrongPassphrase) {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w (and unreadable keys: %w)", crypt.ErrWrongPassphrase, errors.Join(errs...))
	}
	return nil, crypt.ErrWrongPassphrase
}

// ErrWrongPassphrase is returned by Open when no key opens.
var ErrWrongPassphrase = crypt.ErrWrongPassphrase

// hashBytes is the unkeyed BLAKE3 used for object names.
func hashBytes(b []byte) ID { return ID(blake3.Sum256(b)) }

// blobID hashes a blob's plaintext: keyed BLAKE3 when encrypted, so that
// an id seen anywhere (in a log, an error message, a leaked index) cannot be
// compared with the hash of a known file.
func (r *Repository) blobID(data []byte) ID {
	if r.key == nil {
		return ID(blake3.Sum256(data))
	}
	h, _ := blake3.NewKeyed(r.key.ID[:])
	_, _ = h.Write(data)
	var id ID
	h.Sum(id[:0])
	return id
}

// seal and unseal apply the metadata encryption (identity when unencrypted).
func (r *Repository) seal(plain []byte, aad string) ([]byte, error) {
	if r.key == nil {
		return plain, nil
	}
	return r.key.Seal(nil, plain, []byte(aad))
}

func (r *Repository) unseal(stored []byte, aad string) ([]byte, error) {
	if r.key == nil {
		return stored, nil
	}
	b, err := r.key.Open(nil, stored, []byte(aad))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return b, nil
}

// saveObject seals plain, names it by the hash of the stored bytes under
// prefix and uploads it. Objects are never rewritten: a new name each time.
func (r *Repository) saveObject(ctx context.Context, prefix, aad string, plain []byte) (ID, error) {
	b, err := r.seal(plain, aad)
	if err != nil {
		return ID{}, err
	}
	id := hashBytes(b)
	return id, putBytes(ctx, r.st, prefix+id.String(), b)
}

func (r *Repository) loadObject(ctx context.Context, name, aad string, limit int64) ([]byte, error) {
	b, err := storage.ReadAll(ctx, r.st, name, limit)
	if err != nil {
		return nil, err
	}
	return r.unseal(b, aad)
}

func putBytes(ctx context.Context, st Storage, name string, b []byte) error {
	return st.Put(ctx, name, bytesReader(b), int64(len(b)))
}

// errStop ends a List early.
var errStop = errors.New("stop listing")
