// Package crypt holds the repository's cryptography: AES-256-GCM sealing of
// blobs and metadata objects, and the passphrase-wrapped master key.
//
// The sealed form of a plaintext P is nonce(12) || AES-256-GCM(P) || tag(16),
// with a fresh random 96-bit nonce per message. Random nonces are safe for
// about 2^32 messages per key (NIST SP 800-38D); at an average chunk of 1 MiB
// that is petabytes per repository, far beyond what runner is for.
package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/argon2"
)

// Sizes of the sealed format.
const (
	NonceSize = 12
	TagSize   = 16
	Overhead  = NonceSize + TagSize
	KeySize   = 32
)

// ErrAuth means a sealed message did not authenticate: it was modified, or
// it was sealed with another key.
var ErrAuth = errors.New("authentication failed (corrupted data or wrong key)")

// ErrWrongPassphrase is returned when no key object opens with the
// passphrase given.
var ErrWrongPassphrase = errors.New("wrong passphrase")

// Key is a repository master key: one AES-256 key for sealing and one
// BLAKE3 key for blob ids. They are independent random values so that the
// id key (used on plaintext, whose hashes are visible as object and blob
// names) shares nothing with the encryption key.
type Key struct {
	Encrypt [KeySize]byte
	ID      [KeySize]byte
	aead    cipher.AEAD
}

// NewRandomKey draws a fresh master key.
func NewRandomKey() (*Key, error) {
	k := &Key{}
	if _, err := rand.Read(k.Encrypt[:]); err != nil {
		return nil, fmt.Errorf("random key: %w", err)
	}
	if _, err := rand.Read(k.ID[:]); err != nil {
		return nil, fmt.Errorf("random key: %w", err)
	}
	return k, k.init()
}

func (k *Key) init() error {
	block, err := aes.NewCipher(k.Encrypt[:])
	if err != nil {
		return fmt.Errorf("aes: %w", err)
	}
	k.aead, err = cipher.NewGCM(block)
	if err != nil {
		return fmt.Errorf("gcm: %w", err)
	}
	return nil
}

// Seal appends the sealed form of plaintext to dst and returns it. aad is
// authenticated but not stored (the reader must know it).
func (k *Key) Seal(dst, plaintext, aad []byte) ([]byte, error) {
	return seal(k.aead, dst, plaintext, aad)
}

// Open appends the plaintext of sealed to dst. It returns ErrAuth if the
// message does not authenticate, never unauthenticated bytes.
func (k *Key) Open(dst, sealed, aad []byte) ([]byte, error) {
	return open(k.aead, dst, sealed, aad)
}

func seal(aead cipher.AEAD, dst, plaintext, aad []byte) ([]byte, error) {
	var nonce [NonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	dst = append(dst, nonce[:]...)
	return aead.Seal(dst, nonce[:], plaintext, aad), nil
}

func open(aead cipher.AEAD, dst, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("sealed message of %d bytes is shorter than %d: %w", len(sealed), Overhead, ErrAuth)
	}
	out, err := aead.Open(dst, sealed[:NonceSize], sealed[NonceSize:], aad)
	if err != nil {
		return nil, ErrAuth
	}
	return out, nil
}

// KDFParams are Argon2id parameters. They are stored in each key object so
// that they can be raised for new keys without breaking old ones.
type KDFParams struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

// DefaultKDF follows RFC 9106's second recommended option (t=3, 64 MiB),
// with 2 lanes for 2-core servers: about a quarter second here, paid once
// per repository open.
var DefaultKDF = KDFParams{Time: 3, MemoryKiB: 64 << 10, Threads: 2}

// Limits on KDF parameters read from a key object: a tampered key file must
// not be able to make Open allocate unbounded memory or spin for hours.
const (
	maxKDFMemoryKiB = 4 << 20
	maxKDFTime      = 64
)

func (p KDFParams) validate() error {
	if p.Time < 1 || p.Time > maxKDFTime || p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxKDFMemoryKiB || p.Threads < 1 {
		return fmt.Errorf("argon2id parameters out of range: time=%d memory=%dKiB threads=%d", p.Time, p.MemoryKiB, p.Threads)
	}
	return nil
}

// KeyFile is the JSON document stored (unencrypted) as keys/<id>. Data is
// the sealed master key, sealed with the key derived from the passphrase.
type KeyFile struct {
	Version  int       `json:"version"`
	Created  time.Time `json:"created"`
	Host     string    `json:"host,omitempty"`
	Username string    `json:"username,omitempty"`
	KDF      string    `json:"kdf"`
	Params   KDFParams `json:"params"`
	Salt     []byte    `json:"salt"`
	Data     []byte    `json:"data"`
}

// masterJSON is the plaintext sealed inside a key object (byte slices
// encode as base64 in JSON).
type masterJSON struct {
	Encrypt []byte `json:"encrypt"`
	ID      []byte `json:"id"`
}

// keyFileAAD binds the sealed master key to its purpose.
var keyFileAAD = []byte("runner key v1")

func deriveKEK(passphrase []byte, salt []byte, p KDFParams) (cipher.AEAD, error) {
	kek := argon2.IDKey(passphrase, salt, p.Time, p.MemoryKiB, p.Threads, KeySize)
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	return cipher.NewGCM(block)
}

// WrapKey seals k with a key derived from passphrase and returns the key
// object's JSON bytes.
func WrapKey(k *Key, passphrase []byte, p KDFParams, host, user string, now time.Time) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("empty passphrase")
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	kf := KeyFile{Version: 1, Created: now.UTC(), Host: host, Username: user, KDF: "argon2id", Params: p, Salt: make([]byte, 32)}
	if _, err := rand.Read(kf.Salt); err != nil {
		return nil, fmt.Errorf("salt: %w", err)
	}
	aead, err := deriveKEK(passphrase, kf.Salt, p)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(masterJSON{Encrypt: k.Encrypt[:], ID: k.ID[:]})
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	if kf.Data, err = seal(aead, nil, plain, keyFileAAD); err != nil {
		return nil, err
	}
	return json.Marshal(kf)
}

// UnwrapKey opens a key object with passphrase. It returns
// ErrWrongPassphrase if the passphrase does not open it.
func UnwrapKey(data, passphrase []byte) (*Key, error) {
	var kf KeyFile
	if err := json.Unmarshal(data, &kf); err != nil {
		return nil, fmt.Errorf("decode key object: %w", err)
	}
	if kf.Version != 1 || kf.KDF != "argon2id" {
		return nil, fmt.Errorf("unsupported key object (version %d, kdf %q)", kf.Version, kf.KDF)
	}
	if err := kf.Params.validate(); err != nil {
		return nil, err
	}
	if len(kf.Salt) < 16 {
		return nil, fmt.Errorf("key object salt of %d bytes is too short", len(kf.Salt))
	}
	aead, err := deriveKEK(passphrase, kf.Salt, kf.Params)
	if err != nil {
		return nil, err
	}
	plain, err := open(aead, nil, kf.Data, keyFileAAD)
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	var m masterJSON
	if err := json.Unmarshal(plain, &m); err != nil {
		return nil, fmt.Errorf("decode master key: %w", err)
	}
	if len(m.Encrypt) != KeySize || len(m.ID) != KeySize {
		return nil, fmt.Errorf("master key has wrong length (%d, %d)", len(m.Encrypt), len(m.ID))
	}
	k := &Key{}
	copy(k.Encrypt[:], m.Encrypt)
	copy(k.ID[:], m.ID)
	var zero [KeySize]byte
	if subtle.ConstantTimeCompare(k.Encrypt[:], zero[:]) == 1 || subtle.ConstantTimeCompare(k.ID[:], zero[:]) == 1 {
		return nil, errors.New("master key is all zero")
	}
	return k, k.init()
}
