package gateway_test

import (
	"net/http"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit/fakesentry"
	"github.com/vigil-ops/vigil/services/gateway"
)

// The Sentry route takes what the configured integration signed; without
// a client secret it is not there, and says what to set.
func TestSentryWebhookRoute(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile("internal/source/sentry/testdata/issue_created.json")
	require.NoError(t, err)
	e := newEnv(t)

	off := e.start(t, gateway.Options{})
	status, out := fakesentry.Post(t, "http://"+off.addr+"/api/v1/webhooks/sentry", "anything", "issue", body)
	require.Equal(t, http.StatusNotFound, status)
	require.Contains(t, out, "VIGIL_SENTRY_CLIENT_SECRET")

	const secret = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0"
	on := e.start(t, gateway.Options{SentryClientSecret: secret, SentryTeam: "payments-team"})
	url := "http://" + on.addr + "/api/v1/webhooks/sentry"
	status, out = fakesentry.Post(t, url, "", "issue", body)
	require.Equal(t, http.StatusUnauthorized, status, out)
	status, out = fakesentry.Post(t, url, "not-the-secret", "issue", body)
	require.Equal(t, http.StatusUnauthorized, status, out)
	status, out = fakesentry.Post(t, url, secret, "issue", body)
	require.Equal(t, http.StatusAccepted, status, out)
	require.JSONEq(t, `{"accepted":1,"truncated_alerts":0}`, out)
}

func TestSentryTeamNeedsSecret(t *testing.T) {
	t.Parallel()
	require.ErrorContains(t, gateway.Options{SentryTeam: "payments-team"}.Validate(), "VIGIL_SENTRY_TEAM")
	require.ErrorContains(t, gateway.Options{SentryClientSecret: " s "}.Validate(), "VIGIL_SENTRY_CLIENT_SECRET")
	require.NoError(t, gateway.Options{SentryClientSecret: "s", SentryTeam: "payments-team"}.Validate())
}
