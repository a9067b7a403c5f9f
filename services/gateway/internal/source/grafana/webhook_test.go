package grafana_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/alertlabel"
	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/gateway/internal/ingest"
	"github.com/vigil-ops/vigil/services/gateway/internal/source"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/grafana"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/sourcetest"
)

const (
	ingestKey = "vgk_grafana-ingest-key-0123"
	readKey   = "vgk_grafana-read-key-0123456"
)

// keys stands for the gateway's key store: one key of scope ingest, one of
// scope read.
type keys struct{}

func (keys) Authenticate(_ context.Context, secret string) (auth.Principal, error) {
	switch secret {
	case ingestKey:
		return auth.Principal{Kind: auth.KindKey, Name: "grafana", Scopes: []auth.Scope{auth.ScopeIngest}, AllTeams: true, Unowned: true}, nil
	case readKey:
		return auth.Principal{Kind: auth.KindKey, Name: "dashboards", Scopes: []auth.Scope{auth.ScopeRead}, AllTeams: true, Unowned: true}, nil
	}
	return auth.Principal{}, auth.ErrUnauthenticated
}

func handler(t *testing.T, js jetstream.JetStream, maxBytes int64, reg prometheus.Registerer) http.Handler {
	t.Helper()
	return &source.Handler{
		Source:   grafana.Source(source.Keys{Auth: keys{}}),
		Ingester: ingest.New(bus.NewPublisher(js, nil), nil, nil),
		MaxBytes: maxBytes,
		Metrics:  source.NewMetrics(reg),
		Log:      testkit.Logger(t),
	}
}

func TestWebhookStoresFiringThenResolved(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	h := handler(t, js, 1<<20, nil)
	for name, setAuth := range map[string]func(*http.Request){
		"bearer":     sourcetest.Bearer(ingestKey),
		"basic auth": func(r *http.Request) { r.SetBasicAuth("grafana", ingestKey) },
	} {
		rec, _ := sourcetest.Post(t, h, string(readFixture(t, "kubernetes_dashboard.json")), setAuth)
		require.Equal(t, http.StatusAccepted, rec.Code, name)
		assert.JSONEq(t, `{"accepted":1,"truncated_alerts":2}`, rec.Body.String())
	}
	rec, _ := sourcetest.Post(t, h, string(readFixture(t, "firing.json")), sourcetest.Bearer(ingestKey))
	require.Equal(t, http.StatusAccepted, rec.Code)
	rec, _ = sourcetest.Post(t, h, string(readFixture(t, "resolved.json")), sourcetest.Bearer(ingestKey))
	require.Equal(t, http.StatusAccepted, rec.Code)

	var fired []*eventsv1.AlertFired
	var resolved []*eventsv1.AlertResolved
	for _, e := range sourcetest.Stored(t, js) {
		switch e := e.(type) {
		case *eventsv1.AlertFired:
			fired = append(fired, e)
		case *eventsv1.AlertResolved:
			resolved = append(resolved, e)
		}
	}
	require.Len(t, fired, 4, "twice the dashboard alert, then the documented example's two")
	require.Len(t, resolved, 1)

	// A repeat is the same alert: the fingerprint is the labels', so
	// monitor dedups it.
	first, again := fired[0].GetAlert(), fired[1].GetAlert()
	require.Equal(t, first.GetFingerprint(), again.GetFingerprint())
	assert.Equal(t, alertlabel.Fingerprint(first.GetLabels()), first.GetFingerprint())
	assert.NotEqual(t, "2d4c1a0f9b8e7d6c", first.GetFingerprint(), "not Grafana's fingerprint")
	assert.Equal(t, typesv1.AlertSource_ALERT_SOURCE_GRAFANA, first.GetSource())
	assert.Equal(t, "shop", first.GetLabels()["namespace"])
	assert.NotContains(t, first.GetLabels(), "__alert_rule_uid__")
	assert.Equal(t, "http://grafana.example:3000/d/shop-checkout?orgId=1&viewPanel=4", first.GetAnnotations()["panel_url"])
	assert.Equal(t, "A=0.0731, B=0.0731, C=1", first.GetAnnotations()["values"])
	assert.Equal(t, "http://grafana.example:3000/alerting/grafana/fe3k2mhv1e0hsd/view?orgId=1", first.GetGeneratorUrl())
	assert.Equal(t, "http://grafana.example:3000/", first.GetExternalUrl())

	// The resolution addresses the alert that fired.
	r := resolved[0].GetAlert()
	assert.Equal(t, fired[2].GetAlert().GetFingerprint(), r.GetFingerprint())
	assert.Equal(t, typesv1.AlertStatus_ALERT_STATUS_RESOLVED, r.GetStatus())
	assert.NotNil(t, r.GetEndsAt())
}

func TestWebhookTestNotificationIsAcceptedNotStored(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	h := handler(t, js, 1<<20, nil)
	rec, _ := sourcetest.Post(t, h, string(readFixture(t, "test_notification.json")), sourcetest.Bearer(ingestKey))
	require.Equal(t, http.StatusAccepted, rec.Code, "Grafana's Test button sees success")
	assert.Empty(t, sourcetest.Stored(t, js), "and no incident opens that nothing would resolve")
}

func TestWebhookRefuses(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	reg := prometheus.NewRegistry()
	h := handler(t, js, 4096, reg)
	valid := string(readFixture(t, "resolved.json"))
	require.Less(t, len(valid), 4096)
	tests := []struct {
		name       string
		body       string
		auth       func(*http.Request)
		wantStatus int
		wantField  string
	}{
		{"no credentials", valid, nil, http.StatusUnauthorized, ""},
		{"wrong key", valid, sourcetest.Bearer("vgk_wrong-key-0123456789"), http.StatusUnauthorized, ""},
		{"wrong basic password", valid, func(r *http.Request) { r.SetBasicAuth("grafana", "nope") }, http.StatusUnauthorized, ""},
		{"key without ingest", valid, sourcetest.Bearer(readKey), http.StatusForbidden, ""},
		{"malformed JSON", `{"version":`, sourcetest.Bearer(ingestKey), http.StatusBadRequest, ""},
		{"Alertmanager's version", strings.Replace(valid, `"version": "1"`, `"version": "4"`, 1), sourcetest.Bearer(ingestKey), http.StatusBadRequest, "version"},
		{"invalid label name", strings.Replace(valid, `"team": "blue"`, `"": "blue"`, 1), sourcetest.Bearer(ingestKey), http.StatusBadRequest, "alerts[0].labels"},
		{"too large", `{"version":"1","pad":"` + strings.Repeat("x", 5000) + `"}`, sourcetest.Bearer(ingestKey), http.StatusRequestEntityTooLarge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, p := sourcetest.Post(t, h, tt.body, tt.auth)
			require.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
			if tt.wantStatus == http.StatusUnauthorized {
				assert.NotEmpty(t, rec.Header().Get("WWW-Authenticate"))
				assert.Contains(t, p.Detail, "Authorization Header")
			}
			if tt.wantField != "" {
				require.NotEmpty(t, p.Errors)
				assert.Equal(t, tt.wantField, p.Errors[0].Field)
			}
		})
	}
	assert.Empty(t, sourcetest.Stored(t, js), "nothing refused was stored")
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP vigil_gateway_source_requests_refused_total Webhook requests a source refused, by reason.
# TYPE vigil_gateway_source_requests_refused_total counter
vigil_gateway_source_requests_refused_total{reason="forbidden",source="grafana"} 1
vigil_gateway_source_requests_refused_total{reason="invalid",source="grafana"} 3
vigil_gateway_source_requests_refused_total{reason="too large",source="grafana"} 1
vigil_gateway_source_requests_refused_total{reason="unauthenticated",source="grafana"} 3
`), "vigil_gateway_source_requests_refused_total", "vigil_gateway_source_alerts_accepted_total"), "each refusal counts once, by reason; nothing counts as accepted")

	rec, _ := sourcetest.Post(t, h, valid, sourcetest.Bearer(ingestKey))
	require.Equal(t, http.StatusAccepted, rec.Code)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP vigil_gateway_source_alerts_accepted_total Alerts accepted from a webhook source and stored on the bus.
# TYPE vigil_gateway_source_alerts_accepted_total counter
vigil_gateway_source_alerts_accepted_total{source="grafana"} 1
`), "vigil_gateway_source_alerts_accepted_total"))
}
