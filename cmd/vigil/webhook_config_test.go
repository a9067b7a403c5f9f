package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/services/notify/channel/webhook"
)

// The webhook's URL and secret (or a file holding it) reach notify's
// options, which refuse a URL without a secret or a plain-http one,
// naming the variable and not the URL (which may hold a token).
func TestWebhookNotifyFromEnv(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "webhook-secret")
	require.NoError(t, os.WriteFile(secretFile, []byte("s3cret\n"), 0o600))
	t.Setenv("VIGIL_WEBHOOK_URL", "https://hooks.example.com/vigil")
	t.Setenv("VIGIL_WEBHOOK_SECRET_FILE", secretFile)
	opts, err := appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	wh, ok := notifyChannel[webhook.Options](opts.Notify)
	require.True(t, ok)
	require.Equal(t, "https://hooks.example.com/vigil", wh.URL)
	require.Equal(t, "s3cret", wh.Secret)
	require.NoError(t, opts.Notify.Validate())

	t.Setenv("VIGIL_WEBHOOK_URL", "http://hooks.example.com/vigil?token=abc")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	err = opts.Notify.Validate()
	require.ErrorContains(t, err, "VIGIL_WEBHOOK_URL: want https")
	require.NotContains(t, err.Error(), "token=abc")

	t.Setenv("VIGIL_WEBHOOK_URL", "https://hooks.example.com/vigil")
	t.Setenv("VIGIL_WEBHOOK_SECRET_FILE", "")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.ErrorContains(t, opts.Notify.Validate(), "VIGIL_WEBHOOK_SECRET: missing")
}
