package auth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/auth"
)

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return pub, priv
}

// t0 is when the tests' tokens are made.
var t0 = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

func claims(aud string, exp time.Time) auth.Claims {
	return auth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject: "alice", Audience: jwt.ClaimStrings{aud}, ID: "j1",
			IssuedAt: jwt.NewNumericDate(t0), ExpiresAt: jwt.NewNumericDate(exp),
		},
		SessionID: "s1",
	}
}

// header decodes a compact JWT's header.
func header(t *testing.T, token string) map[string]any {
	t.Helper()
	h, _, ok := strings.Cut(token, ".")
	require.True(t, ok)
	b, err := base64.RawURLEncoding.DecodeString(h)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func TestKeySetRoundTrip(t *testing.T) {
	t.Parallel()
	pub, priv := newKey(t)
	ks := auth.NewKeySet(priv)
	require.True(t, ks.CanSign())
	require.Equal(t, auth.KID(pub), ks.SignerKID())
	require.Len(t, ks.SignerKID(), 16)

	tok, err := ks.Sign(claims("vigil-api", t0.Add(15*time.Minute)))
	require.NoError(t, err)
	require.True(t, auth.LooksLikeJWT(tok))
	require.Equal(t, map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": ks.SignerKID()}, header(t, tok))

	c, err := ks.Verify(tok, "vigil-api", t0.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, auth.Issuer, c.Issuer, "Sign sets the issuer")
	require.Equal(t, "alice", c.Subject)
	require.Equal(t, "s1", c.SessionID)
	require.Equal(t, "j1", c.ID)
	require.Equal(t, t0.Add(15*time.Minute), c.ExpiresAt.UTC())
}

// TestKeySetRefuses: a token is accepted only when Vigil signed it, for
// this audience, and it has not expired.
func TestKeySetRefuses(t *testing.T) {
	t.Parallel()
	pub, priv := newKey(t)
	ks := auth.NewKeySet(priv)
	exp := t0.Add(15 * time.Minute)
	good, err := ks.Sign(claims("vigil-api", exp))
	require.NoError(t, err)
	parts := strings.Split(good, ".")
	require.Len(t, parts, 3)

	_, otherPriv := newKey(t)
	foreign, err := auth.NewKeySet(otherPriv).Sign(claims("vigil-api", exp))
	require.NoError(t, err)

	// signed makes a token with jwt directly: what an attacker, or a bug,
	// could make.
	signed := func(method jwt.SigningMethod, key any, c jwt.Claims, kid string) string {
		t.Helper()
		tok := jwt.NewWithClaims(method, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		require.NoError(t, err)
		return s
	}
	vigilClaims := claims("vigil-api", exp)
	vigilClaims.Issuer = auth.Issuer
	otherIssuer := vigilClaims
	otherIssuer.Issuer = "evil"
	noExpiry := vigilClaims
	noExpiry.ExpiresAt = nil

	// Keep the signature of good, change what it signs.
	payload, err := json.Marshal(func() auth.Claims { c := vigilClaims; c.Subject = "mallory"; return c }())
	require.NoError(t, err)
	swappedPayload := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
	// Flip a bit of the signature, away from its last (padding) character.
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	require.NoError(t, err)
	sig[10] ^= 0x01
	tamperedSig := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
	// Point an honest token at a kid the set does not hold.
	hdr, err := json.Marshal(map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": "0000000000000000"})
	require.NoError(t, err)
	unknownKID := base64.RawURLEncoding.EncodeToString(hdr) + "." + parts[1] + "." + parts[2]

	tests := []struct {
		name     string
		token    string
		audience string
		now      time.Time
	}{
		{name: "wrong audience", token: good, audience: "vigil-service:monitor", now: t0},
		{name: "expired", token: good, audience: "vigil-api", now: exp.Add(time.Minute)},
		{name: "expired beyond the leeway", token: good, audience: "vigil-api", now: exp.Add(31 * time.Second)},
		{name: "tampered signature", token: tamperedSig, audience: "vigil-api", now: t0},
		{name: "tampered payload", token: swappedPayload, audience: "vigil-api", now: t0},
		{name: "signed by another key", token: foreign, audience: "vigil-api", now: t0},
		{name: "unknown kid", token: unknownKID, audience: "vigil-api", now: t0},
		{name: "no kid", token: signed(jwt.SigningMethodEdDSA, priv, vigilClaims, ""), audience: "vigil-api", now: t0},
		{name: "another issuer", token: signed(jwt.SigningMethodEdDSA, priv, otherIssuer, ks.SignerKID()), audience: "vigil-api", now: t0},
		{name: "no expiry", token: signed(jwt.SigningMethodEdDSA, priv, noExpiry, ks.SignerKID()), audience: "vigil-api", now: t0},
		{
			name: "alg none", audience: "vigil-api", now: t0,
			token: signed(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, vigilClaims, ks.SignerKID()),
		},
		{
			// The classic confusion: HMAC keyed with the public key.
			name: "HS256 with the public key", audience: "vigil-api", now: t0,
			token: signed(jwt.SigningMethodHS256, []byte(pub), vigilClaims, ks.SignerKID()),
		},
		{name: "garbage", token: "eyJhbGciOiJFZERTQSJ9.e30.AAAA", audience: "vigil-api", now: t0},
		{name: "empty", token: "", audience: "vigil-api", now: t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ks.Verify(tt.token, tt.audience, tt.now)
			require.ErrorIs(t, err, auth.ErrBadToken)
		})
	}

	// Within the leeway for clock skew between replicas, it still counts.
	_, err = ks.Verify(good, "vigil-api", exp.Add(20*time.Second))
	require.NoError(t, err)
}

// TestKeySetRotation: a new signing key is added with the old one kept to
// verify until what it signed has expired, then dropped.
func TestKeySetRotation(t *testing.T) {
	t.Parallel()
	oldPub, oldPriv := newKey(t)
	newPub, newPriv := newKey(t)
	old := auth.NewKeySet(oldPriv)
	oldTok, err := old.Sign(claims("vigil-api", t0.Add(time.Hour)))
	require.NoError(t, err)
	require.Equal(t, auth.KID(oldPub), header(t, oldTok)["kid"])

	rotated := auth.NewKeySet(newPriv, oldPub)
	require.Equal(t, auth.KID(newPub), rotated.SignerKID())
	_, err = rotated.Verify(oldTok, "vigil-api", t0)
	require.NoError(t, err, "the old key still verifies")
	newTok, err := rotated.Sign(claims("vigil-api", t0.Add(time.Hour)))
	require.NoError(t, err)
	require.Equal(t, auth.KID(newPub), header(t, newTok)["kid"], "the new key signs")
	_, err = old.Verify(newTok, "vigil-api", t0)
	require.ErrorIs(t, err, auth.ErrBadToken, "a replica not rotated yet does not know the new key")

	dropped := auth.NewKeySet(newPriv)
	_, err = dropped.Verify(oldTok, "vigil-api", t0)
	require.ErrorIs(t, err, auth.ErrBadToken, "the old key was dropped")
	_, err = dropped.Verify(newTok, "vigil-api", t0)
	require.NoError(t, err)

	v := rotated.Verifier()
	require.False(t, v.CanSign())
	_, err = v.Sign(claims("vigil-api", t0.Add(time.Hour)))
	require.Error(t, err)
	for _, tok := range []string{oldTok, newTok} {
		_, err = v.Verify(tok, "vigil-api", t0)
		require.NoError(t, err)
	}
	nv := auth.NewVerifier(oldPub)
	require.False(t, nv.CanSign())
	_, err = nv.Verify(oldTok, "vigil-api", t0)
	require.NoError(t, err)
	_, err = nv.Verify(newTok, "vigil-api", t0)
	require.ErrorIs(t, err, auth.ErrBadToken)
}

func TestLooksLikeJWT(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"eyJhbGciOiJFZERTQSJ9.e30.sig": true,
		"eyJ.a.b":                      true,
		"vgk_abcdef":                   false,
		"eyJhbGciOiJFZERTQSJ9.e30":     false,
		"eyJ.a.b.c":                    false,
		"ab.c.d":                       false,
		"":                             false,
		"s3cret-admin-token":           false,
	} {
		require.Equal(t, want, auth.LooksLikeJWT(s), "%q", s)
	}
}

func TestKeyFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	privPath := filepath.Join(dir, "signing.pem")
	require.NoError(t, auth.GenerateKeyFile(privPath))
	fi, err := os.Stat(privPath)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	require.Error(t, auth.GenerateKeyFile(privPath), "an existing key is never overwritten")

	pub, priv, err := auth.ReadKeyFile(privPath)
	require.NoError(t, err)
	require.NotNil(t, priv)
	require.Equal(t, priv.Public(), pub)

	signer, err := auth.LoadKeySet(privPath)
	require.NoError(t, err)
	require.True(t, signer.CanSign())
	edPub, ok := pub.(ed25519.PublicKey)
	require.True(t, ok)
	require.Equal(t, auth.KID(edPub), signer.SignerKID())
	tok, err := signer.Sign(claims("vigil-service:monitor", t0.Add(time.Minute)))
	require.NoError(t, err)

	// The public key verifies, and only verifies.
	pubPath := filepath.Join(dir, "signing.pub.pem")
	require.NoError(t, auth.WritePublicKeyFile(privPath, pubPath))
	pub2, priv2, err := auth.ReadKeyFile(pubPath)
	require.NoError(t, err)
	require.Nil(t, priv2)
	require.Equal(t, pub, pub2)
	verifier, err := auth.LoadKeySet(pubPath)
	require.NoError(t, err)
	require.False(t, verifier.CanSign())
	_, err = verifier.Sign(claims("vigil-service:monitor", t0.Add(time.Minute)))
	require.Error(t, err)
	_, err = verifier.Verify(tok, "vigil-service:monitor", t0)
	require.NoError(t, err)

	// Rotation from files: a new signing key, the old one's public key to
	// verify.
	newPath := filepath.Join(dir, "signing-2.pem")
	require.NoError(t, auth.GenerateKeyFile(newPath))
	rotated, err := auth.LoadKeySet(newPath, pubPath)
	require.NoError(t, err)
	require.True(t, rotated.CanSign())
	require.NotEqual(t, signer.SignerKID(), rotated.SignerKID())
	_, err = rotated.Verify(tok, "vigil-service:monitor", t0)
	require.NoError(t, err)
	alone, err := auth.LoadKeySet(newPath)
	require.NoError(t, err)
	_, err = alone.Verify(tok, "vigil-service:monitor", t0)
	require.ErrorIs(t, err, auth.ErrBadToken)

	// A private key others may read is refused, wherever it is used.
	require.NoError(t, os.Chmod(privPath, 0o644))
	_, _, err = auth.ReadKeyFile(privPath)
	require.ErrorContains(t, err, "chmod 600")
	_, err = auth.LoadKeySet(privPath)
	require.ErrorContains(t, err, "chmod 600")
	_, err = auth.LoadKeySet(newPath, privPath)
	require.ErrorContains(t, err, "chmod 600")
	require.ErrorContains(t, auth.WritePublicKeyFile(privPath, filepath.Join(dir, "x.pem")), "chmod 600")
	require.NoError(t, os.Chmod(privPath, 0o640))
	_, _, err = auth.ReadKeyFile(privPath)
	require.ErrorContains(t, err, "chmod 600", "group-readable is refused too")
	// A public key may be world-readable.
	require.NoError(t, os.Chmod(pubPath, 0o644))
	_, err = auth.LoadKeySet(pubPath)
	require.NoError(t, err)
}

func TestReadKeyFileRejects(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	require.NoError(t, err)
	ecPubDER, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	require.NoError(t, err)

	tests := []struct {
		name, path, msg string
	}{
		{name: "missing", path: filepath.Join(dir, "nope.pem"), msg: "no such file"},
		{name: "not PEM", path: write("text.pem", []byte("hello")), msg: "no PEM block"},
		{name: "other block", path: write("cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}})), msg: `"CERTIFICATE"`},
		{name: "ECDSA private key", path: write("ec.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})), msg: "not an Ed25519 key"},
		{name: "ECDSA public key", path: write("ec.pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecPubDER})), msg: "not an Ed25519 key"},
		{name: "corrupt private key", path: write("bad.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}})), msg: "bad.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := auth.ReadKeyFile(tt.path)
			require.ErrorContains(t, err, tt.msg)
		})
	}
}
