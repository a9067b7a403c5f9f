package auth

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer is the iss of every token Vigil signs.
const Issuer = "vigil"

// Claims are what a Vigil token says: whose session it is (sub, sid), for
// whom (aud), until when (exp). What the user may do is read from the
// user's row on every call, not from the token, so that a change of role
// or a disabled user counts at once.
type Claims struct {
	jwt.RegisteredClaims
	SessionID string `json:"sid,omitempty"`
}

// KeySet signs tokens with one Ed25519 key (EdDSA) and verifies tokens
// signed by any of its keys, told apart by kid: add a new signing key,
// keep the old one to verify until the tokens it signed have expired,
// then drop it.
type KeySet struct {
	signer    ed25519.PrivateKey
	signerKID string
	verify    map[string]ed25519.PublicKey
}

// KID is a key's id: the first 8 bytes of the SHA-256 of its public key,
// in hex.
func KID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}

// NewKeySet signs with signer and verifies with it and others.
func NewKeySet(signer ed25519.PrivateKey, others ...ed25519.PublicKey) *KeySet {
	pub, _ := signer.Public().(ed25519.PublicKey)
	k := &KeySet{signer: signer, signerKID: KID(pub), verify: map[string]ed25519.PublicKey{KID(pub): pub}}
	for _, o := range others {
		k.verify[KID(o)] = o
	}
	return k
}

// SignerKID is the kid of the signing key.
func (k *KeySet) SignerKID() string { return k.signerKID }

// Sign returns the compact JWT of c, with the signing key's kid.
func (k *KeySet) Sign(c Claims) (string, error) {
	if k.signer == nil {
		return "", errors.New("this key set only verifies")
	}
	c.Issuer = Issuer
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = k.signerKID
	return t.SignedString(k.signer)
}

// clockSkew is how far the clocks of a token's signer and verifier may
// disagree: a token is accepted this long after its exp.
const clockSkew = 30 * time.Second

// ErrBadToken is a token that is not Vigil's, not for this audience,
// tampered with or expired.
var ErrBadToken = errors.New("invalid token")

// Verify checks a token's signature (by its kid), issuer, audience and
// expiry, and returns its claims.
func (k *KeySet) Verify(token, audience string, now time.Time) (Claims, error) {
	var c Claims
	if err := k.parse(token, &c, audience, now); err != nil {
		return Claims{}, err
	}
	return c, nil
}

func (k *KeySet) parse(token string, c jwt.Claims, audience string, now time.Time) error {
	_, err := jwt.ParseWithClaims(token, c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		pub, ok := k.verify[kid]
		if !ok {
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		return pub, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithLeeway(clockSkew),
	)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	return nil
}

// LooksLikeJWT tells a compact JWT from the other secrets Vigil takes.
func LooksLikeJWT(s string) bool {
	dots := 0
	for i := range len(s) {
		if s[i] == '.' {
			dots++
		}
	}
	return dots == 2 && len(s) > 2 && s[0] == 'e' && s[1] == 'y'
}

// GenerateKeyFile writes a new Ed25519 private key to path as PKCS #8
// PEM (what `openssl genpkey -algorithm ed25519` writes), mode 0600; it
// fails if path exists.
func GenerateKeyFile(path string) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// ReadKeyFile reads an Ed25519 key from a PEM file: a PKCS #8 private
// key, or (to verify only) a PKIX public key. A private key file readable
// by group or others is refused.
func ReadKeyFile(path string) (crypto.PublicKey, ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, nil, fmt.Errorf("%s: no PEM block", path)
	}
	switch block.Type {
	case "PRIVATE KEY":
		fi, err := os.Stat(path)
		if err != nil {
			return nil, nil, err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, nil, fmt.Errorf("%s: a private key must be readable by its owner only (chmod 600)", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, nil, fmt.Errorf("%s: not an Ed25519 key", path)
		}
		return priv.Public(), priv, nil
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, nil, fmt.Errorf("%s: not an Ed25519 key", path)
		}
		return pub, nil, nil
	}
	return nil, nil, fmt.Errorf("%s: PEM block %q: want PRIVATE KEY or PUBLIC KEY", path, block.Type)
}

// LoadKeySet signs with the private key in the file signing and
// verifies with it and the keys (private or public) in the verifyOnly
// files. When signing holds a public key, the set only verifies.
func LoadKeySet(signing string, verifyOnly ...string) (*KeySet, error) {
	pub, priv, err := ReadKeyFile(signing)
	if err != nil {
		return nil, err
	}
	var others []ed25519.PublicKey
	for _, f := range verifyOnly {
		pub, _, err := ReadKeyFile(f)
		if err != nil {
			return nil, err
		}
		p, _ := pub.(ed25519.PublicKey)
		others = append(others, p)
	}
	if priv == nil {
		p, _ := pub.(ed25519.PublicKey)
		return NewVerifier(append(others, p)...), nil
	}
	return NewKeySet(priv, others...), nil
}

// CanSign reports whether the set holds a signing key.
func (k *KeySet) CanSign() bool { return k.signer != nil }

// WritePublicKeyFile writes the public key of the private key file priv
// to path as PKIX PEM.
func WritePublicKeyFile(priv, path string) error {
	pub, _, err := ReadKeyFile(priv)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644) //nolint:gosec // a public key
}

// Verifier returns a set that verifies what k verifies and cannot sign:
// what a service that only receives the gateway's assertions holds.
func (k *KeySet) Verifier() *KeySet {
	v := &KeySet{verify: make(map[string]ed25519.PublicKey, len(k.verify))}
	for kid, p := range k.verify {
		v.verify[kid] = p
	}
	return v
}
