package gateway_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/services/gateway"
)

// postSentry posts a body of the issue resource, signed with key ("":
// unsigned), and returns the status and body of the answer.
func postSentry(t *testing.T, url, key string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sentry-Hook-Resource", "issue")
	if key != "" {
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write(body)
		req.Header.Set("Sentry-Hook-Signature", hex.EncodeToString(mac.Sum(nil)))
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(out)
}

// The Sentry route takes what the configured integration signed; without
// a client secret it is not there, and says what to set.
func TestSentryWebhookRoute(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile("internal/source/sentry/testdata/issue_created.json")
	require.NoError(t, err)
	e := newEnv(t)

	off := e.start(t, gateway.Options{})
	status, out := postSentry(t, "http://"+off.addr+"/api/v1/webhooks/sentry", "anything", body)
	require.Equal(t, http.StatusNotFound, status)
	require.Contains(t, out, "VIGIL_SENTRY_CLIENT_SECRET")

	const secret = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0"
	on := e.start(t, gateway.Options{SentryClientSecret: secret, SentryTeam: "payments-team"})
	url := "http://" + on.addr + "/api/v1/webhooks/sentry"
	status, out = postSentry(t, url, "", body)
	require.Equal(t, http.StatusUnauthorized, status, out)
	status, out = postSentry(t, url, "not-the-secret", body)
	require.Equal(t, http.StatusUnauthorized, status, out)
	status, out = postSentry(t, url, secret, body)
	require.Equal(t, http.StatusAccepted, status, out)
	require.JSONEq(t, `{"accepted":1,"truncated_alerts":0}`, out)
}

func TestSentryTeamNeedsSecret(t *testing.T) {
	t.Parallel()
	require.ErrorContains(t, gateway.Options{SentryTeam: "payments-team"}.Validate(), "VIGIL_SENTRY_TEAM")
	require.ErrorContains(t, gateway.Options{SentryClientSecret: " s "}.Validate(), "VIGIL_SENTRY_CLIENT_SECRET")
	require.NoError(t, gateway.Options{SentryClientSecret: "s", SentryTeam: "payments-team"}.Validate())
}
