package seal_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/seal"
)

func key(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, seal.KeySize)
	_, _ = rand.Read(k)
	return k
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	k := key(t)
	b, err := seal.New(k)
	require.NoError(t, err)
	secret := []byte("password=hunter2")
	sealed := b.Seal(secret, "deploy.apps.secrets:shop")
	assert.False(t, bytes.Contains(sealed, secret), "ciphertext holds the plaintext")
	assert.NotEqual(t, sealed, b.Seal(secret, "deploy.apps.secrets:shop"), "a fresh nonce each time")

	got, err := b.Open(sealed, "deploy.apps.secrets:shop")
	require.NoError(t, err)
	assert.Equal(t, secret, got)

	_, err = b.Open(sealed, "deploy.apps.secrets:other")
	require.ErrorIs(t, err, seal.ErrOpen, "bound to its owner")

	other, err := seal.New(key(t))
	require.NoError(t, err)
	_, err = other.Open(sealed, "deploy.apps.secrets:shop")
	require.ErrorIs(t, err, seal.ErrOpen, "another key")

	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	_, err = b.Open(tampered, "deploy.apps.secrets:shop")
	require.ErrorIs(t, err, seal.ErrOpen)
	_, err = b.Open(sealed[:5], "deploy.apps.secrets:shop")
	require.ErrorIs(t, err, seal.ErrOpen)
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	k := key(t)
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k),
		hex.EncodeToString(k), " " + base64.StdEncoding.EncodeToString(k) + "\n",
	} {
		got, err := seal.ParseKey(s)
		require.NoError(t, err, s)
		assert.Equal(t, k, got)
	}
	for _, s := range []string{"", "not a key!", base64.StdEncoding.EncodeToString(k[:16])} {
		_, err := seal.ParseKey(s)
		require.Error(t, err, s)
	}
	_, err := seal.New(k[:16])
	require.Error(t, err)
}

func TestReadKeyFile(t *testing.T) {
	t.Parallel()
	k := key(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600))
	got, err := seal.ReadKeyFile(path)
	require.NoError(t, err)
	assert.Equal(t, k, got)

	raw := filepath.Join(dir, "raw")
	require.NoError(t, os.WriteFile(raw, k, 0o600))
	got, err = seal.ReadKeyFile(raw)
	require.NoError(t, err)
	assert.Equal(t, k, got)

	require.NoError(t, os.Chmod(path, 0o644))
	_, err = seal.ReadKeyFile(path)
	require.ErrorContains(t, err, "chmod 600")
}
