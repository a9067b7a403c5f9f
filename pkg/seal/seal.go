// Package seal encrypts secrets at rest (app secrets, kubeconfigs, channel
// tokens) with AES-256-GCM under one key, VIGIL_ENCRYPTION_KEY.
//
// A sealed value is version byte 1, a 12-byte random nonce, then the GCM
// ciphertext and tag. Each value is bound to what it belongs to (the
// additional data, e.g. "deploy.clusters.kubeconfig:prod"), so a ciphertext
// copied into another row does not decrypt there.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the key length: AES-256.
const KeySize = 32

const version = 1

// ErrOpen is returned for a value that is not sealed with this key for this
// purpose (wrong key, other additional data, or tampered bytes).
var ErrOpen = errors.New("seal: cannot decrypt: wrong key, wrong owner or damaged value")

// Box seals and opens values under one key.
type Box struct{ aead cipher.AEAD }

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// ParseKey reads a key written as base64 (standard or URL alphabet, padded
// or not) or hex, as `openssl rand -base64 32` or `-hex 32` print it.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty key")
	}
	if len(s) == 2*KeySize {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != KeySize {
				return nil, fmt.Errorf("key is %d bytes, must be %d (generate one with `openssl rand -base64 32`)", len(k), KeySize)
			}
			return k, nil
		}
	}
	return nil, errors.New("key is neither base64 nor hex (generate one with `openssl rand -base64 32`)")
}

// ReadKeyFile reads a key file: the key as ParseKey reads it, or exactly
// 32 raw bytes. The file must not be readable by group or others.
func ReadKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) == KeySize {
		if k, err := ParseKey(string(b)); err == nil {
			return k, nil
		}
		return b, nil
	}
	return ParseKey(string(b))
}

// Seal encrypts plaintext for owner.
func (b *Box) Seal(plaintext []byte, owner string) []byte {
	nonce := make([]byte, b.aead.NonceSize())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails (Go 1.24+)
	out := make([]byte, 0, 1+len(nonce)+len(plaintext)+b.aead.Overhead())
	out = append(out, version)
	out = append(out, nonce...)
	return b.aead.Seal(out, nonce, plaintext, []byte(owner))
}

// Open decrypts what Seal returned for the same owner.
func (b *Box) Open(sealed []byte, owner string) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < 1+n+b.aead.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	pt, err := b.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(owner))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}
