package access

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// PasswordParams are argon2id's cost parameters (RFC 9106's second
// recommended option, with two lanes for small machines: 64 MiB, three
// passes). They are stored with each hash, so raising them later leaves
// old hashes readable.
type PasswordParams struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// DefaultPasswordParams are what new hashes use.
var DefaultPasswordParams = PasswordParams{Memory: 64 * 1024, Time: 3, Threads: 2, SaltLen: 16, KeyLen: 32}

// Hasher hashes and checks passwords, a bounded number at a time: each
// takes 64 MiB, and a burst of logins must not take the process's memory.
type Hasher struct {
	Params PasswordParams
	sem    chan struct{}
	// dummy is checked against when the user does not exist, so that a
	// wrong name costs as long as a wrong password.
	dummy string
}

// NewHasher returns a Hasher running at most concurrent hashes at once.
func NewHasher(p PasswordParams, concurrent int) *Hasher {
	h := &Hasher{Params: p, sem: make(chan struct{}, max(concurrent, 1))}
	h.dummy, _ = h.hash("not a password of anyone's")
	return h
}

// Hash returns the PHC string of pw: $argon2id$v=19$m=...,t=...,p=...$salt$key.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.hash(pw)
}

func (h *Hasher) hash(pw string) (string, error) {
	salt := make([]byte, h.Params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	p := h.Params
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// Verify reports whether pw matches the PHC string hash ("" checks
// against a dummy hash and reports false, in the same time).
func (h *Hasher) Verify(ctx context.Context, hash, pw string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	if hash == "" {
		_, _ = verify(h.dummy, pw)
		return false, nil
	}
	return verify(hash, pw)
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.sem }

// ParsePasswordHash returns the parameters, salt and key of a PHC string.
func ParsePasswordHash(hash string) (PasswordParams, []byte, []byte, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return PasswordParams{}, nil, nil, errors.New("not an argon2id hash")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return PasswordParams{}, nil, nil, fmt.Errorf("argon2 version %q", parts[2])
	}
	var p PasswordParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return PasswordParams{}, nil, nil, fmt.Errorf("argon2 parameters %q: %w", parts[3], err)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return PasswordParams{}, nil, nil, fmt.Errorf("argon2 salt: %w", err)
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		return PasswordParams{}, nil, nil, fmt.Errorf("argon2 key: %w", err)
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key)) //nolint:gosec // lengths of short strings
	return p, salt, key, nil
}

func verify(hash, pw string) (bool, error) {
	p, salt, key, err := ParsePasswordHash(hash)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}
