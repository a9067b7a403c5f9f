package alertmanager_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/gateway/internal/ingest"
	"github.com/vigil-ops/vigil/services/gateway/internal/source"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/alertmanager"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/sourcetest"
)

const token = "webhook-test-token-0123"

func handler(t *testing.T, js jetstream.JetStream, maxBytes int64) http.Handler {
	t.Helper()
	return &source.Handler{
		Source:   alertmanager.Source(source.Keys{Auth: auth.AdminToken(token)}),
		Ingester: ingest.New(bus.NewPublisher(js, nil), nil, nil),
		MaxBytes: maxBytes,
		Metrics:  source.NewMetrics(nil),
		Log:      testkit.Logger(t),
	}
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	return string(b)
}

func TestWebhookStoresEveryAlertBeforeAccepting(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	h := handler(t, js, 1<<20)
	for name, setAuth := range map[string]func(*http.Request){
		"bearer":     sourcetest.Bearer(token),
		"basic auth": func(r *http.Request) { r.SetBasicAuth("alertmanager", token) },
	} {
		rec, _ := sourcetest.Post(t, h, fixture(t, "firing_with_resolved.json"), setAuth)
		require.Equal(t, http.StatusAccepted, rec.Code, name)
	}
	// Two webhooks of one firing and one resolved alert each: every alert
	// is stored once the 202 is out (in EventBatch envelopes or alone).
	bySubject := map[string]int{}
	var last *eventsv1.AlertResolved
	for _, e := range sourcetest.Stored(t, js) {
		subject, err := bus.SubjectOf(e)
		require.NoError(t, err)
		bySubject[subject]++
		if r, ok := e.(*eventsv1.AlertResolved); ok {
			last = r
		}
	}
	assert.Equal(t, map[string]int{"alert.fired": 2, "alert.resolved": 2}, bySubject)
	require.NotNil(t, last)
	assert.Equal(t, "7773b07b38325c6c", last.GetAlert().GetFingerprint())
	assert.Equal(t, typesv1.AlertSource_ALERT_SOURCE_ALERTMANAGER, last.GetAlert().GetSource())
	assert.Equal(t, "http://alertmanager.example:9093", last.GetAlert().GetExternalUrl())
	assert.NotNil(t, last.GetAlert().GetEndsAt())
	assert.NotEmpty(t, last.GetMeta().GetId())
}

func TestWebhookRejects(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	h := handler(t, js, 4096)
	valid := fixture(t, "firing.json")
	tests := []struct {
		name       string
		body       string
		auth       func(*http.Request)
		wantStatus int
		wantField  string
	}{
		{"no credentials", valid, nil, http.StatusUnauthorized, ""},
		{"wrong token", valid, sourcetest.Bearer("wrong-token-0123456"), http.StatusUnauthorized, ""},
		{"wrong basic password", valid, func(r *http.Request) { r.SetBasicAuth("am", "nope") }, http.StatusUnauthorized, ""},
		{"malformed JSON", `{"version":`, sourcetest.Bearer(token), http.StatusBadRequest, ""},
		{"wrong version", strings.Replace(valid, `"version":"4"`, `"version":"3"`, 1), sourcetest.Bearer(token), http.StatusBadRequest, "version"},
		{"too large", `{"version":"4","pad":"` + strings.Repeat("x", 5000) + `"}`, sourcetest.Bearer(token), http.StatusRequestEntityTooLarge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, p := sourcetest.Post(t, h, tt.body, tt.auth)
			require.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
			if tt.wantStatus == http.StatusUnauthorized {
				assert.NotEmpty(t, rec.Header().Get("WWW-Authenticate"))
			}
			if tt.wantField != "" {
				require.NotEmpty(t, p.Errors)
				assert.Equal(t, tt.wantField, p.Errors[0].Field)
			}
		})
	}
	assert.Empty(t, sourcetest.Stored(t, js), "nothing rejected was stored")
}

// With the bus unreachable the webhook answers 503 with Retry-After, so
// Alertmanager keeps the alerts and tries again.
func TestWebhookBusDownIs503(t *testing.T) {
	t.Parallel()
	nc, js := testkit.JetStream(t, testkit.NATS(t))
	h := handler(t, js, 1<<20)
	nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/api/v1/webhooks/alertmanager", strings.NewReader(fixture(t, "firing.json")))
	sourcetest.Bearer(token)(req)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "5", rec.Header().Get("Retry-After"))
}
