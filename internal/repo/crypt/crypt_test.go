package crypt

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

var fastKDF = KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

func TestSealOpen(t *testing.T) {
	k, err := NewRandomKey()
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("hello, repository")
	sealed, err := k.Seal(nil, msg, []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != len(msg)+Overhead {
		t.Fatalf("sealed length %d, want %d", len(sealed), len(msg)+Overhead)
	}
	got, err := k.Open(nil, sealed, []byte("aad"))
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	for name, tc := range map[string]struct {
		sealed, aad []byte
	}{
		"flipped byte": {flip(sealed, len(sealed)/2), []byte("aad")},
		"wrong aad":    {sealed, []byte("other")},
		"truncated":    {sealed[:10], []byte("aad")},
	} {
		if _, err := k.Open(nil, tc.sealed, tc.aad); !errors.Is(err, ErrAuth) {
			t.Errorf("%s: got %v, want ErrAuth", name, err)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func TestWrapUnwrap(t *testing.T) {
	k, _ := NewRandomKey()
	data, err := WrapKey(k, []byte("secret"), fastKDF, "host", "user", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnwrapKey(data, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Encrypt != k.Encrypt || got.ID != k.ID {
		t.Fatal("unwrapped key differs")
	}
	if _, err := UnwrapKey(data, []byte("wrong")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: got %v", err)
	}
	if _, err := UnwrapKey([]byte(`{"version":1,"kdf":"argon2id","params":{"time":1,"memory_kib":1073741824,"threads":1}}`), []byte("x")); err == nil {
		t.Fatal("absurd KDF memory accepted")
	}
	if _, err := WrapKey(k, nil, fastKDF, "", "", time.Now()); err == nil {
		t.Fatal("empty passphrase accepted")
	}
}

// BenchmarkSeal measures AES-256-GCM sealing of a 1 MiB blob.
func BenchmarkSeal(b *testing.B) {
	k, _ := NewRandomKey()
	data := make([]byte, 1<<20)
	buf := make([]byte, 0, len(data)+Overhead)
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		if _, err := k.Seal(buf[:0], data, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen measures AES-256-GCM opening of a 1 MiB blob.
func BenchmarkOpen(b *testing.B) {
	k, _ := NewRandomKey()
	sealed, _ := k.Seal(nil, make([]byte, 1<<20), nil)
	buf := make([]byte, 0, 1<<20)
	b.SetBytes(1 << 20)
	for i := 0; i < b.N; i++ {
		if _, err := k.Open(buf[:0], sealed, nil); err != nil {
			b.Fatal(err)
		}
	}
}
