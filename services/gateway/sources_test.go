package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/chat/webhook"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway"
)

const (
	sourceSecret = "uptime-kuma-secret-0123456789"
	rotated      = "uptime-kuma-rotated-secret-987654"
)

// kumaMapping is the shipped Uptime Kuma mapping, as the API takes it.
var kumaMapping = map[string]any{
	"alerts": `body.heartbeat == null ? [] : [body]`,
	"labels": map[string]string{
		"alertname": `"MonitorDown"`, "monitor": "item.monitor.name", "severity": `"critical"`,
	},
	"status": `item.heartbeat.status == 0 ? "firing" : "resolved"`,
}

func kumaSource(mapping map[string]any) map[string]any {
	return map[string]any{"name": "kuma", "type": "generic", "team": "payments", "auth": "hmac", "generic": map[string]any{"mapping": mapping}}
}

// raw makes a REST call and returns its status and body.
func raw(t *testing.T, addr, method, path string, body any) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(method, "http://"+addr+path, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+restAdminToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, out
}

// deliver POSTs body to source name, signed with secret.
func deliver(t *testing.T, addr, name string, body []byte, secret string) (int, server.Problem) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/webhooks/sources/"+name, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(secret, body, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var p server.Problem
	if resp.StatusCode >= 400 {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	}
	return resp.StatusCode, p
}

func kumaDown(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../../docs/sources/examples/uptime-kuma/down.json")
	require.NoError(t, err)
	return b
}

// TestSourceService declares a source over REST, on one replica, and
// follows it on another: refusals store nothing, the secret is sealed
// and never returned, a rotation takes effect, a delete ends the URL.
func TestSourceService(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	opts := gateway.Options{AdminToken: restAdminToken, EncryptionKey: bytes.Repeat([]byte{7}, 32), SourcesReload: 50 * time.Millisecond}
	a, b := e.start(t, opts), e.start(t, opts)
	down := kumaDown(t)

	list := func() []any {
		code, body := raw(t, a.addr, http.MethodGet, "/api/v1/sources", nil)
		require.Equal(t, http.StatusOK, code, string(body))
		var l struct{ Sources []any }
		require.NoError(t, json.Unmarshal(body, &l))
		return l.Sources
	}

	// Refused: a mapping CEL does not compile, an hmac source without a
	// secret, a secret too short. Nothing stored.
	broken := map[string]any{"labels": map[string]string{"alertname": "item.monitor.name +"}}
	for _, tc := range []struct {
		name  string
		req   map[string]any
		field string
	}{
		{"bad expression", map[string]any{"source": kumaSource(broken), "secret": sourceSecret}, "source.generic.mapping.labels.alertname"},
		{"no secret", map[string]any{"source": kumaSource(kumaMapping)}, "secret"},
		{"short secret", map[string]any{"source": kumaSource(kumaMapping), "secret": "short"}, "secret"},
	} {
		code, body := raw(t, a.addr, http.MethodPost, "/api/v1/sources", tc.req)
		require.Equal(t, http.StatusBadRequest, code, tc.name)
		var p server.Problem
		require.NoError(t, json.Unmarshal(body, &p))
		require.NotEmpty(t, p.Errors, tc.name)
		assert.Equal(t, tc.field, p.Errors[0].Field, tc.name)
	}
	require.Empty(t, list(), "nothing refused was stored")
	code, _ := deliver(t, a.addr, "kuma", down, sourceSecret)
	require.Equal(t, http.StatusNotFound, code)

	code, body := raw(t, a.addr, http.MethodPost, "/api/v1/sources", map[string]any{"source": kumaSource(kumaMapping), "secret": sourceSecret})
	require.Equal(t, http.StatusOK, code, string(body))
	assert.NotContains(t, string(body), sourceSecret)
	var created struct {
		Source struct {
			Name      string `json:"name"`
			HasSecret bool   `json:"has_secret"`
			Path      string `json:"path"`
			CreatedBy string `json:"created_by"`
		} `json:"source"`
	}
	require.NoError(t, json.Unmarshal(body, &created))
	assert.True(t, created.Source.HasSecret)
	assert.Equal(t, "/api/v1/webhooks/sources/kuma", created.Source.Path)
	assert.Equal(t, "bootstrap:admin", created.Source.CreatedBy)
	code, body = raw(t, a.addr, http.MethodGet, "/api/v1/sources/kuma", nil)
	require.Equal(t, http.StatusOK, code)
	assert.NotContains(t, string(body), sourceSecret, "the secret is write-only")
	require.Len(t, list(), 1)

	// Sealed at rest, bound to the source.
	conn, err := pgx.Connect(context.Background(), e.dsn)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var sealed []byte
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT secret FROM gateway.sources WHERE name = 'kuma'`).Scan(&sealed))
	assert.NotContains(t, string(sealed), sourceSecret)

	// The replica it was declared on serves it at once; the other within
	// its reload interval.
	code, p := deliver(t, a.addr, "kuma", down, sourceSecret)
	require.Equal(t, http.StatusAccepted, code, p.Detail)
	require.Eventually(t, func() bool {
		code, _ := deliver(t, b.addr, "kuma", down, sourceSecret)
		return code == http.StatusAccepted
	}, 10*time.Second, 20*time.Millisecond, "the other replica serves the source")

	// The dry run: what a body makes, or where the mapping fails.
	code, body = raw(t, a.addr, http.MethodPost, "/api/v1/sources:test", map[string]any{"name": "kuma", "body": string(down)})
	require.Equal(t, http.StatusOK, code, string(body))
	var tried struct {
		Alerts []struct {
			Labels      map[string]string `json:"labels"`
			Fingerprint string            `json:"fingerprint"`
			Status      string            `json:"status"`
		} `json:"alerts"`
	}
	require.NoError(t, json.Unmarshal(body, &tried))
	require.Len(t, tried.Alerts, 1)
	assert.Equal(t, map[string]string{"alertname": "MonitorDown", "monitor": "shop API", "severity": "critical"}, tried.Alerts[0].Labels)
	assert.NotEmpty(t, tried.Alerts[0].Fingerprint)
	assert.Equal(t, "ALERT_STATUS_FIRING", tried.Alerts[0].Status)
	code, body = raw(t, a.addr, http.MethodPost, "/api/v1/sources:test", map[string]any{"name": "kuma", "body": `{"heartbeat":{"status":0}}`})
	require.Equal(t, http.StatusBadRequest, code, string(body))
	var failed server.Problem
	require.NoError(t, json.Unmarshal(body, &failed))
	require.NotEmpty(t, failed.Errors)
	assert.Equal(t, "alerts[0].labels.monitor", failed.Errors[0].Field)
	code, body = raw(t, a.addr, http.MethodPost, "/api/v1/sources:test", map[string]any{"generic": map[string]any{"mapping": broken}, "body": "{}"})
	require.Equal(t, http.StatusBadRequest, code, string(body))

	// A rotation: the old secret is refused from then on.
	code, body = raw(t, a.addr, http.MethodPatch, "/api/v1/sources/kuma", map[string]any{"source": map[string]any{"name": "kuma"}, "secret": rotated})
	require.Equal(t, http.StatusOK, code, string(body))
	code, _ = deliver(t, a.addr, "kuma", down, sourceSecret)
	assert.Equal(t, http.StatusUnauthorized, code)
	code, p = deliver(t, a.addr, "kuma", down, rotated)
	assert.Equal(t, http.StatusAccepted, code, p.Detail)
	// A change that does not compile changes nothing.
	code, body = raw(t, a.addr, http.MethodPatch, "/api/v1/sources/kuma", map[string]any{
		"source": map[string]any{"name": "kuma", "generic": map[string]any{"mapping": broken}}, "update_mask": "generic",
	})
	require.Equal(t, http.StatusBadRequest, code)
	require.NoError(t, json.Unmarshal(body, &failed))
	require.NotEmpty(t, failed.Errors)
	assert.Equal(t, "source.generic.mapping.labels.alertname", failed.Errors[0].Field)
	code, p = deliver(t, a.addr, "kuma", down, rotated)
	assert.Equal(t, http.StatusAccepted, code, p.Detail)

	code, _ = raw(t, a.addr, http.MethodDelete, "/api/v1/sources/kuma", nil)
	require.Equal(t, http.StatusOK, code)
	code, _ = deliver(t, a.addr, "kuma", down, rotated)
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = raw(t, a.addr, http.MethodGet, "/api/v1/sources/kuma", nil)
	assert.Equal(t, http.StatusNotFound, code)
	require.Eventually(t, func() bool {
		code, _ := deliver(t, b.addr, "kuma", down, rotated)
		return code == http.StatusNotFound
	}, 10*time.Second, 20*time.Millisecond, "the other replica forgets it too")
}

// Without VIGIL_ENCRYPTION_KEY no secret can be sealed: an hmac source is
// refused (nothing stored), one verified by keys is declared and served.
func TestSourceWithoutEncryptionKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := e.start(t, gateway.Options{AdminToken: restAdminToken})
	code, body := raw(t, g.addr, http.MethodPost, "/api/v1/sources", map[string]any{"source": kumaSource(kumaMapping), "secret": sourceSecret})
	require.Equal(t, http.StatusBadRequest, code, string(body))
	assert.Contains(t, string(body), "VIGIL_ENCRYPTION_KEY")
	code, body = raw(t, g.addr, http.MethodGet, "/api/v1/sources", nil)
	require.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{}`, string(body), "nothing stored")

	keyed := kumaSource(kumaMapping)
	keyed["auth"] = "key"
	code, body = raw(t, g.addr, http.MethodPost, "/api/v1/sources", map[string]any{"source": keyed})
	require.Equal(t, http.StatusOK, code, string(body))
	req, err := http.NewRequest(http.MethodPost, "http://"+g.addr+"/api/v1/webhooks/sources/kuma", bytes.NewReader(kumaDown(t)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+restAdminToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusAccepted, resp.StatusCode, "the bootstrap admin's token is an admin's key")
}

// A replica whose VIGIL_ENCRYPTION_KEY is not the one a secret was sealed
// with cannot verify that source: it answers 503 (the sender retries,
// the log says why), serves the others, and a new secret mends it.
func TestSourceSealedUnderAnotherKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.start(t, gateway.Options{AdminToken: restAdminToken, EncryptionKey: bytes.Repeat([]byte{1}, 32)})
	code, body := raw(t, a.addr, http.MethodPost, "/api/v1/sources", map[string]any{"source": kumaSource(kumaMapping), "secret": sourceSecret})
	require.Equal(t, http.StatusOK, code, string(body))

	b := e.start(t, gateway.Options{AdminToken: restAdminToken, EncryptionKey: bytes.Repeat([]byte{2}, 32)})
	down := kumaDown(t)
	code, p := deliver(t, b.addr, "kuma", down, sourceSecret)
	assert.Equal(t, http.StatusServiceUnavailable, code, p.Detail)
	code, p = deliver(t, a.addr, "kuma", down, sourceSecret)
	assert.Equal(t, http.StatusAccepted, code, p.Detail)

	code, body = raw(t, b.addr, http.MethodPatch, "/api/v1/sources/kuma", map[string]any{"source": map[string]any{"name": "kuma"}, "secret": rotated})
	require.Equal(t, http.StatusOK, code, string(body))
	code, p = deliver(t, b.addr, "kuma", down, rotated)
	assert.Equal(t, http.StatusAccepted, code, p.Detail)
}
