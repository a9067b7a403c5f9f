package generic_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/chat/webhook"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/pkg/subject"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/gateway/internal/ingest"
	"github.com/vigil-ops/vigil/services/gateway/internal/source"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/generic"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/sourcetest"
)

const secret = "kuma-secret-0123456789abcdef"

// keys are the API keys the tests present, by secret.
type keys map[string]auth.Principal

func (k keys) Authenticate(_ context.Context, s string) (auth.Principal, error) {
	if p, ok := k[s]; ok {
		return p, nil
	}
	return auth.Principal{}, auth.ErrUnauthenticated
}

var testKeys = keys{
	"payments-ingest": {Kind: auth.KindKey, Name: "payments-ingest", Scopes: []auth.Scope{auth.ScopeIngest}, Teams: []string{"payments"}},
	"web-ingest":      {Kind: auth.KindKey, Name: "web-ingest", Scopes: []auth.Scope{auth.ScopeIngest}, Teams: []string{"web"}},
	"payments-read":   {Kind: auth.KindKey, Name: "payments-read", Scopes: []auth.Scope{auth.ScopeRead}, Teams: []string{"payments"}},
	"admin":           {Kind: auth.KindKey, Name: "admin", Scopes: []auth.Scope{auth.ScopeAdmin}, AllTeams: true, Unowned: true},
}

// owners knows whose namespaces are: shop is payments', blog web's.
func owners(context.Context, ...map[string]string) (*subject.Index, error) {
	return subject.NewIndex([]subject.App{
		{Name: "shop", Team: "payments", Namespace: "shop"},
		{Name: "blog", Team: "web", Namespace: "blog"},
	}, nil), nil
}

// sources serves two declared sources the way the gateway does: kuma
// (HMAC, team payments) and dog (a key, team payments); any other name
// is unknown.
func sources(t *testing.T, js jetstream.JetStream) http.Handler {
	t.Helper()
	declared := map[string]*source.Source{}
	for _, c := range []generic.Config{
		{Name: "kuma", Team: "payments", Auth: generic.AuthHMAC, Secret: secret, Mapping: exampleMapping(t, "uptime-kuma")},
		{Name: "dog", Team: "payments", Auth: generic.AuthKey, Mapping: exampleMapping(t, "datadog")},
		{Name: "anyone", Auth: generic.AuthKey, Mapping: exampleMapping(t, "datadog")},
	} {
		src, err := generic.New(c, source.Keys{Auth: testKeys}, nil)
		require.NoError(t, err)
		declared[c.Name] = src
	}
	mux := http.NewServeMux()
	mux.Handle("POST /api/v1/webhooks/sources/{name}", &source.Handler{
		Lookup: func(r *http.Request) (*source.Source, error) {
			if src, ok := declared[r.PathValue("name")]; ok {
				return src, nil
			}
			return nil, source.ErrUnknown
		},
		Ingester: ingest.New(bus.NewPublisher(js, nil), owners, nil),
		MaxBytes: 1 << 20, Metrics: source.NewMetrics(nil), Log: testkit.Logger(t),
	})
	return mux
}

func send(t *testing.T, h http.Handler, name string, body []byte, set func(*http.Request)) (int, server.Problem) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/v1/webhooks/sources/"+name, bytes.NewReader(body))
	if set != nil {
		set(req)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var p server.Problem
	if rec.Code >= 400 {
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p), rec.Body.String())
	}
	return rec.Code, p
}

func signed(body []byte, key string, at time.Time) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set(webhook.SignatureHeader, webhook.Sign(key, body, at)) }
}

func TestWebhookSigned(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	h := sources(t, js)
	down := example(t, "uptime-kuma/down.json")

	code, p := send(t, h, "kuma", down, signed(down, secret, time.Now()))
	require.Equal(t, http.StatusAccepted, code, p.Detail)
	events := sourcetest.Stored(t, js)
	require.Len(t, events, 1)
	fired, ok := events[0].(*eventsv1.AlertFired)
	require.True(t, ok, "%T", events[0])
	assert.Equal(t, "shop API", fired.GetAlert().GetLabels()["monitor"])

	// Uptime Kuma's test button: accepted, nothing stored.
	test := example(t, "uptime-kuma/test.json")
	code, _ = send(t, h, "kuma", test, signed(test, secret, time.Now()))
	require.Equal(t, http.StatusAccepted, code)
	require.Len(t, sourcetest.Stored(t, js), 1)
}

func TestWebhookRefuses(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	h := sources(t, js)
	down := example(t, "uptime-kuma/down.json")
	dog := example(t, "datadog/payload.json")
	blog := bytes.ReplaceAll(dog, []byte("kube_namespace:shop"), []byte("kube_namespace:blog"))
	for _, tc := range []struct {
		name, source string
		body         []byte
		set          func(*http.Request)
		code         int
		detail       string
	}{
		{"unknown source", "nobody", down, signed(down, secret, time.Now()), http.StatusNotFound, "no such source"},
		{"unsigned", "kuma", down, nil, http.StatusUnauthorized, "no X-Vigil-Signature"},
		{"another secret", "kuma", down, signed(down, "another-secret-0123456789ab", time.Now()), http.StatusUnauthorized, "no valid signature"},
		{"another body", "kuma", down, signed(dog, secret, time.Now()), http.StatusUnauthorized, "no valid signature"},
		{"stale", "kuma", down, signed(down, secret, time.Now().Add(-webhook.Tolerance-time.Minute)), http.StatusUnauthorized, "outside the tolerance"},
		{"from the future", "kuma", down, signed(down, secret, time.Now().Add(webhook.Tolerance+time.Minute)), http.StatusUnauthorized, "outside the tolerance"},
		{"a key to a signed source", "kuma", down, sourcetest.Bearer("payments-ingest"), http.StatusUnauthorized, "no X-Vigil-Signature"},
		{"no key", "dog", dog, nil, http.StatusUnauthorized, "credentials"},
		{"a key of another team", "dog", dog, sourcetest.Bearer("web-ingest"), http.StatusForbidden, "team payments's"},
		{"a key without ingest", "dog", dog, sourcetest.Bearer("payments-read"), http.StatusForbidden, "ingest permission"},
		{"a team's key to a source of every team", "anyone", dog, sourcetest.Bearer("payments-ingest"), http.StatusForbidden, "only an admin's key"},
		{"another team's subject", "dog", blog, sourcetest.Bearer("payments-ingest"), http.StatusForbidden, "web"},
		{"the mapping fails", "kuma", []byte(`{"heartbeat":{}}`), signed([]byte(`{"heartbeat":{}}`), secret, time.Now()), http.StatusBadRequest, "alerts[0].labels"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, p := send(t, h, tc.source, tc.body, tc.set)
			assert.Equal(t, tc.code, code, p.Detail)
			assert.Contains(t, p.Detail+problemFields(p), tc.detail)
		})
	}
	assert.Empty(t, sourcetest.Stored(t, js), "nothing refused was stored")

	// The right keys pass.
	code, p := send(t, h, "dog", dog, sourcetest.Bearer("payments-ingest"))
	require.Equal(t, http.StatusAccepted, code, p.Detail)
	code, p = send(t, h, "anyone", dog, sourcetest.Bearer("admin"))
	require.Equal(t, http.StatusAccepted, code, p.Detail)
	assert.Len(t, sourcetest.Stored(t, js), 2)
}

func problemFields(p server.Problem) string {
	var s string
	for _, e := range p.Errors {
		s += " " + e.Field + ": " + e.Description
	}
	return s
}
