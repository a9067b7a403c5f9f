package access

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// Prefixes say what a secret is, so that a leaked one is recognised (by a
// person or a secret scanner) and the authenticator knows where to look.
const (
	KeyPrefix     = "vgk_"
	RefreshPrefix = "vgr_"
)

// newSecret returns prefix and 32 random bytes, and its hash. Secrets
// have 256 bits of entropy, so a fast hash is enough to keep them: there
// is nothing to guess.
func newSecret(prefix string) (secret string, hash []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	secret = prefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, HashSecret(secret)
}

// HashSecret is how API keys and refresh tokens are kept.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// keyDisplayPrefix is how much of a key is kept in clear, to recognise it
// in a list: the prefix and 6 characters (36 bits), not enough to guess.
func keyDisplayPrefix(secret string) string { return secret[:len(KeyPrefix)+6] }
