package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/services/notify/channel/telegram"
)

// `vigil signing-key generate --env` prints a pair that `vigil serve`
// reads back: the gateway's key signs, the public key only verifies what
// it signed.
func TestServeSigningKeys(t *testing.T) {
	var out bytes.Buffer
	cmd := signingKeyCommand()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"generate", "--env"})
	require.NoError(t, cmd.Execute())
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, line)
		env[k] = v
	}
	require.Len(t, env, 2)

	t.Setenv("VIGIL_SIGNING_KEY", env["VIGIL_SIGNING_KEY"])
	t.Setenv("VIGIL_SIGNING_PUBLIC_KEY", "")
	signer, err := serveSigningKeys()
	require.NoError(t, err)
	require.True(t, signer.CanSign())
	now := time.Now()
	tok, err := signer.Sign(auth.Claims{RegisteredClaims: jwt.RegisteredClaims{
		Audience: jwt.ClaimStrings{"x"}, ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)),
	}})
	require.NoError(t, err)

	t.Setenv("VIGIL_SIGNING_KEY", "")
	t.Setenv("VIGIL_SIGNING_PUBLIC_KEY", env["VIGIL_SIGNING_PUBLIC_KEY"])
	verifier, err := serveSigningKeys()
	require.NoError(t, err)
	require.False(t, verifier.CanSign(), "a service given the public key cannot sign")
	_, err = verifier.Verify(tok, "x", now)
	require.NoError(t, err)

	// Another key's public half does not verify it.
	other, _, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	t.Setenv("VIGIL_SIGNING_PUBLIC_KEY", base64.StdEncoding.EncodeToString(other))
	verifier, err = serveSigningKeys()
	require.NoError(t, err)
	_, err = verifier.Verify(tok, "x", now)
	require.ErrorIs(t, err, auth.ErrBadToken)

	for _, bad := range []struct{ name, value string }{
		{"VIGIL_SIGNING_KEY", "not base64!"},
		{"VIGIL_SIGNING_KEY", base64.StdEncoding.EncodeToString([]byte("short"))},
		{"VIGIL_SIGNING_PUBLIC_KEY", base64.StdEncoding.EncodeToString([]byte("short"))},
	} {
		t.Setenv("VIGIL_SIGNING_KEY", "")
		t.Setenv("VIGIL_SIGNING_PUBLIC_KEY", "")
		t.Setenv(bad.name, bad.value)
		_, err := serveSigningKeys()
		require.ErrorContains(t, err, bad.name)
	}

	t.Setenv("VIGIL_SIGNING_KEY", "")
	t.Setenv("VIGIL_SIGNING_PUBLIC_KEY", "")
	none, err := serveSigningKeys()
	require.NoError(t, err)
	require.Nil(t, none)

	// A PEM file written by `generate FILE --public FILE.pub`.
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "key.pem"), filepath.Join(dir, "key.pub")
	cmd = signingKeyCommand()
	cmd.SetArgs([]string{"generate", priv, "--public", pub})
	require.NoError(t, cmd.Execute())
	t.Setenv("VIGIL_SIGNING_KEY_FILE", pub)
	fromFile, err := serveSigningKeys()
	require.NoError(t, err)
	require.False(t, fromFile.CanSign())
	t.Setenv("VIGIL_SIGNING_KEY_FILE", priv)
	fromFile, err = serveSigningKeys()
	require.NoError(t, err)
	require.True(t, fromFile.CanSign())
}

// Server secrets come from the variable or from a file it names (a
// mounted Kubernetes or Docker secret), never both.
func TestSecretEnv(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte("from-file-token-123\n"), 0o600))

	t.Setenv("VIGIL_ADMIN_TOKEN", "")
	t.Setenv("VIGIL_ADMIN_TOKEN_FILE", file)
	v, err := secretEnv("VIGIL_ADMIN_TOKEN")
	require.NoError(t, err)
	require.Equal(t, "from-file-token-123", v)

	t.Setenv("VIGIL_ADMIN_TOKEN", "from-env")
	_, err = secretEnv("VIGIL_ADMIN_TOKEN")
	require.ErrorContains(t, err, "set one of them, not both")

	t.Setenv("VIGIL_ADMIN_TOKEN_FILE", "")
	v, err = secretEnv("VIGIL_ADMIN_TOKEN")
	require.NoError(t, err)
	require.Equal(t, "from-env", v)

	t.Setenv("VIGIL_ADMIN_TOKEN", "")
	t.Setenv("VIGIL_ADMIN_TOKEN_FILE", filepath.Join(t.TempDir(), "missing"))
	_, err = secretEnv("VIGIL_ADMIN_TOKEN")
	require.ErrorContains(t, err, "VIGIL_ADMIN_TOKEN_FILE")

	// The Telegram bot token reaches notify from a file too.
	t.Setenv("VIGIL_ADMIN_TOKEN_FILE", "")
	t.Setenv("VIGIL_TELEGRAM_BOT_TOKEN", "")
	t.Setenv("VIGIL_TELEGRAM_BOT_TOKEN_FILE", file)
	var f serviceFlags
	opts, err := appOptions(&f, []string{"notify"}, "")
	require.NoError(t, err)
	tg, _ := notifyChannel[telegram.Options](opts.Notify)
	require.Equal(t, "from-file-token-123", tg.BotToken)
}

// `vigil signing-key generate --env --service analysis` prints the
// analysis service's own key and its public key, which `serve analysis`
// and `serve deploy` read back: deploy authenticates analysis by it.
func TestServeServiceIdentity(t *testing.T) {
	var out bytes.Buffer
	cmd := signingKeyCommand()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"generate", "--env", "--service", "analysis"})
	require.NoError(t, cmd.Execute())
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, line)
		env[k] = v
	}
	require.Len(t, env, 2)

	t.Setenv("VIGIL_SERVICE_KEY", env["VIGIL_ANALYSIS_SERVICE_KEY"])
	key, _, err := serviceIdentity("analysis")
	require.NoError(t, err)
	t.Setenv("VIGIL_SERVICE_KEY", "")
	t.Setenv("VIGIL_ANALYSIS_PUBLIC_KEY", env["VIGIL_ANALYSIS_PUBLIC_KEY"])
	_, peers, err := serviceIdentity("deploy")
	require.NoError(t, err)
	require.Contains(t, peers, "analysis")

	md, err := auth.ServiceIdentity{Name: "analysis", Key: key, Audience: "deploy"}.GetRequestMetadata(t.Context())
	require.NoError(t, err)
	p, err := auth.ServiceAuthenticator{Service: "deploy", Peers: peers}.Authenticate(t.Context(), strings.TrimPrefix(md["authorization"], "Bearer "))
	require.NoError(t, err)
	require.Equal(t, "service:analysis", p.String())

	// A service's own key from a PEM file works the same.
	file := filepath.Join(t.TempDir(), "analysis.pem")
	require.NoError(t, auth.GenerateKeyFile(file))
	t.Setenv("VIGIL_SERVICE_KEY_FILE", file)
	key, _, err = serviceIdentity("analysis")
	require.NoError(t, err)
	require.Len(t, key, ed25519.PrivateKeySize)
	public := filepath.Join(t.TempDir(), "analysis.pub")
	require.NoError(t, auth.WritePublicKeyFile(file, public))
	t.Setenv("VIGIL_SERVICE_KEY_FILE", public)
	_, _, err = serviceIdentity("analysis")
	require.ErrorContains(t, err, "want a private key")
	t.Setenv("VIGIL_SERVICE_KEY_FILE", "")

	for _, bad := range []struct{ name, value string }{
		{"VIGIL_SERVICE_KEY", "not base64!"},
		{"VIGIL_ANALYSIS_PUBLIC_KEY", base64.StdEncoding.EncodeToString([]byte("short"))},
	} {
		t.Setenv("VIGIL_SERVICE_KEY", "")
		t.Setenv("VIGIL_ANALYSIS_PUBLIC_KEY", "")
		t.Setenv(bad.name, bad.value)
		_, _, err := serviceIdentity("deploy")
		require.ErrorContains(t, err, bad.name)
	}

	cmd = signingKeyCommand()
	cmd.SetArgs([]string{"generate", "--env", "--service", "notify"})
	cmd.SetOut(&out)
	require.ErrorContains(t, cmd.Execute(), "calls another on its own behalf")
}
